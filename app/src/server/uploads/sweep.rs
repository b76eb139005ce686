//! The upload sweeper: expires tickets that were never confirmed, gives up on confirmations a
//! crash interrupted, and reconciles storage with the database so no rejected, expired or
//! replaced object lingers. Every step is idempotent, so every replica may run it.

use std::time::Duration;

use sqlx::Row;

use super::library::mark_swept;
use super::policy::Keys;
use super::rows::{self, UploadState};
use super::{UploadError, Uploads};
use crate::states::sql_list;

/// How old things must be before the sweeper touches them, and how much it looks at per run.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    /// Objects under `uploads/` or `sources/` without a row that needs them are deleted once
    /// they are this old (long enough for any PUT that started before its URL expired).
    pub orphan_age: Duration,
    /// A confirmation still running after this long was interrupted.
    pub stuck_after: Duration,
    /// Objects examined per prefix and run; the next run continues after the last one.
    pub examine: usize,
}

impl Sweep {
    pub fn for_ticket_ttl(ttl: Duration) -> Self {
        Self {
            orphan_age: ttl + Duration::from_secs(15 * 60),
            stuck_after: Duration::from_secs(10 * 60),
            examine: 4 * BATCH as usize,
        }
    }
}

/// Where orphan reconciliation stopped, per prefix, so the next run goes on from there rather
/// than looking at the same first objects again. One per process; a new one starts over.
#[derive(Debug, Default)]
pub struct SweepPosition(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl SweepPosition {
    fn get(&self, prefix: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(prefix).cloned()
    }

    fn set(&self, prefix: &str, after: Option<String>) {
        let mut positions = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match after {
            Some(key) => positions.insert(prefix.to_owned(), key),
            None => positions.remove(prefix),
        };
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: u64,
    /// Ready images kept as long as `DARKROOM_SOURCE_TTL_HOURS` says, now deleted.
    pub sources_expired: u64,
    pub interrupted: u64,
    pub retried_deletes: u64,
    pub orphans: u64,
    /// Rows or objects whose step failed this time (logged; tried again next run).
    pub failed: u64,
}

/// At most this many rows per step and run; the next run continues.
const BATCH: i64 = 500;

/// One pass. A row or object whose step fails is logged and left for the next run; it never
/// stops the others, nor the steps after it.
/// `now` is the moment the pass judges ages by.
pub async fn sweep(
    ctx: Uploads<'_>,
    options: Sweep,
    position: &SweepPosition,
    now: i64,
) -> Result<SweepReport, UploadError> {
    let mut report = SweepReport::default();
    let failed = |what: &str, id: &str, err: &dyn std::fmt::Display| {
        tracing::warn!(upload_id = %id, %err, "sweep: {what} failed; trying again next run");
    };

    for id in ids(ctx, &format!("state = '{}' AND expires_at <= $1", UploadState::Issued), now).await? {
        match expire_ticket(ctx, &id).await {
            Ok(true) => report.expired += 1,
            Ok(false) => {}
            Err(err) => {
                failed("expiring a ticket", &id, &err);
                report.failed += 1;
            }
        }
    }

    // Images kept long enough: the configured time after their upload or last use by a job.
    let ready = UploadState::Ready.as_str();
    if ctx.config.source_ttl.is_none() {
        // Images are kept: no time shown, and none left over for when a time is set again (it
        // then counts from that sweep).
        sqlx::query(&format!(
            "UPDATE uploads SET kept_until = NULL WHERE state = '{ready}' AND kept_until IS NOT NULL"
        ))
        .execute(&ctx.db.pool)
        .await?;
    }
    if let Some(ttl) = ctx.config.source_ttl {
        // Ready before their time was recorded: it counts from now.
        sqlx::query(&format!("UPDATE uploads SET kept_until = $1 WHERE state = '{ready}' AND kept_until IS NULL"))
            .bind(rows::kept_until(now, Some(ttl)))
            .execute(&ctx.db.pool)
            .await?;
        for id in ids(ctx, &format!("state = '{ready}' AND kept_until <= $1"), now).await? {
            match expire_source(ctx, &id, now).await {
                Ok(true) => report.sources_expired += 1,
                Ok(false) => {}
                Err(err) => {
                    failed("deleting an image kept long enough", &id, &err);
                    report.failed += 1;
                }
            }
        }
    }

    let stuck_before = now - options.stuck_after.as_millis() as i64;
    for id in ids(ctx, &format!("state = '{}' AND updated_at <= $1", UploadState::Confirming), stuck_before).await? {
        match give_up_confirming(ctx, &id).await {
            Ok(true) => report.interrupted += 1,
            Ok(false) => {}
            Err(err) => {
                failed("giving up an interrupted confirmation", &id, &err);
                report.failed += 1;
            }
        }
    }

    // Deletions that failed when they were first attempted.
    let gone = sql_list(
        &[UploadState::Deleted, UploadState::Rejected, UploadState::Canceled, UploadState::Expired],
        UploadState::as_str,
    );
    let retry = ids(ctx, &format!("state IN ({gone}) AND swept_at IS NULL AND updated_at <= $1"), now).await?;
    for id in retry {
        match delete_leftovers(ctx, &id).await {
            Ok(()) => report.retried_deletes += 1,
            Err(err) => {
                failed("deleting leftovers", &id, &err);
                report.failed += 1;
            }
        }
    }

    // Usage counters of past days are no longer consulted.
    sqlx::query("DELETE FROM upload_usage WHERE day < $1")
        .bind(now - 2 * 24 * 3600 * 1000)
        .execute(&ctx.db.pool)
        .await?;

    let old_before = now - options.orphan_age.as_millis() as i64;
    for (prefix, needed) in [("uploads/", Needed::WhileUploading), ("sources/", Needed::WhileReady)] {
        match reconcile(ctx, prefix, old_before, needed, options.examine, position).await {
            Ok((deleted, failures)) => {
                report.orphans += deleted;
                report.failed += failures;
            }
            Err(err) => {
                tracing::warn!(%prefix, %err, "sweep: listing storage failed; trying again next run");
                report.failed += 1;
            }
        }
    }
    if report != SweepReport::default() {
        tracing::info!(?report, "upload sweep");
    }
    Ok(report)
}

async fn expire_ticket(ctx: Uploads<'_>, id: &str) -> Result<bool, UploadError> {
    let expired =
        rows::transition(ctx.db, id, &[UploadState::Issued], UploadState::Expired, Some("upload.expired")).await?;
    let Some(row) = expired else { return Ok(false) };
    ctx.storage.delete(&ctx.storage.uploads_bucket, &row.upload_key).await?;
    mark_swept(ctx, id).await?;
    Ok(true)
}

async fn expire_source(ctx: Uploads<'_>, id: &str, now: i64) -> Result<bool, UploadError> {
    let Some(row) = rows::expire_kept(ctx.db, id, now).await? else { return Ok(false) };
    for key in row.object_key.iter().chain([&row.upload_key]) {
        ctx.storage.delete(&ctx.storage.uploads_bucket, key).await?;
    }
    mark_swept(ctx, id).await?;
    Ok(true)
}

async fn give_up_confirming(ctx: Uploads<'_>, id: &str) -> Result<bool, UploadError> {
    let interrupted =
        rows::transition(ctx.db, id, &[UploadState::Confirming], UploadState::Rejected, Some("upload.interrupted"));
    let Some(row) = interrupted.await? else { return Ok(false) };
    ctx.storage.delete(&ctx.storage.uploads_bucket, &row.upload_key).await?;
    ctx.storage.delete(&ctx.storage.uploads_bucket, &Keys::source(&row.user_id, &row.id)).await?;
    metrics::counter!("upload_rejected_total", "reason" => "interrupted").increment(1);
    mark_swept(ctx, id).await?;
    Ok(true)
}

async fn delete_leftovers(ctx: Uploads<'_>, id: &str) -> Result<(), UploadError> {
    let row = sqlx::query("SELECT user_id, upload_key, object_key, state FROM uploads WHERE id = $1")
        .bind(id)
        .fetch_one(&ctx.db.pool)
        .await?;
    let (user_id, upload_key, state): (String, String, String) =
        (row.try_get("user_id")?, row.try_get("upload_key")?, row.try_get("state")?);
    ctx.storage.delete(&ctx.storage.uploads_bucket, &upload_key).await?;
    if matches!(UploadState::parse(&state), Some(UploadState::Deleted | UploadState::Expired)) {
        // Where the clean image is (a copied result's key is its own), and the usual place.
        let object: Option<String> = row.try_get("object_key")?;
        for key in object.into_iter().chain([Keys::source(&user_id, id)]) {
            ctx.storage.delete(&ctx.storage.uploads_bucket, &key).await?;
        }
    }
    mark_swept(ctx, id).await?;
    Ok(())
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

/// Deletes old objects under `prefix` that no row needs, examining at most `examine` objects
/// from where the last run stopped. Returns (deleted, failed).
async fn reconcile(
    ctx: Uploads<'_>,
    prefix: &str,
    old_before: i64,
    needed: Needed,
    examine: usize,
    position: &SweepPosition,
) -> Result<(u64, u64), UploadError> {
    let (mut deleted, mut failed, mut seen) = (0, 0, 0);
    let mut after = position.get(prefix);
    loop {
        let (objects, more) = ctx.storage.list(&ctx.storage.uploads_bucket, prefix, after.as_deref()).await?;
        for (key, modified) in objects {
            seen += 1;
            after = Some(key.clone());
            let orphan = match still_needed(ctx.db, &key, needed).await {
                Ok(needed) => modified <= old_before && !needed,
                Err(err) => {
                    tracing::warn!(%key, %err, "sweep: could not tell whether an object is needed");
                    failed += 1;
                    false
                }
            };
            if orphan {
                match ctx.storage.delete(&ctx.storage.uploads_bucket, &key).await {
                    Ok(()) => deleted += 1,
                    Err(err) => {
                        tracing::warn!(%key, %err, "sweep: could not delete an orphan; trying again next run");
                        failed += 1;
                    }
                }
            }
            if seen >= examine {
                position.set(prefix, after);
                return Ok((deleted, failed));
            }
        }
        if !more {
            // The end of the listing: the next run starts over.
            position.set(prefix, None);
            return Ok((deleted, failed));
        }
    }
}

/// Whether a row still needs `key` in the uploads bucket: a ticket's bytes (`uploads/…`) while
/// it uploads or is checked, a clean copy (`sources/…`) while ready or being written.
pub(crate) async fn needed_in_uploads(db: &crate::server::db::Db, key: &str) -> Result<bool, sqlx::Error> {
    let needed = if key.starts_with("uploads/") { Needed::WhileUploading } else { Needed::WhileReady };
    still_needed(db, key, needed).await
}

async fn still_needed(db: &crate::server::db::Db, key: &str, needed: Needed) -> Result<bool, sqlx::Error> {
    let (column, states) = match needed {
        Needed::WhileUploading => ("upload_key", &[UploadState::Issued, UploadState::Confirming][..]),
        Needed::WhileReady => ("object_key", &[UploadState::Ready][..]),
    };
    let states = sql_list(states, UploadState::as_str);
    let sql = format!("SELECT 1 AS needed FROM uploads WHERE {column} = $1 AND state IN ({states})");
    let referenced = sqlx::query(&sql).bind(key).fetch_optional(&db.pool).await?.is_some();
    if referenced || matches!(needed, Needed::WhileUploading) {
        return Ok(referenced);
    }
    // A source being written by a confirmation has no object_key on its row yet.
    let id = key.rsplit('/').next().unwrap_or_default();
    Ok(sqlx::query("SELECT 1 AS needed FROM uploads WHERE id = $1 AND state = $2")
        .bind(id)
        .bind(UploadState::Confirming.as_str())
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}
