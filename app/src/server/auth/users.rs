//! The `users` table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AuthError, Email};
use crate::server::db::{Backend, Db, is_unique_violation, new_id, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    fn parse(raw: &str) -> Self {
        if raw == "admin" { Self::Admin } else { Self::User }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Which role a new account gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewRole {
    Fixed(Role),
    /// Admin when no account exists yet (operator opt-in), else user. Decided inside the INSERT.
    AdminIfFirst,
}

const COLUMNS: &str = "id, email, role, disabled_at, created_at";

pub(crate) fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(&row.try_get::<String, _>("role")?),
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
        created_at: row.try_get("created_at")?,
    })
}

pub async fn create(db: &Db, email: &Email, password_hash: &str, role: NewRole) -> Result<User, AuthError> {
    let (role, admin_if_first) = match role {
        NewRole::Fixed(role) => (role, 0_i64),
        NewRole::AdminIfFirst => (Role::User, 1_i64),
    };
    let sql = format!(
        "INSERT INTO users (id, email, password_hash, role, created_at) \
         SELECT $1, $2, $3, CASE WHEN $4 = 1 AND NOT EXISTS (SELECT 1 FROM users) THEN 'admin' ELSE $5 END, $6 \
         RETURNING {COLUMNS}"
    );
    let (id, email, hash, now) = (new_id(), email.as_str().to_owned(), password_hash.to_owned(), now_ms());
    // Two first signups at once must not both see an empty table.
    let row = db
        .exclusive("users:first", move |conn| {
            Box::pin(async move {
                sqlx::query(&sql)
                    .bind(id)
                    .bind(email)
                    .bind(hash)
                    .bind(admin_if_first)
                    .bind(role.as_str())
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await
            })
        })
        .await
        .map_err(|e| if is_unique_violation(&e) { AuthError::EmailTaken } else { e.into() })?;
    Ok(from_row(&row)?)
}

/// The account and its password hash, for login.
pub async fn find_for_login(db: &Db, email: &Email) -> Result<Option<(User, String)>, AuthError> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM users WHERE email = $1");
    let row = sqlx::query(&sql).bind(email.as_str()).fetch_optional(&db.pool).await?;
    row.map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?))).transpose()
}

/// The stored hash of the account's password (`None` when there is no such account).
pub async fn password_hash(db: &Db, id: &str) -> Result<Option<String>, AuthError> {
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(|row| row.try_get("password_hash")).transpose()?)
}

pub async fn find(db: &Db, id: &str) -> Result<Option<User>, AuthError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// The account of login `login_id`, with when that login was last seen, if the login stands.
pub async fn with_login(db: &Db, login_id: &str, user_id: &str) -> Result<Option<(User, i64)>, AuthError> {
    let columns = COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {columns}, l.last_seen_at FROM logins l JOIN users u ON u.id = l.user_id \
         WHERE l.id = $1 AND l.user_id = $2"
    );
    let row = sqlx::query(&sql).bind(login_id).bind(user_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| Ok::<_, sqlx::Error>((from_row(&r)?, r.try_get("last_seen_at")?))).transpose()?)
}

/// Like [`with_login`], and only while session `session_id` still exists unexpired: what a
/// signed-in request needs to know, in one round trip, without reading the session's record.
/// The session table is the session layer's own (`tower_sessions`, or `tower_sessions.session`
/// on PostgreSQL).
pub async fn with_session(
    db: &Db,
    session_id: &str,
    login_id: &str,
    user_id: &str,
) -> Result<Option<(User, i64)>, AuthError> {
    let columns = COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ");
    let (table, unexpired) = match db.backend {
        // The store writes its expiry as text that SQLite's date functions read.
        Backend::Sqlite => ("tower_sessions", "datetime(s.expiry_date) > datetime('now')"),
        Backend::Postgres => ("\"tower_sessions\".\"session\"", "s.expiry_date > now()"),
    };
    let sql = format!(
        "SELECT {columns}, l.last_seen_at FROM {table} s JOIN logins l ON l.id = $2 AND l.user_id = $3 \
         JOIN users u ON u.id = l.user_id WHERE s.id = $1 AND {unexpired}"
    );
    let mut lane = db.lanes.take().await?;
    let row = sqlx::query(&sql).bind(session_id).bind(login_id).bind(user_id).fetch_optional(&mut *lane).await?;
    lane.done();
    Ok(row.map(|r| Ok::<_, sqlx::Error>((from_row(&r)?, r.try_get("last_seen_at")?))).transpose()?)
}

pub async fn find_by_email(db: &Db, email: &Email) -> Result<Option<User>, AuthError> {
    Ok(find_for_login(db, email).await?.map(|(user, _)| user))
}

/// Admins other than `id` who may still sign in.
pub async fn other_admins(db: &Db, id: &str) -> Result<i64, AuthError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("n")?)
}

/// Every account, oldest first (the admin's user list).
pub async fn list(db: &Db) -> Result<Vec<User>, AuthError> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY created_at, id");
    let rows = sqlx::query(&sql).fetch_all(&db.pool).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn set_role(db: &Db, id: &str, role: Role) -> Result<(), AuthError> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role.as_str()).bind(id).execute(&db.pool).await?;
    super::verified::changed(db, id).await?;
    Ok(())
}

/// Changes the account's address; another account holding it is [`AuthError::EmailTaken`].
pub async fn set_email(db: &Db, id: &str, email: &Email) -> Result<(), AuthError> {
    sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
        .bind(email.as_str())
        .bind(id)
        .execute(&db.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { AuthError::EmailTaken } else { e.into() })?;
    super::verified::changed(db, id).await?;
    Ok(())
}

pub async fn set_password_hash(db: &Db, id: &str, password_hash: &str) -> Result<(), AuthError> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}
