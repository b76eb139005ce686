//! Spending: what a job is estimated to cost before it runs ([`price`]), and the caps per day and
//! per month that the estimates are held to. Amounts are millionths of a US dollar throughout.
//!
//! A job's estimate counts against its owner's day and month (UTC, by when it was created) while
//! it may still be billed: from acceptance until it fails or is canceled (fal bills successful
//! outputs only). The check and the job's insert run under the per-user lock job creation holds
//! (`Db::exclusive`), so concurrent submits are judged one after another and cannot pass a cap
//! together.

pub mod price;

use sqlx::Row;

use crate::error::{AppError, code};
use crate::format::usd;
use crate::server::db::Db;
use crate::states::{JobState, sql_list};
pub use price::Prices;

/// Caps in millionths of a dollar; `None`: no cap for that period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub day: Option<i64>,
    pub month: Option<i64>,
}

impl Caps {
    pub fn any(&self) -> bool {
        self.day.is_some() || self.month.is_some()
    }

    fn of(self, period: Period) -> Option<i64> {
        match period {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }
}

/// One user's caps: what an admin set for them (replacing the server's default), what they set
/// themselves, and what applies (the lower of the two).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserCaps {
    pub admin: Caps,
    pub own: Caps,
    pub effective: Caps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    pub const ALL: [Period; 2] = [Period::Day, Period::Month];

    /// The UTC day or month holding `now_ms`, as `[start, end)` in milliseconds.
    pub fn bounds(self, now_ms: i64) -> (i64, i64) {
        const DAY: i64 = 86_400_000;
        let day = now_ms.div_euclid(DAY);
        match self {
            Period::Day => (day * DAY, (day + 1) * DAY),
            Period::Month => {
                let date = time::Date::from_julian_day(UNIX_JULIAN_DAY + day as i32).expect("a date in range");
                let first = date.replace_day(1).expect("every month has a first");
                let next = match first.month() {
                    time::Month::December => {
                        first.replace_year(first.year() + 1).and_then(|d| d.replace_month(time::Month::January))
                    }
                    month => first.replace_month(month.next()),
                }
                .expect("the next month's first exists");
                let ms = |d: time::Date| i64::from(d.to_julian_day() - UNIX_JULIAN_DAY) * DAY;
                (ms(first), ms(next))
            }
        }
    }

    fn word(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Month => "monthly",
        }
    }
}

/// 1970-01-01 as a Julian day.
const UNIX_JULIAN_DAY: i32 = 2_440_588;

/// A job that would take its owner past a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub period: Period,
    pub cap: i64,
    pub spent: i64,
    pub estimate: i64,
    /// When the period ends and the cap has room again (milliseconds).
    pub resets_at: i64,
    pub now: i64,
}

impl From<Exceeded> for AppError {
    fn from(e: Exceeded) -> Self {
        let resets = crate::format::timestamp(&crate::server::db::rfc3339(e.resets_at));
        AppError::new(
            code::SPEND_CAP_EXCEEDED,
            format!(
                "This job (≈ {}) would take you past your {} spending cap of {} ({} used). The cap resets at {resets}.",
                usd(e.estimate),
                e.period.word(),
                usd(e.cap),
                usd(e.spent),
            ),
        )
        .retry_after(((e.resets_at - e.now).max(0) as u64).div_ceil(1000))
    }
}

/// The caps `user_id` is held to, `defaults` being the server's.
pub async fn caps_of(db: &Db, defaults: Caps, user_id: &str) -> Result<UserCaps, sqlx::Error> {
    let row = sqlx::query(
        "SELECT spend_day_micros, spend_month_micros, own_spend_day_micros, own_spend_month_micros \
         FROM user_limits WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    let (admin, own) = match row {
        Some(row) => (
            Caps { day: row.try_get("spend_day_micros")?, month: row.try_get("spend_month_micros")? },
            Caps { day: row.try_get("own_spend_day_micros")?, month: row.try_get("own_spend_month_micros")? },
        ),
        None => (Caps::default(), Caps::default()),
    };
    Ok(UserCaps { admin, own, effective: effective(defaults, admin, own) })
}

/// An admin's cap replaces the default; the user's own can only be lower.
fn effective(defaults: Caps, admin: Caps, own: Caps) -> Caps {
    let lower = |set: Option<i64>, own: Option<i64>| match (set, own) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Caps { day: lower(admin.day.or(defaults.day), own.day), month: lower(admin.month.or(defaults.month), own.month) }
}

/// Sets the admin's caps for `user_id` (`None`: the default applies).
pub async fn set_admin_caps(db: &Db, user_id: &str, caps: Caps, now: i64) -> Result<(), sqlx::Error> {
    upsert(db, user_id, caps, now, "").await
}

/// Sets the user's own caps (`None`: none of their own).
pub async fn set_own_caps(db: &Db, user_id: &str, caps: Caps, now: i64) -> Result<(), sqlx::Error> {
    upsert(db, user_id, caps, now, "own_").await
}

/// `whose`: the columns' prefix, `""` for the admin's caps, `"own_"` for the user's.
async fn upsert(db: &Db, user_id: &str, caps: Caps, now: i64, whose: &str) -> Result<(), sqlx::Error> {
    let (day, month) = (format!("{whose}spend_day_micros"), format!("{whose}spend_month_micros"));
    let sql = format!(
        "INSERT INTO user_limits (user_id, {day}, {month}, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET {day} = $2, {month} = $3, updated_at = $4"
    );
    sqlx::query(&sql).bind(user_id).bind(caps.day).bind(caps.month).bind(now).execute(&db.pool).await?;
    Ok(())
}

/// What `user_id`'s jobs created since `since` may still be billed, estimated.
pub async fn spent_since<'c, E>(conn: E, user_id: &str, since: i64) -> Result<i64, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    // PostgreSQL sums BIGINTs as NUMERIC; the cast keeps the answer an integer on both.
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(estimate_micros), 0) AS BIGINT) FROM jobs \
         WHERE user_id = $1 AND created_at >= $2 AND estimate_micros IS NOT NULL AND state IN ({})",
        sql_list(&JobState::BILLABLE, JobState::as_str)
    );
    sqlx::query_scalar(&sql).bind(user_id).bind(since).fetch_one(conn).await
}

/// Whether a job estimated at `estimate` fits under `caps` at `now`. Run it under the lock the
/// job's insert runs under: it reads what the jobs before it reserved.
pub async fn check(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    caps: Caps,
    estimate: i64,
    now: i64,
) -> Result<Result<(), Exceeded>, sqlx::Error> {
    for period in Period::ALL {
        let Some(cap) = caps.of(period) else { continue };
        let (start, end) = period.bounds(now);
        let spent = spent_since(&mut *conn, user_id, start).await?;
        if spent.saturating_add(estimate) > cap {
            return Ok(Err(Exceeded { period, cap, spent, estimate, resets_at: end, now }));
        }
    }
    Ok(Ok(()))
}

/// What a user has spent (estimated) today and this month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub day: i64,
    pub month: i64,
}

pub async fn spent(db: &Db, user_id: &str, now: i64) -> Result<Spent, sqlx::Error> {
    Ok(Spent {
        day: spent_since(&db.pool, user_id, Period::Day.bounds(now).0).await?,
        month: spent_since(&db.pool, user_id, Period::Month.bounds(now).0).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        crate::format::epoch_ms(rfc3339).unwrap()
    }

    #[test]
    fn days_and_months_are_utc_and_end_where_the_next_begins() {
        let now = ms("2026-12-02T18:40:00.000Z");
        assert_eq!(Period::Day.bounds(now), (ms("2026-12-02T00:00:00Z"), ms("2026-12-03T00:00:00Z")));
        assert_eq!(Period::Month.bounds(now), (ms("2026-12-01T00:00:00Z"), ms("2027-01-01T00:00:00Z")));
        let leap = ms("2028-02-29T23:59:59.999Z");
        assert_eq!(Period::Month.bounds(leap), (ms("2028-02-01T00:00:00Z"), ms("2028-03-01T00:00:00Z")));
        assert_eq!(Period::Day.bounds(leap).1, ms("2028-03-01T00:00:00Z"));
        let midnight = ms("2027-01-01T00:00:00Z");
        assert_eq!(Period::Month.bounds(midnight).0, midnight);
    }

    #[test]
    fn an_admins_cap_replaces_the_default_and_the_users_own_only_lowers() {
        let default = Caps { day: Some(1_000_000), month: None };
        let none = Caps::default();
        assert_eq!(effective(default, none, none), default);
        let admin = Caps { day: Some(5_000_000), month: Some(20_000_000) };
        assert_eq!(effective(default, admin, none), admin);
        let own = Caps { day: Some(9_000_000), month: Some(10_000_000) };
        assert_eq!(effective(default, admin, own), Caps { day: Some(5_000_000), month: Some(10_000_000) });
        assert_eq!(effective(none, none, own), own);
    }

    #[test]
    fn the_refusal_says_the_cap_what_was_used_and_when_it_resets() {
        let now = ms("2026-12-02T23:59:00Z");
        let error = AppError::from(Exceeded {
            period: Period::Day,
            cap: 100_000,
            spent: 78_000,
            estimate: 39_000,
            resets_at: Period::Day.bounds(now).1,
            now,
        });
        assert_eq!(error.code, "spend.cap_exceeded");
        assert_eq!(error.status(), 429);
        assert_eq!(error.retry_after_secs, Some(60));
        assert_eq!(
            error.message,
            "This job (≈ $0.04) would take you past your daily spending cap of $0.10 ($0.08 used). \
             The cap resets at 2026-12-03 00:00 UTC."
        );
    }
}
