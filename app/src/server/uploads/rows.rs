//! The `uploads` table: one row per ticket, and the one place its state changes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::server::db::{Db, now_ms};
use crate::states::sql_list;

pub use crate::states::UploadState;

#[derive(Clone, Debug)]
pub struct UploadRow {
    pub id: String,
    pub user_id: String,
    pub state: UploadState,
    pub upload_key: String,
    pub object_key: Option<String>,
    pub declared_type: String,
    pub declared_bytes: i64,
    pub declared_sha256: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub byte_size: Option<i64>,
    pub sha256: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// The error code a rejected upload was refused with.
    pub reject_reason: Option<String>,
    pub expires_at: i64,
    /// Until when a ready image is kept (see `kept_until`), if a time applies.
    pub kept_until: Option<i64>,
    pub created_at: i64,
}

pub const COLUMNS: &str = "id, user_id, state, upload_key, object_key, declared_type, declared_bytes, \
    declared_sha256, filename, content_type, byte_size, sha256, width, height, reject_reason, expires_at, kept_until, created_at";

pub fn from_row(row: &AnyRow) -> Result<UploadRow, sqlx::Error> {
    Ok(UploadRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        state: crate::server::db::word_column(row, "state", UploadState::parse)?,
        upload_key: row.try_get("upload_key")?,
        object_key: row.try_get("object_key")?,
        declared_type: row.try_get("declared_type")?,
        declared_bytes: row.try_get("declared_bytes")?,
        declared_sha256: row.try_get("declared_sha256")?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        byte_size: row.try_get("byte_size")?,
        sha256: row.try_get("sha256")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        reject_reason: row.try_get("reject_reason")?,
        expires_at: row.try_get("expires_at")?,
        kept_until: row.try_get("kept_until")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The upload `id` if it belongs to `user_id`; someone else's answers exactly like a missing one.
pub async fn find_owned(db: &Db, id: &str, user_id: &str) -> Result<Option<UploadRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1 AND user_id = $2");
    sqlx::query(&sql).bind(id).bind(user_id).fetch_optional(&db.pool).await?.as_ref().map(from_row).transpose()
}

/// Moves `id` from any of `from` to `to`; returns the row as it now is, or `None` when it was
/// not in one of `from` (someone else moved it first).
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[UploadState],
    to: UploadState,
    reason: Option<&str>,
) -> Result<Option<UploadRow>, sqlx::Error> {
    let allowed = sql_list(from, UploadState::as_str);
    let sql = format!(
        "UPDATE uploads SET state = $1, reject_reason = COALESCE($2, reject_reason), updated_at = $3 \
         WHERE id = $4 AND state IN ({allowed}) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql).bind(to.as_str()).bind(reason).bind(now_ms()).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// What a confirmation learned about the clean image it stored.
pub struct Clean<'a> {
    pub object_key: &'a str,
    pub content_type: &'a str,
    pub byte_size: i64,
    pub sha256: &'a str,
    pub width: u32,
    pub height: u32,
}

/// Until when an image that is ready at `now` is kept, with `ttl` (`DARKROOM_SOURCE_TTL_HOURS`).
pub fn kept_until(now: i64, ttl: Option<std::time::Duration>) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
}

/// `confirming → ready`, recording the clean image; `None` when the ticket left `confirming`
/// meanwhile (the sweeper gave up on it).
pub async fn mark_ready(
    db: &Db,
    id: &str,
    clean: Clean<'_>,
    ttl: Option<std::time::Duration>,
) -> Result<Option<UploadRow>, sqlx::Error> {
    let now = now_ms();
    let sql = format!(
        "UPDATE uploads SET state = '{ready}', object_key = $1, content_type = $2, byte_size = $3, sha256 = $4, \
         width = $5, height = $6, updated_at = $7, kept_until = $9 WHERE id = $8 AND state = '{confirming}' \
         RETURNING {COLUMNS}",
        ready = UploadState::Ready.as_str(),
        confirming = UploadState::Confirming.as_str(),
    );
    let row = sqlx::query(&sql)
        .bind(clean.object_key)
        .bind(clean.content_type)
        .bind(clean.byte_size)
        .bind(clean.sha256)
        .bind(i64::from(clean.width))
        .bind(i64::from(clean.height))
        .bind(now)
        .bind(id)
        .bind(kept_until(now, ttl))
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// What a ready image copied from elsewhere in storage is (a result used as an input).
pub struct Copied<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub object_key: &'a str,
    pub content_type: &'a str,
    pub byte_size: i64,
    pub sha256: &'a str,
    pub width: i64,
    pub height: i64,
    pub filename: Option<&'a str>,
}

/// Records an image that is ready from the start: its clean copy was made by the server inside
/// storage, so no ticket was issued and nothing waits for a browser. Its ticket key is the one
/// a ticket would have had, never signed for anyone.
pub async fn insert_ready_copy(
    db: &Db,
    copied: Copied<'_>,
    ttl: Option<std::time::Duration>,
) -> Result<UploadRow, sqlx::Error> {
    let now = now_ms();
    let sql = format!(
        "INSERT INTO uploads (id, user_id, state, upload_key, object_key, declared_type, declared_bytes, \
         declared_sha256, filename, content_type, byte_size, sha256, width, height, expires_at, created_at, updated_at, \
         kept_until) VALUES ($1, $2, '{ready}', $3, $4, $5, $6, $7, $8, $5, $6, $7, $9, $10, $11, $11, $11, $12) \
         RETURNING {COLUMNS}",
        ready = UploadState::Ready.as_str(),
    );
    let row = sqlx::query(&sql)
        .bind(copied.id)
        .bind(copied.user_id)
        .bind(super::policy::Keys::upload(copied.user_id, copied.id))
        .bind(copied.object_key)
        .bind(copied.content_type)
        .bind(copied.byte_size)
        .bind(copied.sha256)
        .bind(copied.filename)
        .bind(copied.width)
        .bind(copied.height)
        .bind(now)
        .bind(kept_until(now, ttl))
        .fetch_one(&db.pool)
        .await?;
    from_row(&row)
}

/// Marks ready image `id` of `user_id` as used by a job at `now`: kept at least `ttl` from now.
/// Answers whether it is ready (a job may use it).
pub async fn use_ready(
    db: &Db,
    id: &str,
    user_id: &str,
    now: i64,
    ttl: Option<std::time::Duration>,
) -> Result<bool, sqlx::Error> {
    if let Some(until) = kept_until(now, ttl) {
        sqlx::query(
            "UPDATE uploads SET kept_until = $1 WHERE id = $2 AND user_id = $3 AND state = $4 \
             AND (kept_until IS NULL OR kept_until < $1)",
        )
        .bind(until)
        .bind(id)
        .bind(user_id)
        .bind(UploadState::Ready.as_str())
        .execute(&db.pool)
        .await?;
    }
    is_ready(db, id, user_id).await
}

/// Whether `id` is a ready image of `user_id` (someone else's answers like a missing one).
pub async fn is_ready(db: &Db, id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
    let found = sqlx::query("SELECT 1 FROM uploads WHERE id = $1 AND user_id = $2 AND state = $3")
        .bind(id)
        .bind(user_id)
        .bind(UploadState::Ready.as_str())
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// `ready → expired` for an image kept long enough by `now`, unless a job that has not finished
/// uses it; `None` when it no longer qualifies (used again meanwhile, deleted, or needed).
pub async fn expire_kept(db: &Db, id: &str, now: i64) -> Result<Option<UploadRow>, sqlx::Error> {
    // A job lists its images as a JSON array of ids (ids hold no quotes or wildcards).
    let sql = format!(
        "UPDATE uploads SET state = '{expired}', reject_reason = 'upload.expired', updated_at = $1 \
         WHERE id = $2 AND state = '{ready}' AND kept_until <= $1 AND NOT EXISTS (SELECT 1 FROM jobs \
         WHERE jobs.user_id = uploads.user_id AND jobs.state IN ({active}) \
         AND jobs.upload_ids_json LIKE '%\"' || uploads.id || '\"%') RETURNING {COLUMNS}",
        expired = UploadState::Expired.as_str(),
        ready = UploadState::Ready.as_str(),
        active = sql_list(&crate::states::JobState::ACTIVE, crate::states::JobState::as_str),
    );
    let row = sqlx::query(&sql).bind(now).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(from_row).transpose()
}
