//! A job's model input: its validated parameters plus its images, each checked again for
//! ownership now (an image may have been deleted since the job was created), and handed to fal
//! the way the configuration says: a presigned link to our storage (at most 5 minutes), or a
//! copy in fal's own storage that fal deletes after a while, for a server fal cannot reach.

use serde_json::{Map, Value};
use sqlx::Row;

use super::Jobs;
use super::failure::{self, Failure, Verdict};
use super::rows::JobRow;
use crate::catalog::{self, Kind};
use crate::server::config::InputDelivery;
use crate::server::fal::FalKey;
use crate::server::storage::Fetched;

/// The input, or why the job cannot be submitted now (`Retry`) or ever (`Fail`).
pub(super) async fn build(ctx: Jobs<'_>, job: &JobRow, key: &FalKey) -> Result<Result<Value, Verdict>, sqlx::Error> {
    let Some(model) = catalog::find(&job.model) else {
        return Ok(Err(Verdict::Fail(Failure::new("job.unknown_model", "This model is no longer available."))));
    };
    let mut input: Map<String, Value> = serde_json::from_str(&job.params_json).unwrap_or_default();
    let uploads: Vec<String> = serde_json::from_str(&job.upload_ids_json).unwrap_or_default();
    let Some(field) = model.image_field() else { return Ok(Ok(Value::Object(input))) };
    let mut urls = Vec::with_capacity(uploads.len());
    for id in &uploads {
        let row =
            sqlx::query("SELECT object_key, content_type FROM uploads WHERE id = $1 AND user_id = $2 AND state = $3")
                .bind(id)
                .bind(&job.user_id)
                .bind(crate::states::UploadState::Ready.as_str())
                .fetch_optional(&ctx.db.pool)
                .await?;
        let image = match row {
            Some(row) => {
                row.try_get::<Option<String>, _>("object_key")?.zip(row.try_get::<Option<String>, _>("content_type")?)
            }
            None => None,
        };
        let Some((object_key, content_type)) = image else {
            return Ok(Err(Verdict::Fail(missing())));
        };
        match hand_over(ctx, key, id, &object_key, &content_type).await {
            Ok(url) => urls.push(Value::String(url)),
            Err(verdict) => return Ok(Err(verdict)),
        }
    }
    let value = match field.kind {
        Kind::Image => urls.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(urls),
    };
    input.insert(field.name.to_owned(), value);
    Ok(Ok(Value::Object(input)))
}

/// The URL fal reads one image from.
async fn hand_over(
    ctx: Jobs<'_>,
    key: &FalKey,
    upload_id: &str,
    object_key: &str,
    content_type: &str,
) -> Result<String, Verdict> {
    let storage = &ctx.storage;
    let ttl = match ctx.config.inputs {
        InputDelivery::Links => {
            let link = storage.presign_get(&storage.uploads_bucket, object_key, ctx.config.input_url_ttl, None);
            return link.await.map_err(|err| {
                tracing::error!(%err, "could not presign an input");
                Verdict::Retry("our storage could not sign a link to an input image".into())
            });
        }
        InputDelivery::FalStorage { ttl } => ttl,
    };
    // Sanitized sources are never larger than an upload may be.
    let limit = ctx.uploads.max_bytes.saturating_mul(2);
    let bytes = match storage.get_bytes(&storage.uploads_bucket, object_key, limit).await {
        Ok(Some(Fetched::Bytes(bytes))) => bytes,
        Ok(None) => return Err(Verdict::Fail(missing())),
        Ok(Some(Fetched::TooLarge(size))) => {
            tracing::error!(size, "a stored input is larger than any upload may be");
            return Err(Verdict::Fail(Failure::new("job.input_unusable", "An input image could not be read.")));
        }
        Err(err) => {
            tracing::warn!(%err, "could not read an input from storage");
            return Err(Verdict::Retry("our storage did not answer".into()));
        }
    };
    let extension = content_type.rsplit('/').next().unwrap_or("bin");
    let name = format!("{upload_id}.{extension}");
    match ctx.fal.upload(key, bytes, content_type, &name, ttl).await {
        Ok(url) => Ok(url.into()),
        Err(err) => {
            metrics::counter!("fal_request_failure_total", "code" => failure::metric_code(&err)).increment(1);
            Err(failure::classify(&err))
        }
    }
}

fn missing() -> Failure {
    Failure::new("job.input_missing", "An input image was deleted or expired before the job started. Upload it again.")
}
