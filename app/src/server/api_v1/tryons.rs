//! Hairstyle try-ons for an app: the styles, starting one from an uploaded selfie (safe to retry
//! with an `Idempotency-Key`), following it to its result, and deleting a result.

use axum::Json;
use axum::extract::{Path, State};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Caller, JsonBody, Problem, idempotency};
use crate::catalog::{HAIRSTYLE_TRY_ON, HAIRSTYLES};
use crate::error::{AppError, code};
use crate::server::jobs::{self, JobError, rows};
use crate::server::state::AppState;
use crate::server::uploads::policy;
use crate::tokens::Scope;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Hairstyle {
    id: &'static str,
    name: &'static str,
    prompt: &'static str,
}

/// Every style a try-on can ask for.
#[utoipa::path(get, path = "/api/v1/hairstyles", operation_id = "listHairstyles", tag = "try-ons",
    responses((status = 200, body = Vec<Hairstyle>), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = [])))]
pub async fn hairstyles(_caller: Caller) -> Json<Vec<Hairstyle>> {
    Json(HAIRSTYLES.iter().map(|p| Hairstyle { id: p.id, name: p.label, prompt: p.prompt }).collect())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TryOnRequest {
    /// The uploaded selfie's key, as `POST /uploads/presign` gave it.
    key: String,
    hairstyle_id: String,
    /// Said to the model after the style's own instruction.
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TryOnResponse {
    job_id: String,
    /// `queued`, `processing`, `succeeded` or `failed`.
    #[schema(value_type = String)]
    status: &'static str,
    /// A short-lived link to the result, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    result_url: Option<String>,
    /// The result's id, for `DELETE /assets/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    result_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<super::jobs::JobFailure>,
}

/// Starts a try-on: 202 with the new job (or, for a retry with the same `Idempotency-Key`, the
/// job the first request made).
#[utoipa::path(post, path = "/api/v1/try-ons", operation_id = "createTryOn", tag = "try-ons", request_body = TryOnRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; a retry with the same key gets the same job")),
    responses((status = 202, body = TryOnResponse), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["jobs:write"])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<TryOnResponse>), Problem> {
    caller.needs(Scope::JobsWrite)?;
    let key = idempotency::key(&headers)?;
    let fingerprint = idempotency::fingerprint("try-ons", &body);
    let request: TryOnRequest = serde_json::from_value(body)
        .map_err(|e| AppError::new(code::REQUEST_MALFORMED, format!("The try-on request is not valid: {e}")))?;
    let _ = request.locale;
    let style = HAIRSTYLES.iter().find(|p| p.id == request.hairstyle_id).ok_or_else(|| {
        AppError::new(code::TRYON_UNKNOWN_HAIRSTYLE, "There is no such hairstyle; GET /api/v1/hairstyles lists them.")
            .on_field("hairstyleId")
    })?;
    let upload = policy::upload_id_from_client(&request.key, &caller.user.id).map_err(AppError::from)?;
    let prompt = match request.prompt.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(extra) => format!("{} {extra}", style.prompt),
        None => style.prompt.to_owned(),
    };
    let params: Map<String, Value> = json!({ "prompt": prompt }).as_object().cloned().unwrap_or_default();
    let images = [upload];
    let job =
        super::jobs::start(&state, &caller, key.as_deref(), &fingerprint, HAIRSTYLE_TRY_ON, &params, &images).await?;
    Ok((StatusCode::ACCEPTED, Json(answer(&state, &caller, job).await?)))
}

/// Where the try-on is, with its result's short-lived link once it succeeded.
#[utoipa::path(get, path = "/api/v1/try-ons/{id}", operation_id = "getTryOn", tag = "try-ons", params(("id" = String, Path, description = "The jobId")),
    responses((status = 200, body = TryOnResponse), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["jobs:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TryOnResponse>, Problem> {
    caller.needs(Scope::JobsRead)?;
    let job = rows::find_owned(&state.db, &id, &caller.user.id).await.map_err(|e| AppError::from(JobError::from(e)))?;
    let job = job.filter(|j| j.model == HAIRSTYLE_TRY_ON).ok_or_else(not_found)?;
    Ok(Json(answer(&state, &caller, job).await?))
}

fn not_found() -> AppError {
    AppError::new(code::API_JOB_NOT_FOUND, "You have no try-on with that id.")
}

async fn answer(state: &AppState, caller: &Caller, job: rows::JobRow) -> Result<TryOnResponse, AppError> {
    let job = super::jobs::api_job(jobs::views::one(state.into(), job, caller.origin.as_deref()).await?);
    let first = job.results.into_iter().next();
    Ok(TryOnResponse {
        job_id: job.id,
        status: job.status,
        result_id: first.as_ref().map(|r| r.id.clone()),
        result_url: first.map(|r| r.url),
        error: job.error,
    })
}
