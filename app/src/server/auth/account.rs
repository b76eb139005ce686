//! Signup and login: parsing, limits, hashing and auditing in one place per flow.

use serde_json::json;

use super::users::{self, NewRole};
use super::{AuthError, Email, NewPassword, Role, User, password};
use crate::server::audit::{self, Action, Event};
use crate::server::config::AuthConfig;
use crate::server::db::Db;
use crate::server::rate_limit;

pub struct SignupForm<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub confirm: &'a str,
}

pub async fn sign_up(db: &Db, config: &AuthConfig, ip: &str, form: SignupForm<'_>) -> Result<User, AuthError> {
    if !config.allow_signup {
        return Err(AuthError::SignupClosed);
    }
    let client = rate_limit::client_key(ip);
    // Count every attempt from an address, valid or not: signup is where accounts are
    // mass-created. Per address first, so garbage never reaches an account-keyed counter.
    if let Some(wait) = rate_limit::hit(db, &format!("signup:ip:{client}"), config.signup_ip_limit).await? {
        audit::record(db, Event::new(Action::RateLimited).ip(ip).detail(json!({ "flow": "signup" }))).await;
        return Err(AuthError::RateLimited(wait));
    }
    let email = Email::parse(form.email)?;
    if let Some(wait) = rate_limit::hit(db, &format!("signup:account:{email}"), config.signup_limit).await? {
        audit::record(db, Event::new(Action::RateLimited).ip(ip).detail(json!({ "flow": "signup" }))).await;
        return Err(AuthError::RateLimited(wait));
    }
    let password = NewPassword::parse(form.password, form.confirm)?;
    let hash = password::hash(password.expose().to_owned()).await?;
    let role = if config.first_user_admin { NewRole::AdminIfFirst } else { NewRole::Fixed(Role::User) };
    let user = users::create(db, &email, &hash, role).await?;
    audit::record(
        db,
        Event::new(Action::SignedUp)
            .actor(&user.id)
            .subject("user", &user.id)
            .ip(ip)
            .detail(json!({ "role": user.role.as_str() })),
    )
    .await;
    Ok(user)
}

/// Logs in. Three counters guard it, each hit in one atomic statement before any password is
/// hashed, so concurrent guesses cannot slip past a limit:
/// - per address, across accounts (`login_ip_limit`): a hard limit;
/// - per account and address (`login_limit`): a hard limit, so the address guessing at an
///   account is stopped;
/// - per account from everywhere: failures here only slow later attempts down
///   ([`slowdown`]), so nobody can lock the owner out of their own account.
pub async fn log_in(db: &Db, config: &AuthConfig, ip: &str, email: &str, password: &str) -> Result<User, AuthError> {
    let client = rate_limit::client_key(ip);
    let email = Email::parse(email).ok();
    let shown = email.as_ref().map_or("(not an email address)", Email::as_str).to_owned();
    let ip_bucket = format!("login:ip:{client}");
    let pair_bucket = email.as_ref().map(|email| format!("login:account-ip:{email}:{client}"));
    let limits = std::iter::once((&ip_bucket, config.login_ip_limit))
        .chain(pair_bucket.as_ref().map(|bucket| (bucket, config.login_limit)));
    for (bucket, limit) in limits {
        if let Some(wait) = rate_limit::hit(db, bucket, limit).await? {
            audit::record(
                db,
                Event::new(Action::RateLimited).ip(ip).detail(json!({ "flow": "login", "email": shown })),
            )
            .await;
            return Err(AuthError::RateLimited(wait));
        }
    }
    let failed = || async {
        audit::record(db, Event::new(Action::LoginFailed).ip(ip).detail(json!({ "email": shown }))).await;
        AuthError::InvalidCredentials
    };
    // What is not an email address cannot be an account; saying so reveals nothing.
    let Some(email) = email else { return Err(failed().await) };

    let account_bucket = format!("login:account:{email}");
    let failures = rate_limit::hits(db, &account_bucket, config.login_limit).await?;
    tokio::time::sleep(slowdown(failures, config.login_limit.max)).await;
    // An unknown account does the same work as a wrong password: same time, same answer.
    let (user, hash) = users::find_for_login(db, &email).await?.map_or((None, None), |(u, h)| (Some(u), Some(h)));
    let verified = password::verify(password.to_owned(), hash).await?;
    let Some(user) = user.filter(|_| verified) else {
        rate_limit::hit(db, &account_bucket, config.login_limit).await?;
        return Err(failed().await);
    };
    // The right password: the attempt was not a guess after all.
    rate_limit::refund(db, &ip_bucket).await?;
    for bucket in pair_bucket.iter().chain([&account_bucket]) {
        rate_limit::reset(db, bucket).await?;
    }
    // Said only to whoever knows the password.
    if user.disabled {
        return Err(AuthError::Disabled);
    }
    audit::record(db, Event::new(Action::LoggedIn).actor(&user.id).subject("user", &user.id).ip(ip)).await;
    Ok(user)
}

/// Checks a signed-in person's password before a change that needs it (a stolen session alone
/// must not be enough). Guesses are limited per account like logins are.
pub async fn confirm_password(db: &Db, config: &AuthConfig, user: &User, password: &str) -> Result<(), AuthError> {
    if password.len() > super::credentials::MAX_PASSWORD_BYTES {
        return Err(AuthError::WrongPassword);
    }
    let bucket = format!("confirm:{}", user.id);
    if let Some(wait) = rate_limit::hit(db, &bucket, config.login_limit).await? {
        return Err(AuthError::RateLimited(wait));
    }
    let hash = users::password_hash(db, &user.id).await?;
    if !password::verify(password.to_owned(), hash).await? {
        return Err(AuthError::WrongPassword);
    }
    rate_limit::reset(db, &bucket).await?;
    Ok(())
}

pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub password: &'a str,
    pub confirm: &'a str,
}

/// Changes the password and ends every other login of the account; how many ended.
pub async fn change_password(
    db: &Db,
    config: &AuthConfig,
    user: &User,
    keep_login: &str,
    ip: &str,
    change: PasswordChange<'_>,
) -> Result<u64, AuthError> {
    let password = NewPassword::parse(change.password, change.confirm)?;
    confirm_password(db, config, user, change.current).await?;
    let hash = password::hash(password.expose().to_owned()).await?;
    users::set_password_hash(db, &user.id, &hash).await?;
    let ended = super::logins::end_all_but(db, &user.id, keep_login).await?;
    audit::record(
        db,
        Event::new(Action::PasswordChanged)
            .actor(&user.id)
            .subject("user", &user.id)
            .ip(ip)
            .detail(json!({ "sessions_ended": ended })),
    )
    .await;
    Ok(ended)
}

/// Changes the account's email address after checking the password; answers the new address
/// as stored (normalized).
pub async fn change_email(
    db: &Db,
    config: &AuthConfig,
    user: &User,
    ip: &str,
    new_email: &str,
    current: &str,
) -> Result<Email, AuthError> {
    let email = Email::parse(new_email)?;
    if email.as_str() == user.email {
        return Err(AuthError::SameEmail);
    }
    confirm_password(db, config, user, current).await?;
    users::set_email(db, &user.id, &email).await?;
    audit::record(
        db,
        Event::new(Action::EmailChanged)
            .actor(&user.id)
            .subject("user", &user.id)
            .ip(ip)
            .detail(json!({ "from": user.email, "to": email.as_str() })),
    )
    .await;
    Ok(email)
}

/// How long an attempt on an account waits after `failures` failed ones from anywhere: nothing
/// below the limit, then doubling from half a second up to ten.
pub fn slowdown(failures: i64, limit: u32) -> std::time::Duration {
    let over = failures - i64::from(limit);
    if over < 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis((500u64 << over.min(5)).min(10_000))
}

#[cfg(test)]
mod tests {
    use super::slowdown;
    use std::time::Duration;

    #[test]
    fn the_slowdown_grows_and_stops_growing() {
        assert_eq!(slowdown(4, 5), Duration::ZERO);
        assert_eq!(slowdown(5, 5), Duration::from_millis(500));
        assert_eq!(slowdown(6, 5), Duration::from_secs(1));
        assert_eq!(slowdown(9, 5), Duration::from_secs(8));
        assert_eq!(slowdown(500, 5), Duration::from_secs(10));
    }
}
