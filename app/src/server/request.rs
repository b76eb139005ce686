//! What server functions need from the request they serve: the app state, the session, the
//! caller's IP, and an HTTP status that matches the error they return.

use std::future::Future;

use http::request::Parts;
use leptos::prelude::{use_context, with_context};
use tower_sessions::Session;

use super::auth::{self, User};
use super::state::AppState;
use crate::error::{AppError, code};

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

// The request's parts are read in place: each `use_context::<Parts>()` would copy every header
// and extension of the request.

pub async fn session() -> Result<Session, AppError> {
    with_context::<Parts, _>(|parts| parts.extensions.get::<Session>().cloned()).flatten().ok_or_else(|| {
        tracing::error!("session layer missing");
        AppError::internal()
    })
}

/// The id the server gave the request being answered (`X-Request-Id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

pub fn request_id() -> Option<String> {
    with_context::<Parts, _>(|parts| parts.extensions.get::<RequestId>().map(|id| id.0.clone())).flatten()
}

/// The origin the browser addressed us by (`scheme://host[:port]`), for links that must work
/// from wherever the page was opened (the embedded storage's presigned URLs without a
/// `PUBLIC_URL`).
pub fn origin() -> Option<String> {
    let proxies = with_context::<AppState, _>(|state| state.config.trusted_proxies).unwrap_or(0);
    with_context::<Parts, _>(|parts| origin_of(&parts.headers, proxies)).flatten()
}

/// The same from a request's headers: the `Host` (a plain host name or address and port), and
/// https when a proxy we trust says the browser used it.
pub fn origin_of(headers: &http::HeaderMap, trusted_proxies: u8) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return None;
    }
    let https = trusted_proxies > 0
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Some(format!("{}://{host}", if https { "https" } else { "http" }))
}

pub fn client_ip() -> String {
    with_context::<Parts, _>(|parts| parts.extensions.get::<ClientIp>().map(|ip| ip.0.clone()))
        .flatten()
        .unwrap_or_else(|| "unknown".into())
}

pub async fn current_user() -> Result<Option<User>, AppError> {
    let state = state()?;
    Ok(auth::session::current_user(&session().await?, &state.db, Some(&seen())).await?)
}

pub async fn require_user() -> Result<User, AppError> {
    let state = state()?;
    Ok(auth::session::require_user(&session().await?, &state.db, Some(&seen())).await?)
}

pub async fn require_admin() -> Result<User, AppError> {
    let state = state()?;
    Ok(auth::session::require_admin(&session().await?, &state.db, Some(&seen())).await?)
}

/// Where the request being answered comes from, for the account's list of logins.
pub fn seen() -> auth::logins::Seen {
    let user_agent = with_context::<Parts, _>(|parts| {
        parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned)
    })
    .flatten();
    auth::logins::Seen { ip: client_ip(), user_agent }
}

/// Runs a server function body and, when it fails, answers with the error's HTTP status (and
/// `Retry-After` for rate limits), its message in the browser's language. Plain HTML form posts
/// keep Leptos's redirect-back instead, so forms still work before the page is hydrated.
pub async fn respond<T>(body: impl Future<Output = Result<T, AppError>>) -> Result<T, AppError> {
    let result = body.await.map_err(|err| err.localized(locale()));
    if let Err(err) = &result {
        answer_with_status(err);
    }
    result
}

/// The request's language: the one its person chose with the language switch (a cookie), else
/// the best one `Accept-Language` allows. For the page's words and for error messages.
pub fn locale() -> crate::messages::Locale {
    with_context::<Parts, _>(|parts| locale_of(&parts.headers)).unwrap_or_default()
}

/// [`locale`] from a request's headers.
pub fn locale_of(headers: &http::HeaderMap) -> crate::messages::Locale {
    use crate::messages::{LANGUAGE_COOKIE, Locale};
    let chosen = headers
        .get_all(http::header::COOKIE)
        .iter()
        // Bytes, not `to_str`: another cookie with non-ASCII bytes must not hide this one.
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANGUAGE_COOKIE)
        .and_then(|(_, value)| Locale::parse(value));
    chosen.unwrap_or_else(|| {
        headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Locale::from_accept_language)
            .unwrap_or_default()
    })
}

/// Sets the response's status (and `Retry-After`) from `err`, when there is a request being
/// answered and it is not a plain HTML form post.
pub fn answer_with_status(err: &AppError) {
    let Some(options) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let wants_html = with_context::<Parts, _>(|parts| {
        parts.headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
    })
    .unwrap_or(false);
    if wants_html {
        return;
    }
    if let Ok(status) = http::StatusCode::from_u16(err.status()) {
        options.set_status(status);
    }
    if let Some(secs) = err.retry_after_secs {
        options.insert_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
}

/// A page cursor from the client: absent, or the id of the last item of the previous page.
pub fn cursor(before: Option<String>) -> Result<Option<String>, AppError> {
    match before.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => Ok(None),
        Some(raw) => super::db::parse_id(raw).map(Some).ok_or_else(|| {
            AppError::new(code::REQUEST_INVALID_CURSOR, "That page link is not valid.").on_field("before")
        }),
    }
}

/// A same-site path to go to after login, or `/create`. Browsers drop tabs and newlines from
/// URLs (`/\t/evil.example` becomes `//evil.example`), so any control or whitespace character,
/// a backslash or a second leading slash disqualifies the value; what remains is a plain path,
/// with anything outside ASCII percent-encoded so it is always a valid `Location`.
pub fn safe_next(next: Option<&str>) -> String {
    const FALLBACK: &str = "/create";
    let Some(path) = next else { return FALLBACK.into() };
    let plain = path.len() <= 2048
        && path.starts_with('/')
        && !path.starts_with("//")
        && !path.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !path.contains("://");
    if !plain {
        return FALLBACK.into();
    }
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("/gallery?page=2")), "/gallery?page=2");
        for evil in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/x?u=http://e",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/\u{0}x",
            "/\u{85}/evil.example",
        ] {
            assert_eq!(safe_next(Some(evil)), "/create", "{evil:?}");
        }
        assert_eq!(safe_next(None), "/create");
        assert_eq!(safe_next(Some("/gallery/café")), "/gallery/caf%C3%A9");
    }

    proptest::proptest! {
        #[test]
        fn any_next_is_a_valid_same_site_location(raw in "\\PC{0,40}|/[\\x00-\\x7f]{0,40}|/\\PC{0,40}") {
            let next = safe_next(Some(&raw));
            proptest::prop_assert!(next.starts_with('/') && !next.starts_with("//"));
            proptest::prop_assert!(http::HeaderValue::from_str(&next).is_ok(), "{next:?}");
        }
    }
}
