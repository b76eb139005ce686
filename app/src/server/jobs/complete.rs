//! The one completion path. A webhook and the poller both end here, keyed on fal's
//! `request_id`; each state change is a guarded update, so a duplicate delivery, a replay or a
//! webhook racing the poller finds the job already moved on and changes nothing.

use serde_json::Value;

use super::Jobs;
use super::failure::{self, Verdict};
use super::rows::{self, JobRow, JobState};
use super::setbacks::{fail, requeue};
use super::transition::Step;
use crate::server::db::now_ms;
use crate::server::fal::FalError;

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

pub async fn complete(ctx: Jobs<'_>, request_id: &str, outcome: Outcome) -> Result<Completion, sqlx::Error> {
    let Some(job) = rows::find_by_request(&ctx.db, request_id).await? else { return Ok(Completion::Unknown) };
    if !JobState::AT_FAL.contains(&job.state) {
        return Ok(Completion::AlreadyDone(job.state));
    }
    let elapsed = job.submitted_at.map(|at| (now_ms() - at).max(0) as f64 / 1000.0);
    let done: fn(JobRow) -> Completion = match outcome {
        Outcome::Output(payload) => {
            let changed = Step::Completed { result_json: payload.to_string() }.of(&job.id).run(&ctx.db.pool).await?;
            if !changed {
                return Ok(already(ctx, &job.id).await?);
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
                    if !fail(ctx, &job, &JobState::AT_FAL, None, &failure).await? {
                        return Ok(already(ctx, &job.id).await?);
                    }
                    Completion::Failed
                }
                Verdict::Retry(reason) => match requeue(ctx, &job, &JobState::AT_FAL, None, &reason).await? {
                    Some(true) => Completion::Requeued,
                    Some(false) => Completion::Failed,
                    None => return Ok(already(ctx, &job.id).await?),
                },
            }
        }
    };
    ctx.runtime.events.publish(&job.user_id, &job.id).await;
    ctx.runtime.wake.notify_one();
    let row = rows::find(&ctx.db, &job.id).await?.unwrap_or(job);
    Ok(done(row))
}

async fn already(ctx: Jobs<'_>, job_id: &str) -> Result<Completion, sqlx::Error> {
    Ok(match rows::find(&ctx.db, job_id).await? {
        Some(job) => Completion::AlreadyDone(job.state),
        None => Completion::Unknown,
    })
}
