//! Results as one ZIP streamed while it is read from storage (memory stays flat whatever the
//! total), with `manifest.json` saying which job, model, prompt and parameters made each file:
//! `GET /account/export` for everything the account has, `POST /gallery/download` for a
//! selection in the gallery.

mod selection;
mod zip;

pub use selection::{MAX_SELECTION_FORM, selection};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt, channel::mpsc};
use http::header;
use serde_json::{Map, Value, json};
use sqlx::Row;
use tower_sessions::Session;

use super::audit::{self, Action, Event};
use super::db::{Db, now_ms, rfc3339};
use super::jobs::AssetRow;
use super::state::AppState;
use crate::error::{AppError, code};

/// Exports running at once in this process; each holds a storage connection for its length.
const MAX_EXPORTS: usize = 2;
/// How slowly the browser may read before the download is given up: at least
/// [`MIN_PER_WINDOW`] bytes every [`STALL`] (and no chunk left unread for longer), so a client
/// that stops or trickles cannot keep one of the [`MAX_EXPORTS`] places for hours.
const STALL: Duration = Duration::from_secs(60);
const MIN_PER_WINDOW: u64 = 256 * 1024;

/// One result file and the job that made it.
struct Item {
    asset: AssetRow,
    model: String,
    params: Value,
    job_created_at: i64,
    /// Its path inside the archive.
    name: String,
}

pub async fn download(State(state): State<AppState>, session: Session) -> Response {
    let user = match signed_in(&state, &session).await {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    let Some(slot) = Slot::take(&user.id) else { return busy().into_response() };
    let mut items = match items(&state.db, &user.id).await {
        Ok(items) => items,
        Err(err) => {
            tracing::error!(%err, "listing results for an export failed");
            return AppError::internal().into_response();
        }
    };
    name_by_job(&mut items);
    audit::record(
        &state.db,
        Event::new(Action::AccountExported).actor(&user.id).detail(json!({ "files": items.len() })),
    )
    .await;
    let date = &rfc3339(now_ms())[..10];
    let mut head = Map::new();
    head.insert("account".into(), json!(user.email));
    stream(state, slot, items, head, &format!("darkroom-export-{date}.zip"))
}

/// The signed-in user, or the answer for a caller who is not.
async fn signed_in(state: &AppState, session: &Session) -> Result<crate::server::auth::User, AppError> {
    match super::auth::session::current_user(session, &state.db, None).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(AppError::unauthenticated()),
        Err(err) => {
            tracing::error!(%err, "reading the session for a download failed");
            Err(AppError::internal())
        }
    }
}

fn busy() -> AppError {
    AppError::new(
        code::EXPORT_BUSY,
        "A download is already being made (yours, or two others at once). Try again when it has finished.",
    )
}

/// Answers with the archive of `items` (each already named), written by a task that holds
/// `slot` until the archive's last part; `head` opens `manifest.json`.
fn stream(state: AppState, slot: Slot, items: Vec<Item>, head: Map<String, Value>, file_name: &str) -> Response {
    // Two chunks in flight: the archive goes out no faster than the browser takes it.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let whole = Arc::new(AtomicBool::new(false));
    let sender = Sender::new(tx, whole.clone());
    tokio::spawn(async move {
        if let Err(err) = write(&state, slot, head, items, sender).await {
            tracing::warn!(%err, "a download stopped before its end");
        }
    });
    let body = ending_in_error_unless_whole(rx, whole);
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// `parts` followed by an error unless `whole` was set by the time they ended. A stream that
/// simply ended would look like a whole (if short) archive to the browser; one that stopped
/// early must end with an error instead, which aborts the transfer.
fn ending_in_error_unless_whole(
    parts: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    whole: Arc<AtomicBool>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let cut_off = futures::stream::once(async move {
        (!whole.load(Ordering::Acquire)).then(|| Err(std::io::Error::other("the download was cut off")))
    })
    .filter_map(std::future::ready);
    parts.chain(cut_off)
}

async fn items(db: &Db, user_id: &str) -> Result<Vec<Item>, sqlx::Error> {
    let sql = format!(
        "SELECT {}, j.model, j.params_json, j.created_at AS job_created_at \
         FROM assets a JOIN jobs j ON j.id = a.job_id WHERE a.user_id = $1 \
         ORDER BY j.created_at, j.id, a.position",
        AssetRow::columns("a.")
    );
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(&db.pool).await?;
    rows.iter().map(Item::from_row).collect()
}

impl Item {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Item {
            asset: AssetRow::from_row(row)?,
            model: row.try_get("model")?,
            params: serde_json::from_str(&row.try_get::<String, _>("params_json")?).unwrap_or(Value::Null),
            job_created_at: row.try_get("job_created_at")?,
            name: String::new(),
        })
    }
}

/// Names every item `results/<date>-<model>-<job>-<n>.<ext>`, `n` counting within its job.
fn name_by_job(items: &mut [Item]) {
    let mut last_job: Option<String> = None;
    let mut n = 0;
    for item in items {
        if last_job.as_deref() != Some(&item.asset.job_id) {
            last_job = Some(item.asset.job_id.clone());
            n = 0;
        }
        n += 1;
        item.name = file_name(item, n);
    }
}

/// The name a result gets inside the archive: `results/2026-12-01-nano-banana-0193ab12-1.png`.
fn file_name(item: &Item, n: usize) -> String {
    let date = &rfc3339(item.job_created_at)[..10];
    let model: String = item
        .model
        .rsplit('/')
        .find(|part| !part.is_empty() && *part != "edit")
        .unwrap_or("result")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let job: String = item.asset.job_id.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let ext = item
        .asset
        .object_key
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| ext.len() <= 5 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("bin");
    format!("results/{date}-{model}-{job}-{n}.{ext}")
}

/// The archive's bytes on their way to the browser, which must keep reading at a pace.
struct Sender {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// Set once the last part is sent, before the channel closes.
    whole: Arc<AtomicBool>,
    window_start: Instant,
    window_bytes: u64,
}

impl Sender {
    fn new(tx: mpsc::Sender<Result<Bytes, std::io::Error>>, whole: Arc<AtomicBool>) -> Self {
        Self { tx, whole, window_start: Instant::now(), window_bytes: 0 }
    }

    /// Marks the archive whole, then closes the channel (in that order: the body checks the
    /// mark when it sees the channel end).
    fn finish(self) {
        self.whole.store(true, Ordering::Release);
        drop(self.tx);
    }

    async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), String> {
        let chunk: Bytes = chunk.into();
        let len = chunk.len() as u64;
        match tokio::time::timeout(STALL, self.tx.send(Ok(chunk))).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(format!("the browser went away: {err}")),
            Err(_) => return Err(format!("the browser read nothing for {STALL:?}")),
        }
        self.window_bytes += len;
        if self.window_start.elapsed() >= STALL {
            if self.window_bytes < MIN_PER_WINDOW {
                return Err(format!("the browser read {} bytes in {STALL:?}", self.window_bytes));
            }
            (self.window_start, self.window_bytes) = (Instant::now(), 0);
        }
        Ok(())
    }

    /// Ends the download as failed (the browser sees a cut-off transfer, not a whole archive).
    async fn fail(&mut self, why: &str) {
        let _ = tokio::time::timeout(STALL, self.tx.send(Err(std::io::Error::other(why.to_owned())))).await;
    }
}

/// Writes the archive of `items` into `tx`; `slot` is given back before the last bytes go out,
/// so a browser that has the whole archive can start the next download at once.
async fn write(
    state: &AppState,
    slot: Slot,
    mut head: Map<String, Value>,
    items: Vec<Item>,
    mut tx: Sender,
) -> Result<(), String> {
    let storage = &state.storage;
    let mut archive = zip::Writer::new();
    // Files are listed under their job, wherever the job's files sit in the archive.
    let mut jobs: Vec<Value> = Vec::new();
    let mut job_index: HashMap<&str, usize> = HashMap::new();
    for item in &items {
        let at = *job_index.entry(item.asset.job_id.as_str()).or_insert_with(|| {
            jobs.push(json!({
                "id": item.asset.job_id,
                "model": item.model,
                "created_at": rfc3339(item.job_created_at),
                "params": item.params,
                "files": [],
            }));
            jobs.len() - 1
        });
        let name = &item.name;
        let mut file = json!({
            "name": name,
            "id": item.asset.id,
            "content_type": item.asset.content_type,
            "bytes": item.asset.byte_size,
            "sha256": item.asset.sha256,
            "width": item.asset.width,
            "height": item.asset.height,
            "duration_ms": item.asset.duration_ms,
            "created_at": rfc3339(item.asset.created_at),
        });
        match storage.get_stream(&storage.results_bucket, &item.asset.object_key).await {
            Ok(Some(mut body)) => {
                let header = archive
                    .begin(name, item.asset.byte_size.max(0) as u64, item.asset.created_at)
                    .map_err(|e| e.to_string())?;
                tx.send(header).await?;
                let (mut crc, mut size) = (crc32fast::Hasher::new(), 0u64);
                loop {
                    match body.try_next().await {
                        Ok(Some(chunk)) => {
                            crc.update(&chunk);
                            size += chunk.len() as u64;
                            tx.send(chunk).await?;
                        }
                        Ok(None) => break,
                        Err(err) => {
                            // The archive cannot be mended mid-entry: end the download as failed.
                            tx.fail("storage stopped answering").await;
                            return Err(format!("reading {} failed: {err}", item.asset.object_key));
                        }
                    }
                }
                let descriptor = archive.end(crc.finalize(), size).map_err(|e| e.to_string())?;
                tx.send(descriptor).await?;
            }
            Ok(None) => file["missing"] = json!(true),
            Err(err) => {
                tracing::warn!(%err, key = %item.asset.object_key, "a result could not be read for a download");
                file["missing"] = json!(true);
            }
        }
        if let Some(files) = jobs[at]["files"].as_array_mut() {
            files.push(file);
        }
    }
    head.insert("exported_at".into(), json!(rfc3339(now_ms())));
    head.insert("jobs".into(), Value::Array(jobs));
    let manifest = serde_json::to_vec_pretty(&head).map_err(|e| e.to_string())?;
    let header = archive.begin("manifest.json", manifest.len() as u64, now_ms()).map_err(|e| e.to_string())?;
    let descriptor = archive.end(crc32fast::hash(&manifest), manifest.len() as u64).map_err(|e| e.to_string())?;
    let end = archive.finish().map_err(|e| e.to_string())?;
    drop(slot);
    for part in [header, manifest, descriptor, end] {
        tx.send(part).await?;
    }
    tx.finish();
    Ok(())
}

/// A place among the [`MAX_EXPORTS`] running exports, one per account at a time.
struct Slot(String);

fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: std::sync::OnceLock<Mutex<HashSet<String>>> = std::sync::OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

impl Slot {
    fn take(user_id: &str) -> Option<Self> {
        let mut running = running().lock().unwrap_or_else(|e| e.into_inner());
        if running.len() >= MAX_EXPORTS || !running.insert(user_id.to_owned()) {
            return None;
        }
        Some(Self(user_id.to_owned()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        running().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_archive_that_stops_early_ends_in_an_error_and_a_whole_one_does_not() {
        for whole in [false, true] {
            let (mut tx, rx) = mpsc::channel(4);
            let done = Arc::new(AtomicBool::new(false));
            tx.send(Ok(Bytes::from_static(b"PK"))).await.unwrap();
            done.store(whole, Ordering::Release);
            drop(tx);
            let parts: Vec<_> = ending_in_error_unless_whole(rx, done).collect().await;
            assert_eq!(parts.len(), if whole { 1 } else { 2 });
            assert!(parts[0].is_ok());
            assert_eq!(parts.last().unwrap().is_err(), !whole);
        }
    }

    #[test]
    fn one_export_per_account_and_a_few_at_once() {
        let first = Slot::take("export-test-a").expect("a free slot");
        assert!(Slot::take("export-test-a").is_none(), "the same account waits for its export");
        let others: Vec<Slot> = (1..MAX_EXPORTS).map(|i| Slot::take(&format!("export-test-{i}")).unwrap()).collect();
        assert!(Slot::take("export-test-late").is_none(), "at most {MAX_EXPORTS} at once");
        drop(first);
        assert!(Slot::take("export-test-a").is_some(), "a finished export frees its place");
        drop(others);
    }
}
