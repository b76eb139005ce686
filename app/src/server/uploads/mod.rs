//! Direct uploads (the README's "What happens to an uploaded image"): a ticket with a presigned PUT, the browser's
//! PUT straight to storage, and a confirm that validates the stored bytes and keeps a sanitized
//! copy where no presigned URL can reach.

mod confirm;
pub(crate) mod heif;
pub mod library;
pub mod policy;
pub mod rows;
pub mod sanitize;
pub mod sweep;
#[cfg(test)]
pub mod testdata;
mod tickets;

pub use confirm::confirm;
pub(crate) use confirm::decode_slots;
pub use library::{Image, list, remove};
pub use rows::UploadState;
pub use sweep::{Sweep, SweepPosition, SweepReport, sweep};
pub use tickets::{IssueRequest, Ticket, issue};

use crate::error::{AppError, Code, code};
use crate::server::config::UploadConfig;
use crate::server::db::Db;
use crate::server::storage::{Storage, StorageError};

/// What the upload flows need from the server.
#[derive(Clone, Copy)]
pub struct Uploads<'a> {
    pub db: &'a Db,
    pub storage: &'a Storage,
    pub config: &'a UploadConfig,
    /// The origin the browser used, when links should follow it (see `Storage::presign_get`).
    pub origin: Option<&'a str>,
}

impl<'a> From<&'a crate::server::state::Services> for Uploads<'a> {
    fn from(services: &'a crate::server::state::Services) -> Self {
        Self { db: &services.db, storage: &services.storage, config: &services.config.uploads, origin: None }
    }
}

impl<'a> Uploads<'a> {
    /// The same, with links for the origin the browser used.
    pub fn linked_at(self, origin: Option<&'a str>) -> Self {
        Self { origin, ..self }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("unsupported type {0:?}")]
    UnsupportedType(String),
    #[error("empty upload")]
    Empty,
    #[error("{bytes} bytes is over the {max} byte limit")]
    TooLarge { bytes: u64, max: u64 },
    #[error("malformed SHA-256 checksum")]
    MalformedChecksum,
    #[error("daily upload count reached")]
    DailyCount { limit: u64, resets_at: i64 },
    #[error("daily upload volume reached")]
    DailyBytes { limit: u64, resets_at: i64 },
    /// The account keeps `kept` bytes of its `limit`, and this upload would pass it.
    #[error("storage quota reached")]
    StorageFull { kept: u64, limit: u64 },
    #[error("no such upload")]
    NotFound,
    #[error("malformed upload key")]
    InvalidKey,
    #[error("upload ticket expired")]
    Expired,
    #[error("upload is being verified")]
    Busy,
    #[error("upload was {0} and cannot be confirmed")]
    Closed(&'static str),
    /// Confirmed before and refused then, for the reason with this code.
    #[error("upload was refused earlier ({})", .0.name)]
    Refused(Code),
    #[error("nothing was uploaded for this ticket")]
    NotUploaded,
    #[error("stored {actual} bytes, declared {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("stored bytes do not match the declared checksum")]
    ChecksumMismatch,
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("declared {declared}, but the bytes are {actual}")]
    TypeMismatch { declared: &'static str, actual: String },
    #[error("markup hidden in the image ({0})")]
    Polyglot(String),
    #[error("undecodable image: {0}")]
    Undecodable(String),
    #[error("{width}×{height} is over the {max_pixels} pixel limit")]
    TooManyPixels { width: u32, height: u32, max_pixels: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl UploadError {
    /// The stable code, also the `reason` of a rejected ticket and of the rejection metric.
    pub fn code(&self) -> Code {
        match self {
            Self::UnsupportedType(_) => code::UPLOAD_UNSUPPORTED_TYPE,
            Self::Empty => code::UPLOAD_EMPTY,
            Self::TooLarge { .. } => code::UPLOAD_TOO_LARGE,
            Self::MalformedChecksum => code::UPLOAD_MALFORMED_CHECKSUM,
            Self::DailyCount { .. } | Self::DailyBytes { .. } => code::UPLOAD_QUOTA_EXCEEDED,
            Self::StorageFull { .. } => code::QUOTA_STORAGE_FULL,
            Self::NotFound => code::UPLOAD_NOT_FOUND,
            Self::InvalidKey => code::UPLOAD_INVALID_KEY,
            Self::Expired => code::UPLOAD_EXPIRED,
            Self::Busy => code::UPLOAD_BUSY,
            Self::Closed(_) => code::UPLOAD_CLOSED,
            Self::Refused(code) => *code,
            Self::NotUploaded => code::UPLOAD_NOT_UPLOADED,
            Self::SizeMismatch { .. } => code::UPLOAD_SIZE_MISMATCH,
            Self::ChecksumMismatch => code::UPLOAD_CHECKSUM_MISMATCH,
            Self::NotAnImage(_) | Self::TypeMismatch { .. } => code::UPLOAD_TYPE_MISMATCH,
            Self::Polyglot(_) => code::UPLOAD_POLYGLOT,
            Self::Undecodable(_) => code::UPLOAD_UNDECODABLE,
            Self::TooManyPixels { .. } => code::UPLOAD_TOO_MANY_PIXELS,
            Self::Storage(_) => code::UPLOAD_STORAGE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => code::INTERNAL,
        }
    }

    /// The error a stored rejection reason stands for (the codes `reject` writes).
    fn refused(reason: Option<&str>) -> Self {
        const CODES: [Code; 7] = [
            code::UPLOAD_TOO_LARGE,
            code::UPLOAD_SIZE_MISMATCH,
            code::UPLOAD_CHECKSUM_MISMATCH,
            code::UPLOAD_TYPE_MISMATCH,
            code::UPLOAD_POLYGLOT,
            code::UPLOAD_UNDECODABLE,
            code::UPLOAD_TOO_MANY_PIXELS,
        ];
        Self::Refused(CODES.iter().find(|c| Some(c.name) == reason).copied().unwrap_or(code::UPLOAD_REFUSED))
    }

    /// Whether the ticket can be tried again later rather than being rejected for good.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Storage(_) | Self::Database(_) | Self::Internal(_) | Self::NotUploaded)
    }

    fn message(&self) -> String {
        match self {
            Self::UnsupportedType(raw) => format!(
                "{} files are not accepted. Upload a JPEG, PNG, WebP, HEIC/HEIF or AVIF image.",
                if raw.is_empty() { "Files of unknown type" } else { raw }
            ),
            Self::Empty => "The file is empty.".into(),
            Self::TooLarge { bytes, max } => {
                format!("The file is {}; the limit is {}.", human_bytes(*bytes), human_bytes(*max))
            }
            Self::MalformedChecksum => "The file's checksum is malformed (expected a SHA-256).".into(),
            Self::DailyCount { limit, resets_at } => {
                format!("You reached today's limit of {limit} uploads. It resets at {} UTC.", reset_time(*resets_at))
            }
            Self::DailyBytes { limit, resets_at } => format!(
                "You reached today's upload volume of {}. It resets at {} UTC.",
                human_bytes(*limit),
                reset_time(*resets_at)
            ),
            Self::StorageFull { kept, limit } => crate::server::quota::full_message(*kept, *limit),
            Self::NotFound => "That upload does not exist.".into(),
            Self::InvalidKey => "That is not a valid upload key.".into(),
            Self::Expired => "The upload link expired before the file arrived. Please upload it again.".into(),
            Self::Busy => "This upload is being verified. Try again in a moment.".into(),
            Self::Closed(state) => format!("This upload was {state} and can no longer be confirmed."),
            Self::Refused(_) => "This file was refused when it was checked. Upload the image again.".into(),
            Self::NotUploaded => "The file has not reached storage yet.".into(),
            Self::SizeMismatch { declared, actual } => {
                format!("The stored file has {actual} bytes, not the {declared} announced.")
            }
            Self::ChecksumMismatch => "The stored file is not the one announced (checksum mismatch).".into(),
            Self::NotAnImage(what) => format!("The file is not an image (it looks like {}).", describe(what)),
            Self::TypeMismatch { declared, actual } => format!("The file claims to be {declared} but is {actual}."),
            Self::Polyglot(marker) => format!("The image hides web markup ({marker}); it was refused."),
            Self::Undecodable(why) => format!("The image cannot be read: {why}."),
            Self::TooManyPixels { width, height, max_pixels } => {
                format!("The image is {width}×{height} pixels; the limit is {} megapixels.", max_pixels / 1_000_000)
            }
            Self::Storage(_) => "Storage is unavailable right now. Try again in a moment.".into(),
            Self::Database(_) | Self::Internal(_) => AppError::internal().message,
        }
    }
}

impl From<UploadError> for AppError {
    fn from(err: UploadError) -> Self {
        if matches!(err, UploadError::Storage(_) | UploadError::Database(_) | UploadError::Internal(_)) {
            tracing::error!(%err, "upload failed");
        }
        let mut app = AppError::new(err.code(), err.message());
        if let UploadError::DailyCount { resets_at, .. } | UploadError::DailyBytes { resets_at, .. } = err {
            app.retry_after_secs = Some(((resets_at - crate::server::db::now_ms()).max(1000) / 1000) as u64);
        }
        app
    }
}

/// A detected format in words a person recognises.
fn describe(detected: &str) -> &str {
    match detected {
        "text/html" => "an HTML page",
        "image/svg+xml" | "text/xml" | "application/xml" => "an SVG or XML document",
        "text" | "text/plain" => "text",
        "application/pdf" => "a PDF",
        "image/gif" => "a GIF, which is not accepted",
        "application/zip" => "a ZIP archive",
        other => other,
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn reset_time(ms: i64) -> String {
    crate::server::db::rfc3339(ms).get(11..16).unwrap_or("00:00").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_and_how_much() {
        assert_eq!(
            UploadError::TooLarge { bytes: 16 * 1024 * 1024 + 1, max: 16 * 1024 * 1024 }.message(),
            "The file is 16.0 MiB; the limit is 16.0 MiB."
        );
        let quota: AppError =
            UploadError::DailyCount { limit: 3, resets_at: crate::server::db::now_ms() + 90_000 }.into();
        assert_eq!(quota.code, "upload.quota_exceeded");
        assert!(quota.message.starts_with("You reached today's limit of 3 uploads. It resets at "));
        assert!((80..=90).contains(&quota.retry_after_secs.unwrap()));
    }
}
