//! Job rows to the views their owner is shown, with fresh URLs for the stored outputs.

use super::Jobs;
use super::{AssetRow, JobRow, JobState, outputs};
use crate::catalog;
use crate::error::{AppError, code};
use crate::server::db::rfc3339;
use crate::views::{AssetView, JobView};

/// `origin`: the origin the browser used, when links follow it (`Storage::presign_get`).
pub async fn one(ctx: Jobs<'_>, job: JobRow, origin: Option<&str>) -> Result<JobView, AppError> {
    let user_id = job.user_id.clone();
    Ok(many(ctx, &user_id, vec![job], origin).await?.pop().ok_or_else(AppError::internal)?)
}

pub async fn many(
    ctx: Jobs<'_>,
    user_id: &str,
    rows: Vec<JobRow>,
    origin: Option<&str>,
) -> Result<Vec<JobView>, AppError> {
    let ids: Vec<String> = rows.iter().filter(|j| j.state == JobState::Succeeded).map(|j| j.id.clone()).collect();
    let assets = super::assets_of(&ctx.db, user_id, &ids).await.map_err(super::JobError::from)?;
    let mut views = Vec::with_capacity(rows.len());
    for job in rows {
        let mut mine = Vec::new();
        for asset in assets.iter().filter(|a| a.job_id == job.id) {
            mine.push(asset_view(ctx, asset, origin).await?);
        }
        views.push(view(job, mine));
    }
    Ok(views)
}

async fn asset_view(ctx: Jobs<'_>, asset: &AssetRow, origin: Option<&str>) -> Result<AssetView, AppError> {
    let storage = &ctx.storage;
    let ttl = ctx.uploads.view_ttl;
    let presign = |key: String| async move {
        storage.presign_get(&storage.results_bucket, &key, ttl, origin).await.map_err(|err| {
            tracing::error!(%err, "could not presign a result");
            AppError::new(code::STORAGE_UNAVAILABLE, "Storage is unavailable right now.")
        })
    };
    let url = presign(asset.object_key.clone()).await?;
    let thumb_url = match &asset.thumb_key {
        Some(key) => Some(presign(key.clone()).await?),
        None => None,
    };
    Ok(AssetView {
        id: asset.id.clone(),
        kind: asset.kind,
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
        status: crate::views::status_text(crate::messages::Locale::En, job.state, retry(&job), job.queue_position),
        retry: retry(&job),
        queue_position: job.queue_position,
        prompt: params.get("prompt").and_then(|p| p.as_str()).map(str::to_owned),
        can_cancel: matches!(job.state, JobState::Queued | JobState::Submitted | JobState::Running),
        can_retry: matches!(job.state, JobState::Failed | JobState::Canceled),
        id: job.id,
        model: job.model,
        state: job.state,
        progress: job.progress,
        error_code: job.error_code,
        error_message: job.error_message,
        description,
        created_at: rfc3339(job.created_at),
        started_at: job.submitted_at.map(rfc3339),
        version: job.updated_at,
        estimate_micros: job.estimate_micros,
        assets,
    }
}

/// This try and the most there will be, while passing trouble is retried.
fn retry(job: &JobRow) -> Option<(i64, i64)> {
    let retrying = job.attempts > 0 && job.error_message.as_deref().is_some_and(|m| m.starts_with("Retrying"));
    retrying.then(|| (i64::from(job.attempts) + 1, i64::from(job.max_attempts)))
}
