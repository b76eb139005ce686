//! The upload sweeper: expires tickets that were never confirmed, gives up on confirmations a
//! crash interrupted, and reconciles storage with the database so no rejected, expired or
//! replaced object lingers. Every step is idempotent, so every replica may run it.

use std::time::Duration;

use sqlx::Row;

use super::library::mark_swept;
use super::policy::Keys;
use super::rows::{self, UploadState};
use super::{UploadError, Uploads};
use crate::server::db::now_ms;

/// How old things must be before the sweeper touches them.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    /// Objects under `uploads/` or `sources/` without a row that needs them are deleted once
    /// they are this old (long enough for any PUT that started before its URL expired).
    pub orphan_age: Duration,
    /// A confirmation still running after this long was interrupted.
    pub stuck_after: Duration,
}

impl Sweep {
    pub fn for_ticket_ttl(ttl: Duration) -> Self {
        Self { orphan_age: ttl + Duration::from_secs(15 * 60), stuck_after: Duration::from_secs(10 * 60) }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: u64,
    pub interrupted: u64,
    pub retried_deletes: u64,
    pub orphans: u64,
}

/// At most this many rows or objects per step and run; the next run continues.
const BATCH: i64 = 500;

pub async fn sweep(ctx: Uploads<'_>, options: Sweep) -> Result<SweepReport, UploadError> {
    let mut report = SweepReport::default();
    let now = now_ms();

    for id in ids(ctx, "state = 'issued' AND expires_at <= $1", now).await? {
        if let Some(row) =
            rows::transition(ctx.db, &id, &[UploadState::Issued], UploadState::Expired, Some("upload.expired")).await?
        {
            ctx.storage.delete(&ctx.storage.uploads_bucket, &row.upload_key).await?;
            mark_swept(ctx, &id).await?;
            report.expired += 1;
        }
    }

    let stuck_before = now - options.stuck_after.as_millis() as i64;
    for id in ids(ctx, "state = 'confirming' AND updated_at <= $1", stuck_before).await? {
        let interrupted = rows::transition(
            ctx.db,
            &id,
            &[UploadState::Confirming],
            UploadState::Rejected,
            Some("upload.interrupted"),
        );
        if let Some(row) = interrupted.await? {
            ctx.storage.delete(&ctx.storage.uploads_bucket, &row.upload_key).await?;
            ctx.storage.delete(&ctx.storage.uploads_bucket, &Keys::source(&row.user_id, &row.id)).await?;
            metrics::counter!("upload_rejected_total", "reason" => "interrupted").increment(1);
            mark_swept(ctx, &id).await?;
            report.interrupted += 1;
        }
    }

    // Deletions that failed when they were first attempted.
    let retry =
        ids(ctx, "state IN ('deleted', 'rejected', 'canceled') AND swept_at IS NULL AND updated_at <= $1", now).await?;
    for id in retry {
        let row = sqlx::query("SELECT user_id, upload_key, state FROM uploads WHERE id = $1")
            .bind(&id)
            .fetch_one(&ctx.db.pool)
            .await?;
        let (user_id, upload_key, state): (String, String, String) =
            (row.try_get("user_id")?, row.try_get("upload_key")?, row.try_get("state")?);
        ctx.storage.delete(&ctx.storage.uploads_bucket, &upload_key).await?;
        if state == "deleted" {
            ctx.storage.delete(&ctx.storage.uploads_bucket, &Keys::source(&user_id, &id)).await?;
        }
        mark_swept(ctx, &id).await?;
        report.retried_deletes += 1;
    }

    // Usage counters of past days are no longer consulted.
    sqlx::query("DELETE FROM upload_usage WHERE day < $1")
        .bind(now - 2 * 24 * 3600 * 1000)
        .execute(&ctx.db.pool)
        .await?;

    let old_before = now - options.orphan_age.as_millis() as i64;
    report.orphans += reconcile(ctx, "uploads/", old_before, Needed::WhileUploading).await?;
    report.orphans += reconcile(ctx, "sources/", old_before, Needed::WhileReady).await?;
    if report != SweepReport::default() {
        tracing::info!(?report, "upload sweep");
    }
    Ok(report)
}

async fn ids(ctx: Uploads<'_>, condition: &str, bound: i64) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!("SELECT id FROM uploads WHERE {condition} ORDER BY updated_at LIMIT {BATCH}");
    sqlx::query_scalar(&sql).bind(bound).fetch_all(&ctx.db.pool).await
}

/// Which rows still need an object under a prefix.
#[derive(Clone, Copy)]
enum Needed {
    /// `uploads/…`: only a ticket still waiting for or checking its bytes.
    WhileUploading,
    /// `sources/…`: a ready image (or one being confirmed right now).
    WhileReady,
}

async fn reconcile(ctx: Uploads<'_>, prefix: &str, old_before: i64, needed: Needed) -> Result<u64, UploadError> {
    let mut deleted = 0;
    let mut seen = 0;
    let mut page = None;
    loop {
        let (objects, next) = ctx.storage.list(&ctx.storage.uploads_bucket, prefix, page).await?;
        for (key, modified) in objects {
            seen += 1;
            if modified > old_before || still_needed(ctx, &key, needed).await? {
                continue;
            }
            ctx.storage.delete(&ctx.storage.uploads_bucket, &key).await?;
            deleted += 1;
        }
        match next {
            Some(token) if seen < BATCH * 4 => page = Some(token),
            _ => return Ok(deleted),
        }
    }
}

async fn still_needed(ctx: Uploads<'_>, key: &str, needed: Needed) -> Result<bool, sqlx::Error> {
    let (column, states) = match needed {
        Needed::WhileUploading => ("upload_key", "'issued', 'confirming'"),
        Needed::WhileReady => ("object_key", "'ready'"),
    };
    let sql = format!("SELECT 1 AS needed FROM uploads WHERE {column} = $1 AND state IN ({states})");
    let referenced = sqlx::query(&sql).bind(key).fetch_optional(&ctx.db.pool).await?.is_some();
    if referenced || matches!(needed, Needed::WhileUploading) {
        return Ok(referenced);
    }
    // A source being written by a confirmation has no object_key on its row yet.
    let id = key.rsplit('/').next().unwrap_or_default();
    Ok(sqlx::query("SELECT 1 AS needed FROM uploads WHERE id = $1 AND state = 'confirming'")
        .bind(id)
        .fetch_optional(&ctx.db.pool)
        .await?
        .is_some())
}
