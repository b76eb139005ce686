//! Making something new from a result: running its job again with exactly the inputs it had,
//! or using the result itself as an input image (copied inside storage into the user's images,
//! never downloaded and uploaded again).

use serde_json::{Map, Value};
use sqlx::Row;

use super::{Gallery, GalleryError};
use crate::error::{AppError, code};
use crate::server::audit::{self, Action, Event};
use crate::server::db::{new_id, parse_id};
use crate::server::jobs::{self, JobError, JobRow, Jobs, NewJob};
use crate::server::uploads::policy::ImageType;
use crate::server::uploads::rows::{self as upload_rows, Copied, UploadRow};
use crate::states::AssetKind;

#[derive(Debug, thiserror::Error)]
pub enum ReuseError {
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error("the model {0} left the catalog")]
    ModelGone(String),
    #[error("input image {0} is no longer kept")]
    InputGone(String),
    #[error("only images can be inputs")]
    NotAnImage,
    #[error(transparent)]
    Job(JobError),
    #[error(transparent)]
    Upload(#[from] crate::server::uploads::UploadError),
}

impl From<JobError> for ReuseError {
    fn from(err: JobError) -> Self {
        match err {
            JobError::UnknownModel(model) => Self::ModelGone(model),
            JobError::InputMissing(upload) => Self::InputGone(upload),
            other => Self::Job(other),
        }
    }
}

impl From<sqlx::Error> for ReuseError {
    fn from(err: sqlx::Error) -> Self {
        Self::Gallery(err.into())
    }
}

impl From<ReuseError> for AppError {
    fn from(err: ReuseError) -> Self {
        match err {
            ReuseError::Gallery(err) => err.into(),
            ReuseError::ModelGone(_) => AppError::new(
                code::GALLERY_MODEL_GONE,
                "The model that made this result is no longer offered, so it cannot run again.",
            ),
            ReuseError::InputGone(_) => AppError::new(
                code::GALLERY_INPUT_GONE,
                "An image this result was made from is no longer kept, so it cannot run again. Upload it again \
                 and generate from the Create tab.",
            ),
            ReuseError::NotAnImage => {
                AppError::new(code::GALLERY_NOT_AN_IMAGE, "Only an image can be used as an input.")
            }
            ReuseError::Job(err) => err.into(),
            ReuseError::Upload(err) => err.into(),
        }
    }
}

/// The job that made result `asset_id` of `user_id`: its model, inputs and images.
async fn source_job(ctx: Gallery<'_>, user_id: &str, asset_id: &str) -> Result<(String, String, String), ReuseError> {
    let id = parse_id(asset_id).ok_or(GalleryError::NotFound)?;
    let row = sqlx::query(
        "SELECT j.model, j.params_json, j.upload_ids_json FROM assets a JOIN jobs j ON j.id = a.job_id \
         WHERE a.id = $1 AND a.user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&ctx.db.pool)
    .await?
    .ok_or(GalleryError::NotFound)?;
    Ok((row.try_get("model")?, row.try_get("params_json")?, row.try_get("upload_ids_json")?))
}

/// Queues the job that made `asset_id` again, with the same model, the same inputs and the same
/// images. A model that left the catalog or an image no longer kept stops it before anything is
/// sent (or spent).
#[tracing::instrument(skip(ctx, jobs_ctx, ip), fields(user_id))]
pub async fn rerun(
    ctx: Gallery<'_>,
    jobs_ctx: Jobs<'_>,
    user_id: &str,
    asset_id: &str,
    ip: &str,
    request_id: Option<String>,
) -> Result<JobRow, ReuseError> {
    let (model, params, images) = source_job(ctx, user_id, asset_id).await?;
    let params: Map<String, Value> = serde_json::from_str(&params).unwrap_or_default();
    let images: Vec<String> = serde_json::from_str(&images).unwrap_or_default();
    // Named precisely here; the job's own checks would say only "missing".
    if crate::catalog::find(&model).is_none() {
        return Err(ReuseError::ModelGone(model));
    }
    for image in &images {
        if !crate::server::uploads::rows::is_ready(ctx.db, image, user_id).await? {
            return Err(ReuseError::InputGone(image.clone()));
        }
    }
    let new = NewJob { model: &model, params: &params, images: &images, request_id };
    Ok(jobs::create(jobs_ctx, user_id, ip, new).await?)
}

/// Copies result `asset_id` into the user's images, ready to be an input.
#[tracing::instrument(skip(ctx, ip), fields(user_id))]
pub async fn use_as_input(ctx: Gallery<'_>, user_id: &str, asset_id: &str, ip: &str) -> Result<UploadRow, ReuseError> {
    let id = parse_id(asset_id).ok_or(GalleryError::NotFound)?;
    let sql = format!("SELECT {} FROM assets WHERE id = $1 AND user_id = $2", jobs::AssetRow::columns(""));
    let row =
        sqlx::query(&sql).bind(&id).bind(user_id).fetch_optional(&ctx.db.pool).await?.ok_or(GalleryError::NotFound)?;
    let asset = jobs::AssetRow::from_row(&row)?;
    // The formats every image model takes; HEIF and AVIF inputs are converted at upload.
    let image = match ImageType::parse(&asset.content_type) {
        Ok(image @ (ImageType::Jpeg | ImageType::Png | ImageType::Webp)) => image,
        _ => return Err(ReuseError::NotAnImage),
    };
    let (Some(width), Some(height)) = (asset.width, asset.height) else { return Err(ReuseError::NotAnImage) };
    if asset.kind != AssetKind::Image {
        return Err(ReuseError::NotAnImage);
    }
    let limits = ctx.uploads;
    let bytes = asset.byte_size.max(0) as u64;
    if bytes > limits.max_bytes {
        return Err(crate::server::uploads::UploadError::TooLarge { bytes, max: limits.max_bytes }.into());
    }
    if (width.max(0) as u64).saturating_mul(height.max(0) as u64) > limits.max_pixels {
        let (width, height) = (width as u32, height as u32);
        return Err(crate::server::uploads::UploadError::TooManyPixels {
            width,
            height,
            max_pixels: limits.max_pixels,
        }
        .into());
    }
    // The copy is a new image of the account's: it must fit in its storage quota.
    let quotas = crate::server::quota::of(ctx.db, limits, user_id).await?;
    if let Err((kept, limit)) = crate::server::quota::room_for(ctx.db, quotas, user_id, bytes).await? {
        return Err(crate::server::uploads::UploadError::StorageFull { kept, limit }.into());
    }
    let upload_id = new_id();
    let key = crate::server::uploads::policy::Keys::source(user_id, &upload_id);
    let storage = ctx.storage;
    storage
        .copy(&storage.results_bucket, &asset.object_key, &storage.uploads_bucket, &key)
        .await
        .map_err(GalleryError::from)?;
    let filename = format!("result.{}", image.extension());
    let copied = Copied {
        id: &upload_id,
        user_id,
        object_key: &key,
        content_type: image.mime(),
        byte_size: asset.byte_size,
        sha256: &asset.sha256,
        width,
        height,
        filename: Some(&filename),
    };
    let row = match upload_rows::insert_ready_copy(ctx.db, copied, ctx.uploads.source_ttl).await {
        Ok(row) => row,
        Err(err) => {
            // No row names the copy: it must not stay behind.
            if let Err(cleanup) = storage.delete(&storage.uploads_bucket, &key).await {
                tracing::warn!(%cleanup, "a copied input without its row is left for the sweeper");
            }
            return Err(err.into());
        }
    };
    let detail = serde_json::json!({ "from_asset": asset.id });
    audit::record(
        ctx.db,
        Event::new(Action::UploadConfirmed).actor(user_id).subject("upload", &upload_id).ip(ip).detail(detail),
    )
    .await;
    Ok(row)
}
