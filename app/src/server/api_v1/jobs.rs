//! `POST /jobs` and `GET /jobs/{id}`: any catalog model, the way the Create tab runs it, safe to
//! retry with an `Idempotency-Key`; and `GET /me/credits`.

use axum::Json;
use axum::extract::{Path, State};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Caller, JsonBody, Problem, idempotency};
use crate::error::{AppError, code};
use crate::server::jobs::{self, JobError, NewJob, rows};
use crate::server::state::AppState;
use crate::server::uploads::policy;
use crate::states::JobState;
use crate::tokens::Scope;
use crate::views::JobView;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobRequest {
    /// A catalog endpoint id (`fal-ai/nano-banana`, …).
    model: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    params: Map<String, Value>,
    /// Uploaded images, by key (or id), for the models that take them.
    #[serde(default)]
    images: Vec<String>,
}

/// A job as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiJob {
    pub id: String,
    model: String,
    /// `queued`, `processing`, `succeeded` or `failed`, as for try-ons.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The job's exact state (`submitted`, `persisting`, `canceled`, …).
    #[schema(value_type = String)]
    state: JobState,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimate_micros: Option<i64>,
    pub results: Vec<ApiResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiResult {
    pub id: String,
    content_type: String,
    width: Option<u32>,
    height: Option<u32>,
    /// Short-lived.
    pub url: String,
}

/// Why a job failed, as its owner is told.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

/// The status words try-ons and jobs share.
pub fn status_of(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Succeeded => "succeeded",
        JobState::Failed | JobState::Canceled => "failed",
        _ => "processing",
    }
}

pub fn api_job(view: JobView) -> ApiJob {
    let status = status_of(view.state);
    let error = match (view.error_code, view.error_message) {
        (Some(code), Some(message)) if status == "failed" => Some(JobFailure { code, message }),
        _ => None,
    };
    ApiJob {
        id: view.id,
        model: view.model,
        status,
        state: view.state,
        created_at: view.created_at,
        estimate_micros: view.estimate_micros,
        results: view
            .assets
            .into_iter()
            .map(|a| ApiResult { id: a.id, content_type: a.content_type, width: a.width, height: a.height, url: a.url })
            .collect(),
        error,
    }
}

/// Queues `model` with `params` and `images` for the caller, once per `Idempotency-Key` (a retry
/// with the key gets the first request's job): the try-ons' and the jobs' way in.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    key: Option<&str>,
    fingerprint: &str,
    model: &str,
    params: &Map<String, Value>,
    images: &[String],
) -> Result<rows::JobRow, AppError> {
    let ctx = jobs::Jobs::from(state);
    idempotency::once(&state.db, &caller.user.id, key, fingerprint, crate::format::now_ms(), || async {
        let new = NewJob { model, params, images, request_id: caller.request_id.clone() };
        Ok(jobs::create(ctx, &caller.user.id, &caller.ip, new).await?)
    })
    .await
}

/// Starts a job of any catalog model: 202 with the new job (or, for a retry with the same
/// `Idempotency-Key`, the first request's).
#[utoipa::path(post, path = "/api/v1/jobs", operation_id = "createJob", tag = "jobs", request_body = JobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; a retry with the same key gets the same job")),
    responses((status = 202, body = ApiJob), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["jobs:write"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<ApiJob>), Problem> {
    caller.needs(Scope::JobsWrite)?;
    let key = idempotency::key(&headers)?;
    let fingerprint = idempotency::fingerprint("jobs", &body);
    let request: JobRequest = serde_json::from_value(body)
        .map_err(|e| AppError::new(code::REQUEST_MALFORMED, format!("The job request is not valid: {e}")))?;
    if request.images.len() > 16 {
        return Err(AppError::new(code::REQUEST_MALFORMED, "At most 16 images.").on_field("images").into());
    }
    let images = request
        .images
        .iter()
        .map(|key| policy::upload_id_from_client(key, &caller.user.id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::from)?;
    let job = start(&state, &caller, key.as_deref(), &fingerprint, &request.model, &request.params, &images).await?;
    let view = jobs::views::one((&state).into(), job, caller.origin.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(api_job(view))))
}

/// One of the caller's jobs, with its results' short-lived links.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "getJob", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = ApiJob), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["jobs:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiJob>, Problem> {
    caller.needs(Scope::JobsRead)?;
    let job = rows::find_owned(&state.db, &id, &caller.user.id).await.map_err(|e| AppError::from(JobError::from(e)))?;
    let job = job.ok_or_else(|| AppError::new(code::API_JOB_NOT_FOUND, "You have no job with that id."))?;
    let view = jobs::views::one((&state).into(), job, caller.origin.as_deref()).await?;
    Ok(Json(api_job(view)))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiCredits {
    /// `None` when the saved key may not read billing (fal needs an ADMIN-scope key for it).
    amount: Option<f64>,
    currency: Option<String>,
}

/// The fal credit balance of the caller's saved key.
#[utoipa::path(get, path = "/api/v1/me/credits", operation_id = "getCredits", tag = "account",
    responses((status = 200, body = ApiCredits), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["account:read"])))]
pub async fn credits(State(state): State<AppState>, caller: Caller) -> Result<Json<ApiCredits>, Problem> {
    caller.needs(Scope::AccountRead)?;
    let key = crate::server::keys::load(&state.db, &state.vault, &caller.user.id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::new(code::KEYS_MISSING, "Save a fal key on the Account tab first."))?;
    let balance = state.fal.credits(&key, crate::catalog::HAIRSTYLE_TRY_ON).await.map_err(AppError::from)?;
    Ok(Json(match balance {
        Some(b) => ApiCredits { amount: Some(b.amount), currency: Some(b.currency) },
        None => ApiCredits { amount: None, currency: None },
    }))
}
