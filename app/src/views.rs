//! What the browser is told about a job and its results: built by the server
//! (`server::jobs::views`), shown by the Create tab and carried by the live stream.

use serde::{Deserialize, Serialize};

use crate::messages::{Locale, t, tf};
use crate::states::{AssetKind, JobState};

/// A job as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub model: String,
    pub model_name: String,
    pub state: JobState,
    /// The state in English words ("In queue (position 2)", "Retrying (2/5)", …); the page
    /// says it in its own language with [`status_text`].
    pub status: String,
    /// While passing trouble is retried: this try and the most there will be.
    #[serde(default)]
    pub retry: Option<(i64, i64)>,
    /// Where fal has the job in its queue (0 is next), while it says.
    #[serde(default)]
    pub queue_position: Option<i64>,
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

/// A job's state in words, in `l`.
pub fn status_text(l: Locale, state: JobState, retry: Option<(i64, i64)>, queue_position: Option<i64>) -> String {
    let tries = |(attempt, max): (i64, i64)| [("attempt", attempt.to_string()), ("max", max.to_string())];
    let fill = |key, values: [(&'static str, String); 2]| {
        tf(l, key, &[(values[0].0, values[0].1.as_str()), (values[1].0, values[1].1.as_str())])
    };
    match (state, retry) {
        (JobState::Queued, Some(r)) => fill("job.retrying", tries(r)),
        (JobState::Queued, None) => t(l, "job.queued").to_owned(),
        (JobState::Submitted, _) => match queue_position {
            Some(p) => tf(l, "job.in_queue_at", &[("position", &(p + 1).to_string())]),
            None => t(l, "job.in_queue").to_owned(),
        },
        (JobState::Running, _) => t(l, "job.generating").to_owned(),
        (JobState::Persisting, Some(r)) => fill("job.saving_retrying", tries(r)),
        (JobState::Persisting, None) => t(l, "job.saving").to_owned(),
        (JobState::Succeeded, _) => t(l, "job.done").to_owned(),
        (JobState::Failed, _) => t(l, "job.failed").to_owned(),
        (JobState::Canceled, _) => t(l, "job.canceled").to_owned(),
    }
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
