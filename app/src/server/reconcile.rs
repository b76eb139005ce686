//! Storage against the database, all of it: every object is checked for a row that needs it and
//! every row that names an object for that object (`darkroom storage reconcile`).
//!
//! An object no row needs is deleted only when it is older than the grace period (an upload or
//! a result being written has its object before its row) and a second look at the database,
//! just before deleting, still finds no row. A row whose object is not listed is reported, never
//! deleted: a listing can miss what storage has. Per-user totals come from the rows and are set
//! beside what the listing holds under the user's prefixes; the difference is the drift.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use sqlx::Row;

use super::db::Db;
use super::storage::{Storage, StorageError};
use crate::states::UploadState;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a row needs stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// A ticket's bytes while it uploads or is checked (`uploads/…`): never missing, as the
    /// browser may not have sent them yet.
    Upload,
    /// An uploaded image's clean copy (`sources/…`).
    Image,
    /// A result's file (`results/…`).
    Result,
    /// A result's thumbnail (`thumbs/…`).
    Thumbnail,
}

/// A row whose object the listing did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub area: Area,
    /// The upload's or the result's id.
    pub id: String,
    pub key: String,
}

/// One user's bytes: as the rows count them, and as the listing holds them under the user's
/// prefixes (orphans included). Thumbnails have no size in the rows: listed only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub images_in_rows: i64,
    pub images_listed: i64,
    pub results_in_rows: i64,
    pub results_listed: i64,
    pub thumbnails_listed: i64,
}

impl Totals {
    /// Listed minus counted, for images and results.
    pub fn drift(&self) -> (i64, i64) {
        (self.images_listed - self.images_in_rows, self.results_listed - self.results_in_rows)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub objects: u64,
    pub bytes: i64,
    /// Objects no row needed, older than the grace period: deleted.
    pub orphans_deleted: u64,
    /// Objects no row needed yet, but younger than the grace period: left.
    pub orphans_recent: u64,
    /// Objects outside the areas rows name (`uploads/`, `sources/`, `results/`, `thumbs/`):
    /// never touched.
    pub foreign: u64,
    pub missing: Vec<Missing>,
    /// Per user id.
    pub users: BTreeMap<String, Totals>,
    /// Objects whose deletion failed (tried again next time).
    pub failed: u64,
}

/// A key's owner and area, from its shape `{area}/{user}/…`.
fn owner(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.splitn(3, '/');
    let (area, user, rest) = (parts.next()?, parts.next()?, parts.next()?);
    (!user.is_empty() && !rest.is_empty()).then_some((area, user))
}

/// One pass over both buckets as of `now` (milliseconds), deleting orphans older than `grace`.
pub async fn run(db: &Db, storage: &Storage, now: i64, grace: Duration) -> Result<Report, ReconcileError> {
    let mut report = Report::default();
    // What the rows name, read before listing: an object written after this read is younger
    // than the grace period, so it cannot be taken for an orphan and deleted.
    let needed = needed(db, storage, &mut report).await?;
    let mut found: HashSet<(String, String)> = HashSet::new();
    let old_before = now.saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));

    for bucket in [&storage.uploads_bucket, &storage.results_bucket] {
        let mut after: Option<String> = None;
        loop {
            let (objects, more) = storage.list_sized(bucket, "", after.as_deref()).await?;
            for object in &objects {
                report.objects += 1;
                report.bytes += object.size;
                let area_user = owner(&object.key);
                count(&mut report, area_user, object.size);
                let named = (bucket.clone(), object.key.clone());
                if needed.contains_key(&named) {
                    found.insert(named);
                    continue;
                }
                if !matches!(area_user, Some(("uploads" | "sources" | "results" | "thumbs", _))) {
                    report.foreign += 1;
                } else if object.modified > old_before {
                    report.orphans_recent += 1;
                } else if still_unneeded(db, storage, bucket, &object.key).await? {
                    match storage.delete(bucket, &object.key).await {
                        Ok(()) => {
                            report.orphans_deleted += 1;
                            // The totals say what storage holds after the pass.
                            count(&mut report, area_user, -object.size);
                        }
                        Err(err) => {
                            tracing::warn!(key = %object.key, %err, "reconcile: could not delete an orphan");
                            report.failed += 1;
                        }
                    }
                }
            }
            after = objects.last().map(|o| o.key.clone());
            if !more || after.is_none() {
                break;
            }
        }
    }

    for (named, (area, id)) in &needed {
        if found.contains(named) || *area == Area::Upload {
            continue;
        }
        // Deleted (with its object) while the listing ran: nothing is missing.
        if still_named(db, *area, id, &named.1).await? {
            report.missing.push(Missing { area: *area, id: id.clone(), key: named.1.clone() });
        }
    }
    report.missing.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

/// Adds `size` to the listed bytes of the key's owner in its area.
fn count(report: &mut Report, area_user: Option<(&str, &str)>, size: i64) {
    let Some((area, user)) = area_user else { return };
    let totals = report.users.entry(user.to_owned()).or_default();
    match area {
        "uploads" | "sources" => totals.images_listed += size,
        "results" => totals.results_listed += size,
        "thumbs" => totals.thumbnails_listed += size,
        _ => {}
    }
}

type Needed = HashMap<(String, String), (Area, String)>;

/// Every (bucket, key) a row names, with the row; the rows' byte counts go into `report`.
async fn needed(db: &Db, storage: &Storage, report: &mut Report) -> Result<Needed, sqlx::Error> {
    let mut needed = Needed::new();
    let (ready, waiting) = (UploadState::Ready.as_str(), [UploadState::Issued, UploadState::Confirming]);
    let waiting = crate::states::sql_list(&waiting, UploadState::as_str);
    let sql = format!(
        "SELECT id, user_id, state, upload_key, object_key, byte_size FROM uploads \
         WHERE state = '{ready}' OR state IN ({waiting})"
    );
    for row in sqlx::query(&sql).fetch_all(&db.pool).await? {
        let (id, user_id, state): (String, String, String) =
            (row.try_get("id")?, row.try_get("user_id")?, row.try_get("state")?);
        if state == ready {
            // A ticket's bytes are gone once it is ready; only the clean copy is needed.
            if let Some(key) = row.try_get::<Option<String>, _>("object_key")? {
                needed.insert((storage.uploads_bucket.clone(), key), (Area::Image, id));
            }
            let bytes: Option<i64> = row.try_get("byte_size")?;
            report.users.entry(user_id).or_default().images_in_rows += bytes.unwrap_or(0);
        } else {
            // Still uploading or being checked: its object may or may not be there yet, so it is
            // neither an orphan nor missing.
            needed.insert((storage.uploads_bucket.clone(), row.try_get("upload_key")?), (Area::Upload, id));
        }
    }
    for row in
        sqlx::query("SELECT id, user_id, object_key, thumb_key, byte_size FROM assets").fetch_all(&db.pool).await?
    {
        let (id, user_id): (String, String) = (row.try_get("id")?, row.try_get("user_id")?);
        needed.insert((storage.results_bucket.clone(), row.try_get("object_key")?), (Area::Result, id.clone()));
        if let Some(thumb) = row.try_get::<Option<String>, _>("thumb_key")? {
            needed.insert((storage.results_bucket.clone(), thumb), (Area::Thumbnail, id));
        }
        report.users.entry(user_id).or_default().results_in_rows += row.try_get::<i64, _>("byte_size")?;
    }
    Ok(needed)
}

/// Whether no row needs `key` now (asked again just before deleting it).
async fn still_unneeded(db: &Db, storage: &Storage, bucket: &str, key: &str) -> Result<bool, sqlx::Error> {
    if bucket == storage.uploads_bucket {
        // The sweeper's own rule for the uploads bucket.
        return Ok(!super::uploads::sweep::needed_in_uploads(db, key).await?);
    }
    let sql = "SELECT 1 FROM assets WHERE object_key = $1 OR thumb_key = $1";
    Ok(sqlx::query(sql).bind(key).fetch_optional(&db.pool).await?.is_none())
}

/// Whether row `id` still names `key`.
async fn still_named(db: &Db, area: Area, id: &str, key: &str) -> Result<bool, sqlx::Error> {
    let sql = match area {
        Area::Upload => return Ok(false),
        Area::Image => {
            format!("SELECT 1 FROM uploads WHERE id = $1 AND object_key = $2 AND state = '{}'", UploadState::Ready)
        }
        Area::Result => "SELECT 1 FROM assets WHERE id = $1 AND object_key = $2".to_owned(),
        Area::Thumbnail => "SELECT 1 FROM assets WHERE id = $1 AND thumb_key = $2".to_owned(),
    };
    Ok(sqlx::query(&sql).bind(id).bind(key).fetch_optional(&db.pool).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_area_and_owner() {
        assert_eq!(owner("sources/u1/abc"), Some(("sources", "u1")));
        assert_eq!(owner("results/u1/job/0.png"), Some(("results", "u1")));
        assert_eq!(owner("probe"), None);
        assert_eq!(owner("results//x"), None);
        assert_eq!(owner("results/u1/"), None);
    }
}
