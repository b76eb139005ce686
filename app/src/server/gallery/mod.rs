//! The gallery (the README's "The gallery"): a user's stored results newest first in keyset
//! pages, the facts behind each one, and curating them: favorites, the trash, deleting for good.
//! Every read and write names the owner, so someone else's result answers like a missing one.

pub mod curate;
pub mod links;
pub mod query;
pub mod reuse;
pub mod search;

use std::time::SystemTime;

use serde_json::Value;
use sqlx::Row;

use crate::catalog;
use crate::error::{AppError, code};
use crate::gallery::{AssetDetail, GalleryItem, GalleryPage, GalleryQuery, InputImage};
use crate::server::config::{GalleryConfig, UploadConfig};
use crate::server::db::{Backend, Db, rfc3339};
use crate::server::jobs::{AssetRow, outputs};
use crate::server::storage::{Storage, StorageError, Validity};
use crate::states::UploadState;
pub use query::{Cursor, Filter};

/// Results on one page: enough to fill a large screen; the next page loads while scrolling.
pub const PAGE_SIZE: i64 = 60;
/// How many of an account's newest results a PostgreSQL search tests one by one before it asks
/// the index instead (see [`query::walk`]): a word in one prompt of 16 fills a page within it,
/// and testing them costs about 10 ms (7 µs a row), so a rare word pays little for the try.
/// Measured with the gallery benchmark; SQLite's FTS5 table answers fast enough either way.
const SEARCH_WALK: i64 = 1000;

/// What the gallery works with: the stores, its settings, and the origin links are for.
#[derive(Clone, Copy)]
pub struct Gallery<'a> {
    pub db: &'a Db,
    pub storage: &'a Storage,
    pub config: &'a GalleryConfig,
    pub uploads: &'a UploadConfig,
    /// The origin the browser used, when links follow it (see `Storage::presign_get`).
    pub origin: Option<&'a str>,
}

impl<'a> From<&'a crate::server::state::Services> for Gallery<'a> {
    fn from(services: &'a crate::server::state::Services) -> Self {
        Self {
            db: &services.db,
            storage: &services.storage,
            config: &services.config.gallery,
            uploads: &services.config.uploads,
            origin: None,
        }
    }
}

impl<'a> Gallery<'a> {
    /// The same, with links for the origin the browser used.
    pub fn linked_at(self, origin: Option<&'a str>) -> Self {
        Self { origin, ..self }
    }

    /// How long links signed now are valid from when: the same for everyone within a window.
    fn validity(&self) -> Validity {
        links::windowed(SystemTime::now(), self.config.link_window, self.uploads.view_ttl)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("no such result")]
    NotFound,
    #[error("invalid filter {}: {}", .0.field, .0.message)]
    Invalid(query::Invalid),
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("{0} ids in one request")]
    TooMany(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<GalleryError> for AppError {
    fn from(err: GalleryError) -> Self {
        match err {
            GalleryError::NotFound => AppError::new(code::GALLERY_NOT_FOUND, "That result does not exist."),
            GalleryError::Invalid(invalid) => {
                AppError::new(code::GALLERY_INVALID_FILTER, invalid.message).on_field(invalid.field)
            }
            GalleryError::InvalidCursor => {
                AppError::new(code::REQUEST_INVALID_CURSOR, "That page link is not valid.").on_field("after")
            }
            GalleryError::TooMany(n) => AppError::new(
                code::GALLERY_TOO_MANY,
                format!("{n} results in one request is too many: at most {}.", crate::gallery::MAX_BULK_IDS),
            ),
            GalleryError::Storage(err) => {
                tracing::error!(%err, "gallery storage request failed");
                AppError::new(code::STORAGE_UNAVAILABLE, "Storage is unavailable right now. Try again in a moment.")
            }
            GalleryError::Database(err) => {
                tracing::error!(%err, "gallery query failed");
                AppError::internal()
            }
        }
    }
}

/// A result with the job that made it.
pub struct Listed {
    pub asset: AssetRow,
    pub model: String,
    pub params: Value,
    /// The job's estimated cost (all its outputs), in millionths of a dollar.
    pub estimate: Option<i64>,
}

fn listed(row: &sqlx::any::AnyRow) -> Result<Listed, sqlx::Error> {
    let params: String = row.try_get("job_params")?;
    Ok(Listed {
        asset: AssetRow::from_row(row)?,
        model: row.try_get("job_model")?,
        params: serde_json::from_str(&params).unwrap_or(Value::Null),
        estimate: row.try_get("job_estimate")?,
    })
}

/// One page of `user_id`'s results matching `query`, after the cursor `after`.
#[tracing::instrument(skip(ctx, query), fields(user_id))]
pub async fn page(
    ctx: Gallery<'_>,
    user_id: &str,
    query: &GalleryQuery,
    after: Option<&str>,
) -> Result<GalleryPage, GalleryError> {
    let filter = Filter::parse(query).map_err(GalleryError::Invalid)?;
    let after = match after.map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(raw) => Some(Cursor::decode(raw).ok_or(GalleryError::InvalidCursor)?),
    };
    // One more than a page says whether another follows, without counting.
    let limit = PAGE_SIZE + 1;
    let walked = match ctx.db.backend {
        Backend::Postgres => match query::walk(user_id, &filter, after.as_ref(), limit, SEARCH_WALK) {
            Some(sql) => Some(sql.query().fetch_all(&ctx.db.pool).await?).filter(|rows| rows.len() as i64 == limit),
            None => None,
        },
        Backend::Sqlite => None,
    };
    let rows = match walked {
        Some(rows) => rows,
        None => {
            query::page(ctx.db.backend, user_id, &filter, after.as_ref(), limit).query().fetch_all(&ctx.db.pool).await?
        }
    };
    let mut found = rows.iter().map(listed).collect::<Result<Vec<_>, _>>()?;
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let next = more.then(|| found.last().map(|l| Cursor::of(&l.asset).encode())).flatten();
    let validity = ctx.validity();
    let mut items = Vec::with_capacity(found.len());
    for listed in &found {
        items.push(item(ctx, listed, validity).await?);
    }
    Ok(GalleryPage { items, next })
}

/// The given results of `user_id` (those that exist and are theirs), newest first: for the
/// page to show what a live event announced.
pub async fn items(ctx: Gallery<'_>, user_id: &str, ids: &[String]) -> Result<Vec<GalleryItem>, GalleryError> {
    let ids: Vec<String> = ids.iter().filter_map(|id| crate::server::db::parse_id(id)).take(100).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = (0..ids.len()).map(|n| format!("${}", n + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {}, j.model AS job_model, j.params_json AS job_params, j.estimate_micros AS job_estimate FROM assets a JOIN jobs j ON j.id = a.job_id \
         WHERE a.user_id = $1 AND a.id IN ({marks}) ORDER BY a.created_at DESC, a.id DESC",
        AssetRow::columns("a.")
    );
    let mut statement = sqlx::query(&sql).bind(user_id);
    for id in &ids {
        statement = statement.bind(id.as_str());
    }
    let rows = statement.fetch_all(&ctx.db.pool).await?;
    let validity = ctx.validity();
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(item(ctx, &listed(row)?, validity).await?);
    }
    Ok(items)
}

/// Everything about one result of `user_id`, for the viewer.
#[tracing::instrument(skip(ctx), fields(user_id))]
pub async fn detail(ctx: Gallery<'_>, user_id: &str, asset_id: &str) -> Result<AssetDetail, GalleryError> {
    let found = find_with_job(ctx, user_id, asset_id).await?.ok_or(GalleryError::NotFound)?;
    let (listed, upload_ids, result_json) = found;
    let validity = ctx.validity();
    let item = item(ctx, &listed, validity).await?;
    let params = match &listed.params {
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| {
                let shown = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                (name.clone(), shown)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut inputs = Vec::new();
    for upload_id in &upload_ids {
        let kept = sqlx::query("SELECT object_key FROM uploads WHERE id = $1 AND user_id = $2 AND state = $3")
            .bind(upload_id.as_str())
            .bind(user_id)
            .bind(UploadState::Ready.as_str())
            .fetch_optional(&ctx.db.pool)
            .await?;
        if let Some(key) = kept.and_then(|row| row.try_get::<Option<String>, _>("object_key").ok().flatten()) {
            let url = ctx
                .storage
                .presign_get_as(&ctx.storage.uploads_bucket, &key, validity, ctx.origin, &links::for_viewing(validity))
                .await?;
            inputs.push(InputImage { upload_id: upload_id.clone(), url });
        }
    }
    let description = result_json
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|r| outputs::description(&r));
    Ok(AssetDetail { item, params, inputs, input_count: upload_ids.len(), description })
}

/// The result `asset_id` of `user_id` with its job's model, inputs, input images and result.
async fn find_with_job(
    ctx: Gallery<'_>,
    user_id: &str,
    asset_id: &str,
) -> Result<Option<(Listed, Vec<String>, Option<String>)>, GalleryError> {
    let Some(id) = crate::server::db::parse_id(asset_id) else { return Ok(None) };
    let sql = format!(
        "SELECT {}, j.model AS job_model, j.params_json AS job_params, j.estimate_micros AS job_estimate, j.upload_ids_json AS job_uploads, \
         j.result_json AS job_result FROM assets a JOIN jobs j ON j.id = a.job_id WHERE a.id = $1 AND a.user_id = $2",
        AssetRow::columns("a.")
    );
    let Some(row) = sqlx::query(&sql).bind(id).bind(user_id).fetch_optional(&ctx.db.pool).await? else {
        return Ok(None);
    };
    let uploads: String = row.try_get("job_uploads")?;
    let upload_ids: Vec<String> = serde_json::from_str(&uploads).unwrap_or_default();
    let result: Option<String> = row.try_get("job_result")?;
    Ok(Some((listed(&row)?, upload_ids, result)))
}

/// A result as the grid and viewer show it, with links signed for `validity`.
async fn item(ctx: Gallery<'_>, listed: &Listed, validity: Validity) -> Result<GalleryItem, GalleryError> {
    let asset = &listed.asset;
    let storage = ctx.storage;
    let bucket = &storage.results_bucket;
    let viewing = links::for_viewing(validity);
    let file_name = links::file_name(&listed.model, asset.created_at, asset.position, &asset.content_type);
    let url = storage.presign_get_as(bucket, &asset.object_key, validity, ctx.origin, &viewing).await?;
    let download_url = storage
        .presign_get_as(bucket, &asset.object_key, validity, ctx.origin, &links::for_download(validity, &file_name))
        .await?;
    let thumb_url = match &asset.thumb_key {
        Some(key) => Some(storage.presign_get_as(bucket, key, validity, ctx.origin, &viewing).await?),
        None => None,
    };
    let expires_at = match (asset.trashed_at, asset.favorite) {
        (Some(trashed), _) => Some(trashed + ctx.config.trash_ttl.as_millis() as i64),
        (None, true) => None,
        (None, false) => asset.expires_at,
    };
    Ok(GalleryItem {
        id: asset.id.clone(),
        job_id: asset.job_id.clone(),
        kind: asset.kind,
        model_name: catalog::find(&listed.model).map_or_else(|| listed.model.clone(), |m| m.name.to_owned()),
        model: listed.model.clone(),
        prompt: listed.params.get("prompt").and_then(Value::as_str).map(str::to_owned),
        content_type: asset.content_type.clone(),
        byte_size: asset.byte_size.max(0) as u64,
        width: asset.width.and_then(|w| u32::try_from(w).ok()),
        height: asset.height.and_then(|h| u32::try_from(h).ok()),
        duration_ms: asset.duration_ms.and_then(|d| u64::try_from(d).ok()),
        url,
        download_url,
        file_name,
        thumb_url,
        favorite: asset.favorite,
        nsfw: asset.nsfw,
        created_at: rfc3339(asset.created_at),
        expires_at: expires_at.map(rfc3339),
        trashed_at: asset.trashed_at.map(rfc3339),
        // A job's estimate covers every image it asked for; each result shows its share.
        estimate_micros: listed.estimate.map(|total| {
            let outputs = listed.params.get("num_images").and_then(Value::as_i64).unwrap_or(1).max(1);
            total / outputs
        }),
    })
}
