//! The `logins` table: where an account is signed in. A session carries its login's id; the
//! row says which device, from where, since when and last seen when, and deleting it ends
//! that session everywhere at its next request.

use sqlx::Row;

use super::AuthError;
use super::users::{self, User};
use crate::server::db::{Db, new_id, now_ms};

/// Last-seen times are written at most this often per login, so reading pages costs no write.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// What a request says about where it comes from.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub ip: String,
    pub user_agent: Option<String>,
}

/// A login as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub id: String,
    pub device: String,
    pub ip: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

pub async fn open(db: &Db, user_id: &str, seen: &Seen) -> Result<String, AuthError> {
    let (id, now) = (new_id(), now_ms());
    sqlx::query(
        "INSERT INTO logins (id, user_id, created_at, last_seen_at, ip, device) VALUES ($1, $2, $3, $3, $4, $5)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(now)
    .bind(&seen.ip)
    .bind(device(seen.user_agent.as_deref()))
    .execute(&db.pool)
    .await?;
    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2").bind(now).bind(user_id).execute(&db.pool).await?;
    Ok(id)
}

/// The account behind login `id` of `user_id`, when the login still stands; refreshes its
/// last-seen time and address when `seen` is given and the last one is stale.
pub async fn user_of(db: &Db, id: &str, user_id: &str, seen: Option<&Seen>) -> Result<Option<User>, AuthError> {
    // The login and its account in one round trip: this runs on every signed-in request.
    let found = users::with_login(db, id, user_id).await?;
    Ok(touched(db, id, found, seen).await?.map(|(user, _)| user))
}

/// Like [`user_of`], and only while session `session_id` still stands (read in the same query);
/// with the login's last-seen time.
pub async fn user_of_session(
    db: &Db,
    session_id: &str,
    id: &str,
    user_id: &str,
    seen: Option<&Seen>,
) -> Result<Option<(User, i64)>, AuthError> {
    let found = users::with_session(db, session_id, id, user_id).await?;
    touched(db, id, found, seen).await
}

/// Refreshes login `id`'s last-seen time and address, at most once a minute; answers the
/// account with the login's last-seen time as it now stands.
async fn touched(
    db: &Db,
    id: &str,
    found: Option<(User, i64)>,
    seen: Option<&Seen>,
) -> Result<Option<(User, i64)>, AuthError> {
    let Some((user, last_seen)) = found else { return Ok(None) };
    let now = now_ms();
    if let Some(seen) = seen.filter(|_| now - last_seen >= TOUCH_EVERY_MS) {
        sqlx::query("UPDATE logins SET last_seen_at = $1, ip = $2 WHERE id = $3")
            .bind(now)
            .bind(&seen.ip)
            .bind(id)
            .execute(&db.pool)
            .await?;
        return Ok(Some((user, now)));
    }
    Ok(Some((user, last_seen)))
}

/// Whether login `id` of `user_id` still stands.
pub async fn stands(db: &Db, id: &str, user_id: &str) -> Result<bool, AuthError> {
    let row = sqlx::query("SELECT 1 AS one FROM logins WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some())
}

/// The account's logins, most recently seen first.
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<Login>, AuthError> {
    let rows = sqlx::query(
        "SELECT id, device, ip, created_at, last_seen_at FROM logins WHERE user_id = $1 \
         ORDER BY last_seen_at DESC, id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Login {
                id: row.try_get("id")?,
                device: row.try_get("device")?,
                ip: row.try_get("ip")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Ends login `id` if it is `user_id`'s; false when there was no such login of theirs.
pub async fn end(db: &Db, user_id: &str, id: &str) -> Result<bool, AuthError> {
    let done = sqlx::query("DELETE FROM logins WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    super::verified::changed(db, user_id).await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every login of `user_id` but `keep`; how many ended.
pub async fn end_all_but(db: &Db, user_id: &str, keep: &str) -> Result<u64, AuthError> {
    let done = sqlx::query("DELETE FROM logins WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(keep)
        .execute(&db.pool)
        .await?;
    super::verified::changed(db, user_id).await?;
    Ok(done.rows_affected())
}

/// A short name for the browser and system in a User-Agent ("Firefox on Windows"): enough for
/// a person to tell their devices apart, never the raw header (which can be anything).
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else { return "Unknown device".into() };
    // Order matters: Edge and Opera also say Chrome; Chrome also says Safari.
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("Browser on {s}"),
        (None, None) => "Unknown device".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_are_named_by_browser_and_system_and_never_echo_the_header() {
        let chrome_linux =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(device(Some(chrome_linux)), "Chrome on Linux");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36 Edg/120";
        assert_eq!(device(Some(edge)), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605 Version/17 Safari/604.1";
        assert_eq!(device(Some(iphone)), "Safari on iPhone");
        assert_eq!(device(Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko Firefox/128.0")), "Firefox on Linux");
        assert_eq!(device(Some("<script>alert(1)</script>")), "Unknown device");
        assert_eq!(device(None), "Unknown device");
    }
}
