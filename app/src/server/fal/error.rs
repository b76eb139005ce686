//! fal's error bodies (README, "fal's API": errors), parsed into one typed error.
//!
//! Two families exist: the queue/run hosts answer FastAPI-style `{"detail": string | [ErrorObj]}`
//! (plus `error_type` for infrastructure errors), and the Platform API answers
//! `{"error": {"type", "message"}}`. Messages from fal are kept for the user; our own key never
//! appears in them because fal does not echo it.

use serde::Deserialize;
use serde_json::Value;

/// One entry of a model/validation error's `detail` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The location without the leading `"body"`, e.g. `prompt` or `image_urls.0`.
    pub field: String,
    pub message: String,
    pub kind: String,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum FalError {
    /// 401: the key is unknown, malformed or revoked.
    #[error("fal rejected the key: {message}")]
    KeyRejected { message: String },
    /// 403 on the queue hosts: the account is locked (balance exhausted, admin lock).
    #[error("fal account locked: {message}")]
    AccountLocked { message: String },
    /// 401/403 on the Platform API: the key lacks the scope (billing needs ADMIN).
    #[error("fal key lacks permission: {message}")]
    NotPermitted { message: String },
    /// 422-style model error naming fields; content-policy violations land here too.
    #[error("fal refused the input: {}", summarize(.fields))]
    Invalid { status: u16, fields: Vec<FieldError> },
    #[error("fal rate limit: {message}")]
    RateLimited { message: String, retry_after_secs: Option<u64> },
    /// Infrastructure error with fal's `error_type` (timeouts, runner failures) or any other status.
    #[error("fal error {status} ({error_type}): {message}")]
    Upstream { status: u16, error_type: String, message: String },
    /// The request never got an HTTP answer (DNS, connect, TLS, timeout).
    #[error("could not reach fal: {0}")]
    Transport(String),
    /// fal answered 2xx with a body we could not read.
    #[error("unexpected answer from fal: {0}")]
    Decode(String),
}

impl FalError {
    /// True when the same request may succeed later (README, "fal's API": the queue).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::RateLimited { .. } => true,
            Self::Upstream { status, error_type, .. } => {
                (*status >= 500 && error_type != "request_timeout_user") || *status == 408
            }
            _ => false,
        }
    }

    pub fn is_content_policy(&self) -> bool {
        matches!(self, Self::Invalid { fields, .. } if fields.iter().any(|f| f.kind == "content_policy_violation"))
    }

    /// Builds the error for a non-2xx answer. `platform` selects the `api.fal.ai` semantics, where
    /// 401/403 mean "this key may not do that" rather than "bad key" or "locked account".
    pub fn from_response(status: u16, headers: &http::HeaderMap, body: &[u8], platform: bool) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let retry_after_secs =
            headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        let header_error_type = headers.get("x-fal-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);

        if let Some(envelope) = parsed.as_ref().and_then(|v| v.get("error")).and_then(platform_envelope) {
            let message = crate::server::redact::urls(&envelope.message.unwrap_or_else(|| envelope.kind.clone()));
            return match (status, envelope.kind.as_str()) {
                (401 | 403, _) | (_, "authorization_error") => Self::NotPermitted { message },
                (429, _) | (_, "rate_limited") => Self::RateLimited { message, retry_after_secs },
                (400 | 422, _) | (_, "validation_error") => Self::Invalid {
                    status,
                    fields: vec![FieldError { field: String::new(), message, kind: envelope.kind }],
                },
                _ => Self::Upstream { status, error_type: envelope.kind, message },
            };
        }

        let detail = parsed.as_ref().and_then(|v| v.get("detail"));
        let body_error_type =
            parsed.as_ref().and_then(|v| v.get("error_type")).and_then(Value::as_str).map(str::to_owned);
        // fal's own words when it gave some; never a raw body (an HTML error page from a
        // gateway, say), which is neither written for the user nor safe to show.
        let message = match detail {
            Some(Value::String(s)) => crate::server::redact::urls(&s.chars().take(300).collect::<String>()),
            _ => format!("an answer without an explanation (HTTP {status})"),
        };

        match status {
            401 if platform => Self::NotPermitted { message },
            403 if platform => Self::NotPermitted { message },
            401 => Self::KeyRejected { message },
            403 => Self::AccountLocked { message },
            429 => Self::RateLimited { message, retry_after_secs },
            _ => {
                if let Some(Value::Array(items)) = detail {
                    return Self::Invalid { status, fields: items.iter().map(field_error).collect() };
                }
                let error_type = body_error_type.or(header_error_type).unwrap_or_else(|| "http_error".into());
                if status == 422 && error_type == "http_error" {
                    // A 422 whose detail is a string is one field error without a location.
                    return Self::Invalid {
                        status,
                        fields: vec![FieldError { field: String::new(), message, kind: "value_error".into() }],
                    };
                }
                let user_timeout = headers
                    .get("x-fal-request-timeout-type")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"user"));
                let error_type = if user_timeout { "request_timeout_user".into() } else { error_type };
                Self::Upstream { status, error_type, message }
            }
        }
    }
}

#[derive(Deserialize)]
struct PlatformEnvelope {
    #[serde(rename = "type")]
    kind: String,
    message: Option<String>,
}

fn platform_envelope(value: &Value) -> Option<PlatformEnvelope> {
    serde_json::from_value(value.clone()).ok()
}

fn field_error(item: &Value) -> FieldError {
    let field = item
        .get("loc")
        .and_then(Value::as_array)
        .map(|loc| {
            loc.iter()
                .skip_while(|part| part.as_str() == Some("body"))
                .map(|part| match part {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    FieldError { field, message: crate::server::redact::urls(&text("msg")), kind: text("type") }
}

fn summarize(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) })
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<FalError> for crate::error::AppError {
    fn from(err: FalError) -> Self {
        use crate::error::{AppError, code};
        match err {
            FalError::KeyRejected { message } | FalError::NotPermitted { message } => {
                AppError::new(code::FAL_KEY_REJECTED, format!("fal rejected your key: {message}"))
            }
            FalError::AccountLocked { message } => {
                AppError::new(code::FAL_ACCOUNT_LOCKED, format!("Your fal account is locked: {message}"))
            }
            FalError::Invalid { .. } => AppError::new(code::FAL_INVALID_REQUEST, err.to_string()),
            FalError::RateLimited { retry_after_secs, .. } => {
                let mut e = AppError::new(code::FAL_RATE_LIMITED, "fal is rate-limiting this key. Try again shortly.");
                e.retry_after_secs = retry_after_secs;
                e
            }
            FalError::Transport(what) => {
                tracing::warn!(%what, "fal unreachable");
                AppError::new(code::FAL_UNREACHABLE, "Could not reach fal. Try again in a moment.")
            }
            FalError::Upstream { .. } | FalError::Decode(_) => {
                tracing::warn!(%err, "fal error");
                AppError::new(code::FAL_UPSTREAM, format!("fal answered with an error: {err}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &str, platform: bool) -> FalError {
        FalError::from_response(status, &http::HeaderMap::new(), body.as_bytes(), platform)
    }

    #[test]
    fn queue_auth_errors() {
        assert_eq!(
            parse(401, r#"{"detail":"No user found for Key ID and Secret"}"#, false),
            FalError::KeyRejected { message: "No user found for Key ID and Secret".into() }
        );
        let locked = parse(403, r#"{"detail":"User is locked. Reason: Exhausted balance."}"#, false);
        assert!(matches!(locked, FalError::AccountLocked { ref message } if message.contains("Exhausted balance")));
    }

    #[test]
    fn platform_envelope_means_permission_not_bad_key() {
        let err = parse(403, r#"{"error":{"type":"authorization_error","message":"Admin key required"}}"#, true);
        assert_eq!(err, FalError::NotPermitted { message: "Admin key required".into() });
        let err = parse(401, r#"{"error":{"type":"authorization_error","message":"nope"}}"#, true);
        assert!(matches!(err, FalError::NotPermitted { .. }));
        let err = parse(429, r#"{"error":{"type":"rate_limited","message":"slow down"}}"#, true);
        assert!(matches!(err, FalError::RateLimited { .. }) && err.is_retriable());
    }

    #[test]
    fn model_errors_name_fields_and_content_policy() {
        let err = parse(
            422,
            r#"{"detail":[{"loc":["body","prompt"],"msg":"flagged by a content checker","type":"content_policy_violation","url":"https://docs.fal.ai/errors#content_policy_violation"}]}"#,
            false,
        );
        assert!(err.is_content_policy());
        assert!(!err.is_retriable());
        let FalError::Invalid { fields, .. } = err else { panic!() };
        assert_eq!(fields[0].field, "prompt");

        let err =
            parse(422, r#"{"detail":[{"loc":["body","image_urls",0],"msg":"bad","type":"image_load_error"}]}"#, false);
        let FalError::Invalid { fields, .. } = err else { panic!() };
        assert_eq!(fields[0].field, "image_urls.0");

        let err = parse(422, r#"{"detail":"prompt is too long"}"#, false);
        assert!(matches!(err, FalError::Invalid { ref fields, .. } if fields[0].message == "prompt is too long"));
    }

    #[test]
    fn infrastructure_errors_carry_their_type_and_retry_rules() {
        let err = parse(504, r#"{"detail":"Request timed out","error_type":"request_timeout"}"#, false);
        assert!(
            matches!(err, FalError::Upstream { status: 504, ref error_type, .. } if error_type == "request_timeout")
        );
        assert!(err.is_retriable());

        let mut headers = http::HeaderMap::new();
        headers.insert("x-fal-error-type", "runner_disconnected".parse().unwrap());
        let err = FalError::from_response(503, &headers, b"<html>nginx</html>", false);
        assert!(matches!(err, FalError::Upstream { ref error_type, .. } if error_type == "runner_disconnected"));

        let mut headers = http::HeaderMap::new();
        headers.insert("x-fal-request-timeout-type", "user".parse().unwrap());
        let err = FalError::from_response(504, &headers, br#"{"detail":"Request timed out"}"#, false);
        assert!(!err.is_retriable(), "a user start-timeout must not be retried");
    }
}
