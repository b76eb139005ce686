//! Per-account quotas on uploads and storage. The server's defaults apply
//! (`DARKROOM_UPLOADS_PER_DAY`, `DARKROOM_UPLOAD_BYTES_PER_DAY`, `DARKROOM_STORAGE_QUOTA_MB`)
//! unless an admin set an account's own, higher or lower, in `user_limits`.
//!
//! Storage is what the rows say an account keeps: its images (a ticket still being uploaded
//! counts its declared size) and its results. Thumbnails, a few kilobytes each, are not counted.
//! The check reads the total before the ticket or job is written, outside its statement: a
//! burst of concurrent uploads can pass the quota by at most what those uploads declare (each
//! at most the upload size limit). Daily counts, by contrast, are checked in the statement that
//! counts them.

use sqlx::Row;

use crate::server::config::UploadConfig;
use crate::server::db::Db;
use crate::states::{UploadState, sql_list};

/// The quotas that apply to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    pub uploads_day: u64,
    pub upload_bytes_day: u64,
    /// `None`: no limit on what the account keeps.
    pub storage_bytes: Option<u64>,
}

/// An admin's quotas for one account; `None` leaves the server's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub uploads_day: Option<u64>,
    pub upload_bytes_day: Option<u64>,
    pub storage_bytes: Option<u64>,
}

impl Quotas {
    pub fn defaults(config: &UploadConfig) -> Self {
        Self {
            uploads_day: config.per_day,
            upload_bytes_day: config.bytes_per_day,
            storage_bytes: config.storage_bytes,
        }
    }

    /// These defaults with an account's overrides in their place.
    pub fn with(self, overrides: Overrides) -> Self {
        Self {
            uploads_day: overrides.uploads_day.unwrap_or(self.uploads_day),
            upload_bytes_day: overrides.upload_bytes_day.unwrap_or(self.upload_bytes_day),
            storage_bytes: overrides.storage_bytes.or(self.storage_bytes),
        }
    }
}

/// The admin's overrides for `user_id` (none when no row exists).
pub async fn overrides(db: &Db, user_id: &str) -> Result<Overrides, sqlx::Error> {
    let row = sqlx::query("SELECT uploads_day, upload_bytes_day, storage_bytes FROM user_limits WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(Overrides::default()) };
    let column = |name: &str| -> Result<Option<u64>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(|v| v.max(0) as u64))
    };
    Ok(Overrides {
        uploads_day: column("uploads_day")?,
        upload_bytes_day: column("upload_bytes_day")?,
        storage_bytes: column("storage_bytes")?,
    })
}

/// What applies to `user_id`.
pub async fn of(db: &Db, config: &UploadConfig, user_id: &str) -> Result<Quotas, sqlx::Error> {
    Ok(Quotas::defaults(config).with(overrides(db, user_id).await?))
}

/// Replaces the admin's overrides for `user_id`.
pub async fn set(db: &Db, user_id: &str, overrides: Overrides, now: i64) -> Result<(), sqlx::Error> {
    let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO user_limits (user_id, uploads_day, upload_bytes_day, storage_bytes, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET uploads_day = $2, \
         upload_bytes_day = $3, storage_bytes = $4, updated_at = $5",
    )
    .bind(user_id)
    .bind(int(overrides.uploads_day))
    .bind(int(overrides.upload_bytes_day))
    .bind(int(overrides.storage_bytes))
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// What `user_id` keeps, in bytes, by the rows.
pub async fn stored_bytes(db: &Db, user_id: &str) -> Result<u64, sqlx::Error> {
    // PostgreSQL sums BIGINTs as NUMERIC; the casts keep the answer an integer on both.
    let sql = format!(
        "SELECT CAST(COALESCE((SELECT SUM(COALESCE(byte_size, declared_bytes)) FROM uploads \
            WHERE user_id = $1 AND state IN ({holding})), 0) AS BIGINT) \
          + CAST(COALESCE((SELECT SUM(byte_size) FROM assets WHERE user_id = $1), 0) AS BIGINT)",
        holding = sql_list(&UploadState::HOLDING, UploadState::as_str),
    );
    let total: i64 = sqlx::query_scalar(&sql).bind(user_id).fetch_one(&db.pool).await?;
    Ok(total.max(0) as u64)
}

/// Whether `adding` more bytes fit in `user_id`'s storage quota; answers what is kept and the
/// quota when they do not.
pub async fn room_for(
    db: &Db,
    quotas: Quotas,
    user_id: &str,
    adding: u64,
) -> Result<Result<(), (u64, u64)>, sqlx::Error> {
    let Some(limit) = quotas.storage_bytes else { return Ok(Ok(())) };
    let kept = stored_bytes(db, user_id).await?;
    Ok(if kept.saturating_add(adding) > limit || (adding == 0 && kept >= limit) { Err((kept, limit)) } else { Ok(()) })
}

/// What the owner is told when their storage is full.
pub fn full_message(kept: u64, limit: u64) -> String {
    // The same units as the Account tab's storage line.
    use crate::upload_queue::human_size;
    format!(
        "Your storage is full: you keep {} of the {} allowed. Delete results or images (and empty the trash) to make room.",
        human_size(kept),
        human_size(limit)
    )
}

/// A quota as an admin types it: blank leaves the default; otherwise a whole number of `unit`s
/// up to `max`, answered in the smallest unit (`unit` = 1 MiB for sizes).
pub fn parse(text: &str, unit: u64, max: u64) -> Result<Option<u64>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let n: u64 = text.parse().map_err(|_| ())?;
    if n > max {
        return Err(());
    }
    n.checked_mul(unit).map(Some).ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_the_defaults_each_on_its_own() {
        let defaults = Quotas { uploads_day: 200, upload_bytes_day: 1 << 30, storage_bytes: None };
        assert_eq!(defaults.with(Overrides::default()), defaults);
        let some = Overrides { uploads_day: Some(5), storage_bytes: Some(10 << 20), ..Overrides::default() };
        assert_eq!(
            defaults.with(some),
            Quotas { uploads_day: 5, upload_bytes_day: 1 << 30, storage_bytes: Some(10 << 20) }
        );
    }

    #[test]
    fn typed_quotas_are_whole_numbers_within_bounds() {
        assert_eq!(parse(" ", 1, 10), Ok(None));
        assert_eq!(parse("7", 1, 10), Ok(Some(7)));
        assert_eq!(parse("2", 1 << 20, 10), Ok(Some(2 << 20)));
        assert_eq!(parse("0", 1, 10), Ok(Some(0)));
        for bad in ["-1", "1.5", "11", "1e3", "ten", "99999999999999999999"] {
            assert_eq!(parse(bad, 1, 10), Err(()), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever is typed is refused or read as a bounded whole number, never a panic.
        #[test]
        fn any_text_parses_within_bounds_or_is_refused(text in "\\PC{0,16}", max in 0u64..1_000_000) {
            if let Ok(Some(n)) = parse(&text, 1 << 20, max) {
                proptest::prop_assert!(n <= max << 20);
                proptest::prop_assert_eq!(n % (1 << 20), 0);
            }
        }
    }
}
