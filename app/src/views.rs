//! What the browser is told about a job and its results: built by the server
//! (`server::jobs::views`), shown by the Create tab and carried by the live stream.

use serde::{Deserialize, Serialize};

use crate::states::{AssetKind, JobState};

/// A job as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub model: String,
    pub model_name: String,
    pub state: JobState,
    /// The state in words ("In queue (position 2)", "Retrying (2/5)", …).
    pub status: String,
    pub prompt: Option<String>,
    pub progress: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub description: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When fal accepted the request (RFC 3339, UTC): the page counts the seconds from here
    /// while fal works.
    pub started_at: Option<String>,
    /// Milliseconds of the last change: of two views of a job, the later one wins.
    pub version: i64,
    pub assets: Vec<AssetView>,
    /// Estimated cost when it was accepted, in millionths of a dollar.
    pub estimate_micros: Option<i64>,
    pub can_cancel: bool,
    pub can_retry: bool,
}

/// What the job the Create form describes would cost, before Generate is pressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEstimate {
    /// Millionths of a dollar; `None` when fal's prices cannot be read.
    pub micros: Option<i64>,
    /// What the user's spending caps leave (the tighter of day and month), when one applies.
    pub room: Option<i64>,
}

/// A stored output, served from our own bucket through short-lived URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetView {
    pub id: String,
    pub kind: AssetKind,
    pub content_type: String,
    pub byte_size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub url: String,
    pub thumb_url: Option<String>,
    pub nsfw: Option<bool>,
}
