//! The one error type that crosses the wire: a stable machine `code` (e.g. `auth.rate_limited`)
//! and a message written for the person using the app. Internal causes are logged on the server
//! and never put in here.

use leptos::prelude::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::codec::JsonEncoding;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    /// Which form field the error is about, so the UI can show it inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `*.rate_limited`: seconds until another attempt is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), field: None, retry_after_secs: None }
    }

    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn internal() -> Self {
        Self::new("internal", "Something went wrong on our side. Please try again.")
    }

    pub fn unauthenticated() -> Self {
        Self::new("auth.unauthenticated", "Please log in to continue.")
    }

    pub fn forbidden() -> Self {
        Self::new("auth.forbidden", "You do not have access to this.")
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        let code = self.code.as_str();
        match code {
            "internal" => 500,
            "network" | "upload.storage_unavailable" | "storage.unavailable" | "auth.busy" => 503,
            "auth.unauthenticated" | "auth.invalid_credentials" => 401,
            "auth.forbidden"
            | "auth.signup_closed"
            | "auth.disabled"
            | "auth.wrong_password"
            | "request.cross_origin" => 403,
            "auth.email_taken"
            | "account.current_session"
            | "account.last_admin"
            | "upload.busy"
            | "upload.closed"
            | "upload.not_uploaded" => 409,
            "upload.expired" => 410,
            "upload.too_large" | "request.too_large" => 413,
            "upload.unsupported_type" => 415,
            // The user's own fal key or input is at fault, not the gateway.
            "fal.key_rejected" | "fal.account_locked" | "fal.invalid_request" | "keys.missing" | "keys.unreadable" => {
                422
            }
            // Uploads whose stored bytes fail validation.
            "upload.size_mismatch"
            | "upload.checksum_mismatch"
            | "upload.type_mismatch"
            | "upload.polyglot"
            | "upload.undecodable"
            | "upload.too_many_pixels" => 422,
            _ if code == "not_found" || code.ends_with(".not_found") => 404,
            _ if code.ends_with(".rate_limited") || code.ends_with(".quota_exceeded") => 429,
            _ if code.starts_with("fal.") => 502,
            _ => 400,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    /// Errors the framework raises before a server function runs (a body it cannot read) or
    /// while the browser calls one. On the server they are the caller's fault, so they get a
    /// 4xx, never a 500.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = match value {
            // The body limit cut the upload short (http-body's `LengthLimitError`).
            ServerFnErrorErr::Deserialization(why) if why.contains("length limit exceeded") => {
                Self::new("request.too_large", "The request is larger than the server accepts.")
            }
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::new(
                    "request.malformed",
                    "The request could not be read: a value is missing, repeated, or not of the expected kind.",
                )
            }
            ServerFnErrorErr::Request(_) => {
                Self::new("network", "Could not reach the server. Check your connection and try again.")
            }
            _ => Self::internal(),
        };
        #[cfg(feature = "ssr")]
        crate::server::request::answer_with_status(&error);
        error
    }
}

impl From<ServerFnErrorErr> for AppError {
    fn from(value: ServerFnErrorErr) -> Self {
        Self::from_server_fn_error(value)
    }
}
