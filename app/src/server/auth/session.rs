//! Who is logged in: the session holds only the user id; role and status are read fresh from
//! the database on every request, so a promotion or a disable applies at once.

use tower_sessions::Session;

use super::{AuthError, User, users};
use crate::server::db::Db;

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

pub async fn require_user(session: &Session, db: &Db) -> Result<User, AuthError> {
    current_user(session, db).await?.ok_or(AuthError::Unauthenticated)
}

pub async fn require_admin(session: &Session, db: &Db) -> Result<User, AuthError> {
    let user = require_user(session, db).await?;
    if user.is_admin() { Ok(user) } else { Err(AuthError::Forbidden) }
}
