//! Generation jobs: start one from a catalog model, follow it, cancel or retry it.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde_json::{Map, Value};

use crate::error::AppError;
pub use crate::views::{AssetView, JobEstimate, JobView};

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
        let job = jobs::create((&state).into(), &user.id, &client_ip(), new).await?;
        Ok(jobs::views::one((&state).into(), job, origin().as_deref()).await?)
    })
    .await
}

/// What a job of `model` with these inputs would cost (only the inputs a price depends on are
/// read, so a half-filled form gets its estimate too), and what the caller's caps leave.
#[server(endpoint = "jobs/estimate", input = Json)]
pub async fn estimate_job(model: String, params: Map<String, Value>) -> Result<JobEstimate, AppError> {
    use crate::server::jobs::{self, JobError};
    use crate::server::request::{require_user, respond, state};
    use crate::server::spend;
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let model = crate::catalog::find(&model).ok_or(JobError::UnknownModel(model))?;
        let priced = model.priced_inputs(&params);
        let micros = jobs::estimate((&state).into(), &user.id, model, &priced).await;
        let caps = spend::caps_of(&state.db, state.config.jobs.spend_caps, &user.id).await.map_err(JobError::from)?;
        let room = if caps.effective.any() {
            let spent = spend::spent(&state.db, &user.id, crate::format::now_ms()).await.map_err(JobError::from)?;
            let left = |cap: Option<i64>, used: i64| cap.map(|c| (c - used).max(0));
            [left(caps.effective.day, spent.day), left(caps.effective.month, spent.month)].into_iter().flatten().min()
        } else {
            None
        };
        Ok(JobEstimate { micros, room })
    })
    .await
}

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

/// The caller's jobs, newest first; `before` is the last id of the previous page.
#[server(endpoint = "jobs/list")]
pub async fn list_jobs(before: Option<String>) -> Result<Vec<JobView>, AppError> {
    use crate::server::jobs;
    use crate::server::request::{cursor, origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let rows = jobs::list(&state.db, &user.id, cursor(before)?.as_deref(), 20).await?;
        Ok(jobs::views::many((&state).into(), &user.id, rows, origin().as_deref()).await?)
    })
    .await
}

#[server(endpoint = "jobs/get")]
pub async fn get_job(id: String) -> Result<JobView, AppError> {
    use crate::server::jobs::{self, JobError, rows};
    use crate::server::request::{origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let job =
            rows::find_owned(&state.db, &id, &user.id).await.map_err(JobError::from)?.ok_or(JobError::NotFound)?;
        Ok(jobs::views::one((&state).into(), job, origin().as_deref()).await?)
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
        let job = jobs::cancel((&state).into(), &user.id, &id, &user.id, &client_ip()).await?;
        Ok(jobs::views::one((&state).into(), job, origin().as_deref()).await?)
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
        let job = jobs::retry((&state).into(), &user.id, &id, &user.id, &client_ip()).await?;
        Ok(jobs::views::one((&state).into(), job, origin().as_deref()).await?)
    })
    .await
}
