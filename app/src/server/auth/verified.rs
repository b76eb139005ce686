//! Sessions verified lately: the account behind each, so a signed-in request costs no database
//! read when its session was checked a moment ago.
//!
//! What can end or change a session (a logout, an ended login, a password change, a disable, a
//! role change, an account deletion) calls [`changed`], which forgets the account's sessions
//! here at once and bumps the database's `auth_epoch`. Every server watches that counter a few
//! times a second and forgets everything when it moved, so the same change made by another
//! replica or by the `darkroom` command applies there within [`WATCH_EVERY`]. A server that
//! cannot read the counter stops trusting what it remembers until it can again, and nothing is
//! trusted longer than `DARKROOM_SESSION_RECHECK_SECS` whatever happens (a session row an
//! operator deletes in the database by hand, for one).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::User;
use crate::server::db::Db;

/// How often every server reads `auth_epoch`.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Emptied when it grows this large.
const AT_MOST: usize = 100_000;

#[derive(Clone, Debug)]
pub struct Entry {
    pub user: User,
    /// When the login was last marked seen (refreshing it takes the long way).
    pub last_seen: i64,
    verified_at: Instant,
}

/// One server's verified sessions (kept with its [`Db`], so servers sharing a process, as the
/// tests do, never see each other's).
#[derive(Debug, Default)]
pub struct Verified(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Moves on every forgetting, so a verification that raced one is not remembered.
    generation: u64,
    /// Until when the watcher vouches that no change went unseen.
    trusted_until: Option<Instant>,
    /// The longest a verification is trusted, even with the counter unchanged; zero keeps
    /// nothing (`DARKROOM_SESSION_RECHECK_SECS`).
    fresh: Duration,
}

impl Verified {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The account of session `id`, when it was verified lately and nothing may have changed
    /// since.
    pub fn lookup(&self, id: &str) -> Option<Entry> {
        let state = self.state();
        let now = Instant::now();
        if state.trusted_until.is_none_or(|until| until <= now) {
            return None;
        }
        state.entries.get(id).filter(|entry| now.duration_since(entry.verified_at) < state.fresh).cloned()
    }

    /// Taken before reading the database for a verification, and given to [`Verified::remember`].
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Remembers that session `id` belongs to `user`, unless something was forgotten since
    /// `generation` (the database read may predate that change).
    pub fn remember(&self, id: &str, user: &User, last_seen: i64, generation: u64) {
        let mut state = self.state();
        if state.generation != generation || state.fresh.is_zero() {
            return;
        }
        if state.entries.len() >= AT_MOST {
            state.entries.clear();
        }
        state.entries.insert(id.to_owned(), Entry { user: user.clone(), last_seen, verified_at: Instant::now() });
    }

    /// Forgets session `id` (it was found ended).
    pub fn forget_session(&self, id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(id);
    }

    /// Forgets `user_id`'s sessions.
    pub fn forget_user(&self, user_id: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.retain(|_, entry| entry.user.id != user_id);
    }

    fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }

    /// Reads `auth_epoch` every [`WATCH_EVERY`] for as long as the server runs, trusting a
    /// verification for at most `fresh`.
    pub fn watch(db: Db, fresh: Duration) -> tokio::task::JoinHandle<()> {
        db.sessions.state().fresh = fresh;
        tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let read = sqlx::query_scalar::<_, i64>("SELECT version FROM auth_epoch WHERE id = 1");
                match read.fetch_one(&db.pool).await {
                    Ok(version) => {
                        if seen.is_some_and(|seen| seen != version) {
                            db.sessions.forget_all();
                        }
                        seen = Some(version);
                        db.sessions.state().trusted_until = Some(Instant::now() + 3 * WATCH_EVERY);
                    }
                    Err(err) => tracing::debug!(%err, "reading auth_epoch failed; verified sessions are not trusted"),
                }
            }
        })
    }
}

/// Says that `user_id`'s sessions, logins, role or status changed: forgotten here at once, and
/// by every other server at its next look at `auth_epoch`.
pub async fn changed(db: &Db, user_id: &str) -> Result<(), sqlx::Error> {
    db.sessions.forget_user(user_id);
    sqlx::query(BUMP).execute(&db.pool).await?;
    // A verification that read the database before the update and finished after the first
    // forgetting must not stay remembered either.
    db.sessions.forget_user(user_id);
    Ok(())
}

/// Like [`changed`], inside the transaction that makes the change, so that no crash can commit
/// the change without moving the counter; call [`Verified::forget_user`] again once committed.
pub async fn changed_in(conn: &mut sqlx::AnyConnection, db: &Db, user_id: &str) -> Result<(), sqlx::Error> {
    db.sessions.forget_user(user_id);
    sqlx::query(BUMP).execute(conn).await?;
    Ok(())
}

const BUMP: &str = "UPDATE auth_epoch SET version = version + 1 WHERE id = 1";
