//! Who is logged in: the session holds only the user id; role and status are read fresh from
//! the database on every request, so a promotion or a disable applies at once.

use std::sync::Arc;

use tower_sessions::{Session, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::{AuthError, User, users};
use crate::server::db::{Db, SessionPool};

const USER_ID: &str = "user_id";

/// Binds the session to `user` under a fresh session id (no fixation across login).
pub async fn log_in(session: &Session, user: &User) -> Result<(), AuthError> {
    session.insert(USER_ID, &user.id).await?;
    session.cycle_id().await?;
    Ok(())
}

/// Deletes the session row and clears the cookie.
pub async fn log_out(session: &Session) -> Result<(), AuthError> {
    session.flush().await?;
    Ok(())
}

pub async fn current_user(session: &Session, db: &Db) -> Result<Option<User>, AuthError> {
    let Some(id) = session.get::<String>(USER_ID).await? else { return Ok(None) };
    match users::find(db, &id).await? {
        Some(user) if !user.disabled => Ok(Some(user)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

/// A handle on the session table (the same one the session layer uses).
pub fn store(pool: &SessionPool) -> Arc<dyn SessionStore> {
    match pool {
        SessionPool::Sqlite(pool) => Arc::new(SqliteStore::new(pool.clone())),
        SessionPool::Postgres(pool) => Arc::new(PostgresStore::new(pool.clone())),
    }
}

/// Whether session `id` still exists, unexpired, for `user_id`, and the account is still
/// allowed in: false after logout, expiry or a disable.
pub async fn still_valid(store: &dyn SessionStore, db: &Db, id: &tower_sessions::session::Id, user_id: &str) -> bool {
    let Ok(Some(record)) = store.load(id).await else { return false };
    if record.data.get(USER_ID).and_then(|v| v.as_str()) != Some(user_id) {
        return false;
    }
    matches!(users::find(db, user_id).await, Ok(Some(user)) if !user.disabled)
}

pub async fn require_user(session: &Session, db: &Db) -> Result<User, AuthError> {
    current_user(session, db).await?.ok_or(AuthError::Unauthenticated)
}

pub async fn require_admin(session: &Session, db: &Db) -> Result<User, AuthError> {
    let user = require_user(session, db).await?;
    if user.is_admin() { Ok(user) } else { Err(AuthError::Forbidden) }
}
