//! The one error type that crosses the wire: a stable machine `code` (e.g. `auth.rate_limited`)
//! and a message written for the person using the app. Internal causes are logged on the server
//! and never put in here.

use leptos::prelude::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::codec::JsonEncoding;
use serde::{Deserialize, Serialize};

/// A stable error code and the HTTP status it is answered with, decided together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    pub name: &'static str,
    pub status: u16,
}

/// Declares the codes as constants of [`code`] and lists them in `code::ALL`.
macro_rules! codes {
    ($($(#[$doc:meta])* $id:ident = $name:literal => $status:literal;)+) => {
        /// Every error code Darkroom answers with.
        pub mod code {
            use super::Code;
            $($(#[$doc])* pub const $id: Code = Code { name: $name, status: $status };)+
            pub const ALL: &[Code] = &[$($id),+];
        }
    };
}

codes! {
    INTERNAL = "internal" => 500;
    /// The browser could not reach the server (raised in the browser only).
    NETWORK = "network" => 503;
    REQUEST_MALFORMED = "request.malformed" => 400;
    REQUEST_TOO_LARGE = "request.too_large" => 413;
    REQUEST_CROSS_ORIGIN = "request.cross_origin" => 403;
    REQUEST_INVALID_CURSOR = "request.invalid_cursor" => 400;

    AUTH_UNAUTHENTICATED = "auth.unauthenticated" => 401;
    AUTH_INVALID_CREDENTIALS = "auth.invalid_credentials" => 401;
    AUTH_FORBIDDEN = "auth.forbidden" => 403;
    AUTH_SIGNUP_CLOSED = "auth.signup_closed" => 403;
    AUTH_DISABLED = "auth.disabled" => 403;
    AUTH_WRONG_PASSWORD = "auth.wrong_password" => 403;
    AUTH_INVALID_EMAIL = "auth.invalid_email" => 400;
    AUTH_WEAK_PASSWORD = "auth.weak_password" => 400;
    AUTH_PASSWORD_MISMATCH = "auth.password_mismatch" => 400;
    AUTH_SAME_EMAIL = "auth.same_email" => 400;
    AUTH_EMAIL_TAKEN = "auth.email_taken" => 409;
    AUTH_RATE_LIMITED = "auth.rate_limited" => 429;
    /// Too many password checks at once: try again in a moment.
    AUTH_BUSY = "auth.busy" => 503;

    ACCOUNT_NOT_CONFIRMED = "account.not_confirmed" => 400;
    ACCOUNT_CURRENT_SESSION = "account.current_session" => 409;
    ACCOUNT_LAST_ADMIN = "account.last_admin" => 409;
    SESSION_NOT_FOUND = "session.not_found" => 404;
    EXPORT_BUSY = "export.busy" => 429;
    STORAGE_UNAVAILABLE = "storage.unavailable" => 503;

    KEYS_MALFORMED = "keys.malformed" => 400;
    /// The user's own key is missing or unusable: their input is at fault, not the gateway.
    KEYS_MISSING = "keys.missing" => 422;
    KEYS_UNREADABLE = "keys.unreadable" => 422;

    FAL_KEY_REJECTED = "fal.key_rejected" => 422;
    FAL_ACCOUNT_LOCKED = "fal.account_locked" => 422;
    FAL_INVALID_REQUEST = "fal.invalid_request" => 422;
    FAL_RATE_LIMITED = "fal.rate_limited" => 429;
    FAL_UNREACHABLE = "fal.unreachable" => 502;
    FAL_UPSTREAM = "fal.upstream" => 502;

    JOB_UNKNOWN_MODEL = "job.unknown_model" => 400;
    JOB_INVALID_INPUT = "job.invalid_input" => 400;
    JOB_INPUT_MISSING = "job.input_missing" => 400;
    JOB_NOT_FOUND = "job.not_found" => 404;
    JOB_NOT_CANCELABLE = "job.not_cancelable" => 409;
    JOB_NOT_RETRIABLE = "job.not_retriable" => 409;
    JOB_RATE_LIMITED = "job.rate_limited" => 429;

    /// The job's estimated cost would pass a spending cap; `Retry-After` says when it resets.
    SPEND_CAP_EXCEEDED = "spend.cap_exceeded" => 429;
    /// A cap applies but fal's pricing could not be read to hold the job to it.
    SPEND_ESTIMATE_UNAVAILABLE = "spend.estimate_unavailable" => 503;
    SPEND_INVALID_CAP = "spend.invalid_cap" => 400;

    ADMIN_USER_NOT_FOUND = "admin.user_not_found" => 404;
    /// An admin tried to disable or demote their own account.
    ADMIN_OWN_ACCOUNT = "admin.own_account" => 409;
    ADMIN_INVALID_CHANGE = "admin.invalid_change" => 400;
    ADMIN_INVALID_FILTER = "admin.invalid_filter" => 400;
    /// An admin opened another account's gallery without a usable reason.
    ADMIN_REASON_REQUIRED = "admin.reason_required" => 400;
    /// An admin asked for another account's gallery with no current access (none given, or its
    /// time is up): a reason has to be given again.
    ADMIN_ACCESS_REQUIRED = "admin.access_required" => 403;

    GALLERY_NOT_FOUND = "gallery.not_found" => 404;
    GALLERY_INVALID_FILTER = "gallery.invalid_filter" => 400;
    GALLERY_TOO_MANY = "gallery.too_many" => 400;
    /// A re-run of a result whose model is no longer in the catalog.
    GALLERY_MODEL_GONE = "gallery.model_gone" => 409;
    /// A re-run of a result whose input image is no longer kept.
    GALLERY_INPUT_GONE = "gallery.input_gone" => 410;
    GALLERY_NOT_AN_IMAGE = "gallery.not_an_image" => 422;

    UPLOAD_UNSUPPORTED_TYPE = "upload.unsupported_type" => 415;
    UPLOAD_EMPTY = "upload.empty" => 400;
    UPLOAD_TOO_LARGE = "upload.too_large" => 413;
    UPLOAD_MALFORMED_CHECKSUM = "upload.malformed_checksum" => 400;
    UPLOAD_QUOTA_EXCEEDED = "upload.quota_exceeded" => 429;
    /// What the account keeps (images and results) has reached its storage quota; deleting
    /// makes room, waiting does not.
    QUOTA_STORAGE_FULL = "quota.storage_full" => 409;
    QUOTA_INVALID = "quota.invalid" => 400;

    /// Not shaped like an access token, or its checksum fails (refused without a lookup).
    TOKEN_MALFORMED = "token.malformed" => 401;
    /// Revoked, expired, unknown, or its account disabled.
    TOKEN_NOT_ACCEPTED = "token.not_accepted" => 401;
    /// The token lacks the scope the route needs.
    TOKEN_SCOPE_MISSING = "token.scope_missing" => 403;
    TOKEN_INVALID = "token.invalid" => 400;
    TOKEN_TOO_MANY = "token.too_many" => 409;
    TOKEN_NOT_FOUND = "token.not_found" => 404;
    /// An access token sent to a route of the web app, which only takes its session cookie.
    AUTH_TOKEN_NOT_ACCEPTED_HERE = "auth.token_not_accepted_here" => 401;
    /// A cookie sent to the JSON API, which only takes access tokens (so no other site can
    /// make a browser call it).
    AUTH_COOKIE_NOT_ACCEPTED = "auth.cookie_not_accepted" => 401;
    /// Too many API requests from one token or one account in a minute.
    API_RATE_LIMITED = "api.rate_limited" => 429;
    /// An `Idempotency-Key` that is not 1 to 255 visible ASCII characters.
    API_IDEMPOTENCY_KEY_INVALID = "api.idempotency_key_invalid" => 400;
    /// An `Idempotency-Key` used before for a different request.
    API_IDEMPOTENCY_MISMATCH = "api.idempotency_mismatch" => 422;
    /// The first request with this `Idempotency-Key` is still running; retry in a moment.
    API_IDEMPOTENCY_IN_PROGRESS = "api.idempotency_in_progress" => 409;
    TRYON_UNKNOWN_HAIRSTYLE = "tryon.unknown_hairstyle" => 400;
    /// The try-on's selfie shows no face of usable size.
    TRYON_NO_FACE = "tryon.no_face" => 422;
    /// The try-on's selfie shows several people.
    TRYON_MANY_FACES = "tryon.many_faces" => 422;
    /// No job (or no try-on) of the caller's with that id.
    API_JOB_NOT_FOUND = "api.job_not_found" => 404;
    UPLOAD_NOT_FOUND = "upload.not_found" => 404;
    UPLOAD_INVALID_KEY = "upload.invalid_key" => 400;
    UPLOAD_EXPIRED = "upload.expired" => 410;
    UPLOAD_BUSY = "upload.busy" => 409;
    UPLOAD_CLOSED = "upload.closed" => 409;
    UPLOAD_NOT_UPLOADED = "upload.not_uploaded" => 409;
    /// A rejection stored before its reason had a code of its own.
    UPLOAD_REFUSED = "upload.refused" => 422;
    UPLOAD_SIZE_MISMATCH = "upload.size_mismatch" => 422;
    UPLOAD_CHECKSUM_MISMATCH = "upload.checksum_mismatch" => 422;
    UPLOAD_TYPE_MISMATCH = "upload.type_mismatch" => 422;
    UPLOAD_POLYGLOT = "upload.polyglot" => 422;
    UPLOAD_UNDECODABLE = "upload.undecodable" => 422;
    UPLOAD_TOO_MANY_PIXELS = "upload.too_many_pixels" => 422;
    UPLOAD_STORAGE_UNAVAILABLE = "upload.storage_unavailable" => 503;
    /// The API's confirm of a key nothing was uploaded to.
    UPLOAD_OBJECT_MISSING = "upload.object_missing" => 404;
    /// The API's confirm found an image other than its metadata said; the image was deleted.
    UPLOAD_METADATA_MISMATCH = "upload.metadata_mismatch" => 422;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: String,
    pub message: String,
    /// The HTTP status it is answered with, from its [`Code`].
    #[serde(default)]
    pub status: u16,
    /// Which form field the error is about, so the UI can show it inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `*.rate_limited`: seconds until another attempt is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code: code.name.to_owned(),
            message: message.into(),
            status: code.status,
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn internal() -> Self {
        Self::new(code::INTERNAL, "Something went wrong on our side. Please try again.")
    }

    pub fn unauthenticated() -> Self {
        Self::new(code::AUTH_UNAUTHENTICATED, "Please log in to continue.")
    }

    pub fn forbidden() -> Self {
        Self::new(code::AUTH_FORBIDDEN, "You do not have access to this.")
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The same error for a reader of `locale`: the server's own message in English (it says
    /// more), the catalog's message in another language (see [`crate::messages`]).
    pub fn localized(mut self, locale: crate::messages::Locale) -> Self {
        if locale != crate::messages::Locale::En
            && let Some(text) = crate::messages::message(&self.code, locale)
        {
            self.message = text.to_owned();
        }
        self
    }
}

/// Outside server functions (plain axum routes), an error is answered as the same JSON body.
#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let status = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
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
                Self::new(code::REQUEST_TOO_LARGE, "The request is larger than the server accepts.")
            }
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::new(
                    code::REQUEST_MALFORMED,
                    "The request could not be read: a value is missing, repeated, or not of the expected kind.",
                )
            }
            ServerFnErrorErr::Request(_) => {
                Self::new(code::NETWORK, "Could not reach the server. Check your connection and try again.")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_well_formed_and_answered_with_its_status() {
        let mut names: Vec<&str> = code::ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a code is declared twice");
        for c in code::ALL {
            let well_formed = c
                .name
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(well_formed && c.name.split('.').count() <= 2, "{}", c.name);
            assert!((400..=599).contains(&c.status), "{} answers {}", c.name, c.status);
            let error = AppError::new(*c, "m");
            assert_eq!((error.code.as_str(), error.status()), (c.name, c.status));
            // The status travels with the error, so a client reads the same one.
            let back: AppError = serde_json::from_str(&serde_json::to_string(&error).unwrap()).unwrap();
            assert_eq!(back.status(), c.status);
        }
    }

    #[test]
    fn conflicts_and_outages_are_not_bad_requests() {
        for (c, status) in [
            (code::JOB_NOT_CANCELABLE, 409),
            (code::JOB_NOT_RETRIABLE, 409),
            (code::STORAGE_UNAVAILABLE, 503),
            (code::UPLOAD_EXPIRED, 410),
            (code::AUTH_UNAUTHENTICATED, 401),
            (code::FAL_UPSTREAM, 502),
        ] {
            assert_eq!(c.status, status, "{}", c.name);
        }
    }
}
