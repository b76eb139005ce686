//! Generation jobs: start one from a catalog model, follow it, cancel or retry it.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::AppError;

/// A job as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub model: String,
    pub model_name: String,
    /// `queued`, `submitted`, `running`, `persisting`, `succeeded`, `failed` or `canceled`.
    pub state: String,
    /// The state in words ("In queue (position 2)", "Retrying (2/5)", …).
    pub status: String,
    pub prompt: Option<String>,
    pub progress: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub description: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When fal accepted the request (RFC 3339, UTC): the page counts the seconds from here
    /// while fal works.
    pub started_at: Option<String>,
    /// Milliseconds of the last change: of two views of a job, the later one wins.
    pub version: i64,
    pub assets: Vec<AssetView>,
    pub can_cancel: bool,
    pub can_retry: bool,
}

/// A stored output, served from our own bucket through short-lived URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetView {
    pub id: String,
    pub kind: String,
    pub content_type: String,
    pub byte_size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub url: String,
    pub thumb_url: Option<String>,
    pub nsfw: Option<bool>,
}

/// Starts a job: `params` are the model's inputs by name, `images` the ids of the caller's
/// uploads for its image input.
#[server(endpoint = "jobs/create", input = Json)]
pub async fn create_job(model: String, params: Map<String, Value>, images: Vec<String>) -> Result<JobView, AppError> {
    use crate::server::jobs::{self, NewJob};
    use crate::server::request::{client_ip, origin, request_id, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let new = NewJob { model: &model, params: &params, images: &images, request_id: request_id() };
        let job = jobs::create(&state, &user.id, &client_ip(), new).await?;
        Ok(views::one(&state, job, origin().as_deref()).await?)
    })
    .await
}

/// The caller's jobs, newest first; `before` is the last id of the previous page.
/// Where the user's images go when they generate, in a sentence for the Create tab.
#[server(endpoint = "jobs/input_policy")]
pub async fn input_policy() -> Result<String, AppError> {
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        require_user().await?;
        let jobs = &state()?.config.jobs;
        Ok(jobs.inputs.describe(jobs.input_url_ttl))
    })
    .await
}

#[server(endpoint = "jobs/list")]
pub async fn list_jobs(before: Option<String>) -> Result<Vec<JobView>, AppError> {
    use crate::server::jobs;
    use crate::server::request::{cursor, origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let rows = jobs::list(&state.db, &user.id, cursor(before)?.as_deref(), 20).await?;
        Ok(views::many(&state, &user.id, rows, origin().as_deref()).await?)
    })
    .await
}

#[server(endpoint = "jobs/get")]
pub async fn get_job(id: String) -> Result<JobView, AppError> {
    use crate::server::jobs::{JobError, rows};
    use crate::server::request::{origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let job =
            rows::find_owned(&state.db, &id, &user.id).await.map_err(JobError::from)?.ok_or(JobError::NotFound)?;
        Ok(views::one(&state, job, origin().as_deref()).await?)
    })
    .await
}

#[server(endpoint = "jobs/cancel")]
pub async fn cancel_job(id: String) -> Result<JobView, AppError> {
    use crate::server::jobs;
    use crate::server::request::{client_ip, origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let job = jobs::cancel(&state, &user.id, &id, &client_ip()).await?;
        Ok(views::one(&state, job, origin().as_deref()).await?)
    })
    .await
}

#[server(endpoint = "jobs/retry")]
pub async fn retry_job(id: String) -> Result<JobView, AppError> {
    use crate::server::jobs;
    use crate::server::request::{client_ip, origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let job = jobs::retry(&state, &user.id, &id, &client_ip()).await?;
        Ok(views::one(&state, job, origin().as_deref()).await?)
    })
    .await
}

#[cfg(feature = "ssr")]
pub mod views {
    //! Rows to views, with fresh URLs for the stored outputs.

    use super::{AssetView, JobView};
    use crate::catalog;
    use crate::error::AppError;
    use crate::server::db::rfc3339;
    use crate::server::jobs::{self, AssetRow, JobRow, JobState, outputs};
    use crate::server::state::Services;

    /// `origin`: the origin the browser used, when links follow it (`Storage::presign_get`).
    pub async fn one(services: &Services, job: JobRow, origin: Option<&str>) -> Result<JobView, AppError> {
        let user_id = job.user_id.clone();
        Ok(many(services, &user_id, vec![job], origin).await?.pop().ok_or_else(AppError::internal)?)
    }

    pub async fn many(
        services: &Services,
        user_id: &str,
        rows: Vec<JobRow>,
        origin: Option<&str>,
    ) -> Result<Vec<JobView>, AppError> {
        let ids: Vec<String> = rows.iter().filter(|j| j.state == JobState::Succeeded).map(|j| j.id.clone()).collect();
        let assets = jobs::assets_of(&services.db, user_id, &ids).await.map_err(jobs::JobError::from)?;
        let mut views = Vec::with_capacity(rows.len());
        for job in rows {
            let mut mine = Vec::new();
            for asset in assets.iter().filter(|a| a.job_id == job.id) {
                mine.push(asset_view(services, asset, origin).await?);
            }
            views.push(view(job, mine));
        }
        Ok(views)
    }

    async fn asset_view(services: &Services, asset: &AssetRow, origin: Option<&str>) -> Result<AssetView, AppError> {
        let storage = &services.storage;
        let ttl = services.config.uploads.view_ttl;
        let presign = |key: String| async move {
            storage.presign_get(&storage.results_bucket, &key, ttl, origin).await.map_err(|err| {
                tracing::error!(%err, "could not presign a result");
                AppError::new("storage.unavailable", "Storage is unavailable right now.")
            })
        };
        let url = presign(asset.object_key.clone()).await?;
        let thumb_url = match &asset.thumb_key {
            Some(key) => Some(presign(key.clone()).await?),
            None => None,
        };
        Ok(AssetView {
            id: asset.id.clone(),
            kind: asset.kind.clone(),
            content_type: asset.content_type.clone(),
            byte_size: asset.byte_size.max(0) as u64,
            width: asset.width.map(|w| w as u32),
            height: asset.height.map(|h| h as u32),
            url,
            thumb_url,
            nsfw: asset.nsfw,
        })
    }

    fn view(job: JobRow, assets: Vec<AssetView>) -> JobView {
        let params: serde_json::Value = serde_json::from_str(&job.params_json).unwrap_or_default();
        let description = job
            .result_json
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
            .and_then(|r| outputs::description(&r));
        JobView {
            model_name: catalog::find(&job.model).map_or_else(|| job.model.clone(), |m| m.name.to_owned()),
            status: status(&job),
            prompt: params.get("prompt").and_then(|p| p.as_str()).map(str::to_owned),
            can_cancel: matches!(job.state, JobState::Queued | JobState::Submitted | JobState::Running),
            can_retry: matches!(job.state, JobState::Failed | JobState::Canceled),
            id: job.id,
            model: job.model,
            state: job.state.as_str().to_owned(),
            progress: job.progress,
            error_code: job.error_code,
            error_message: job.error_message,
            description,
            created_at: rfc3339(job.created_at),
            started_at: job.submitted_at.map(rfc3339),
            version: job.updated_at,
            assets,
        }
    }

    fn status(job: &JobRow) -> String {
        let retrying = job.attempts > 0 && job.error_message.as_deref().is_some_and(|m| m.starts_with("Retrying"));
        match job.state {
            JobState::Queued if retrying => format!("Retrying ({}/{})", job.attempts + 1, job.max_attempts),
            JobState::Queued => "Queued".into(),
            JobState::Submitted => match job.queue_position {
                Some(p) => format!("In queue (position {})", p + 1),
                None => "In queue".into(),
            },
            JobState::Running => "Generating".into(),
            JobState::Persisting if retrying => {
                format!("Saving results, retrying ({}/{})", job.attempts + 1, job.max_attempts)
            }
            JobState::Persisting => "Saving results".into(),
            JobState::Succeeded => "Done".into(),
            JobState::Failed => "Failed".into(),
            JobState::Canceled => "Canceled".into(),
        }
    }
}
