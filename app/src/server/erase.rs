//! Deleting an account and everything of it: objects in both buckets, rows, the stored key,
//! sessions, and audit and rate-limit rows that name the person. Only the audit event of the
//! deletion stays.
//!
//! The order makes the deletion safe to interrupt: the account is disabled and an erasure row
//! written first (its sessions end at once, nothing new starts), then objects go, then rows in
//! one transaction. The erasure row stays until a last pass over storage, a few minutes later,
//! has removed anything a job that was still running wrote meanwhile; the sweeper finishes any
//! deletion a crash interrupted.

use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use super::audit::{self, Action, Event};
use super::auth::User;
use super::db::{Backend, Db, now_ms};
use super::storage::{Storage, StorageError};

/// What the account holds, counted for the person before they confirm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    pub uploads: i64,
    pub jobs: i64,
    pub results: i64,
    pub has_key: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

pub async fn contents(db: &Db, user_id: &str) -> Result<Contents, sqlx::Error> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM uploads WHERE user_id = $1) AS uploads, \
                (SELECT COUNT(*) FROM jobs WHERE user_id = $1) AS jobs, \
                (SELECT COUNT(*) FROM assets WHERE user_id = $1) AS results, \
                (SELECT COUNT(*) FROM provider_keys WHERE user_id = $1) AS keys",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(Contents {
        uploads: row.try_get("uploads")?,
        jobs: row.try_get("jobs")?,
        results: row.try_get("results")?,
        has_key: row.try_get::<i64, _>("keys")? > 0,
    })
}

/// Deletes `user`'s account now; a last storage pass follows later (see [`finish_pending`]).
pub async fn delete_account(db: &Db, storage: &Storage, user: &User) -> Result<(), EraseError> {
    let mut tx = db.begin_write().await?;
    let upsert = match db.backend {
        Backend::Sqlite => "INSERT OR IGNORE INTO account_erasures (user_id, requested_at) VALUES ($1, $2)",
        Backend::Postgres => {
            "INSERT INTO account_erasures (user_id, requested_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING"
        }
    };
    sqlx::query(upsert).bind(&user.id).bind(now_ms()).execute(&mut *tx).await?;
    sqlx::query("UPDATE users SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2")
        .bind(now_ms())
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    crate::server::auth::verified::changed_in(&mut tx, db, &user.id).await?;
    tx.commit().await?;
    db.sessions.forget_user(&user.id);
    erase(db, storage, &user.id, &user.email).await
}

/// Objects, then rows. Safe to run again after an interruption.
async fn erase(db: &Db, storage: &Storage, user_id: &str, email: &str) -> Result<(), EraseError> {
    let counted = contents(db, user_id).await?;
    delete_objects(db, storage, user_id).await?;
    let like_email = format!("%{}%", like_escaped(email));
    let like_id = format!("%{}%", like_escaped(user_id));
    let mut tx = db.begin_write().await?;
    // Sessions store the id inside serialized data; any session naming the account goes.
    let sessions = match db.backend {
        Backend::Sqlite => "DELETE FROM tower_sessions WHERE instr(data, CAST($1 AS BLOB)) > 0",
        Backend::Postgres => "DELETE FROM tower_sessions.session WHERE position(convert_to($1, 'UTF8') in data) > 0",
    };
    sqlx::query(sessions).bind(user_id).execute(&mut *tx).await?;
    // What an admin opened of other accounts stays theirs to read: the account's owner is told
    // who looked by the access's row, which keeps the admin's address.
    sqlx::query("UPDATE audit_events SET actor_id = NULL WHERE actor_id = $1 AND action IN ($2, $3, $4)")
        .bind(user_id)
        .bind(Action::AccessOpened.as_str())
        .bind(Action::GalleryViewed.as_str())
        .bind(Action::AssetViewed.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM audit_events WHERE actor_id = $1 OR subject_id = $1 \
         OR detail_json LIKE $2 ESCAPE '\\' OR detail_json LIKE $3 ESCAPE '\\'",
    )
    .bind(user_id)
    .bind(&like_email)
    .bind(&like_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM rate_limits WHERE bucket LIKE $1 ESCAPE '\\' OR bucket LIKE $2 ESCAPE '\\'")
        .bind(&like_email)
        .bind(&like_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM multipart_uploads WHERE object_key LIKE $1 ESCAPE '\\'")
        .bind(format!("%/{}/%", like_escaped(user_id)))
        .execute(&mut *tx)
        .await?;
    // The prompt search index is not a table a cascade reaches (on SQLite).
    if db.backend == Backend::Sqlite {
        sqlx::query("DELETE FROM job_search WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
    }
    // Keys, uploads, usage, jobs, results and logins go with the account (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
    tx.commit().await?;
    if deleted.rows_affected() > 0 {
        let detail = json!({
            "uploads": counted.uploads, "jobs": counted.jobs, "results": counted.results, "key": counted.has_key,
        });
        audit::record(db, Event::new(Action::AccountDeleted).subject("user", user_id).detail(detail)).await;
    }
    Ok(())
}

/// Every object of the account in both buckets, and the multipart uploads its jobs left open.
async fn delete_objects(db: &Db, storage: &Storage, user_id: &str) -> Result<(), EraseError> {
    let jobs: Vec<String> = sqlx::query("SELECT id FROM jobs WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    for job in &jobs {
        super::storage::multipart::abort_recorded(storage, db, Some(job), 0).await?;
    }
    for (bucket, area) in [
        (&storage.uploads_bucket, "uploads"),
        (&storage.uploads_bucket, "sources"),
        (&storage.results_bucket, "results"),
        (&storage.results_bucket, "thumbs"),
    ] {
        delete_prefix(storage, bucket, &format!("{area}/{user_id}/")).await?;
    }
    Ok(())
}

async fn delete_prefix(storage: &Storage, bucket: &str, prefix: &str) -> Result<(), StorageError> {
    // Deleting changes the listing, so each round lists from the start again.
    loop {
        let (objects, more) = storage.list(bucket, prefix, None).await?;
        for (key, _) in &objects {
            storage.delete(bucket, key).await?;
        }
        if !more || objects.is_empty() {
            return Ok(());
        }
    }
}

fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Finishes deletions: one a crash interrupted (the account still exists) is done again; one
/// requested at least `last_pass_after` ago gets its last storage pass and is forgotten.
/// Returns how many were finished.
pub async fn finish_pending(db: &Db, storage: &Storage, last_pass_after: Duration) -> Result<u64, EraseError> {
    let rows = sqlx::query(
        "SELECT e.user_id, e.requested_at, u.email FROM account_erasures e LEFT JOIN users u ON u.id = e.user_id \
         ORDER BY e.requested_at LIMIT 100",
    )
    .fetch_all(&db.pool)
    .await?;
    let due = now_ms() - last_pass_after.as_millis() as i64;
    let mut finished = 0;
    for row in rows {
        let user_id: String = row.try_get("user_id")?;
        let requested_at: i64 = row.try_get("requested_at")?;
        if let Some(email) = row.try_get::<Option<String>, _>("email")? {
            erase(db, storage, &user_id, &email).await?;
        }
        if requested_at <= due {
            delete_objects(db, storage, &user_id).await?;
            sqlx::query("DELETE FROM account_erasures WHERE user_id = $1").bind(&user_id).execute(&db.pool).await?;
            finished += 1;
        }
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_match_only_the_text_itself() {
        assert_eq!(super::like_escaped("a_b%c\\d"), "a\\_b\\%c\\\\d");
    }
}
