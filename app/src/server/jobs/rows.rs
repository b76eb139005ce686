//! The `jobs` table's rows, read. Their state changes only through [`super::transition`].

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::server::db::Db;

pub use crate::states::JobState;

#[derive(Clone, Debug)]
pub struct JobRow {
    pub id: String,
    pub user_id: String,
    pub model: String,
    pub params_json: String,
    pub upload_ids_json: String,
    pub state: JobState,
    pub fal_request_id: Option<String>,
    pub webhook: bool,
    pub attempts: i64,
    pub max_attempts: i64,
    pub polls: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub queue_position: Option<i64>,
    pub progress: Option<String>,
    pub result_json: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Set while the job waits to be tried again after a passing failure: why.
    pub retry_reason: Option<String>,
    pub submitted_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub queued_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The request that created the job (for joining log lines).
    pub request_id: Option<String>,
    /// Its estimated cost when it was accepted, in millionths of a dollar.
    pub estimate_micros: Option<i64>,
}

pub const COLUMNS: &str = "id, user_id, model, params_json, upload_ids_json, state, fal_request_id, webhook, \
    attempts, max_attempts, polls, next_attempt_at, lease_owner, queue_position, progress, result_json, \
    error_code, error_message, retry_reason, submitted_at, completed_at, queued_at, created_at, updated_at, request_id, estimate_micros";

pub fn from_row(row: &AnyRow) -> Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        model: row.try_get("model")?,
        params_json: row.try_get("params_json")?,
        upload_ids_json: row.try_get("upload_ids_json")?,
        state: crate::server::db::word_column(row, "state", JobState::parse)?,
        fal_request_id: row.try_get("fal_request_id")?,
        webhook: row.try_get::<i64, _>("webhook")? != 0,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        polls: row.try_get("polls")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        lease_owner: row.try_get("lease_owner")?,
        queue_position: row.try_get("queue_position")?,
        progress: row.try_get("progress")?,
        result_json: row.try_get("result_json")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        retry_reason: row.try_get("retry_reason")?,
        submitted_at: row.try_get("submitted_at")?,
        completed_at: row.try_get("completed_at")?,
        queued_at: row.try_get("queued_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        request_id: row.try_get("request_id")?,
        estimate_micros: row.try_get("estimate_micros")?,
    })
}

pub async fn find(db: &Db, id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

/// The job `id` if `user_id` owns it; someone else's answers like a missing one, and an id that
/// cannot be a job's is simply not found.
pub async fn find_owned(db: &Db, id: &str, user_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let Some(id) = crate::server::db::parse_id(id) else { return Ok(None) };
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2");
    sqlx::query(&sql).bind(id).bind(user_id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

pub async fn find_by_request(db: &Db, request_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE fal_request_id = $1");
    sqlx::query(&sql).bind(request_id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}
