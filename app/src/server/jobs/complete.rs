//! The one completion path. A webhook and the poller both end here, keyed on fal's
//! `request_id`; each state change is a guarded update, so a duplicate delivery, a replay or a
//! webhook racing the poller finds the job already moved on and changes nothing.

use std::time::Duration;

use serde_json::{Value, json};

use super::failure::{self, Verdict};
use super::rows::{self, JobRow, JobState, Update};
use crate::server::audit::{self, Action, Event};
use crate::server::db::now_ms;
use crate::server::fal::FalError;
use crate::server::state::Services;

/// What fal said a request ended with.
#[derive(Clone, Debug)]
pub enum Outcome {
    Output(Value),
    Failed(FalError),
}

/// What a completion did.
#[derive(Clone, Debug)]
pub enum Completion {
    /// The job now has its result and waits to be persisted.
    Persisting(JobRow),
    Failed(JobRow),
    /// A retriable failure: the job goes back to the queue.
    Requeued(JobRow),
    /// Already past this point (a duplicate, a replay, or canceled): nothing changed.
    AlreadyDone(JobState),
    /// No job has this request id.
    Unknown,
}

pub async fn complete(services: &Services, request_id: &str, outcome: Outcome) -> Result<Completion, sqlx::Error> {
    let Some(job) = rows::find_by_request(&services.db, request_id).await? else { return Ok(Completion::Unknown) };
    if !JobState::AT_FAL.contains(&job.state) {
        return Ok(Completion::AlreadyDone(job.state));
    }
    let elapsed = job.submitted_at.map(|at| (now_ms() - at).max(0) as f64 / 1000.0);
    let done: fn(JobRow) -> Completion = match outcome {
        Outcome::Output(payload) => {
            let changed = Update {
                id: &job.id,
                from: &JobState::AT_FAL,
                lease: None,
                set: "state = 'persisting', result_json = $3, attempts = 0, next_attempt_at = $1, completed_at = $1, \
                      queue_position = NULL, progress = NULL, error_message = NULL",
                binds: vec![payload.to_string().into()],
            }
            .run(&services.db.pool)
            .await?;
            if !changed {
                return Ok(already(services, &job.id).await?);
            }
            metrics::counter!("fal_request_success_total").increment(1);
            if let Some(secs) = elapsed {
                metrics::histogram!("fal_request_duration_seconds").record(secs);
            }
            Completion::Persisting
        }
        Outcome::Failed(err) => {
            metrics::counter!("fal_request_failure_total", "code" => failure::metric_code(&err)).increment(1);
            match failure::classify(&err) {
                Verdict::Fail(failure) => {
                    if !fail(services, &job, &JobState::AT_FAL, None, &failure).await? {
                        return Ok(already(services, &job.id).await?);
                    }
                    Completion::Failed
                }
                Verdict::Retry(reason) => match requeue(services, &job, &JobState::AT_FAL, None, &reason).await? {
                    Some(true) => Completion::Requeued,
                    Some(false) => Completion::Failed,
                    None => return Ok(already(services, &job.id).await?),
                },
            }
        }
    };
    services.jobs.events.publish(&job.user_id, &job.id).await;
    services.jobs.wake.notify_one();
    let row = rows::find(&services.db, &job.id).await?.unwrap_or(job);
    Ok(done(row))
}

async fn already(services: &Services, job_id: &str) -> Result<Completion, sqlx::Error> {
    Ok(match rows::find(&services.db, job_id).await? {
        Some(job) => Completion::AlreadyDone(job.state),
        None => Completion::Unknown,
    })
}

/// Marks the job failed (from one of `from`, under `lease` when given). Returns whether it did.
pub(super) async fn fail(
    services: &Services,
    job: &JobRow,
    from: &[JobState],
    lease: Option<&str>,
    failure: &failure::Failure,
) -> Result<bool, sqlx::Error> {
    let changed = Update {
        id: &job.id,
        from,
        lease,
        set: "state = 'failed', error_code = $3, error_message = $4, lease_owner = NULL, lease_until = NULL, \
              completed_at = $1, progress = NULL, queue_position = NULL",
        binds: vec![failure.code.into(), failure.message.clone().into()],
    }
    .run(&services.db.pool)
    .await?;
    if changed {
        tracing::info!(job = %job.id, code = failure.code, "job failed");
        audit::record(
            &services.db,
            Event::new(Action::JobFailed)
                .actor(&job.user_id)
                .subject("job", &job.id)
                .detail(json!({ "code": failure.code, "message": failure.message, "model": job.model })),
        )
        .await;
    }
    Ok(changed)
}

/// Whether a passing failure may be tried again: within the attempts, and within the retry
/// window counted from `since` (when the step that keeps failing first began).
pub(super) fn may_retry(services: &Services, job: &JobRow, attempts: i64, since: i64) -> bool {
    let window = services.config.jobs.retry_window.as_millis() as i64;
    attempts < job.max_attempts && now_ms() - since < window
}

/// Sends the job back to the queue after a backoff, or fails it when its attempts or its retry
/// window are used up. `Some(true)`: requeued; `Some(false)`: failed; `None`: it had already
/// moved on.
pub(super) async fn requeue(
    services: &Services,
    job: &JobRow,
    from: &[JobState],
    lease: Option<&str>,
    reason: &str,
) -> Result<Option<bool>, sqlx::Error> {
    let attempts = job.attempts + 1;
    if !may_retry(services, job, attempts, job.queued_at) {
        let failure = failure::exhausted(reason, attempts);
        return Ok(fail(services, job, from, lease, &failure).await?.then_some(false));
    }
    let at = now_ms() + backoff(services.config.jobs.retry_base, attempts).as_millis() as i64;
    let message = format!("Retrying ({}/{}): {reason}", attempts + 1, job.max_attempts);
    let changed = Update {
        id: &job.id,
        from,
        lease,
        set: "state = 'queued', fal_request_id = NULL, attempts = $3, next_attempt_at = $4, error_message = $5, \
              lease_owner = NULL, lease_until = NULL, queue_position = NULL, progress = NULL",
        binds: vec![attempts.into(), at.into(), message.into()],
    }
    .run(&services.db.pool)
    .await?;
    Ok(changed.then_some(true))
}

/// `base · 2^(attempt−1)`, ±50 % jitter so retries of many jobs spread out, at most 10 minutes.
pub fn backoff(base: Duration, attempt: i64) -> Duration {
    let exp = base.as_millis() as f64 * 2f64.powi((attempt - 1).clamp(0, 20) as i32);
    let jitter = 0.5 + rand::random::<f64>();
    Duration::from_millis((exp * jitter).min(600_000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        for attempt in 1..=4 {
            let d = backoff(Duration::from_millis(1000), attempt).as_millis() as f64;
            let nominal = 1000.0 * 2f64.powi(attempt as i32 - 1);
            assert!(d >= nominal * 0.5 && d <= nominal * 1.5, "attempt {attempt}: {d}");
        }
        assert!(backoff(Duration::from_secs(60), 30) <= Duration::from_secs(600));
    }
}
