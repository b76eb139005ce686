//! Operator commands that work on the database directly.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context, bail};
use app::server::audit::{self, Action, Event};
use app::server::auth::users::{self, NewRole};
use app::server::auth::{Email, NewPassword, Role, password};
use app::server::config::Config;
use app::server::db::Db;
use app::server::keys::{self, Vault};

/// The variable a script can put the new password in (it never goes on the command line, where
/// `ps` and shell history would show it).
pub const PASSWORD_VAR: &str = "DARKROOM_PASSWORD";

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    Db::connect(&config.database_url).await.context("opening and migrating the database")?;
    println!("database is up to date");
    Ok(())
}

/// Creates an account, or with `admin` set also makes it an admin. The password comes from
/// `DARKROOM_PASSWORD` or the first line of stdin.
pub async fn create_user(config: &Config, email: &str, admin: bool) -> anyhow::Result<()> {
    let (db, _) = Db::connect(&config.database_url).await?;
    let email = Email::parse(email).map_err(|_| anyhow::anyhow!("{email:?} is not a valid email address"))?;
    let secret = read_password()?;
    let password = NewPassword::parse(&secret, &secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = password::hash(password.expose().to_owned()).await?;
    let role = if admin { Role::Admin } else { Role::User };
    let user = match users::create(&db, &email, &hash, NewRole::Fixed(role)).await {
        Ok(user) => user,
        Err(app::server::auth::AuthError::EmailTaken) => {
            bail!("an account with {email} already exists (use `user promote`)")
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    audit::record(
        &db,
        Event::new(Action::UserCreated)
            .subject("user", &user.id)
            .detail(serde_json::json!({ "role": role.as_str(), "via": "cli" })),
    )
    .await;
    println!("created {} ({})", user.email, user.role.as_str());
    Ok(())
}

pub async fn promote(config: &Config, email: &str) -> anyhow::Result<()> {
    let (db, _) = Db::connect(&config.database_url).await?;
    let email = Email::parse(email).map_err(|_| anyhow::anyhow!("{email:?} is not a valid email address"))?;
    let user = users::find_by_email(&db, &email).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(user) = user else { bail!("no account with {email}") };
    users::set_role(&db, &user.id, Role::Admin).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    audit::record(
        &db,
        Event::new(Action::UserPromoted).subject("user", &user.id).detail(serde_json::json!({ "via": "cli" })),
    )
    .await;
    println!("{email} is now an admin");
    Ok(())
}

/// Re-seals every stored fal key under the current master key.
pub async fn rotate_keys(config: &Config) -> anyhow::Result<()> {
    let (db, _) = Db::connect(&config.database_url).await?;
    let vault = Vault::load(&config.master_key, &config.previous_master_keys.0)?;
    let changed = keys::rotate(&db, &vault).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("re-sealed {changed} key(s) under master key {}", vault.current_key_id());
    Ok(())
}

/// One pass of the background upkeep (expired tickets, leftover objects, old counters).
pub async fn sweep(config: &Config) -> anyhow::Result<()> {
    let services = services(config).await?;
    let report = app::server::maintenance::run_once(&services.0).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "expired {} ticket(s), deleted {} image(s) kept long enough, gave up on {} interrupted confirmation(s), \
         retried {} deletion(s), removed {} orphan object(s)",
        report.expired, report.sources_expired, report.interrupted, report.retried_deletes, report.orphans
    );
    Ok(())
}

/// Applies the browser rules (CORS) and lifecycle rules a production bucket needs.
pub async fn storage_setup(config: &Config, extra_origins: &[String]) -> anyhow::Result<()> {
    if matches!(config.storage.backend, app::server::config::StorageBackend::Embedded { .. }) {
        println!(
            "the embedded S3 endpoint needs no setup: its CORS rules are built in and the sweeper removes stale uploads"
        );
        return Ok(());
    }
    let mut origins: Vec<String> = config.public_url.iter().map(|u| u.origin().ascii_serialization()).collect();
    origins.extend(extra_origins.iter().cloned());
    if origins.is_empty() {
        bail!("set PUBLIC_URL (or pass --origin) so the buckets know which site may upload to them");
    }
    let (storage, _embedded) = crate::server::open_storage(config, config.site_addr).await?;
    for line in storage.apply_rules(&origins).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        println!("{line}");
    }
    Ok(())
}

/// `darkroom storage reconcile`: one full pass, printed.
pub async fn storage_reconcile(config: &Config, grace_hours: u64) -> anyhow::Result<()> {
    let services = services(config).await?;
    let state = &services.0;
    let grace = Duration::from_secs(grace_hours.saturating_mul(3600));
    let now = app::server::db::now_ms();
    let report =
        app::server::reconcile::run(&state.db, &state.storage, now, grace).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} object(s), {} byte(s); deleted {} orphan(s) older than {grace_hours} h, left {} younger, \
         {} outside Darkroom's areas untouched, {} deletion(s) failed",
        report.objects, report.bytes, report.orphans_deleted, report.orphans_recent, report.foreign, report.failed
    );
    for missing in &report.missing {
        println!("missing: {:?} {} has no object at {}", missing.area, missing.id, missing.key);
    }
    for (user, totals) in &report.users {
        let (images, results) = totals.drift();
        if images != 0 || results != 0 {
            println!(
                "drift: user {user}: images {images:+} bytes ({} in rows, {} stored), results {results:+} bytes \
                 ({} in rows, {} stored), thumbnails {} stored",
                totals.images_in_rows,
                totals.images_listed,
                totals.results_in_rows,
                totals.results_listed,
                totals.thumbnails_listed
            );
        }
    }
    if !report.missing.is_empty() || report.failed > 0 {
        bail!("{} row(s) without their object, {} failed deletion(s)", report.missing.len(), report.failed);
    }
    Ok(())
}

/// Database and storage for a one-off command. With the embedded backend the command serves the
/// object store itself, on a private loopback port, beside any running server (both use the same
/// directory); the returned task keeps it up.
async fn services(
    config: &Config,
) -> anyhow::Result<(app::server::state::Services, Option<tokio::task::JoinHandle<()>>)> {
    let (db, sessions) = Db::connect(&config.database_url).await?;
    let vault = Vault::load(&config.master_key, &config.previous_master_keys.0)?;
    let (storage, serving) = match &config.storage.backend {
        app::server::config::StorageBackend::Embedded { root } => {
            let (uploads, results) = (config.storage.uploads_bucket.clone(), config.storage.results_bucket.clone());
            let s3 = crate::embedded_s3::EmbeddedS3::open(
                root,
                &crate::embedded_s3::credentials_path(&config.data_dir),
                &[&uploads, &results],
            )?;
            let (endpoint, task) = s3.serve_privately().await?;
            let signing = crate::server::embedded_signing(config);
            (app::server::storage::Storage::connect(&endpoint, uploads, results, signing).await, Some(task))
        }
        app::server::config::StorageBackend::External(_) => {
            (crate::server::open_storage(config, config.site_addr).await?.0, None)
        }
    };
    let (jobs, _) = app::server::jobs::JobRuntime::start(config, &db).await;
    let services = app::server::state::Services {
        jobs,
        leptos_options: crate::server::leptos_options(config),
        config: config.clone(),
        db,
        vault,
        fal: app::server::fal::FalClient::new(&config.fal),
        storage,
        sessions: app::server::auth::session::store(&sessions),
        sweep_position: Default::default(),
    };
    Ok((services, serving))
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(value) = std::env::var(PASSWORD_VAR) {
        return Ok(value);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password("Password for the new account: ").context("reading the password");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no password given: pipe it on stdin or set {PASSWORD_VAR}");
    }
    Ok(line)
}
