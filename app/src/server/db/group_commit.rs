//! Group commit for small writes that many requests make at once (an upload ticket).
//!
//! On SQLite every commit writes each page it changed to the write-ahead log, and a ticket
//! changes a page of its table and of each of its indexes: about a dozen pages for three rows.
//! Tickets written at the same moment land on the same pages (ids grow with time), so a
//! transaction of many tickets writes those pages once. A single task takes the [`Unit`]s waiting
//! when it is free and runs them as one statement batch in one transaction: one hand-off to the
//! database and one commit for all of them. Each caller is answered only after that commit.
//! When the batch fails, each unit runs again alone, so one failing unit never fails another.
//!
//! On PostgreSQL a unit is a call of a function (defined by a migration) that takes the unit's
//! values as one JSON array; units waiting together are one statement calling it once for each,
//! so that a batch costs one round trip and one flush of PostgreSQL's log (a transaction of one
//! statement per unit waited for a round trip each, one after another, and was slower for it
//! than the database was busy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};

use super::{Backend, Db, Lanes};

/// At most this many units per transaction (their binds stay far below SQLite's 32,766).
const MOST_PER_BATCH: usize = 32;

/// One value bound into a unit's statements.
#[derive(Clone, Debug)]
pub enum Bind {
    Int(i64),
    Text(Option<String>),
}

/// A write committed with whatever else is waiting: `sqlite` is statements (no `BEGIN` or
/// `COMMIT`) whose last is a `SELECT` of one row, the unit's answer, using each of `$1` … `$n`
/// for `binds`, one per number, in order; `postgres` names a function of one `jsonb` argument,
/// `binds` as an array in the same order (numbers, strings, nulls), answering one row.
#[derive(Debug)]
pub struct Unit {
    pub sqlite: &'static str,
    pub postgres: &'static str,
    pub binds: Vec<Bind>,
}

type Waiting = (Unit, oneshot::Sender<Result<AnyRow, sqlx::Error>>);

/// The queue in front of the database's group-commit task (started at the first unit).
#[derive(Debug, Default)]
pub struct GroupCommit {
    queue: OnceLock<mpsc::UnboundedSender<Waiting>>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    waiting: AtomicUsize,
    taken: AtomicUsize,
}

impl GroupCommit {
    /// Units queued and not yet taken into a transaction.
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::Relaxed)
    }

    /// Units taken into a transaction since the start.
    pub fn taken(&self) -> usize {
        self.counts.taken.load(Ordering::Relaxed)
    }
}

impl Db {
    /// Commits `unit`, with other units waiting at the same time, and answers its row.
    pub async fn commit(&self, unit: Unit) -> Result<AnyRow, sqlx::Error> {
        debug_assert_eq!(renumbered(unit.sqlite, 0).1, unit.binds.len(), "one bind per placeholder");
        let queue = self.group_commit.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            // The task holds the lanes only: it ends when the last `Db` (and so the queue) goes.
            tokio::spawn(committer(self.lanes.clone(), self.backend, receiver, self.group_commit.counts.clone()));
            sender
        });
        let (answer, answered) = oneshot::channel();
        self.group_commit.counts.waiting.fetch_add(1, Ordering::Relaxed);
        queue.send((unit, answer)).map_err(|_| sqlx::Error::PoolClosed)?;
        answered.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Takes whatever is waiting, commits it together, answers each; ends with the database.
async fn committer(
    lanes: Arc<Lanes>,
    backend: Backend,
    mut queue: mpsc::UnboundedReceiver<Waiting>,
    counts: Arc<Counts>,
) {
    let mut texts = Texts::default();
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_PER_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        counts.waiting.fetch_sub(batch.len(), Ordering::Relaxed);
        counts.taken.fetch_add(batch.len(), Ordering::Relaxed);
        metrics::histogram!("db_group_commit_units").record(batch.len() as f64);
        if batch.len() > 1 {
            let together = match backend {
                Backend::Sqlite => {
                    let sql = texts.batch(batch.iter().map(|(unit, _)| unit.sqlite));
                    let binds: Vec<&Bind> = batch.iter().flat_map(|(unit, _)| &unit.binds).collect();
                    run_batch(&lanes, &sql, binds).await
                }
                Backend::Postgres => {
                    let units: Vec<&Unit> = batch.iter().map(|(unit, _)| unit).collect();
                    run_calls(&lanes, &units).await
                }
            };
            if let Ok(rows) = together {
                let whole = rows.len() == batch.len();
                let mut rows = rows.into_iter();
                for (_, answer) in batch {
                    // Committed, but not as the units said: none can be told it succeeded.
                    let row = rows.next().filter(|_| whole);
                    let _ = answer.send(row.ok_or_else(|| sqlx::Error::Protocol("a unit answered no row".into())));
                }
                continue;
            }
            // Rolled back: each again on its own, below.
        }
        // One unit, or a batch that failed: each on its own, so each gets its own answer.
        for (unit, answer) in batch {
            let outcome = match backend {
                Backend::Sqlite => {
                    let sql = texts.batch(std::iter::once(unit.sqlite));
                    run_batch(&lanes, &sql, unit.binds.iter().collect()).await
                }
                Backend::Postgres => run_calls(&lanes, &[&unit]).await,
            }
            .and_then(its_row);
            let _ = answer.send(outcome);
        }
    }
}

/// Runs a transaction's text on a lane. On an error the lane's connection is dropped, which
/// rolls back whatever the batch began.
async fn run_batch(lanes: &Lanes, sql: &str, binds: Vec<&Bind>) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = bound(query, bind);
    }
    let mut lane = lanes.take().await?;
    let rows = query.fetch_all(&mut *lane).await?;
    lane.done();
    Ok(rows)
}

/// PostgreSQL units on a lane, all or none: each run of units calling the same function is one
/// statement (one statement is its own transaction; several share one).
async fn run_calls(lanes: &Lanes, units: &[&Unit]) -> Result<Vec<AnyRow>, sqlx::Error> {
    let runs: Vec<&[&Unit]> = units.chunk_by(|a, b| a.postgres == b.postgres).collect();
    let mut lane = lanes.take().await?;
    if runs.len() > 1 {
        sqlx::query("BEGIN").execute(&mut *lane).await?;
    }
    let mut rows = Vec::with_capacity(units.len());
    for run in &runs {
        // The calls happen in the order given, each seeing what the ones before wrote; the
        // answers come back in that order.
        let sql = format!(
            "SELECT answer.* FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS unit(args, n) \
             CROSS JOIN LATERAL {}(unit.args) AS answer ORDER BY unit.n",
            run[0].postgres
        );
        let args = serde_json::Value::Array(run.iter().map(|unit| arguments(&unit.binds)).collect());
        rows.extend(sqlx::query(&sql).bind(args.to_string()).fetch_all(&mut *lane).await?);
    }
    if runs.len() > 1 {
        sqlx::query("COMMIT").execute(&mut *lane).await?;
    }
    lane.done();
    Ok(rows)
}

/// A unit's binds as the JSON array its PostgreSQL function reads.
fn arguments(binds: &[Bind]) -> serde_json::Value {
    let value = |bind: &Bind| match bind {
        Bind::Int(n) => serde_json::Value::from(*n),
        Bind::Text(text) => text.as_deref().map_or(serde_json::Value::Null, serde_json::Value::from),
    };
    serde_json::Value::Array(binds.iter().map(value).collect())
}

/// The one row a unit answers.
fn its_row(rows: Vec<AnyRow>) -> Result<AnyRow, sqlx::Error> {
    rows.into_iter().next().ok_or_else(|| sqlx::Error::Protocol("a unit answered no row".into()))
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bound<'q>(query: AnyQuery<'q>, bind: &'q Bind) -> AnyQuery<'q> {
    match bind {
        Bind::Int(n) => query.bind(*n),
        Bind::Text(text) => query.bind(text.as_deref()),
    }
}

/// The text of a transaction of units, made once per sequence of unit kinds: each unit's
/// placeholders moved past those of the units before it.
#[derive(Default)]
struct Texts(HashMap<Vec<usize>, Arc<str>>);

impl Texts {
    fn batch<'a>(&mut self, units: impl Iterator<Item = &'a str> + Clone) -> Arc<str> {
        let key: Vec<usize> = units.clone().map(|sql| sql.as_ptr() as usize).collect();
        if let Some(text) = self.0.get(&key) {
            return text.clone();
        }
        let mut text = String::from("BEGIN IMMEDIATE;");
        let mut offset = 0;
        for sql in units {
            let (moved, used) = renumbered(sql, offset);
            text.push(' ');
            text.push_str(&moved);
            text.push(';');
            offset += used;
        }
        text.push_str(" COMMIT");
        if self.0.len() >= 256 {
            self.0.clear();
        }
        let text: Arc<str> = text.into();
        self.0.insert(key, text.clone());
        text
    }
}

/// `sql` with each `$n` made `$n+offset`, and the highest `n` it used.
fn renumbered(sql: &str, offset: usize) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut highest = 0;
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(n) => {
                highest = highest.max(n);
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            Err(_) => out.push('$'),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    (out, highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_move_past_the_units_before() {
        assert_eq!(renumbered("SELECT $1, $12, $2", 0), ("SELECT $1, $12, $2".into(), 12));
        assert_eq!(renumbered("SELECT $1, $12 WHERE x = $2", 21), ("SELECT $22, $33 WHERE x = $23".into(), 12));
        assert_eq!(renumbered("no placeholders", 5), ("no placeholders".into(), 0));
        assert_eq!(renumbered("a lone $ sign", 5), ("a lone $ sign".into(), 0));
        let mut texts = Texts::default();
        let unit = "SELECT $1 AS a, $2 AS b";
        assert_eq!(
            &*texts.batch([unit, unit].into_iter()),
            "BEGIN IMMEDIATE; SELECT $1 AS a, $2 AS b; SELECT $3 AS a, $4 AS b; COMMIT"
        );
    }
}
