//! What happens to a job when something goes wrong: it fails for good, with a code and a
//! sentence for its owner, or it is tried again after a backoff while its attempts and its retry
//! window last. The moves themselves are [`super::transition`]'s.

use std::time::Duration;

use serde_json::json;

use super::Jobs;
use super::failure;
use super::rows::{JobRow, JobState};
use super::transition::Step;
use crate::server::audit::{self, Action, Event};
use crate::server::db::now_ms;

/// Marks the job failed (from one of `from`, under `lease` when given). Returns whether it did.
pub async fn fail(
    ctx: Jobs<'_>,
    job: &JobRow,
    from: &[JobState],
    lease: Option<&str>,
    failure: &failure::Failure,
) -> Result<bool, sqlx::Error> {
    let step = Step::Failed { code: failure.code.to_owned(), message: failure.message.clone() };
    let changed = step.of(&job.id).from(from).under(lease).run(&ctx.db.pool).await?;
    if changed {
        tracing::info!(job_id = %job.id, user_id = %job.user_id, code = failure.code, "job failed");
        audit::record(
            &ctx.db,
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
pub fn may_retry(ctx: Jobs<'_>, job: &JobRow, attempts: i64, since: i64) -> bool {
    let window = ctx.config.retry_window.as_millis() as i64;
    attempts < job.max_attempts && now_ms() - since < window
}

/// Sends the job back to the queue after a backoff, or fails it when its attempts or its retry
/// window are used up. `Some(true)`: requeued; `Some(false)`: failed; `None`: it had already
/// moved on.
pub async fn requeue(
    ctx: Jobs<'_>,
    job: &JobRow,
    from: &[JobState],
    lease: Option<&str>,
    reason: &str,
) -> Result<Option<bool>, sqlx::Error> {
    let attempts = job.attempts + 1;
    if !may_retry(ctx, job, attempts, job.queued_at) {
        let failure = failure::exhausted(reason, attempts);
        return Ok(fail(ctx, job, from, lease, &failure).await?.then_some(false));
    }
    let at = now_ms() + backoff(ctx.config.retry_base, attempts).as_millis() as i64;
    let step = Step::Requeued { attempts, max_attempts: job.max_attempts, next_at: at, reason: reason.to_owned() };
    let changed = step.of(&job.id).from(from).under(lease).run(&ctx.db.pool).await?;
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
