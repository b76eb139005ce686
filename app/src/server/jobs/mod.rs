//! Generation jobs (the README's "What happens when you press Generate"): a durable row per request, a worker that
//! submits to fal's queue and follows it, one idempotent completion fed by webhooks and polling,
//! and a persist step that copies every output into our results bucket exactly once.

mod complete;
pub mod data_uri;
pub mod events;
mod failure;
mod inputs;
pub mod live;
mod media;
pub mod mp4;
pub mod outputs;
mod persist;
pub mod poster;
pub mod rows;
mod selfie;
mod setbacks;
pub mod transition;
pub mod views;
pub mod webhook;
pub mod worker;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sqlx::Row;

pub use complete::{Completion, Outcome, complete};
pub use events::{Events, JobEvent};
pub use failure::Failure;
pub use media::host_allowed;
pub use rows::{JobRow, JobState};

use crate::catalog;
use crate::error::{AppError, code};
use crate::server::audit::{self, Action, Event};
use crate::server::db::{Db, new_id, now_ms};
use crate::server::fal::webhook::Jwks;
use crate::server::uploads::rows as upload_rows;
use crate::states::{AssetKind, sql_list};
use transition::Step;

/// What the job machinery works with: the stores, the fal client, its own settings and runtime,
/// and nothing else of the server (no sessions, no page options).
#[derive(Clone, Copy)]
pub struct Jobs<'a> {
    pub db: &'a Db,
    pub storage: &'a crate::server::storage::Storage,
    pub vault: &'a crate::server::keys::Vault,
    pub fal: &'a crate::server::fal::FalClient,
    pub config: &'a crate::server::config::JobConfig,
    pub fal_config: &'a crate::server::config::FalConfig,
    /// For the image limits thumbnails respect and how long viewing links live.
    pub uploads: &'a crate::server::config::UploadConfig,
    pub runtime: &'a JobRuntime,
}

impl<'a> From<&'a crate::server::state::Services> for Jobs<'a> {
    fn from(services: &'a crate::server::state::Services) -> Self {
        Self {
            db: &services.db,
            storage: &services.storage,
            vault: &services.vault,
            fal: &services.fal,
            config: &services.config.jobs,
            fal_config: &services.config.fal,
            uploads: &services.config.uploads,
            runtime: &services.jobs,
        }
    }
}

impl<'a> From<&'a crate::server::state::AppState> for Jobs<'a> {
    fn from(state: &'a crate::server::state::AppState) -> Self {
        Self::from(&**state)
    }
}

/// What the job machinery shares across requests and the worker.
#[derive(Clone)]
pub struct JobRuntime {
    pub events: Events,
    pub jwks: Arc<Jwks>,
    /// Wakes the worker at once (a new job, a completion) instead of at its next tick.
    pub wake: Arc<tokio::sync::Notify>,
    /// Downloads outputs from the allow-listed media hosts only, redirects included.
    pub media: reqwest::Client,
    /// Set when the server shuts down: live streams end, the worker claims nothing more, and
    /// saves stop at their next safe point.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
    pub streams: live::OpenStreams,
    /// Held from the moment a submit is sent to fal until its request id is stored; shutdown
    /// waits for every holder, so no request fal accepted is ever forgotten.
    pub submitting: Arc<tokio::sync::Semaphore>,
    /// The leases this process holds (job id → lease token), released on shutdown.
    pub leases: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// fal's prices, as the estimates of new jobs last read them.
    pub prices: Arc<crate::server::spend::Prices>,
}

/// More submits than could ever be in flight at once.
pub const SUBMITS_AT_ONCE: u32 = 1 << 16;

impl JobRuntime {
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }
}

impl JobRuntime {
    pub async fn start(config: &crate::server::config::Config, db: &Db) -> (Self, Option<tokio::task::JoinHandle<()>>) {
        let (events, relay) = Events::start(db, &config.database_url).await;
        let runtime = Self {
            events,
            jwks: Arc::new(Jwks::new(config.fal.jwks_url.clone())),
            wake: Arc::new(tokio::sync::Notify::new()),
            media: media::media_client(&config.fal.media_hosts),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
            streams: live::OpenStreams::default(),
            submitting: Arc::new(tokio::sync::Semaphore::new(SUBMITS_AT_ONCE as usize)),
            leases: Arc::default(),
            prices: Arc::default(),
        };
        (runtime, relay)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    #[error("invalid input: {0:?}")]
    Invalid(catalog::Invalid),
    #[error("input image {0} is missing")]
    InputMissing(String),
    #[error("no fal key saved")]
    NoKey,
    #[error("no such job")]
    NotFound,
    #[error("job cannot be canceled in state {0}")]
    NotCancelable(&'static str),
    #[error("job cannot be retried in state {0}")]
    NotRetriable(&'static str),
    #[error("too many unfinished jobs")]
    TooManyActive(i64),
    #[error("over a spending cap")]
    OverCap(crate::server::spend::Exceeded),
    #[error("a spending cap applies and no estimate could be had")]
    EstimateUnavailable,
    /// The account keeps `kept` bytes of its storage quota `limit`: new results would not fit.
    #[error("storage quota reached")]
    StorageFull { kept: u64, limit: u64 },
    /// A try-on's selfie shows no usable face.
    #[error("no face in the selfie")]
    NoFace,
    /// A try-on's selfie shows this many faces of similar size.
    #[error("{0} faces in the selfie")]
    ManyFaces(usize),
    #[error("storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Fal(#[from] crate::server::fal::FalError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<JobError> for AppError {
    fn from(err: JobError) -> Self {
        match err {
            JobError::UnknownModel(_) => {
                AppError::new(code::JOB_UNKNOWN_MODEL, "That model is not available.").on_field("model")
            }
            JobError::Invalid(invalid) => {
                AppError::new(code::JOB_INVALID_INPUT, invalid.message).on_field(invalid.field)
            }
            JobError::InputMissing(_) => AppError::new(
                code::JOB_INPUT_MISSING,
                "One of the chosen images is no longer available. Pick it again or upload it again.",
            )
            .on_field("images"),
            JobError::NoKey => {
                AppError::new(code::KEYS_MISSING, "Save your fal key on the Account tab before generating.")
            }
            JobError::NotFound => AppError::new(code::JOB_NOT_FOUND, "That job does not exist."),
            JobError::NotCancelable(state) => {
                AppError::new(code::JOB_NOT_CANCELABLE, format!("This job is {state} and can no longer be canceled."))
            }
            JobError::NotRetriable(state) => AppError::new(
                code::JOB_NOT_RETRIABLE,
                format!("Only failed or canceled jobs can be retried; this one is {state}."),
            ),
            JobError::TooManyActive(limit) => AppError::new(
                code::JOB_RATE_LIMITED,
                format!("You already have {limit} jobs running. Wait for one to finish."),
            ),
            JobError::OverCap(exceeded) => exceeded.into(),
            JobError::StorageFull { kept, limit } => {
                AppError::new(code::QUOTA_STORAGE_FULL, crate::server::quota::full_message(kept, limit))
            }
            JobError::NoFace => AppError::new(
                code::TRYON_NO_FACE,
                "No face was found in this photo. Choose a selfie where your face is clearly visible, facing the camera.",
            ),
            JobError::ManyFaces(count) => AppError::new(
                code::TRYON_MANY_FACES,
                format!("This photo shows {count} faces. Choose a photo of just one person for the try-on."),
            ),
            JobError::Storage(_) => {
                tracing::error!(%err, "storage unavailable for a job");
                AppError::new(code::STORAGE_UNAVAILABLE, "Storage is not answering right now. Try again in a minute.")
                    .retry_after(60)
            }
            JobError::EstimateUnavailable => AppError::new(
                code::SPEND_ESTIMATE_UNAVAILABLE,
                "Your spending cap needs this job's price, and fal's prices cannot be read right now. Try again in a minute.",
            )
            .retry_after(60),
            JobError::Fal(fal) => fal.into(),
            JobError::Database(_) | JobError::Internal(_) => {
                tracing::error!(%err, "job operation failed");
                AppError::internal()
            }
        }
    }
}

/// Unfinished jobs one user may have at once.
const MAX_ACTIVE_PER_USER: i64 = 20;

pub struct NewJob<'a> {
    pub model: &'a str,
    pub params: &'a Map<String, Value>,
    pub images: &'a [String],
    /// The request creating it, carried into the worker's log lines.
    pub request_id: Option<String>,
}

/// Validates a request against the catalog and the caller's uploads, then queues it.
#[tracing::instrument(skip(ctx, ip, new), fields(model = new.model, job_id))]
pub async fn create(ctx: Jobs<'_>, user_id: &str, ip: &str, new: NewJob<'_>) -> Result<JobRow, JobError> {
    let model = catalog::find(new.model).ok_or_else(|| JobError::UnknownModel(new.model.to_owned()))?;
    let valid = model.validate(new.params, new.images).map_err(JobError::Invalid)?;
    // Each image is kept a while longer from now on: the job may run (and be retried) later.
    let now = now_ms();
    for upload in &valid.images {
        if !upload_rows::use_ready(ctx.db, upload, user_id, now, ctx.uploads.source_ttl).await? {
            return Err(JobError::InputMissing(upload.clone()));
        }
    }
    if crate::server::keys::status(&ctx.db, user_id).await.map_err(|e| JobError::Internal(e.to_string()))?.is_none() {
        return Err(JobError::NoKey);
    }
    has_room(ctx, user_id).await?;
    // Before anything is estimated or reserved: a try-on without a usable face never starts.
    if ctx.config.face_check && model.is_try_on(&valid.params) {
        if let Some(selfie) = valid.images.first() {
            selfie::require_one_face(ctx, user_id, selfie).await?;
        }
    }
    let caps = crate::server::spend::caps_of(ctx.db, ctx.config.spend_caps, user_id).await?.effective;
    let estimate = estimate(ctx, user_id, model, &valid.params).await;
    if caps.any() && estimate.is_none() {
        return Err(JobError::EstimateUnavailable);
    }
    let id = new_id();
    tracing::Span::current().record("job_id", id.as_str());
    // The answer describes the job as it was created: by the time a later read ran, the worker
    // may already have moved it on, and the live stream reports that change anyway. The count
    // of unfinished jobs is checked in the same statement, so concurrent creates cannot pass
    // the cap together.
    let sql = format!(
        "INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, next_attempt_at, \
         queued_at, created_at, updated_at, request_id, prompt_search, estimate_micros) \
         SELECT $1, $2, $3, $4, $5, '{queued}', $6, $7, $7, $7, $7, $9, $10, $11 \
         WHERE (SELECT COUNT(*) FROM jobs WHERE user_id = $2 AND state IN ({active})) < $8 \
         RETURNING {columns}",
        queued = JobState::Queued.as_str(),
        active = sql_list(&JobState::ACTIVE, JobState::as_str),
        columns = rows::COLUMNS
    );
    // The prompt as the gallery's search indexes it.
    let prompt_search = valid.params.get("prompt").and_then(Value::as_str).map(crate::server::gallery::search::fold);
    let binds = (
        id.clone(),
        user_id.to_owned(),
        model.endpoint,
        Value::Object(valid.params).to_string(),
        json!(valid.images).to_string(),
        i64::from(ctx.config.max_attempts),
        new.request_id,
        prompt_search,
    );
    // Under the per-user lock, so each submit sees what the ones before it reserved.
    let created = ctx
        .db
        .exclusive(&format!("jobs:{user_id}"), move |conn| {
            Box::pin(async move {
                if let Some(estimate) = estimate.filter(|_| caps.any()) {
                    if let Err(exceeded) = crate::server::spend::check(conn, &binds.1, caps, estimate, now).await? {
                        return Ok(Err(exceeded));
                    }
                }
                sqlx::query(&sql)
                    .bind(binds.0)
                    .bind(binds.1)
                    .bind(binds.2)
                    .bind(binds.3)
                    .bind(binds.4)
                    .bind(binds.5)
                    .bind(now)
                    .bind(MAX_ACTIVE_PER_USER)
                    .bind(binds.6)
                    .bind(binds.7)
                    .bind(estimate)
                    .fetch_optional(&mut *conn)
                    .await
                    .map(Ok)
            })
        })
        .await?
        .map_err(JobError::OverCap)?;
    let Some(created) = created else { return Err(JobError::TooManyActive(MAX_ACTIVE_PER_USER)) };
    let created = rows::from_row(&created)?;
    audit::record(
        &ctx.db,
        Event::new(Action::JobCreated)
            .actor(user_id)
            .subject("job", &id)
            .ip(ip)
            .detail(json!({ "model": model.endpoint, "estimate_micros": estimate })),
    )
    .await;
    if let Some(estimate) = estimate {
        metrics::counter!("estimated_spend_microdollars_total", "model" => model.endpoint).increment(estimate as u64);
    }
    ctx.runtime.events.publish(user_id, &id).await;
    ctx.runtime.wake.notify_one();
    Ok(created)
}

/// What a job of `model` with `params` is estimated to cost, with `user_id`'s key.
pub async fn estimate(
    ctx: Jobs<'_>,
    user_id: &str,
    model: &catalog::Model,
    params: &Map<String, Value>,
) -> Option<i64> {
    let mut key = crate::server::spend::price::OwnersKey::new(ctx.db, ctx.vault, user_id);
    ctx.runtime.prices.estimate(ctx.fal, &mut key, model, params).await
}

/// The caller's jobs, newest first, after the job `before` (keyset pages).
pub async fn list(db: &Db, user_id: &str, before: Option<&str>, limit: i64) -> Result<Vec<JobRow>, JobError> {
    let limit = limit.clamp(1, 100);
    // A keyset: the cursor's (created_at, id) is looked up once and the index entered there.
    let after = if before.is_some() {
        " AND (created_at, id) < (SELECT c.created_at, c.id FROM jobs c WHERE c.id = $3 AND c.user_id = $1)"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {} FROM jobs WHERE user_id = $1{after} ORDER BY created_at DESC, id DESC LIMIT $2",
        rows::COLUMNS
    );
    let mut query = sqlx::query(&sql).bind(user_id).bind(limit);
    if let Some(cursor) = before {
        query = query.bind(cursor);
    }
    let rows = query.fetch_all(&db.pool).await?;
    Ok(rows.iter().map(rows::from_row).collect::<Result<_, _>>()?)
}

/// Cancels `user_id`'s job that has not started saving its results: queued jobs stop at once;
/// jobs at fal are canceled there too (best effort: a result that arrives anyway is ignored).
/// `actor`: who asked (the owner, or an admin), for the audit log.
#[tracing::instrument(skip(ctx, ip))]
pub async fn cancel(ctx: Jobs<'_>, user_id: &str, job_id: &str, actor: &str, ip: &str) -> Result<JobRow, JobError> {
    let job = rows::find_owned(&ctx.db, job_id, user_id).await?.ok_or(JobError::NotFound)?;
    // One statement decides, whatever the worker does meanwhile (a poll flipping submitted and
    // running, a resubmit changing the request id): the id canceled at fal is the one replaced.
    let canceled = Step::Canceled.of(&job.id).owned_by(user_id).run_returning(&ctx.db.pool).await?;
    let Some(canceled) = canceled else {
        let now = rows::find(&ctx.db, &job.id).await?.ok_or(JobError::NotFound)?;
        return Err(JobError::NotCancelable(now.state.as_str()));
    };
    if let Some(request_id) = &canceled.fal_request_id {
        cancel_at_fal(ctx, &job, request_id).await;
    }
    audit::record(&ctx.db, Event::new(Action::JobCanceled).actor(actor).subject("job", &job.id).ip(ip)).await;
    ctx.runtime.events.publish(user_id, &job.id).await;
    Ok(canceled)
}

#[tracing::instrument(skip_all, fields(job_id = %job.id, user_id = %job.user_id))]
pub(crate) async fn cancel_at_fal(ctx: Jobs<'_>, job: &JobRow, request_id: &str) {
    match crate::server::keys::load(&ctx.db, &ctx.vault, &job.user_id).await {
        Ok(Some(key)) => {
            if let Err(err) = ctx.fal.cancel(&key, &job.model, request_id).await {
                tracing::warn!(%err, "fal did not take the cancel");
            }
        }
        _ => tracing::warn!("no key to cancel at fal with"),
    }
}

/// A full account makes nothing new (its results would not fit), so nothing reaches fal.
async fn has_room(ctx: Jobs<'_>, user_id: &str) -> Result<(), JobError> {
    let quotas = crate::server::quota::of(ctx.db, ctx.uploads, user_id).await?;
    match crate::server::quota::room_for(ctx.db, quotas, user_id, 0).await? {
        Ok(()) => Ok(()),
        Err((kept, limit)) => Err(JobError::StorageFull { kept, limit }),
    }
}

/// Queues `user_id`'s failed or canceled job again, with fresh attempts; `actor` as for [`cancel`].
#[tracing::instrument(skip(ctx, ip))]
pub async fn retry(ctx: Jobs<'_>, user_id: &str, job_id: &str, actor: &str, ip: &str) -> Result<JobRow, JobError> {
    let job = rows::find_owned(&ctx.db, job_id, user_id).await?.ok_or(JobError::NotFound)?;
    if !JobState::RETRIABLE.contains(&job.state) {
        return Err(JobError::NotRetriable(job.state.as_str()));
    }
    has_room(ctx, user_id).await?;
    // A retry uses the job's images again: they must still be there, and are kept from now.
    let images: Vec<String> = serde_json::from_str(&job.upload_ids_json).unwrap_or_default();
    let now = now_ms();
    for upload in &images {
        if !upload_rows::use_ready(ctx.db, upload, user_id, now, ctx.uploads.source_ttl).await? {
            return Err(JobError::InputMissing(upload.clone()));
        }
    }
    // Queued again, the job may be billed again: its estimate is held to the caps as a new
    // job's is (a job from before estimates gets one now).
    let caps = crate::server::spend::caps_of(ctx.db, ctx.config.spend_caps, user_id).await?.effective;
    let mut estimate = job.estimate_micros;
    if caps.any() && estimate.is_none() {
        let model = catalog::find(&job.model).ok_or_else(|| JobError::UnknownModel(job.model.clone()))?;
        let params: Map<String, Value> = serde_json::from_str(&job.params_json).unwrap_or_default();
        estimate = Some(self::estimate(ctx, user_id, model, &params).await.ok_or(JobError::EstimateUnavailable)?);
    }
    let step = Step::Retried { max_attempts: i64::from(ctx.config.max_attempts) };
    let (job_id, owner) = (job.id.clone(), user_id.to_owned());
    let changed = ctx
        .db
        .exclusive(&format!("jobs:{user_id}"), move |conn| {
            Box::pin(async move {
                if let Some(estimate) = estimate.filter(|_| caps.any()) {
                    if let Err(exceeded) = crate::server::spend::check(conn, &owner, caps, estimate, now).await? {
                        return Ok(Err(exceeded));
                    }
                }
                let queued = step.of(&job_id).owned_by(&owner).run_returning(&mut *conn).await?;
                if queued.is_some() && estimate.is_some() {
                    sqlx::query("UPDATE jobs SET estimate_micros = $1 WHERE id = $2 AND estimate_micros IS NULL")
                        .bind(estimate)
                        .bind(&job_id)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(Ok(queued))
            })
        })
        .await?
        .map_err(JobError::OverCap)?;
    let Some(queued) = changed else {
        return Err(JobError::NotRetriable(job.state.as_str()));
    };
    audit::record(&ctx.db, Event::new(Action::JobRetried).actor(actor).subject("job", &job.id).ip(ip)).await;
    ctx.runtime.events.publish(user_id, &job.id).await;
    ctx.runtime.wake.notify_one();
    // The job as queued: the worker may already be submitting it, which the live stream reports.
    Ok(queued)
}

/// One stored output of a job.
#[derive(Clone, Debug)]
pub struct AssetRow {
    pub id: String,
    pub job_id: String,
    pub position: i64,
    pub object_key: String,
    pub kind: AssetKind,
    pub content_type: String,
    pub byte_size: i64,
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration_ms: Option<i64>,
    pub thumb_key: Option<String>,
    pub nsfw: Option<bool>,
    pub favorite: bool,
    /// When the result expires (unless it is a favorite).
    pub expires_at: Option<i64>,
    /// Set while it is in the trash.
    pub trashed_at: Option<i64>,
    pub created_at: i64,
}

impl AssetRow {
    const COLUMNS: [&'static str; 17] = [
        "id",
        "job_id",
        "position",
        "object_key",
        "kind",
        "content_type",
        "byte_size",
        "sha256",
        "width",
        "height",
        "duration_ms",
        "thumb_key",
        "nsfw",
        "favorite",
        "expires_at",
        "trashed_at",
        "created_at",
    ];

    /// The select list [`AssetRow::from_row`] reads, each column qualified by `table` (`"a."`).
    pub fn columns(table: &str) -> String {
        Self::COLUMNS.iter().map(|c| format!("{table}{c}")).collect::<Vec<_>>().join(", ")
    }

    pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            job_id: row.try_get("job_id")?,
            position: row.try_get("position")?,
            object_key: row.try_get("object_key")?,
            kind: crate::server::db::word_column(row, "kind", AssetKind::parse)?,
            content_type: row.try_get("content_type")?,
            byte_size: row.try_get("byte_size")?,
            sha256: row.try_get("sha256")?,
            width: row.try_get("width")?,
            height: row.try_get("height")?,
            duration_ms: row.try_get("duration_ms")?,
            thumb_key: row.try_get("thumb_key")?,
            nsfw: row.try_get::<Option<i64>, _>("nsfw")?.map(|n| n != 0),
            favorite: row.try_get::<i64, _>("favorite")? != 0,
            expires_at: row.try_get("expires_at")?,
            trashed_at: row.try_get("trashed_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The assets of `job_ids` that are not in the trash, in output order.
pub async fn assets_of(db: &Db, user_id: &str, job_ids: &[String]) -> Result<Vec<AssetRow>, sqlx::Error> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = (0..job_ids.len()).map(|n| format!("${}", n + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {} FROM assets WHERE user_id = $1 AND job_id IN ({marks}) AND trashed_at IS NULL ORDER BY job_id, position",
        AssetRow::columns("")
    );
    let mut query = sqlx::query(&sql).bind(user_id);
    for id in job_ids {
        query = query.bind(id);
    }
    query.fetch_all(&db.pool).await?.iter().map(AssetRow::from_row).collect()
}
