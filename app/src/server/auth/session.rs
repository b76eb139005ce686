//! Who is logged in: the session holds the user id and the id of its login (see [`logins`]);
//! role, status and the login itself are read fresh from the database on every request, so a
//! promotion, a disable or an ended session applies at once.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use tower_sessions::{Session, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::logins::{self, Seen};
use super::{AuthError, User, users};
use crate::server::db::{Db, SessionPool, now_ms};

const USER_ID: &str = "user_id";
const LOGIN_ID: &str = "login_id";

/// Binds the session to `user` under a fresh session id (no fixation across login) and records
/// the login.
pub async fn log_in(session: &Session, db: &Db, user: &User, seen: &Seen) -> Result<(), AuthError> {
    let login = logins::open(db, &user.id, seen).await?;
    session.insert(USER_ID, &user.id).await?;
    session.insert(LOGIN_ID, &login).await?;
    session.cycle_id().await?;
    Ok(())
}

/// Ends the login, deletes the session row and clears the cookie.
pub async fn log_out(session: &Session, db: &Db) -> Result<(), AuthError> {
    if let (Some(user_id), Some(login)) = (session.get::<String>(USER_ID).await?, login_id(session).await?) {
        logins::end(db, &user_id, &login).await?;
    }
    session.flush().await?;
    Ok(())
}

/// The id of this session's login.
pub async fn login_id(session: &Session) -> Result<Option<String>, AuthError> {
    Ok(session.get::<String>(LOGIN_ID).await?)
}

/// Which account and login each session id seen lately belongs to. A session id never changes
/// hands (a login gets a fresh one), so the pair can be kept; every request still checks, in one
/// query with the account, that the session, its login and the account are all still there.
/// Kept per process, for any server in it (ids are random, and the check reads the caller's own
/// database), and emptied when it grows large.
static KNOWN: LazyLock<Mutex<HashMap<String, (String, String)>>> = LazyLock::new(Mutex::default);
const KNOWN_AT_MOST: usize = 100_000;

fn known(session_id: &str) -> Option<(String, String)> {
    KNOWN.lock().unwrap_or_else(PoisonError::into_inner).get(session_id).cloned()
}

fn remember(session_id: String, user_id: &str, login: &str) {
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if known.len() >= KNOWN_AT_MOST {
        known.clear();
    }
    known.insert(session_id, (user_id.to_owned(), login.to_owned()));
}

fn forget(session_id: &str) {
    KNOWN.lock().unwrap_or_else(PoisonError::into_inner).remove(session_id);
}

/// The signed-in account, if the session's login still stands and the account may sign in.
/// `seen` (where the request comes from) refreshes the login's last-seen time and address.
pub async fn current_user(session: &Session, db: &Db, seen: Option<&Seen>) -> Result<Option<User>, AuthError> {
    // A session already changed by this request (a login just made) is read the long way.
    let session_id = session.id().map(|id| id.to_string()).filter(|_| !session.is_modified());
    if let Some(sid) = &session_id
        && let Some((user_id, login)) = known(sid)
    {
        // Verified a moment ago, and its login's last-seen time is fresh enough not to need a write.
        if let Some(entry) = db.sessions.lookup(sid)
            && (seen.is_none() || now_ms() - entry.last_seen < logins::TOUCH_EVERY_MS)
        {
            return Ok(Some(entry.user));
        }
        let generation = db.sessions.generation();
        match logins::user_of_session(db, sid, &login, &user_id, seen).await? {
            Some((user, last_seen)) if !user.disabled => {
                db.sessions.remember(sid, &user, last_seen, generation);
                return Ok(Some(user));
            }
            // Gone, ended or disabled: the long way below says so and clears the cookie.
            _ => {
                forget(sid);
                db.sessions.forget_session(sid);
            }
        }
    }
    let Some(id) = session.get::<String>(USER_ID).await? else { return Ok(None) };
    let user = match login_id(session).await? {
        Some(login) => {
            let user = logins::user_of(db, &login, &id, seen).await?;
            if let (Some(sid), Some(_)) = (session_id, &user) {
                remember(sid, &id, &login);
            }
            user
        }
        // Signed in before logins were recorded: record this one now rather than sign it out.
        None => match users::find(db, &id).await? {
            Some(user) if !user.disabled => {
                let login = logins::open(db, &id, seen.unwrap_or(&Seen::default())).await?;
                session.insert(LOGIN_ID, &login).await?;
                Some(user)
            }
            _ => None,
        },
    };
    match user {
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

/// Whether session `id` still exists, unexpired, for `user_id`, its login still stands and the
/// account is still allowed in: false after logout, expiry, an ended session or a disable.
pub async fn still_valid(store: &dyn SessionStore, db: &Db, id: &tower_sessions::session::Id, user_id: &str) -> bool {
    let Ok(Some(record)) = store.load(id).await else { return false };
    if record.data.get(USER_ID).and_then(|v| v.as_str()) != Some(user_id) {
        return false;
    }
    if let Some(login) = record.data.get(LOGIN_ID).and_then(|v| v.as_str())
        && !logins::stands(db, login, user_id).await.unwrap_or(false)
    {
        return false;
    }
    matches!(users::find(db, user_id).await, Ok(Some(user)) if !user.disabled)
}

pub async fn require_user(session: &Session, db: &Db, seen: Option<&Seen>) -> Result<User, AuthError> {
    current_user(session, db, seen).await?.ok_or(AuthError::Unauthenticated)
}

pub async fn require_admin(session: &Session, db: &Db, seen: Option<&Seen>) -> Result<User, AuthError> {
    let user = require_user(session, db, seen).await?;
    if user.is_admin() { Ok(user) } else { Err(AuthError::Forbidden) }
}
