//! Accounts: signup, login, logout, roles, and the limits that keep guessing expensive.

pub mod account;
pub mod credentials;
pub mod logins;
pub mod password;
pub mod session;
pub mod users;
pub mod verified;

use std::time::Duration;

pub use credentials::{Email, NewPassword};
pub use users::{Role, User};

use crate::error::{AppError, code};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid email address")]
    InvalidEmail,
    /// Characters that change how the address is displayed without being seen (bidirectional
    /// overrides, zero-width marks): one address could pose as another in the admin's list.
    #[error("email with invisible characters")]
    InvisibleCharacters,
    #[error("weak password: {0}")]
    WeakPassword(String),
    #[error("password confirmation does not match")]
    PasswordMismatch,
    #[error("email already registered")]
    EmailTaken,
    #[error("the email address is the same as before")]
    SameEmail,
    /// Unknown email and wrong password are deliberately the same error.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A signed-in person's confirmation of their own password failed.
    #[error("wrong current password")]
    WrongPassword,
    #[error("too many attempts; retry in {0:?}")]
    RateLimited(Duration),
    #[error("too many passwords being checked at once")]
    Busy,
    #[error("signup is closed")]
    SignupClosed,
    #[error("account disabled")]
    Disabled,
    #[error("not logged in")]
    Unauthenticated,
    #[error("not permitted")]
    Forbidden,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(format!("database: {err}"))
    }
}

impl From<tower_sessions::session::Error> for AuthError {
    fn from(err: tower_sessions::session::Error) -> Self {
        Self::Internal(format!("session: {err}"))
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidEmail => {
                AppError::new(code::AUTH_INVALID_EMAIL, "Enter a valid email address, like name@example.com.")
                    .on_field("email")
            }
            AuthError::InvisibleCharacters => AppError::new(
                code::AUTH_INVALID_EMAIL,
                "Email addresses cannot contain invisible or text-direction characters.",
            )
            .on_field("email"),
            AuthError::WeakPassword(why) => AppError::new(code::AUTH_WEAK_PASSWORD, why).on_field("password"),
            AuthError::PasswordMismatch => {
                AppError::new(code::AUTH_PASSWORD_MISMATCH, "The two passwords do not match.").on_field("confirm")
            }
            AuthError::EmailTaken => {
                AppError::new(code::AUTH_EMAIL_TAKEN, "An account with this email already exists. Log in instead.")
                    .on_field("email")
            }
            AuthError::SameEmail => {
                AppError::new(code::AUTH_SAME_EMAIL, "That is already your email address.").on_field("email")
            }
            AuthError::InvalidCredentials => AppError::new(code::AUTH_INVALID_CREDENTIALS, "Wrong email or password."),
            AuthError::WrongPassword => {
                AppError::new(code::AUTH_WRONG_PASSWORD, "That is not your current password.").on_field("current")
            }
            AuthError::RateLimited(wait) => {
                let secs = wait.as_secs().max(1);
                let minutes = secs.div_ceil(60);
                let mut e = AppError::new(
                    code::AUTH_RATE_LIMITED,
                    format!("Too many attempts. Try again in {minutes} minute{}.", if minutes == 1 { "" } else { "s" }),
                );
                e.retry_after_secs = Some(secs);
                e
            }
            AuthError::Busy => {
                let mut e =
                    AppError::new(code::AUTH_BUSY, "The server is busy checking other logins. Try again in a moment.");
                e.retry_after_secs = Some(1);
                e
            }
            AuthError::SignupClosed => AppError::new(code::AUTH_SIGNUP_CLOSED, "Signing up is closed on this server."),
            AuthError::Disabled => AppError::new(code::AUTH_DISABLED, "This account has been disabled."),
            AuthError::Unauthenticated => AppError::unauthenticated(),
            AuthError::Forbidden => AppError::forbidden(),
            AuthError::Internal(cause) => {
                tracing::error!(%cause, "auth failed");
                AppError::internal()
            }
        }
    }
}
