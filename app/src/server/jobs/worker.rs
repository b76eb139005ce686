//! The in-process worker every replica runs. It claims due jobs with a lease (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so replicas never claim the same job), keeps the lease alive while it
//! works, and lets it lapse if the process dies, so another worker picks the job up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Jobs;
use super::complete::{self, Completion, Outcome};
use super::failure::{self, Failure, Verdict};
use super::inputs;
use super::persist;
use super::rows::{self, COLUMNS, JobRow, JobState};
use super::setbacks::{fail, requeue};
use super::transition::Step;
use crate::server::audit::{self, Action, Event};
use crate::server::db::{Backend, new_id, now_ms};
use crate::server::fal::{FalError, FalKey, QueueStatus};
use crate::server::state::AppState;
use crate::states::sql_list;

/// Runs the worker until the server shuts down: it then claims nothing more, and the task ends
/// once the steps under way have reached their safe points.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let concurrency = state.config.jobs.concurrency;
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut closing = state.jobs.closing.subscribe();
        while !*closing.borrow() {
            let free = slots.available_permits();
            if free > 0 {
                match claim((&state).into(), free as i64).await {
                    Ok(jobs) => {
                        for (job, lease) in jobs {
                            let Ok(slot) = slots.clone().acquire_owned().await else { return };
                            let state = state.clone();
                            tokio::spawn(async move {
                                work((&state).into(), job, &lease).await;
                                drop(slot);
                                // A slot is free: look for more due jobs at once.
                                state.jobs.wake.notify_one();
                            });
                        }
                    }
                    Err(err) => tracing::warn!(%err, "claiming jobs failed; trying again shortly"),
                }
            }
            tokio::select! {
                _ = state.jobs.wake.notified() => {}
                _ = tokio::time::sleep(state.config.jobs.tick) => {}
                changed = closing.changed() => if changed.is_err() { break },
            }
        }
        let _ = slots.acquire_many(concurrency as u32).await;
    })
}

/// Gives back every lease this process still holds (a step cut short by the end of the grace
/// period), so other replicas take the jobs over at once instead of after the lease lapses.
pub async fn release_leases(ctx: Jobs<'_>) {
    let held: Vec<(String, String)> =
        ctx.runtime.leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain().collect();
    for (job, lease) in held {
        let released =
            sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
                .bind(&job)
                .bind(&lease)
                .execute(&ctx.db.pool)
                .await;
        if let Err(err) = released {
            tracing::warn!(job_id = %job, %err, "lease not released; it lapses by itself");
        }
    }
}

/// Leases up to `limit` due jobs to this worker under a fresh lease token. A disabled account's
/// queued jobs wait (nothing more of theirs is sent to fal); what fal already has is finished.
pub async fn claim(ctx: Jobs<'_>, limit: i64) -> Result<Vec<(JobRow, String)>, sqlx::Error> {
    let token = new_id();
    let now = now_ms();
    let lock = if ctx.db.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let active = sql_list(&JobState::ACTIVE, JobState::as_str);
    let sql = format!(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2 WHERE id IN (SELECT id FROM jobs \
         WHERE state IN ({active}) AND next_attempt_at <= $3 \
         AND (lease_until IS NULL OR lease_until < $3) \
         AND (state <> '{queued}' OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = jobs.user_id AND u.disabled_at IS NOT NULL)) \
         ORDER BY next_attempt_at LIMIT $4{lock}) RETURNING {COLUMNS}",
        queued = JobState::Queued.as_str(),
    );
    let rows = sqlx::query(&sql)
        .bind(&token)
        .bind(now + ctx.config.lease.as_millis() as i64)
        .bind(now)
        .bind(limit)
        .fetch_all(&ctx.db.pool)
        .await?;
    rows.iter().map(|row| Ok((rows::from_row(row)?, token.clone()))).collect()
}

/// Works one claimed job one step (submit, poll, or persist) and gives the lease back.
pub async fn work(ctx: Jobs<'_>, job: JobRow, lease: &str) {
    let leases = ctx.runtime.leases.clone();
    leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(job.id.clone(), lease.to_owned());
    let job_id = job.id.clone();
    // Every line logged for this step carries the job and the request that created it.
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        user_id = %job.user_id,
        request_id = job.request_id.as_deref().unwrap_or("-")
    );
    tracing::Instrument::instrument(work_step(ctx, job, lease), span).await;
    leases.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&job_id);
}

async fn work_step(ctx: Jobs<'_>, job: JobRow, lease: &str) {
    let heartbeat = {
        let db = ctx.db.clone();
        let (id, lease, every) = (job.id.clone(), lease.to_owned(), ctx.config.lease);
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every / 3).await;
                let renewed = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                    .bind(now_ms() + every.as_millis() as i64)
                    .bind(&id)
                    .bind(&lease)
                    .execute(&db.pool)
                    .await;
                if let Err(err) = renewed {
                    tracing::warn!(job_id = %id, %err, "lease not renewed; another worker may take the job over");
                }
            }
        }))
    };
    let step = async {
        if let Some(failure) = past_deadline(ctx, &job) {
            return expire(ctx, &job, lease, &failure).await;
        }
        match job.state {
            JobState::Queued => submit(ctx, &job, lease).await,
            JobState::Submitted | JobState::Running => poll(ctx, &job, lease).await,
            JobState::Persisting => persist::persist(ctx, &job, lease, true).await,
            _ => Ok(()),
        }
    };
    // A step that hangs (a peer that never answers) must not hold the job forever.
    let result = match tokio::time::timeout(ctx.config.timeout, step).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Protocol("the step took longer than the job time limit".into())),
    };
    drop(heartbeat);
    let retry_at = match &result {
        Ok(()) => None,
        Err(err) => {
            tracing::warn!(%err, "job step failed; it will be tried again");
            Some(now_ms() + ctx.config.retry_base.as_millis() as i64)
        }
    };
    let release = match retry_at {
        None => sqlx::query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
            .bind(&job.id)
            .bind(lease),
        Some(at) => sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $3 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(&job.id)
        .bind(lease)
        .bind(at),
    };
    if let Err(err) = release.execute(&ctx.db.pool).await {
        tracing::warn!(%err, "lease not released; it lapses by itself");
    }
}

/// Stops the heartbeat however the step ends, a panic included, so the lease can lapse.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Each state has its deadline: a queued job must get to fal within the retry window of its
/// queueing; a job at fal must finish within the time limit of its submission; a result must be
/// saved within the retry window of its arrival. Past it, the job fails, whatever went wrong.
fn past_deadline(ctx: Jobs<'_>, job: &JobRow) -> Option<Failure> {
    let config = &ctx.config;
    let now = now_ms();
    let past = |since: i64, limit: Duration| now - since > limit.as_millis() as i64;
    let last_trouble = || job.retry_reason.clone();
    match job.state {
        JobState::Queued if past(job.queued_at, config.retry_window) => Some(Failure::new(
            "job.retries_exhausted",
            format!(
                "The job could not be started in time: {}.",
                last_trouble().unwrap_or_else(|| "fal was unavailable".into())
            ),
        )),
        JobState::Submitted | JobState::Running if past(job.submitted_at.unwrap_or(job.queued_at), config.timeout) => {
            let minutes = config.timeout.as_secs().div_ceil(60);
            Some(Failure::new("job.timeout", format!("The job did not finish within {minutes} minutes.")))
        }
        JobState::Persisting if past(job.completed_at.unwrap_or(job.updated_at), config.retry_window) => {
            Some(Failure::new(
                "job.persist_failed",
                format!(
                    "The results could not be saved in time: {}.",
                    last_trouble().unwrap_or_else(|| "storage was unavailable".into())
                ),
            ))
        }
        _ => None,
    }
}

async fn expire(ctx: Jobs<'_>, job: &JobRow, lease: &str, failure: &Failure) -> Result<(), sqlx::Error> {
    if job.state == JobState::Persisting {
        return persist::give_up(ctx, job, lease, failure).await;
    }
    if let Some(request_id) = &job.fal_request_id {
        super::cancel_at_fal(ctx, job, request_id).await;
    }
    if fail(ctx, job, &[job.state], Some(lease), failure).await? {
        ctx.runtime.events.publish(&job.user_id, &job.id).await;
    }
    Ok(())
}

async fn user_key(ctx: Jobs<'_>, job: &JobRow) -> Result<FalKey, Failure> {
    match crate::server::keys::load(&ctx.db, &ctx.vault, &job.user_id).await {
        Ok(Some(key)) => Ok(key),
        Ok(None) => {
            Err(Failure::new("keys.missing", "Your fal key was removed. Save it on the Account tab and retry."))
        }
        Err(err) => {
            tracing::error!(%err, "fal key unreadable");
            Err(Failure::new("keys.unreadable", "Your saved fal key could not be read. Save it again and retry."))
        }
    }
}

/// Hands fal the inputs and submits the job to its queue with the owner's key.
async fn submit(ctx: Jobs<'_>, job: &JobRow, lease: &str) -> Result<(), sqlx::Error> {
    let from = [JobState::Queued];
    let key = match user_key(ctx, job).await {
        Ok(key) => key,
        Err(failure) => return finish_failed(ctx, job, &from, lease, &failure).await,
    };
    let input = match inputs::build(ctx, job, &key).await? {
        Ok(input) => input,
        Err(verdict) => return not_submitted(ctx, job, lease, verdict).await,
    };
    // From here until the request id is stored, a shutdown waits: a request fal accepted must
    // never be lost (and billed twice by a resubmit). A shutdown already under way leaves the
    // job queued for the next process instead.
    if ctx.runtime.is_closing() {
        return Ok(());
    }
    let Ok(_unbroken) = ctx.runtime.submitting.acquire().await else { return Ok(()) };
    let config = &ctx.config;
    audit::record(
        &ctx.db,
        Event::new(Action::FalInvoked).actor(&job.user_id).subject("job", &job.id).detail(
            json!({ "model": job.model, "attempt": job.attempts + 1, "webhook": config.webhook_url.is_some() }),
        ),
    )
    .await;
    let submitted =
        ctx.fal.submit(&key, &job.model, &input, config.webhook_url.as_ref(), config.fal_output_ttl.as_secs()).await;
    match submitted {
        Ok(submitted) => {
            // With a webhook coming, status is still checked now and then (never the result):
            // the page can say "Generating" while fal works instead of "In queue" throughout.
            let wait = if config.webhook_url.is_some() {
                config.webhook_grace.min(config.poll_max)
            } else {
                config.poll_first
            };
            let step = Step::Submitted {
                request_id: submitted.request_id.clone(),
                webhook: config.webhook_url.is_some(),
                next_at: now_ms() + wait.as_millis() as i64,
                queue_position: submitted.queue_position.map(|p| p as i64),
            };
            let changed = step.of(&job.id).under(lease).run(&ctx.db.pool).await?;
            if changed {
                tracing::info!(request = %submitted.request_id, "submitted to fal");
                ctx.runtime.events.publish(&job.user_id, &job.id).await;
            } else {
                // Canceled while we were submitting: do not leave it running (and billing) at fal.
                if let Err(err) = ctx.fal.cancel(&key, &job.model, &submitted.request_id).await {
                    tracing::warn!(%err, "could not cancel the orphaned request at fal");
                }
            }
            Ok(())
        }
        Err(err) => {
            metrics::counter!("fal_request_failure_total", "code" => failure::metric_code(&err)).increment(1);
            not_submitted(ctx, job, lease, failure::classify(&err)).await
        }
    }
}

/// A queued job that could not be submitted: failed for good, or queued again after a backoff.
async fn not_submitted(ctx: Jobs<'_>, job: &JobRow, lease: &str, verdict: Verdict) -> Result<(), sqlx::Error> {
    let from = [JobState::Queued];
    match verdict {
        Verdict::Fail(failure) => finish_failed(ctx, job, &from, lease, &failure).await,
        Verdict::Retry(reason) => {
            tracing::info!(%reason, "submit failed; retrying later");
            requeue(ctx, job, &from, Some(lease), &reason).await?;
            ctx.runtime.events.publish(&job.user_id, &job.id).await;
            Ok(())
        }
    }
}

async fn finish_failed(
    ctx: Jobs<'_>,
    job: &JobRow,
    from: &[JobState],
    lease: &str,
    failure: &Failure,
) -> Result<(), sqlx::Error> {
    if fail(ctx, job, from, Some(lease), failure).await? {
        ctx.runtime.events.publish(&job.user_id, &job.id).await;
    }
    Ok(())
}

/// Asks fal where the request is; on completion, fetches the result and completes the job.
async fn poll(ctx: Jobs<'_>, job: &JobRow, lease: &str) -> Result<(), sqlx::Error> {
    let Some(request_id) = job.fal_request_id.as_deref() else {
        let failure = Failure::new("internal", "The job lost track of its request.");
        return finish_failed(ctx, job, &JobState::AT_FAL, lease, &failure).await;
    };
    let key = match user_key(ctx, job).await {
        Ok(key) => key,
        Err(failure) => return finish_failed(ctx, job, &JobState::AT_FAL, lease, &failure).await,
    };
    let next = now_ms() + poll_delay(ctx, job).as_millis() as i64;
    match ctx.fal.status(&key, &job.model, request_id).await {
        Ok(QueueStatus::InQueue { position }) => {
            let position = position.map(|p| p as i64);
            progress(ctx, job, lease, JobState::Submitted, position, None, next).await
        }
        Ok(QueueStatus::InProgress { logs }) => {
            let line = logs.last().map(|l| l.chars().take(300).collect::<String>());
            progress(ctx, job, lease, JobState::Running, None, line, next).await
        }
        // Done at fal, and its webhook due any moment: the webhook brings the result. Should it
        // not have come when the grace ends, the next poll fetches the result itself.
        Ok(QueueStatus::Completed { .. }) if job.webhook && now_ms() < webhook_due(ctx, job) => {
            let at_grace = webhook_due(ctx, job).max(next);
            progress(ctx, job, lease, JobState::Running, None, job.progress.clone(), at_grace).await
        }
        Ok(QueueStatus::Completed { error, .. }) => {
            let outcome = match ctx.fal.result(&key, &job.model, request_id).await {
                Ok(output) => Outcome::Output(output),
                // The request succeeded but its result could not be read just now (no answer, a
                // rate limit, a gateway hiccup): it is still there; look again shortly rather
                // than paying for the request again.
                Err(err) if error.is_none() && err.is_retriable() => {
                    return progress(ctx, job, lease, job.state, job.queue_position, job.progress.clone(), next).await;
                }
                Err(err) => Outcome::Failed(err),
            };
            if let Completion::Persisting(row) = complete::complete(ctx, request_id, outcome).await? {
                // We still hold the lease: save the results now rather than on the next tick.
                persist::persist(ctx, &row, lease, false).await?;
            }
            Ok(())
        }
        Err(FalError::Upstream { status: 404, .. }) => {
            requeue(ctx, job, &JobState::AT_FAL, Some(lease), "fal no longer knows the request").await?;
            ctx.runtime.events.publish(&job.user_id, &job.id).await;
            Ok(())
        }
        Err(err) if err.is_retriable() => {
            tracing::info!(%err, "status check failed; polling again later");
            progress(ctx, job, lease, job.state, job.queue_position, job.progress.clone(), next).await
        }
        Err(err) => {
            let failure = match failure::classify(&err) {
                Verdict::Fail(f) => f,
                Verdict::Retry(reason) => Failure::new("fal.upstream", reason),
            };
            finish_failed(ctx, job, &JobState::AT_FAL, lease, &failure).await
        }
    }
}

async fn progress(
    ctx: Jobs<'_>,
    job: &JobRow,
    lease: &str,
    at_fal: JobState,
    position: Option<i64>,
    line: Option<String>,
    next: i64,
) -> Result<(), sqlx::Error> {
    let changed_for_user = at_fal != job.state || position != job.queue_position || line != job.progress;
    let step = Step::Progress { at_fal, queue_position: position, progress: line, next_at: next };
    step.of(&job.id).under(lease).run(&ctx.db.pool).await?;
    if changed_for_user {
        ctx.runtime.events.publish(&job.user_id, &job.id).await;
    }
    Ok(())
}

/// When a job's webhook is overdue: `webhook_grace` after fal accepted the request.
fn webhook_due(ctx: Jobs<'_>, job: &JobRow) -> i64 {
    job.submitted_at.unwrap_or(job.updated_at) + ctx.config.webhook_grace.as_millis() as i64
}

/// Polls start quick and slow down (×1.5 each time) to `poll_max`; with a webhook expected, a
/// poll only learns how far fal is (and is the safety net for a late or lost delivery), so it
/// runs at `poll_max`.
fn poll_delay(ctx: Jobs<'_>, job: &JobRow) -> Duration {
    let config = &ctx.config;
    if job.webhook {
        return config.poll_max;
    }
    let grown = config.poll_first.as_millis() as f64 * 1.5f64.powi(job.polls.clamp(0, 30) as i32);
    Duration::from_millis(grown.min(config.poll_max.as_millis() as f64) as u64)
}
