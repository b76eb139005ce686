use anyhow::Context;
use app::server::config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "darkroom", version, about = "Generate images and videos with fal.ai and keep them private.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the encrypted provider keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run one pass of the upkeep: expire unconfirmed uploads, delete leftover objects.
    Sweep,
    /// Prepare external storage.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Run the fake fal server used by the tests (never point production at it).
    #[cfg(feature = "fake-fal")]
    FakeFal {
        #[arg(long, default_value = "127.0.0.1:3999")]
        addr: std::net::SocketAddr,
        /// A CA certificate (PEM) to trust when reaching Darkroom over https.
        #[arg(long)]
        trust_ca: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from DARKROOM_PASSWORD or stdin, never argv.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        admin: bool,
    },
    /// Make an existing account an admin.
    Promote { email: String },
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Apply the CORS rules direct uploads need (origin from PUBLIC_URL) and lifecycle rules
    /// that expire abandoned uploads, on both buckets.
    Setup {
        /// Another origin allowed to upload (repeatable), besides PUBLIC_URL's.
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// Check every stored object against the rows that need it: delete objects no row needs
    /// that are older than the grace period, report rows whose object is missing and each
    /// user's bytes as rows count them beside what storage holds.
    Reconcile {
        /// How old an object no row needs must be before it is deleted.
        #[arg(long, default_value_t = 24)]
        grace_hours: u64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-encrypt every stored key under the current master key (after setting
    /// DARKROOM_MASTER_KEY_PREVIOUS to the old one).
    Rotate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    darkroom::telemetry::init();
    let cli = Cli::parse();
    let config = || Config::from_env().context("reading configuration from the environment");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = config()?;
            let listener = tokio::net::TcpListener::bind(config.site_addr)
                .await
                .with_context(|| format!("binding {}", config.site_addr))?;
            let grace = config.shutdown_grace;
            let mut running = darkroom::server::start(config, listener).await?;
            tokio::select! {
                result = running.wait() => return result,
                _ = shutdown_signal() => {}
            }
            running.shut_down(grace).await;
            Ok(())
        }
        Command::Migrate => darkroom::cli::migrate(&config()?).await,
        Command::User(UserCommand::Create { email, admin }) => {
            darkroom::cli::create_user(&config()?, &email, admin).await
        }
        Command::User(UserCommand::Promote { email }) => darkroom::cli::promote(&config()?, &email).await,
        Command::Keys(KeysCommand::Rotate) => darkroom::cli::rotate_keys(&config()?).await,
        Command::Sweep => darkroom::cli::sweep(&config()?).await,
        Command::Storage(StorageCommand::Setup { origins }) => darkroom::cli::storage_setup(&config()?, &origins).await,
        Command::Storage(StorageCommand::Reconcile { grace_hours }) => {
            darkroom::cli::storage_reconcile(&config()?, grace_hours).await
        }
        #[cfg(feature = "fake-fal")]
        Command::FakeFal { addr, trust_ca } => {
            let ca = trust_ca
                .map(|path| std::fs::read(&path).with_context(|| format!("reading {}", path.display())))
                .transpose()?;
            let fake = darkroom::fake_fal::FakeFal::start_trusting(addr, ca.as_deref()).await?;
            println!("fake fal listening on {}", fake.base_url());
            shutdown_signal().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
