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
    // Count every attempt, valid or not: signup is where accounts are mass-created.
    let account_bucket = format!("signup:account:{}", form.email.trim().to_lowercase());
    for (bucket, limit) in [(format!("signup:ip:{ip}"), config.signup_ip_limit), (account_bucket, config.signup_limit)]
    {
        if let Some(wait) = rate_limit::hit(db, &bucket, limit).await? {
            audit::record(db, Event::new(Action::RateLimited).ip(ip).detail(json!({ "flow": "signup" }))).await;
            return Err(AuthError::RateLimited(wait));
        }
    }

    let email = Email::parse(form.email)?;
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

pub async fn log_in(db: &Db, config: &AuthConfig, ip: &str, email: &str, password: &str) -> Result<User, AuthError> {
    let normalized = email.trim().to_lowercase();
    let account_bucket = format!("login:account:{normalized}");
    let ip_bucket = format!("login:ip:{ip}");
    for (bucket, limit) in [(&account_bucket, config.login_limit), (&ip_bucket, config.login_ip_limit)] {
        if let Some(wait) = rate_limit::blocked_for(db, bucket, limit).await? {
            audit::record(
                db,
                Event::new(Action::RateLimited).ip(ip).detail(json!({ "flow": "login", "email": normalized })),
            )
            .await;
            return Err(AuthError::RateLimited(wait));
        }
    }

    // An unparseable email is just another unknown account: same work, same answer.
    let found = match Email::parse(email) {
        Ok(email) => users::find_for_login(db, &email).await?,
        Err(_) => None,
    };
    let (user, hash) = found.map_or((None, None), |(user, hash)| (Some(user), Some(hash)));
    let verified = password::verify(password.to_owned(), hash).await?;

    let Some(user) = user.filter(|_| verified) else {
        rate_limit::hit(db, &account_bucket, config.login_limit).await?;
        rate_limit::hit(db, &ip_bucket, config.login_ip_limit).await?;
        audit::record(db, Event::new(Action::LoginFailed).ip(ip).detail(json!({ "email": normalized }))).await;
        return Err(AuthError::InvalidCredentials);
    };
    if user.disabled {
        return Err(AuthError::Disabled);
    }
    rate_limit::reset(db, &account_bucket).await?;
    audit::record(db, Event::new(Action::LoggedIn).actor(&user.id).subject("user", &user.id).ip(ip)).await;
    Ok(user)
}
