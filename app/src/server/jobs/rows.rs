//! The `jobs` table: its states, its rows, and the guarded updates that move a job along.
//! Every update names the states it may leave, so two paths racing (a webhook and the poller, a
//! cancel and a submit) cannot both win.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::server::db::{Db, now_ms};

/// `queued → submitted → running → persisting → succeeded | failed | canceled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Submitted,
    Running,
    Persisting,
    Succeeded,
    Failed,
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Submitted => "submitted",
            Self::Running => "running",
            Self::Persisting => "persisting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Self::Queued,
            "submitted" => Self::Submitted,
            "running" => Self::Running,
            "persisting" => Self::Persisting,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    /// Waiting for fal: the states a completion may arrive in.
    pub const AT_FAL: [JobState; 2] = [JobState::Submitted, JobState::Running];
}

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
    pub submitted_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub queued_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The request that created the job (for joining log lines).
    pub request_id: Option<String>,
}

pub const COLUMNS: &str = "id, user_id, model, params_json, upload_ids_json, state, fal_request_id, webhook, \
    attempts, max_attempts, polls, next_attempt_at, lease_owner, queue_position, progress, result_json, \
    error_code, error_message, submitted_at, completed_at, queued_at, created_at, updated_at, request_id";

pub fn from_row(row: &AnyRow) -> Result<JobRow, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(JobRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        model: row.try_get("model")?,
        params_json: row.try_get("params_json")?,
        upload_ids_json: row.try_get("upload_ids_json")?,
        state: JobState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown job state {state:?}").into()))?,
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
        submitted_at: row.try_get("submitted_at")?,
        completed_at: row.try_get("completed_at")?,
        queued_at: row.try_get("queued_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        request_id: row.try_get("request_id")?,
    })
}

pub async fn find(db: &Db, id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    sqlx::query(&sql).bind(id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

/// The job, only when `user_id` owns it (someone else's job answers like a missing one).
/// The job `id` if `user_id` owns it; an id that cannot be a job's is simply not found.
pub async fn find_owned(db: &Db, id: &str, user_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let Some(id) = crate::server::db::parse_id(id) else { return Ok(None) };
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 AND user_id = $2");
    sqlx::query(&sql).bind(id).bind(user_id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

pub async fn find_by_request(db: &Db, request_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE fal_request_id = $1");
    sqlx::query(&sql).bind(request_id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

fn placeholders(from: usize, count: usize) -> String {
    (from..from + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// A guarded update: `SET {set}` on job `id` only while it is in one of `from` (and, when
/// `lease` is given, still leased by that owner). `binds` fill `$3…` in `set`; `$1` is the
/// update time and `$2` the id. Returns whether the row changed.
pub struct Update<'a> {
    pub id: &'a str,
    pub from: &'a [JobState],
    pub lease: Option<&'a str>,
    pub set: &'a str,
    pub binds: Vec<Bind>,
}

#[derive(Clone, Debug)]
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<String> for Bind {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}

impl Update<'_> {
    pub fn sql(&self) -> String {
        let n = self.binds.len();
        let states = placeholders(3 + n, self.from.len());
        let mut sql = format!("UPDATE jobs SET {}, updated_at = $1 WHERE id = $2 AND state IN ({states})", self.set);
        if self.lease.is_some() {
            sql.push_str(&format!(" AND lease_owner = ${}", 3 + n + self.from.len()));
        }
        sql
    }

    pub async fn run<'e, E>(self, executor: E) -> Result<bool, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = self.sql();
        Ok(self.bound(&sql).execute(executor).await?.rows_affected() == 1)
    }

    /// Like [`Update::run`], answering the row as this update left it: a later read could
    /// already see what a worker did next.
    pub async fn run_returning<'e, E>(self, executor: E) -> Result<Option<JobRow>, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = format!("{} RETURNING {COLUMNS}", self.sql());
        let row = self.bound(&sql).fetch_optional(executor).await?;
        row.as_ref().map(from_row).transpose()
    }

    fn bound<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        let mut query = sqlx::query(sql).bind(now_ms()).bind(self.id.to_owned());
        for bind in &self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v.clone()),
                Bind::Int(v) => query.bind(*v),
            };
        }
        for state in self.from {
            query = query.bind(state.as_str());
        }
        if let Some(owner) = self.lease {
            query = query.bind(owner.to_owned());
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_updates_number_their_placeholders() {
        let update = Update {
            id: "j",
            from: &[JobState::Submitted, JobState::Running],
            lease: Some("w"),
            set: "state = $3, progress = $4",
            binds: vec!["persisting".into(), Bind::Text(None)],
        };
        assert_eq!(
            update.sql(),
            "UPDATE jobs SET state = $3, progress = $4, updated_at = $1 WHERE id = $2 AND state IN ($5, $6) AND lease_owner = $7"
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [
            JobState::Queued,
            JobState::Submitted,
            JobState::Running,
            JobState::Persisting,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Canceled,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert!(JobState::Failed.is_final() && !JobState::Persisting.is_final());
    }
}
