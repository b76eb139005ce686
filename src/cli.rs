//! Operator commands that work on the database directly.

use std::io::BufRead;

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
