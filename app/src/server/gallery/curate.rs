//! Changing results: favorites, the trash, restoring, deleting for good. Each action takes an
//! explicit list of ids and reports, per id, what it did: an id already in the asked state is
//! `Unchanged`, one that is not the caller's (or does not exist) `NotFound`, so retrying a
//! request that timed out reports honestly and changes nothing twice.
//!
//! Deleting for good removes the rows and queues their objects in one transaction, then deletes
//! the objects; what storage did not confirm is retried by the sweeper, so nothing is left
//! behind and nothing restored meanwhile loses its file.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use super::{Gallery, GalleryError};
use crate::gallery::{BulkReport, MAX_BULK_IDS, Outcome};
use crate::server::audit::{self, Action, Event};
use crate::server::db::{Db, now_ms, parse_id};
use crate::server::storage::Storage;

/// Ids per statement: well under every engine's limit on bound values.
const BATCH: usize = 500;

/// A change that is the same for every item it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Favorite(bool),
    Trash,
    Restore,
}

impl Change {
    /// `SET …` and the condition under which an item still needs it.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Self::Favorite(true) => ("favorite = 1", "favorite = 0"),
            Self::Favorite(false) => ("favorite = 0", "favorite = 1"),
            Self::Trash => ("trashed_at = $2", "trashed_at IS NULL"),
            Self::Restore => ("trashed_at = NULL", "trashed_at IS NOT NULL"),
        }
    }

    fn action(self) -> Action {
        match self {
            Self::Favorite(_) => Action::AssetsFavorited,
            Self::Trash => Action::AssetsTrashed,
            Self::Restore => Action::AssetsRestored,
        }
    }
}

/// The ids as given, repeats removed, each either a well-formed id or reported as not found.
struct Ids {
    given: Vec<(String, Option<String>)>,
}

impl Ids {
    fn parse(raw: &[String]) -> Result<Self, GalleryError> {
        if raw.len() > MAX_BULK_IDS {
            return Err(GalleryError::TooMany(raw.len()));
        }
        let mut seen = HashSet::new();
        let mut given = Vec::new();
        for id in raw {
            // What is reported back is bounded too: an id is never longer than 64 characters.
            let shown: String = id.chars().take(64).collect();
            if seen.insert(shown.clone()) {
                given.push((shown, parse_id(id)));
            }
        }
        Ok(Self { given })
    }

    fn valid(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.given.iter().filter_map(|(_, id)| id.clone()).filter(|id| seen.insert(id.clone())).collect()
    }

    /// The report: `changed` ids are `Changed`, other `existing` ones `Unchanged`.
    fn report(&self, changed: &HashSet<String>, existing: &HashSet<String>) -> BulkReport {
        let items = self
            .given
            .iter()
            .map(|(shown, id)| {
                let outcome = match id {
                    Some(id) if changed.contains(id) => Outcome::Changed,
                    Some(id) if existing.contains(id) => Outcome::Unchanged,
                    _ => Outcome::NotFound,
                };
                (shown.clone(), outcome)
            })
            .collect();
        BulkReport { items }
    }
}

fn marks(first: usize, count: usize) -> String {
    (0..count).map(|n| format!("${}", first + n)).collect::<Vec<_>>().join(", ")
}

/// Which of `ids` exist and belong to `user_id`.
async fn existing(db: &Db, user_id: &str, ids: &[String]) -> Result<HashSet<String>, sqlx::Error> {
    let mut found = HashSet::new();
    for batch in ids.chunks(BATCH) {
        let sql = format!("SELECT id FROM assets WHERE user_id = $1 AND id IN ({})", marks(2, batch.len()));
        let mut query = sqlx::query(&sql).bind(user_id);
        for id in batch {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&db.pool).await? {
            found.insert(row.try_get::<String, _>("id")?);
        }
    }
    Ok(found)
}

/// Applies `change` to the given results of `user_id`.
#[tracing::instrument(skip(ctx, ids, ip), fields(count = ids.len()))]
pub async fn apply(
    ctx: Gallery<'_>,
    user_id: &str,
    ids: &[String],
    change: Change,
    ip: &str,
) -> Result<BulkReport, GalleryError> {
    let ids = Ids::parse(ids)?;
    let valid = ids.valid();
    let (set, needs) = change.sql();
    let now = now_ms();
    let mut changed = HashSet::new();
    // A trash binds its time as `$2`; the ids follow.
    let first = if change == Change::Trash { 3 } else { 2 };
    for batch in valid.chunks(BATCH) {
        let sql = format!(
            "UPDATE assets SET {set} WHERE user_id = $1 AND {needs} AND id IN ({}) RETURNING id",
            marks(first, batch.len())
        );
        let mut query = sqlx::query(&sql).bind(user_id);
        if change == Change::Trash {
            query = query.bind(now);
        }
        for id in batch {
            query = query.bind(id.as_str());
        }
        for row in query.fetch_all(&ctx.db.pool).await? {
            changed.insert(row.try_get::<String, _>("id")?);
        }
    }
    let existing = existing(ctx.db, user_id, &valid).await?;
    if !changed.is_empty() {
        let detail = match change {
            Change::Favorite(on) => json!({ "count": changed.len(), "favorite": on }),
            _ => json!({ "count": changed.len() }),
        };
        audit::record(ctx.db, Event::new(change.action()).actor(user_id).ip(ip).detail(detail)).await;
    }
    Ok(ids.report(&changed, &existing))
}

/// Deletes for good the given results of `user_id` that are in the trash (others are
/// `Unchanged`: deleting for good goes through the trash).
#[tracing::instrument(skip(ctx, ids, ip), fields(count = ids.len()))]
pub async fn delete_forever(
    ctx: Gallery<'_>,
    user_id: &str,
    ids: &[String],
    ip: &str,
) -> Result<BulkReport, GalleryError> {
    let ids = Ids::parse(ids)?;
    let valid = ids.valid();
    let existing = existing(ctx.db, user_id, &valid).await?;
    let mut deleted = HashSet::new();
    for batch in valid.chunks(BATCH) {
        let condition = format!("user_id = $1 AND trashed_at IS NOT NULL AND id IN ({})", marks(2, batch.len()));
        let mut binds = vec![user_id.to_owned()];
        binds.extend(batch.iter().cloned());
        deleted.extend(remove(ctx.db, ctx.storage, &condition, &binds).await?);
    }
    if !deleted.is_empty() {
        let detail = json!({ "count": deleted.len() });
        audit::record(ctx.db, Event::new(Action::AssetsDeleted).actor(user_id).ip(ip).detail(detail)).await;
    }
    drain(ctx.db, ctx.storage, 2 * BATCH as i64).await?;
    Ok(ids.report(&deleted, &existing))
}

/// Deletes everything in `user_id`'s trash for good; returns how many results went.
#[tracing::instrument(skip(ctx, ip))]
pub async fn empty_trash(ctx: Gallery<'_>, user_id: &str, ip: &str) -> Result<u64, GalleryError> {
    let condition = format!(
        "id IN (SELECT id FROM assets WHERE user_id = $1 AND trashed_at IS NOT NULL \
         ORDER BY created_at DESC, id DESC LIMIT {BATCH})"
    );
    let mut total = 0u64;
    loop {
        let deleted = remove(ctx.db, ctx.storage, &condition, &[user_id.to_owned()]).await?;
        total += deleted.len() as u64;
        drain(ctx.db, ctx.storage, 2 * BATCH as i64).await?;
        if deleted.len() < BATCH {
            break;
        }
    }
    if total > 0 {
        let detail = json!({ "count": total, "emptied": true });
        audit::record(ctx.db, Event::new(Action::AssetsDeleted).actor(user_id).ip(ip).detail(detail)).await;
    }
    Ok(total)
}

/// Deletes for good what has been in any trash longer than `trash_ttl` as of `now` (the
/// sweeper's pass); returns how many results went.
pub async fn purge_due(db: &Db, storage: &Storage, trash_ttl: Duration, now: i64) -> Result<u64, GalleryError> {
    let due = now - trash_ttl.as_millis() as i64;
    let condition = format!(
        "id IN (SELECT id FROM assets WHERE trashed_at IS NOT NULL AND trashed_at < {due} \
         ORDER BY trashed_at LIMIT {BATCH})"
    );
    remove_all(db, storage, &condition).await
}

/// Deletes for good the results whose time ran out by `now` (`expires_at` passed) that are not
/// favorites and not in the trash (which keeps them its own time, as it shows; the trash's
/// pass deletes them then); returns how many went. A result made a favorite while this
/// runs is kept: the delete checks `favorite` again on each row it removes, not only where it
/// picked them (PostgreSQL re-reads a row another transaction changed meanwhile before deleting
/// it, and judges that version; SQLite runs one writer at a time).
pub async fn expire_due(db: &Db, storage: &Storage, now: i64) -> Result<u64, GalleryError> {
    let condition = format!(
        "favorite = 0 AND trashed_at IS NULL AND expires_at <= {now} AND id IN (SELECT id FROM assets \
         WHERE favorite = 0 AND trashed_at IS NULL AND expires_at <= {now} ORDER BY expires_at LIMIT {BATCH})"
    );
    remove_all(db, storage, &condition).await
}

/// Removes every result matching `condition` (which picks at most [`BATCH`] at a time) and
/// deletes their objects; returns how many went.
async fn remove_all(db: &Db, storage: &Storage, condition: &str) -> Result<u64, GalleryError> {
    let mut total = 0u64;
    loop {
        let deleted = remove(db, storage, condition, &[]).await?;
        total += deleted.len() as u64;
        if deleted.len() < BATCH {
            break;
        }
    }
    drain(db, storage, i64::MAX).await?;
    Ok(total)
}

/// Removes the asset rows matching `condition` (with `binds` for its placeholders) and queues
/// their objects, in one transaction; returns the removed ids.
async fn remove(db: &Db, storage: &Storage, condition: &str, binds: &[String]) -> Result<Vec<String>, GalleryError> {
    let mut tx = db.begin_write().await?;
    let sql = format!("DELETE FROM assets WHERE {condition} RETURNING id, object_key, thumb_key");
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = query.bind(bind.as_str());
    }
    let rows = query.fetch_all(&mut *tx).await?;
    let now = now_ms();
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.try_get::<String, _>("id")?);
        let thumb: Option<String> = row.try_get("thumb_key")?;
        for key in std::iter::once(row.try_get::<String, _>("object_key")?).chain(thumb) {
            sqlx::query(
                "INSERT INTO object_deletions (bucket, object_key, queued_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (bucket, object_key) DO NOTHING",
            )
            .bind(storage.results_bucket.as_str())
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(ids)
}

/// Deletes up to `limit` queued objects from storage, oldest first, forgetting each once storage
/// confirms; stops at the first failure (storage is likely down; the sweeper tries again).
/// Returns how many were deleted.
pub async fn drain(db: &Db, storage: &Storage, limit: i64) -> Result<u64, GalleryError> {
    let mut done = 0u64;
    loop {
        let take = (limit - done as i64).min(BATCH as i64);
        if take <= 0 {
            return Ok(done);
        }
        let rows =
            sqlx::query("SELECT bucket, object_key FROM object_deletions ORDER BY queued_at, object_key LIMIT $1")
                .bind(take)
                .fetch_all(&db.pool)
                .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        for row in &rows {
            let bucket: String = row.try_get("bucket")?;
            let key: String = row.try_get("object_key")?;
            if let Err(err) = storage.delete(&bucket, &key).await {
                tracing::warn!(%err, "a deleted result's object is still stored; trying again later");
                return Ok(done);
            }
            sqlx::query("DELETE FROM object_deletions WHERE bucket = $1 AND object_key = $2")
                .bind(&bucket)
                .bind(&key)
                .execute(&db.pool)
                .await?;
            done += 1;
        }
        if (rows.len() as i64) < take {
            return Ok(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_deduplicated_and_reported_in_the_order_given() {
        let a = "0190a0b0-0000-7000-8000-00000000000a".to_owned();
        let b = "0190a0b0-0000-7000-8000-00000000000b".to_owned();
        let c = "0190a0b0-0000-7000-8000-00000000000c".to_owned();
        let long = "x".repeat(5000);
        let ids = Ids::parse(&[a.clone(), long.clone(), b.clone(), a.clone(), c.clone()]).unwrap();
        assert_eq!(ids.valid(), vec![a.clone(), b.clone(), c.clone()]);
        let changed = HashSet::from([a.clone()]);
        let existing = HashSet::from([a.clone(), b.clone()]);
        let report = ids.report(&changed, &existing);
        assert_eq!(
            report.items,
            vec![
                (a, Outcome::Changed),
                ("x".repeat(64), Outcome::NotFound),
                (b, Outcome::Unchanged),
                (c, Outcome::NotFound),
            ]
        );
        let too_many = vec![String::new(); MAX_BULK_IDS + 1];
        assert!(matches!(Ids::parse(&too_many), Err(GalleryError::TooMany(n)) if n == MAX_BULK_IDS + 1));
    }
}
