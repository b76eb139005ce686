//! A few connections kept outside sqlx's pool for the statements every signed-in request runs
//! (its session check, an upload ticket).
//!
//! sqlx's pool pings a connection when it hands it out and again when it takes it back. On
//! SQLite each ping is a hand-off to the connection's worker thread and back; on PostgreSQL it
//! is a network round trip. For a request that runs one statement, the two pings cost more than
//! the statement (measured with `cargo bench --bench presign`). A lane hands out a connection
//! that was working a moment ago without asking it, and pings only one that sat idle long
//! enough for a server restart or a proxy's idle timeout to have cut it.
//!
//! A connection is put back only after its work succeeded. On an error, or when the work is
//! dropped half-way (a client that went away), the connection is dropped with it, which rolls
//! back anything it left open, and the next user opens a fresh one.

use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A connection idle this long is pinged before use.
pub(super) const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

pub struct Lanes {
    options: AnyConnectOptions,
    /// Run on each new connection (SQLite's pragmas).
    setup: &'static str,
    idle: Mutex<Vec<(AnyConnection, Instant)>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes").field("available", &self.permits.available_permits()).finish_non_exhaustive()
    }
}

impl Lanes {
    pub fn new(url: &str, setup: &'static str, count: usize) -> Result<Self, sqlx::Error> {
        // Statements are logged by the server's own spans; sqlx's per-statement log lines would
        // be formatted and thrown away on every request.
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        Ok(Self { options, setup, idle: Mutex::new(Vec::with_capacity(count)), permits: Semaphore::new(count) })
    }

    /// A lane's connection, waiting while all lanes are busy. Call [`Lane::done`] after the
    /// work succeeded; a lane dropped without it closes its connection.
    pub async fn take(&self) -> Result<Lane<'_>, sqlx::Error> {
        let permit = self.permits.acquire().await.map_err(|_| sqlx::Error::PoolClosed)?;
        let conn = match self.idle() {
            Some((mut conn, idle_since)) if idle_since.elapsed() >= PING_AFTER_IDLE => match conn.ping().await {
                Ok(()) => conn,
                Err(_) => self.connect().await?,
            },
            Some((conn, _)) => conn,
            None => self.connect().await?,
        };
        Ok(Lane { lanes: self, conn: Some(conn), _permit: permit })
    }

    fn idle(&self) -> Option<(AnyConnection, Instant)> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    async fn connect(&self) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = self.options.connect().await?;
        if !self.setup.is_empty() {
            sqlx::Executor::execute(&mut conn, self.setup).await?;
        }
        Ok(conn)
    }
}

/// A connection on loan from [`Lanes`].
pub struct Lane<'a> {
    lanes: &'a Lanes,
    conn: Option<AnyConnection>,
    _permit: SemaphorePermit<'a>,
}

impl Lane<'_> {
    /// Gives the connection back for the next request.
    pub fn done(mut self) {
        if let Some(conn) = self.conn.take() {
            self.lanes.idle.lock().unwrap_or_else(PoisonError::into_inner).push((conn, Instant::now()));
        }
    }
}

impl std::ops::Deref for Lane<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("a lane holds its connection until done")
    }
}

impl std::ops::DerefMut for Lane<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a lane holds its connection until done")
    }
}
