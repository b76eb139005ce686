//! `Idempotency-Key` for the calls that start (and pay for) a job: the first request with a key
//! claims it before the job is made; a retry with the same key and the same request gets that
//! job back, however often it is sent, even while the first is still running; the same key on a
//! different request is refused. Keys are kept a day.

use std::future::Future;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{AppError, code};
use crate::server::db::Db;
use crate::server::jobs::JobError;
use crate::server::jobs::rows::{self, JobRow};

const KEPT_MS: i64 = 24 * 3600 * 1000;
/// How long a retry waits for the first request with its key to finish before answering 409.
const WAIT: Duration = Duration::from_secs(10);

/// The key as sent, checked: 1 to 255 visible ASCII characters.
pub fn key(headers: &http::HeaderMap) -> Result<Option<String>, AppError> {
    let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
    match raw.to_str() {
        Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(AppError::new(
            code::API_IDEMPOTENCY_KEY_INVALID,
            "An Idempotency-Key is 1 to 255 visible ASCII characters (a UUID, say).",
        )),
    }
}

/// What tells a retry from another request: the route and its body, hashed.
pub fn fingerprint(route: &str, body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(format!("{route}\n{body}").as_bytes()))
}

/// Runs `make` once per `key` of `user_id` (when a key is given) and answers its job.
pub async fn once<F, Fut>(
    db: &Db,
    user_id: &str,
    key: Option<&str>,
    fingerprint: &str,
    now: i64,
    make: F,
) -> Result<JobRow, AppError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<JobRow, AppError>>,
{
    let Some(key) = key else { return make().await };
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3")
        .bind(user_id)
        .bind(key)
        .bind(now - KEPT_MS)
        .execute(&db.pool)
        .await
        .map_err(db_error)?;
    let mut make = Some(make);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pause = Duration::from_millis(20);
    loop {
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user_id)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&db.pool)
        .await
        .map_err(db_error)?
        .rows_affected()
            == 1;
        if claimed {
            let made = make.take().expect("a key is claimed once")().await;
            let settle = match &made {
                Ok(job) => {
                    sqlx::query("UPDATE idempotency_keys SET job_id = $3 WHERE user_id = $1 AND key = $2")
                        .bind(user_id)
                        .bind(key)
                        .bind(&job.id)
                        .execute(&db.pool)
                        .await
                }
                // Nothing was made: the key is free for the next try.
                Err(_) => {
                    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                        .bind(user_id)
                        .bind(key)
                        .execute(&db.pool)
                        .await
                }
            };
            settle.map_err(db_error)?;
            return made;
        }
        // Another request claimed the key: answer its job once there is one.
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT request_hash, job_id FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                .bind(user_id)
                .bind(key)
                .fetch_optional(&db.pool)
                .await
                .map_err(db_error)?;
        match row {
            Some((hash, _)) if hash != fingerprint => {
                return Err(AppError::new(
                    code::API_IDEMPOTENCY_MISMATCH,
                    "This Idempotency-Key was used for a different request; use a new key for a new request.",
                ));
            }
            Some((_, Some(job_id))) => {
                let job = rows::find_owned(db, &job_id, user_id).await.map_err(JobError::from)?;
                return job.ok_or_else(|| AppError::new(code::API_JOB_NOT_FOUND, "That job no longer exists."));
            }
            // The first request made nothing and freed the key: claim it again.
            None => {}
            Some((_, None)) if tokio::time::Instant::now() >= deadline => {
                return Err(AppError::new(
                    code::API_IDEMPOTENCY_IN_PROGRESS,
                    "The first request with this Idempotency-Key is still running; try again in a moment.",
                )
                .retry_after(1));
            }
            Some((_, None)) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        }
    }
}

fn db_error(err: sqlx::Error) -> AppError {
    tracing::error!(%err, "idempotency keys");
    AppError::internal()
}
