//! What server functions need from the request they serve: the app state, the session, the
//! caller's IP, and an HTTP status that matches the error they return.

use std::future::Future;

use leptos::prelude::{expect_context, use_context};
use tower_sessions::Session;

use super::auth::{self, User};
use super::state::AppState;
use crate::error::AppError;

/// The caller's address, put into request extensions by the server's middleware (which knows
/// whether a trusted proxy's `X-Forwarded-For` applies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIp(pub String);

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the Leptos context");
        AppError::internal()
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = ?e, "session layer missing");
        AppError::internal()
    })
}

pub fn client_ip() -> String {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ClientIp>().map(|ip| ip.0.clone()))
        .unwrap_or_else(|| "unknown".into())
}

pub async fn current_user() -> Result<Option<User>, AppError> {
    let state = state()?;
    Ok(auth::session::current_user(&session().await?, &state.db).await?)
}

pub async fn require_user() -> Result<User, AppError> {
    let state = state()?;
    Ok(auth::session::require_user(&session().await?, &state.db).await?)
}

pub async fn require_admin() -> Result<User, AppError> {
    let state = state()?;
    Ok(auth::session::require_admin(&session().await?, &state.db).await?)
}

/// Runs a server function body and, when it fails, answers with the error's HTTP status (and
/// `Retry-After` for rate limits). Plain HTML form posts keep Leptos's redirect-back instead, so
/// forms still work before the page is hydrated.
pub async fn respond<T>(body: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
    let result = body.await;
    if let Err(err) = &result {
        let wants_html = use_context::<http::request::Parts>().is_some_and(|parts| {
            parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
        });
        if !wants_html {
            let options = expect_context::<leptos_axum::ResponseOptions>();
            if let Ok(status) = http::StatusCode::from_u16(err.status()) {
                options.set_status(status);
            }
            if let Some(secs) = err.retry_after_secs {
                options.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            }
        }
    }
    result
}

/// A same-site path to go to after login; anything else (other hosts, `//evil`, `\`) is dropped.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') && !path.contains("://") =>
        {
            path
        }
        _ => "/create",
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("/gallery?page=2")), "/gallery?page=2");
        for evil in
            ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "", "/x?u=http://e"]
        {
            assert_eq!(safe_next(Some(evil)), "/create", "{evil}");
        }
        assert_eq!(safe_next(None), "/create");
    }
}
