//! An admin's look into another account's gallery, accountably: only after giving a reason, only
//! for a limited time (then the reason is asked again), read-only, and every page of the grid
//! and every result opened is written to the audit log with the reason before anything is
//! shown. The owner sees each access and what it opened on their Account tab.

use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use crate::error::{AppError, code};
use crate::server::audit::{self, Action, Event};
use crate::server::auth::users::{self, User};
use crate::server::db::{Db, new_id, parse_id};

/// A reason says something: "checking" is not one.
pub const REASON_MIN_CHARS: usize = 10;
pub const REASON_MAX_CHARS: usize = 500;
/// The owner's list shows this many accesses, newest first, and at most this many of the
/// results they opened (the audit log keeps them all).
pub const OWNER_LIST: i64 = 50;
pub const OWNER_LIST_OPENED: i64 = 1000;

/// One access: who, whose, why, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub admin_id: Option<String>,
    pub admin_email: String,
    pub owner_id: String,
    pub reason: String,
    pub started_at: i64,
    pub expires_at: i64,
    pub pages_viewed: i64,
    pub assets_viewed: i64,
}

const COLUMNS: &str =
    "id, admin_id, admin_email, owner_id, reason, started_at, expires_at, pages_viewed, assets_viewed";

fn grant(row: &sqlx::any::AnyRow) -> Result<Grant, sqlx::Error> {
    Ok(Grant {
        id: row.try_get("id")?,
        admin_id: row.try_get("admin_id")?,
        admin_email: row.try_get("admin_email")?,
        owner_id: row.try_get("owner_id")?,
        reason: row.try_get("reason")?,
        started_at: row.try_get("started_at")?,
        expires_at: row.try_get("expires_at")?,
        pages_viewed: row.try_get("pages_viewed")?,
        assets_viewed: row.try_get("assets_viewed")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no such account")]
    NoSuchAccount,
    #[error("an admin's own gallery")]
    OwnAccount,
    #[error("{0}")]
    Reason(String),
    #[error("no current access")]
    Required,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<AccessError> for AppError {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::NoSuchAccount => AppError::new(code::ADMIN_USER_NOT_FOUND, "There is no such user."),
            AccessError::OwnAccount => {
                AppError::new(code::ADMIN_OWN_ACCOUNT, "This is your own account: your gallery is on the Gallery tab.")
            }
            AccessError::Reason(message) => AppError::new(code::ADMIN_REASON_REQUIRED, message).on_field("reason"),
            AccessError::Required => AppError::new(
                code::ADMIN_ACCESS_REQUIRED,
                "Give a reason to look at this account's gallery; access is for a limited time.",
            ),
            AccessError::Database(_) | AccessError::Internal(_) => {
                tracing::error!(%err, "admin access failed");
                AppError::internal()
            }
        }
    }
}

/// The reason as it is kept: trimmed, on one line, of a sensible length.
pub fn reason(raw: &str) -> Result<String, AccessError> {
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars = text.chars().count();
    if chars < REASON_MIN_CHARS {
        return Err(AccessError::Reason(format!(
            "Say why you need to look (at least {REASON_MIN_CHARS} characters); the account's owner will read it."
        )));
    }
    if chars > REASON_MAX_CHARS {
        return Err(AccessError::Reason(format!("Keep the reason to {REASON_MAX_CHARS} characters.")));
    }
    // The owner reads it: nothing in it may hide or reorder what it says.
    if text.chars().any(|c| c.is_control() || crate::server::auth::credentials::is_invisible(c)) {
        return Err(AccessError::Reason("The reason cannot contain control or invisible characters.".into()));
    }
    Ok(text)
}

/// The account an admin wants to look into: it exists and is not the admin's own.
pub async fn owner(db: &Db, admin: &User, owner_id: &str) -> Result<User, AccessError> {
    let id = parse_id(owner_id).ok_or(AccessError::NoSuchAccount)?;
    let owner = users::find(db, &id).await.map_err(|err| AccessError::Internal(err.to_string()))?;
    let owner = owner.ok_or(AccessError::NoSuchAccount)?;
    if owner.id == admin.id {
        return Err(AccessError::OwnAccount);
    }
    Ok(owner)
}

/// Gives `admin` access to `owner`'s gallery for `window` from `now`, for `reason` (already
/// checked by [`reason`]). An access the admin still had to that account ends: one at a time.
pub async fn open(
    db: &Db,
    admin: &User,
    owner: &User,
    reason: &str,
    window: Duration,
    ip: &str,
    now: i64,
) -> Result<Grant, AccessError> {
    let expires_at = now + i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
    let id = new_id();
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE admin_access SET expires_at = $3 WHERE admin_id = $1 AND owner_id = $2 AND expires_at > $3")
        .bind(&admin.id)
        .bind(&owner.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO admin_access (id, admin_id, admin_email, owner_id, reason, started_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&admin.id)
    .bind(&admin.email)
    .bind(&owner.id)
    .bind(reason)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(Action::AccessOpened).actor(&admin.id).subject("user", &owner.id).ip(ip);
    let detail = json!({ "access": id, "reason": reason, "until": crate::server::db::rfc3339(expires_at) });
    audit::record_in(&mut tx, event.detail(detail)).await?;
    tx.commit().await?;
    Ok(Grant {
        id,
        admin_id: Some(admin.id.clone()),
        admin_email: admin.email.clone(),
        owner_id: owner.id.clone(),
        reason: reason.to_owned(),
        started_at: now,
        expires_at,
        pages_viewed: 0,
        assets_viewed: 0,
    })
}

/// `admin`'s access to `owner_id`'s gallery that is still running at `now`.
pub async fn current(db: &Db, admin_id: &str, owner_id: &str, now: i64) -> Result<Option<Grant>, AccessError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM admin_access WHERE admin_id = $1 AND owner_id = $2 AND expires_at > $3 \
         ORDER BY expires_at DESC LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(admin_id).bind(owner_id).bind(now).fetch_optional(&db.pool).await?;
    Ok(row.as_ref().map(grant).transpose()?)
}

/// [`current`], or the error that asks for a reason.
pub async fn require(db: &Db, admin_id: &str, owner_id: &str, now: i64) -> Result<Grant, AccessError> {
    current(db, admin_id, owner_id, now).await?.ok_or(AccessError::Required)
}

/// Ends `admin`'s access to `owner_id`'s gallery now (the admin is done looking).
pub async fn end(db: &Db, admin_id: &str, owner_id: &str, now: i64) -> Result<(), AccessError> {
    sqlx::query("UPDATE admin_access SET expires_at = $3 WHERE admin_id = $1 AND owner_id = $2 AND expires_at > $3")
        .bind(admin_id)
        .bind(owner_id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// What an admin was shown under an access.
pub enum Viewed<'a> {
    /// A page of the gallery's grid: these results' thumbnails.
    Page(&'a [String]),
    /// One result opened in the viewer.
    Asset(&'a str),
}

/// Writes what `grant`'s admin is about to be shown, with the reason, to the audit log (and the
/// access's counts). It is written before the answer: if it cannot be, nothing is shown. So it
/// records what was sent, and once more what a page render the server dropped as stuck and
/// rendered again would have shown (rare, see the server's page renderer): it may over-count,
/// never under-count.
pub async fn record_view(db: &Db, grant: &Grant, viewed: Viewed<'_>, ip: &str, now: i64) -> Result<(), AccessError> {
    let actor = grant.admin_id.as_deref().unwrap_or_default();
    let (action, counter, detail) = match viewed {
        Viewed::Page(ids) => (
            Action::GalleryViewed,
            "pages_viewed",
            json!({ "owner": grant.owner_id, "reason": grant.reason, "results": ids }),
        ),
        Viewed::Asset(id) => (
            Action::AssetViewed,
            "assets_viewed",
            json!({ "owner": grant.owner_id, "reason": grant.reason, "result": id }),
        ),
    };
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("UPDATE admin_access SET {counter} = {counter} + 1, last_viewed_at = $2 WHERE id = $1"))
        .bind(&grant.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let event = Event::new(action).actor(actor).subject("access", &grant.id).ip(ip).detail(detail);
    audit::record_in(&mut tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// An access to the owner's account as they see it: with the results it opened, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub grant: Grant,
    /// `(result id, when)`.
    pub opened: Vec<(String, i64)>,
}

/// The latest accesses to `owner_id`'s gallery, each with what it opened.
pub async fn of_owner(db: &Db, owner_id: &str) -> Result<Vec<Seen>, AccessError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM admin_access WHERE owner_id = $1 ORDER BY started_at DESC, id DESC LIMIT {OWNER_LIST}"
    );
    let rows = sqlx::query(&sql).bind(owner_id).fetch_all(&db.pool).await?;
    let grants = rows.iter().map(grant).collect::<Result<Vec<_>, _>>()?;
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    let marks = (0..grants.len()).map(|n| format!("${}", n + 2)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT subject_id, at, detail_json FROM audit_events \
         WHERE action = $1 AND subject_type = 'access' AND subject_id IN ({marks}) ORDER BY at DESC, id DESC \
         LIMIT {OWNER_LIST_OPENED}"
    );
    let mut query = sqlx::query(&sql).bind(Action::AssetViewed.as_str());
    for g in &grants {
        query = query.bind(g.id.as_str());
    }
    let events = query.fetch_all(&db.pool).await?;
    let mut seen: Vec<Seen> = grants.into_iter().map(|grant| Seen { grant, opened: Vec::new() }).collect();
    for event in &events {
        let access: String = event.try_get("subject_id")?;
        let at: i64 = event.try_get("at")?;
        let detail: String = event.try_get("detail_json")?;
        let result = serde_json::from_str::<serde_json::Value>(&detail)
            .ok()
            .and_then(|d| d.get("result").and_then(|r| r.as_str()).map(str::to_owned));
        if let (Some(result), Some(entry)) = (result, seen.iter_mut().find(|s| s.grant.id == access)) {
            entry.opened.push((result, at));
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_kept_on_one_line_and_must_say_something() {
        assert_eq!(
            reason("  Support ticket\n #4512:  missing results ").unwrap(),
            "Support ticket #4512: missing results"
        );
        for short in ["", "   ", "checking", "\n\n\t"] {
            assert!(matches!(reason(short), Err(AccessError::Reason(_))), "{short:?}");
        }
        assert!(reason(&"x".repeat(REASON_MAX_CHARS)).is_ok());
        assert!(matches!(reason(&"x".repeat(REASON_MAX_CHARS + 1)), Err(AccessError::Reason(_))));
        for hidden in ["a long enough reason \u{7}bell", "a long enough \u{202E}reason"] {
            assert!(matches!(reason(hidden), Err(AccessError::Reason(_))), "{hidden:?}");
        }
        // Counted in characters, not bytes.
        assert!(reason(&"é".repeat(REASON_MAX_CHARS)).is_ok());
    }

    proptest::proptest! {
        /// Whatever is typed, a kept reason is trimmed, on one line, within bounds and free of
        /// hidden characters, and giving it again keeps it as it is.
        #[test]
        fn any_text_is_refused_or_kept_clean(raw in "\\PC{0,40}|[\\s\\S]{0,600}") {
            if let Ok(kept) = reason(&raw) {
                let chars = kept.chars().count();
                proptest::prop_assert!((REASON_MIN_CHARS..=REASON_MAX_CHARS).contains(&chars));
                proptest::prop_assert_eq!(kept.trim(), kept.as_str());
                let hidden = kept.chars().any(|c| c.is_control() || crate::server::auth::credentials::is_invisible(c));
                proptest::prop_assert!(!hidden, "hidden characters kept");
                proptest::prop_assert_eq!(reason(&kept).unwrap(), kept);
            }
        }
    }
}
