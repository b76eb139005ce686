//! One database code path for SQLite and PostgreSQL.
//!
//! Application queries go through sqlx's `Any` driver with SQL both engines accept (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`), ids as UUID text and times as epoch milliseconds.
//! The session store needs a typed pool, so [`SessionPool`] holds a second, small pool of the
//! concrete kind on the same database.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, Executor};

mod group_commit;
mod lanes;
pub use group_commit::{Bind, GroupCommit, Unit};
pub use lanes::Lanes;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Connections for the statements every signed-in request runs (see [`Lanes`]).
    pub lanes: std::sync::Arc<Lanes>,
    /// Small writes committed together (see [`Db::commit`]).
    pub group_commit: std::sync::Arc<GroupCommit>,
    /// Sessions this server verified lately (see `auth::verified`).
    pub sessions: std::sync::Arc<crate::server::auth::verified::Verified>,
}

/// The typed pool handed to tower-sessions' sqlx store.
#[derive(Clone, Debug)]
pub enum SessionPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An id from a client, in canonical form, or `None` when it cannot be one of ours (so a NUL
/// byte, a 3,000-character string or a path never reaches a query).
pub fn parse_id(raw: &str) -> Option<String> {
    if raw.len() > 64 {
        return None;
    }
    uuid::Uuid::parse_str(raw.trim()).ok().map(|id| id.to_string())
}

/// Formats epoch milliseconds as RFC 3339 UTC for the browser.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads go through a memory map instead of a `pread` per page, into a larger page cache: every
/// signed-in request reads its session, login and account (measured with `cargo bench --bench
/// presign`).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; \
     PRAGMA foreign_keys=ON; PRAGMA mmap_size=268435456; PRAGMA cache_size=-16384;";

impl Db {
    /// Runs `work` in a transaction that nothing else holding `key` runs beside: a check and
    /// the write it guards (the first account's role, a user's count of running jobs) cannot
    /// interleave with another's. PostgreSQL takes a transaction-scoped advisory lock, and each
    /// later statement sees what the previous holder committed. On SQLite the transaction holds
    /// the database's single write lock from its start (see [`Db::begin_write`]).
    pub async fn exclusive<T, F>(&self, key: &str, work: F) -> Result<T, sqlx::Error>
    where
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *tx).await?;
        }
        let out = work(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Begins a transaction that will write. SQLite takes its write lock at `BEGIN IMMEDIATE`,
    /// waiting out another writer for the busy timeout; a plain (deferred) transaction takes it at
    /// its first write instead, and fails at once with "database is locked" when another
    /// connection committed since this one's snapshot began, because SQLite cannot move a
    /// snapshot forward inside a transaction. PostgreSQL needs nothing of the kind.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<(Self, SessionPool), sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            // SQLite has one writer: more connections mostly add busy-wait tails (measured with
            // `cargo bench --bench presign`: 4 connections gave the best throughput/tail balance).
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // The pool's own test pings every connection it hands out; only one that sat idle
            // long enough to have been cut needs it (see `lanes`).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= lanes::PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let setup = if backend == Backend::Sqlite { SQLITE_PRAGMAS } else { "" };
        let lanes = std::sync::Arc::new(Lanes::new(&url, setup, if backend == Backend::Sqlite { 4 } else { 8 })?);
        let db = Self { pool, backend, lanes, group_commit: Default::default(), sessions: Default::default() };
        db.migrate().await?;

        let sessions = match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    .pragma("mmap_size", "268435456")
                    .pragma("cache_size", "-16384");
                SessionPool::Sqlite(SqlitePoolOptions::new().max_connections(4).connect_with(options).await?)
            }
            Backend::Postgres => SessionPool::Postgres(PgPoolOptions::new().max_connections(4).connect(&url).await?),
        };
        Ok((db, sessions))
    }

    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        let migrator = Migrator::new(Embedded(self.backend)).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        migrator.run(&self.pool).await.map_err(|e| sqlx::Error::Migrate(Box::new(e)))
    }
}

/// Creates the database file's directory and asks SQLite to create the file when missing.
fn prepare_sqlite_url(url: &str) -> Result<String, sqlx::Error> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(sqlx::Error::Configuration("DATABASE_URL must name a SQLite file".into()));
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| sqlx::Error::Configuration(format!("{}: {e}", dir.display()).into()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Migrations compiled into the binary: one file per backend and version under `migrations/`.
#[derive(Debug)]
struct Embedded(Backend);

macro_rules! migrations {
    ($($version:literal $name:literal),* $(,)?) => {
        fn embedded(backend: Backend) -> Vec<Migration> {
            vec![$(
                Migration::new(
                    $version,
                    Cow::Borrowed($name),
                    MigrationType::Simple,
                    Cow::Borrowed(match backend {
                        Backend::Sqlite => include_str!(concat!("../../../migrations/sqlite/", $name, ".sql")),
                        Backend::Postgres => include_str!(concat!("../../../migrations/postgres/", $name, ".sql")),
                    }),
                    false,
                ),
            )*]
        }
    };
}

migrations! {
    1 "0001_foundation",
    2 "0002_uploads",
    3 "0003_jobs",
    4 "0004_request_ids",
    5 "0005_multipart_uploads",
    6 "0006_logins",
    7 "0007_job_retry_reason",
    8 "0008_indexes_and_checks",
    9 "0009_gallery",
    10 "0010_prompt_search",
    11 "0011_search_by_owner",
    12 "0012_auth_epoch",
    13 "0013_ticket_function",
    14 "0014_result_expiry",
    15 "0015_source_retention",
    16 "0016_spending",
    17 "0017_admin",
    18 "0018_admin_access",
    19 "0019_quotas",
    20 "0020_access_tokens",
    21 "0021_idempotency",
}

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async move { Ok(embedded(self.0)) })
    }
}

/// A column holding one of a wire enum's words (`crate::states`), read as that enum; any other
/// word is a decoding error naming the column.
pub fn word_column<T>(row: &sqlx::any::AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    use sqlx::Row;
    let word: String = row.try_get(column)?;
    parse(&word).ok_or_else(|| sqlx::Error::Decode(format!("unknown {column} {word:?}").into()))
}

/// True when `err` is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("darkroom-db-url-{}", std::process::id()));
        let file = dir.join("nested/x.db");
        let url = format!("sqlite://{}", file.display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(file.parent().unwrap().is_dir());
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The files on disk, not the macro's list: a migration written for one backend only, or
    /// left out of the list, fails here.
    #[test]
    fn both_backends_have_the_same_migrations_and_all_are_embedded() {
        let folder = |backend: &str| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(backend);
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let (sqlite, postgres) = (folder("sqlite"), folder("postgres"));
        assert_eq!(sqlite, postgres, "each migration exists for both backends");
        let listed: Vec<String> = embedded(Backend::Sqlite).iter().map(|m| format!("{}.sql", m.description)).collect();
        assert_eq!(listed, sqlite, "every migration file is in the embedded list, in order");
        for (n, migration) in embedded(Backend::Postgres).iter().enumerate() {
            assert_eq!(migration.version, n as i64 + 1);
            assert!(migration.description.starts_with(&format!("{:04}_", n + 1)), "{}", migration.description);
        }
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
