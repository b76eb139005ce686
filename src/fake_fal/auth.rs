//! How the fake decides who a key belongs to (see the module docs of `fake_fal`).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Account {
    Api,
    Admin,
    Locked,
}

pub enum Refusal {
    Missing,
    Malformed,
    Unknown,
}

pub fn account(headers: &HeaderMap) -> Result<Account, Refusal> {
    let value = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(Refusal::Missing)?;
    let key = value.strip_prefix("Key ").ok_or(Refusal::Malformed)?;
    let (id, secret) = key.split_once(':').ok_or(Refusal::Malformed)?;
    if id.is_empty() || secret.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(match id {
        _ if id.starts_with("invalid") => return Err(Refusal::Unknown),
        _ if id.starts_with("admin") => Account::Admin,
        _ if id.starts_with("locked") => Account::Locked,
        _ => Account::Api,
    })
}

/// The Platform API's envelope `{"error": {type, message}}` (README, "fal's API": keys and errors).
pub fn platform_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "type": kind, "message": message } }))).into_response()
}

pub fn platform_refusal(refusal: Refusal) -> Response {
    let message = match refusal {
        Refusal::Missing => "Missing authorization header",
        Refusal::Malformed => "Invalid Key Authorization header format",
        Refusal::Unknown => "Invalid API key",
    };
    platform_error(StatusCode::UNAUTHORIZED, "authorization_error", message)
}
