//! Fixed-window counters in the database, so every replica sees the same limits.

use std::time::Duration;

use sqlx::Row;

use super::config::RateLimit;
use super::db::{Db, now_ms};

/// How long until `bucket` accepts another hit, or `None` when it is under its limit.
pub async fn blocked_for(db: &Db, bucket: &str, limit: RateLimit) -> Result<Option<Duration>, sqlx::Error> {
    let row = sqlx::query("SELECT window_start, hits FROM rate_limits WHERE bucket = $1")
        .bind(bucket)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (window_start, hits): (i64, i64) = (row.try_get("window_start")?, row.try_get("hits")?);
    Ok(remaining(window_start, hits, limit, now_ms()))
}

/// Counts one hit against `bucket` and returns how long to wait if it is now over its limit.
pub async fn hit(db: &Db, bucket: &str, limit: RateLimit) -> Result<Option<Duration>, sqlx::Error> {
    let now = now_ms();
    let window_ms = limit.window.as_millis() as i64;
    // Both engines evaluate every SET expression against the old row, so the CASEs agree.
    let row = sqlx::query(
        "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
           hits = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
           window_start = CASE WHEN rate_limits.window_start <= $3 THEN $2 ELSE rate_limits.window_start END \
         RETURNING window_start, hits",
    )
    .bind(bucket)
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(&db.pool)
    .await?;
    let (window_start, hits): (i64, i64) = (row.try_get("window_start")?, row.try_get("hits")?);
    Ok(remaining(window_start, hits - 1, limit, now))
}

/// Hits counted in `bucket`'s current window (0 when the window is over).
pub async fn hits(db: &Db, bucket: &str, limit: RateLimit) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT window_start, hits FROM rate_limits WHERE bucket = $1")
        .bind(bucket)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(0) };
    let (window_start, hits): (i64, i64) = (row.try_get("window_start")?, row.try_get("hits")?);
    Ok(if now_ms() < window_start + limit.window.as_millis() as i64 { hits } else { 0 })
}

/// Gives one hit back (an attempt counted up front turned out not to be one that should count).
pub async fn refund(db: &Db, bucket: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rate_limits SET hits = hits - 1 WHERE bucket = $1 AND hits > 0")
        .bind(bucket)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn reset(db: &Db, bucket: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM rate_limits WHERE bucket = $1").bind(bucket).execute(&db.pool).await?;
    Ok(())
}

/// Drops windows that ended long ago.
pub async fn prune(db: &Db, older_than: Duration) -> Result<u64, sqlx::Error> {
    let cutoff = now_ms() - older_than.as_millis() as i64;
    Ok(sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
        .bind(cutoff)
        .execute(&db.pool)
        .await?
        .rows_affected())
}

/// What a limit counts a client address as: the address for IPv4, its /64 for IPv6, since one
/// subscriber is usually given a whole /64 and could otherwise use a new address per attempt.
pub fn client_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        Ok(v4) => v4.to_string(),
        Err(_) => "unknown".into(),
    }
}

/// `hits_before` earlier hits in the window starting at `window_start`: blocked once they reach `max`.
fn remaining(window_start: i64, hits_before: i64, limit: RateLimit, now: i64) -> Option<Duration> {
    let window_end = window_start + limit.window.as_millis() as i64;
    (now < window_end && hits_before >= i64::from(limit.max)).then(|| Duration::from_millis((window_end - now) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit { max: 5, window: Duration::from_secs(60) };

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:ffff:ffff:ffff:fffe"), "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(client_key("not an address"), "unknown");
    }

    #[test]
    fn blocks_after_max_hits_until_the_window_ends() {
        assert_eq!(remaining(0, 4, LIMIT, 1_000), None);
        assert_eq!(remaining(0, 5, LIMIT, 1_000), Some(Duration::from_millis(59_000)));
        assert_eq!(remaining(0, 50, LIMIT, 60_000), None, "a finished window no longer blocks");
    }
}
