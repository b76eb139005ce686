//! Accounts as an admin sees them: who, since when, last sign-in, what they store and how much
//! their jobs cost this month; and the changes only an admin makes. Disabling an account or
//! changing its role ends its sessions at once, on every server: its logins are deleted, the
//! auth epoch moves, and its live streams are told to check (a role takes effect at the next
//! sign-in, under a new session id).

use sqlx::Row;

use crate::server::audit::{self, Action, Event};
use crate::server::auth::users::{self, Role, User};
use crate::server::auth::verified;
use crate::server::db::{Db, now_ms, parse_id};
use crate::server::spend::Period;
use crate::states::{JobState, UploadState, sql_list};

/// One account with its usage.
#[derive(Clone, Debug)]
pub struct Listed {
    pub user: User,
    pub last_login_at: Option<i64>,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub results: i64,
    pub result_bytes: i64,
    pub jobs_this_month: i64,
    pub spend_this_month: i64,
}

/// Accounts, newest first, `limit` at a time after the account `after`; those whose address
/// contains `search` when given. Answers the page and the cursor of the next one.
pub async fn page(
    db: &Db,
    search: Option<&str>,
    after: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<(Vec<Listed>, Option<String>), sqlx::Error> {
    let limit = limit.clamp(1, 200);
    let search =
        search.map(str::trim).filter(|s| !s.is_empty()).map(|s| format!("%{}%", like_escaped(&s.to_lowercase())));
    let mut listed = select(db, Which::Page { search, after: after.and_then(parse_id) }, limit + 1, now).await?;
    let next = (listed.len() as i64 > limit).then(|| {
        listed.truncate(limit as usize);
        listed.last().map(|l| l.user.id.clone())
    });
    Ok((listed, next.flatten()))
}

/// One account with its usage, by id.
pub async fn one(db: &Db, id: &str, now: i64) -> Result<Option<Listed>, sqlx::Error> {
    let Some(id) = parse_id(id) else { return Ok(None) };
    Ok(select(db, Which::One(id), 1, now).await?.pop())
}

enum Which {
    Page { search: Option<String>, after: Option<String> },
    One(String),
}

async fn select(db: &Db, which: Which, limit: i64, now: i64) -> Result<Vec<Listed>, sqlx::Error> {
    let mut binds: Vec<String> = Vec::new();
    let mut wheres = vec!["1 = 1".to_owned()];
    match which {
        Which::One(id) => {
            binds.push(id);
            wheres.push("u.id = $3".into());
        }
        Which::Page { search, after } => {
            if let Some(after) = after {
                binds.push(after);
                wheres.push(format!(
                    "(u.created_at, u.id) < (SELECT c.created_at, c.id FROM users c WHERE c.id = ${})",
                    binds.len() + 2
                ));
            }
            if let Some(search) = search {
                binds.push(search);
                wheres.push(format!("u.email LIKE ${} ESCAPE '\\'", binds.len() + 2));
            }
        }
    }
    // Each figure is one indexed look at the account's own rows; a page holds at most `limit`.
    let sum = |expr: &str| format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)");
    let sql = format!(
        "SELECT u.id, u.email, u.role, u.disabled_at, u.created_at, u.last_login_at, \
         (SELECT COUNT(*) FROM uploads p WHERE p.user_id = u.id AND p.state = '{ready}') AS uploads, \
         (SELECT {upload_bytes} FROM uploads p WHERE p.user_id = u.id AND p.state = '{ready}') AS upload_bytes, \
         (SELECT COUNT(*) FROM assets a WHERE a.user_id = u.id) AS results, \
         (SELECT {result_bytes} FROM assets a WHERE a.user_id = u.id) AS result_bytes, \
         (SELECT COUNT(*) FROM jobs j WHERE j.user_id = u.id AND j.created_at >= $1) AS jobs_this_month, \
         (SELECT {spend} FROM jobs j WHERE j.user_id = u.id AND j.created_at >= $1 \
            AND j.estimate_micros IS NOT NULL AND j.state IN ({billable})) AS spend_this_month \
         FROM users u WHERE {wheres} ORDER BY u.created_at DESC, u.id DESC LIMIT $2",
        ready = UploadState::Ready.as_str(),
        upload_bytes = sum("p.byte_size"),
        result_bytes = sum("a.byte_size"),
        spend = sum("j.estimate_micros"),
        billable = sql_list(&JobState::BILLABLE, JobState::as_str),
        wheres = wheres.join(" AND "),
    );
    let mut query = sqlx::query(&sql).bind(Period::Month.bounds(now).0).bind(limit);
    for bind in binds {
        query = query.bind(bind);
    }
    let rows = query.fetch_all(&db.pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Listed {
                user: users::from_row(row)?,
                last_login_at: row.try_get("last_login_at")?,
                uploads: row.try_get("uploads")?,
                upload_bytes: row.try_get("upload_bytes")?,
                results: row.try_get("results")?,
                result_bytes: row.try_get("result_bytes")?,
                jobs_this_month: row.try_get("jobs_this_month")?,
                spend_this_month: row.try_get("spend_this_month")?,
            })
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Disable,
    Enable,
    Role(Role),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such user")]
    NotFound,
    #[error("an admin's own account")]
    OwnAccount,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<ChangeError> for crate::error::AppError {
    fn from(err: ChangeError) -> Self {
        use crate::error::{AppError, code};
        match err {
            ChangeError::NotFound => AppError::new(code::ADMIN_USER_NOT_FOUND, "There is no such user."),
            ChangeError::OwnAccount => AppError::new(
                code::ADMIN_OWN_ACCOUNT,
                "You cannot disable or demote your own account: ask another admin.",
            ),
            ChangeError::Database(_) | ChangeError::Internal(_) => {
                tracing::error!(%err, "admin change failed");
                AppError::internal()
            }
        }
    }
}

/// Makes `change` to account `target` on behalf of `admin`; answers the account as it is now.
/// An admin cannot disable or demote themselves (so there is always an admin left who can
/// sign in).
pub async fn change(
    services: &crate::server::state::Services,
    admin: &User,
    target: &str,
    change: Change,
    ip: &str,
) -> Result<User, ChangeError> {
    let db = &services.db;
    let target = parse_id(target).ok_or(ChangeError::NotFound)?;
    let user = users::find(db, &target).await.map_err(internal)?.ok_or(ChangeError::NotFound)?;
    if user.id == admin.id && change != Change::Enable && change != Change::Role(Role::Admin) {
        return Err(ChangeError::OwnAccount);
    }
    let (sql, action, ends_sessions) = match change {
        Change::Disable => {
            ("UPDATE users SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL", Action::UserDisabled, true)
        }
        Change::Enable => (
            "UPDATE users SET disabled_at = NULL WHERE id = $1 AND disabled_at IS NOT NULL",
            Action::UserEnabled,
            false,
        ),
        Change::Role(Role::Admin) => {
            ("UPDATE users SET role = 'admin' WHERE id = $1 AND role <> 'admin'", Action::UserPromoted, true)
        }
        Change::Role(Role::User) => {
            ("UPDATE users SET role = 'user' WHERE id = $1 AND role <> 'user'", Action::UserDemoted, true)
        }
    };
    let mut tx = db.begin_write().await?;
    let mut query = sqlx::query(sql).bind(&user.id);
    if change == Change::Disable {
        query = query.bind(now_ms());
    }
    let changed = query.execute(&mut *tx).await?.rows_affected() > 0;
    if changed {
        if ends_sessions {
            sqlx::query("DELETE FROM logins WHERE user_id = $1").bind(&user.id).execute(&mut *tx).await?;
        }
        verified::changed_in(&mut tx, db, &user.id).await?;
        let event = Event::new(action).actor(&admin.id).subject("user", &user.id).ip(ip);
        audit::record_in(&mut tx, event.detail(serde_json::json!({ "email": user.email }))).await?;
    }
    tx.commit().await?;
    if changed {
        db.sessions.forget_user(&user.id);
        services.jobs.events.account_changed(&user.id).await;
        if change == Change::Enable {
            // Queued jobs held while the account was disabled may go now.
            services.jobs.wake.notify_one();
        }
    }
    users::find(db, &user.id).await.map_err(internal)?.ok_or(ChangeError::NotFound)
}

fn internal(err: crate::server::auth::AuthError) -> ChangeError {
    ChangeError::Internal(err.to_string())
}

/// `%`, `_` and `\` taken literally in a `LIKE … ESCAPE '\'` pattern.
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
