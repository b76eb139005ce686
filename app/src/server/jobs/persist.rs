//! Copying a finished job's outputs into our results bucket, exactly once (the orchestration;
//! downloads and decoding are [`super::media`]'s, multipart writes the storage's).
//!
//! Each output is downloaded from an allow-listed media host only (redirects included), streamed
//! into `results/{user}/{job}/{n}.{ext}` (multipart above one part, so memory does not grow with
//! the file), checked against the announced size, typed by its bytes, and given a WebP
//! thumbnail: an image's own, a video's first frame (see [`super::poster`]). The asset rows and `succeeded` commit in one transaction.
//! Keys depend only on the result, so a run interrupted at any point (a crash, a lost lease)
//! is simply done again: it overwrites the same keys, and nothing is stored twice.

use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::Jobs;
use super::failure::Failure;
use super::media;
use super::outputs::{self, OutputFile};
use super::poster::{self, Spool};
use super::rows::{JobRow, JobState};
use super::setbacks::{backoff, fail, may_retry};
use super::transition::Step;
use crate::server::audit::{self, Action, Event};
use crate::server::db::{new_id, now_ms};
use crate::server::storage::multipart;
use crate::states::AssetKind;

/// Images are decoded for dimensions and a thumbnail, so they are read whole, up to this size.
const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// One stored output.
#[derive(Debug)]
struct Stored {
    position: usize,
    key: String,
    kind: AssetKind,
    content_type: &'static str,
    bytes: u64,
    sha256: String,
    width: Option<u64>,
    height: Option<u64>,
    duration_ms: Option<i64>,
    thumb_key: Option<String>,
    nsfw: Option<bool>,
}

enum Problem {
    /// Worth another try later (network, storage, a cut-off download).
    Retry(String),
    Fail(Failure),
    /// The server is shutting down: stop here; the next worker starts the save again.
    Interrupted,
}

/// `resumed`: the job was found in this state rather than just brought here, so an earlier run
/// may have left unfinished multipart uploads behind.
pub async fn persist(ctx: Jobs<'_>, job: &JobRow, lease: &str, resumed: bool) -> Result<(), sqlx::Error> {
    let payload: Value = job.result_json.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    let files = outputs::extract(&payload);
    if files.is_empty() {
        let failure = Failure::new("job.no_output", "The model finished but returned no files.");
        return give_up(ctx, job, lease, &failure).await;
    }
    if resumed {
        abort_unfinished_uploads(ctx, job).await;
    }
    tracing::info!(files = files.len(), resumed, "saving results");

    let mut stored = Vec::with_capacity(files.len());
    for (n, file) in files.iter().enumerate() {
        match store(ctx, job, n, file).await {
            Ok(one) => stored.push(one),
            Err(Problem::Fail(failure)) => return give_up(ctx, job, lease, &failure).await,
            Err(Problem::Retry(reason)) => return later(ctx, job, lease, &reason).await,
            // Nothing to count or record: the lease is given back and the job stays due.
            Err(Problem::Interrupted) => return Ok(()),
        }
    }
    commit(ctx, job, lease, &stored).await
}

async fn commit(ctx: Jobs<'_>, job: &JobRow, lease: &str, stored: &[Stored]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    // `DARKROOM_RESULT_TTL_DAYS=0` keeps results until their owner deletes them.
    let ttl = ctx.config.result_ttl;
    let expires_at = (!ttl.is_zero()).then(|| now + ttl.as_millis() as i64);
    let mut tx = ctx.db.begin_write().await?;
    let mut ids = Vec::with_capacity(stored.len());
    for s in stored {
        let id = new_id();
        sqlx::query(
            "INSERT INTO assets (id, user_id, job_id, position, object_key, kind, content_type, byte_size, sha256, \
             width, height, duration_ms, thumb_key, nsfw, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(&job.user_id)
        .bind(&job.id)
        .bind(s.position as i64)
        .bind(&s.key)
        .bind(s.kind.as_str())
        .bind(s.content_type)
        .bind(s.bytes as i64)
        .bind(&s.sha256)
        .bind(s.width.map(|w| w as i64))
        .bind(s.height.map(|h| h as i64))
        .bind(s.duration_ms)
        .bind(&s.thumb_key)
        .bind(s.nsfw.map(i64::from))
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        ids.push(id);
    }
    let done = Step::Succeeded.of(&job.id).under(lease).run(&mut *tx).await?;
    if !done {
        // Our lease lapsed and another worker owns the job now; it writes the same keys.
        tx.rollback().await?;
        tracing::warn!("lost the lease while persisting; leaving the job to its new owner");
        return Ok(());
    }
    tx.commit().await?;
    for (s, id) in stored.iter().zip(&ids) {
        audit::record(
            &ctx.db,
            Event::new(Action::AssetPersisted).actor(&job.user_id).subject("asset", id).detail(
                json!({ "job": job.id, "key": s.key, "bytes": s.bytes, "sha256": s.sha256, "type": s.content_type }),
            ),
        )
        .await;
    }
    metrics::counter!("job_succeeded_total").increment(1);
    tracing::info!(files = stored.len(), "results persisted");
    ctx.runtime.events.publish(&job.user_id, &job.id).await;
    Ok(())
}

/// A final failure: nothing of this job stays in storage.
pub(super) async fn give_up(ctx: Jobs<'_>, job: &JobRow, lease: &str, failure: &Failure) -> Result<(), sqlx::Error> {
    // Only while the job is still ours: a run that lost its lease must not delete what the
    // worker that took over has stored (and perhaps committed).
    if fail(ctx, job, &[JobState::Persisting], Some(lease), failure).await? {
        remove_objects(ctx, job).await;
        ctx.runtime.events.publish(&job.user_id, &job.id).await;
    }
    Ok(())
}

/// A passing problem: try again after a backoff, until the attempts run out.
async fn later(ctx: Jobs<'_>, job: &JobRow, lease: &str, reason: &str) -> Result<(), sqlx::Error> {
    let attempts = job.attempts + 1;
    if !may_retry(ctx, job, attempts, job.completed_at.unwrap_or(job.updated_at)) {
        let failure = Failure::new(
            "job.persist_failed",
            format!("The results could not be saved after {attempts} attempts: {reason}."),
        );
        return give_up(ctx, job, lease, &failure).await;
    }
    tracing::info!(%reason, "saving results failed; retrying later");
    let at = now_ms() + backoff(ctx.config.retry_base, attempts).as_millis() as i64;
    let step = Step::SaveRetry { attempts, max_attempts: job.max_attempts, next_at: at, reason: reason.to_owned() };
    step.of(&job.id).under(lease).run(&ctx.db.pool).await?;
    ctx.runtime.events.publish(&job.user_id, &job.id).await;
    Ok(())
}

/// `{area}/{user}/{job}/{name}`: where a job's files live, in the results bucket.
fn object_key(job: &JobRow, area: &str, name: &str) -> String {
    format!("{area}/{}/{}/{name}", job.user_id, job.id)
}

fn prefixes(job: &JobRow) -> [String; 2] {
    [object_key(job, "results", ""), object_key(job, "thumbs", "")]
}

async fn remove_objects(ctx: Jobs<'_>, job: &JobRow) {
    let storage = &ctx.storage;
    for prefix in prefixes(job) {
        match storage.list(&storage.results_bucket, &prefix, None).await {
            Ok((objects, _)) => {
                for (key, _) in objects {
                    if let Err(err) = storage.delete(&storage.results_bucket, &key).await {
                        tracing::warn!(%err, "could not remove a partial result");
                    }
                }
            }
            Err(err) => tracing::warn!(%err, "could not list partial results"),
        }
    }
    abort_unfinished_uploads(ctx, job).await;
}

/// Multipart uploads an interrupted run left open hold storage without being objects: abort
/// the ones recorded for this job.
async fn abort_unfinished_uploads(ctx: Jobs<'_>, job: &JobRow) {
    if let Err(err) = multipart::abort_recorded(&ctx.storage, &ctx.db, Some(&job.id), 0).await {
        tracing::warn!(%err, "could not look up unfinished uploads; the sweeper will");
    }
}

/// Our storage did not take a write: the user is told that much; the details go to the log.
fn write_failed(err: multipart::WriteError) -> Problem {
    tracing::warn!(%err, "storage did not accept a result");
    Problem::Retry("our storage did not accept the file".into())
}

async fn store(ctx: Jobs<'_>, job: &JobRow, n: usize, file: &OutputFile) -> Result<Stored, Problem> {
    let max = ctx.config.max_output_bytes;
    if let Some(data) = file.url.strip_prefix("data:") {
        let bytes = super::data_uri::decode(data, max.min(MAX_IMAGE_BYTES as u64)).map_err(|err| match err {
            super::data_uri::DataUriError::TooLarge(limit) => too_large(limit),
            super::data_uri::DataUriError::Malformed => {
                Problem::Fail(Failure::new("job.bad_output", "The provider returned an unreadable inline file."))
            }
        })?;
        return store_whole(ctx, job, n, file, bytes).await;
    }
    let url = Url::parse(&file.url).map_err(|_| {
        Problem::Fail(Failure::new("job.bad_output", "The provider returned an output with an invalid URL."))
    })?;
    if !media::host_allowed(&ctx.fal_config.media_hosts, &url) {
        return Err(disallowed(url.host_str().unwrap_or("an unknown host")));
    }
    let response = ctx.runtime.media.get(url).send().await.map_err(|err| {
        if let Some(host) = media::redirect_refusal(&err) {
            disallowed(&host)
        } else {
            Problem::Retry(if err.is_timeout() {
                "the download timed out".into()
            } else {
                "the download failed".into()
            })
        }
    })?;
    let status = response.status().as_u16();
    match status {
        200..=299 => {}
        403 | 404 | 410 => {
            return Err(Problem::Fail(Failure::new(
                "job.output_expired",
                "The provider no longer has this result; it expired before it could be saved.",
            )));
        }
        300..=399 => return Err(disallowed("a redirect target")),
        429 | 500..=599 => return Err(Problem::Retry(format!("the media host answered {status}"))),
        _ => return Err(Problem::Fail(Failure::new("job.bad_output", format!("The media host answered {status}.")))),
    }
    let announced = response.content_length();
    if announced.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }

    let mut body = response.bytes_stream();
    let mut head = Vec::new();
    while head.len() < 8192 {
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(_)) => return Err(Problem::Retry("the download was cut off".into())),
            None => break,
        }
    }
    let (kind, content_type, ext) = media::sniff(&head);
    let key = object_key(job, "results", &format!("{n}.{ext}"));

    if kind == AssetKind::Image {
        let mut bytes = head;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| Problem::Retry("the download was cut off".into()))?;
            let limit = (MAX_IMAGE_BYTES as u64).min(max);
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        check_size(bytes.len() as u64, announced, file.file_size)?;
        return store_whole(ctx, job, n, file, bytes).await;
    }

    let storage = &ctx.storage;
    let mut writer =
        multipart::Writer::new(storage, &ctx.db, &storage.results_bucket, key.clone(), content_type, &job.id);
    let mut probe = (kind == AssetKind::Video).then(super::mp4::Probe::default);
    let mut spool = match (&ctx.config.ffmpeg, kind) {
        (Some(_), AssetKind::Video) => Spool::create(&ctx.config.spool_dir)
            .await
            .inspect_err(|err| tracing::warn!(%err, "no spool file for the poster frame; the video gets none"))
            .ok(),
        _ => None,
    };
    let streamed = async {
        writer.push(&head).await.map_err(write_failed)?;
        if let Some(probe) = probe.as_mut() {
            probe.feed(&head);
        }
        spool_write(&mut spool, &head).await;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| Problem::Retry("the download was cut off".into()))?;
            if ctx.runtime.is_closing() {
                return Err(Problem::Interrupted);
            }
            if writer.total + chunk.len() as u64 > max {
                return Err(too_large(max));
            }
            if let Some(probe) = probe.as_mut() {
                probe.feed(&chunk);
            }
            spool_write(&mut spool, &chunk).await;
            writer.push(&chunk).await.map_err(write_failed)?;
        }
        check_size(writer.total, announced, file.file_size)
    }
    .await;
    if let Err(problem) = streamed {
        writer.abort().await;
        return Err(problem);
    }
    let (bytes, sha256) = writer.finish().await.map_err(write_failed)?;
    // What the bytes say wins over the provider's hints.
    let seen = probe.and_then(|p| p.info());
    let thumb_key = match spool {
        Some(spool) => poster(ctx, job, n, spool, content_type).await?,
        None => None,
    };
    Ok(Stored {
        position: n,
        key,
        kind,
        content_type,
        bytes,
        sha256,
        width: seen.and_then(|i| i.width).or(file.width),
        height: seen.and_then(|i| i.height).or(file.height),
        duration_ms: seen.and_then(|i| i.duration_ms).or(file.duration_secs.map(|s| (s * 1000.0) as i64)),
        thumb_key,
        nsfw: file.nsfw,
    })
}

/// Copies a chunk into the poster's spool; a spool that fails is given up (the video is
/// stored all the same, without a poster).
async fn spool_write(spool: &mut Option<Spool>, chunk: &[u8]) {
    if let Some(file) = spool.as_mut()
        && let Err(err) = file.write(chunk).await
    {
        tracing::warn!(%err, "the poster's spool file failed; the video gets no poster");
        *spool = None;
    }
}

/// The video's first frame as its thumbnail, stored at `thumbs/…/{n}.webp`; `None` when no
/// frame could be made (logged: the result is kept without one). Only storage refusing the
/// thumbnail is a problem worth retrying the save for.
async fn poster(
    ctx: Jobs<'_>,
    job: &JobRow,
    n: usize,
    mut spool: Spool,
    content_type: &str,
) -> Result<Option<String>, Problem> {
    let Some(ffmpeg) = ctx.config.ffmpeg.as_deref() else { return Ok(None) };
    let path = match spool.close().await {
        Ok(path) => path.to_owned(),
        Err(err) => {
            tracing::warn!(%err, "the poster's spool file could not be finished");
            return Ok(None);
        }
    };
    let frame = match poster::first_frame(ffmpeg, &path, content_type, ctx.uploads.max_pixels).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Ok(None),
        Err(err) => {
            tracing::warn!(%err, "no poster frame for a video result");
            return Ok(None);
        }
    };
    drop(spool);
    let max_pixels = ctx.uploads.max_pixels;
    let _decoding = DECODES.acquire().await.ok();
    let made = tokio::task::spawn_blocking(move || media::thumbnail(&frame, max_pixels)).await.ok().flatten();
    let Some((_, _, thumb)) = made else {
        tracing::warn!("ffmpeg's poster frame could not be decoded");
        return Ok(None);
    };
    let key = object_key(job, "thumbs", &format!("{n}.webp"));
    put(ctx, &key, thumb, "image/webp").await?;
    Ok(Some(key))
}

fn disallowed(host: &str) -> Problem {
    Problem::Fail(Failure::new(
        "job.disallowed_host",
        format!("The provider returned a file on {host}, which is not an allowed media host; it was not downloaded."),
    ))
}

fn too_large(max: u64) -> Problem {
    Problem::Fail(Failure::new("job.output_too_large", format!("An output is larger than the {max} byte limit.")))
}

fn check_size(actual: u64, announced: Option<u64>, declared: Option<u64>) -> Result<(), Problem> {
    if let Some(expected) = announced.filter(|n| *n != actual) {
        return Err(Problem::Retry(format!("the download stopped at {actual} of {expected} bytes")));
    }
    if let Some(expected) = declared.filter(|n| *n != actual) {
        return Err(Problem::Retry(format!("got {actual} bytes where the provider announced {expected}")));
    }
    Ok(())
}

/// Stores an output already in memory (an image, or an inline file), with dimensions and a
/// thumbnail for images.
async fn store_whole(
    ctx: Jobs<'_>,
    job: &JobRow,
    n: usize,
    file: &OutputFile,
    bytes: Vec<u8>,
) -> Result<Stored, Problem> {
    let (kind, content_type, ext) = media::sniff(&bytes);
    let key = object_key(job, "results", &format!("{n}.{ext}"));
    let sha = Sha256::digest(&bytes);
    let (mut width, mut height, mut thumb_key) = (file.width, file.height, None);
    let mut bytes = bytes;
    if kind == AssetKind::Image {
        let max_pixels = ctx.uploads.max_pixels;
        // Decoding holds the whole bitmap: one at a time per process keeps memory bounded.
        let _decoding = DECODES.acquire().await.ok();
        let (source, made) = tokio::task::spawn_blocking(move || {
            let made = media::thumbnail(&bytes, max_pixels);
            (bytes, made)
        })
        .await
        .map_err(|_| Problem::Retry("making the thumbnail failed".into()))?;
        bytes = source;
        if let Some((w, h, thumb)) = made {
            (width, height) = (Some(u64::from(w)), Some(u64::from(h)));
            let key = object_key(job, "thumbs", &format!("{n}.webp"));
            put(ctx, &key, thumb, "image/webp").await?;
            thumb_key = Some(key);
        }
    }
    let size = bytes.len() as u64;
    put(ctx, &key, bytes, content_type).await?;
    Ok(Stored {
        position: n,
        key,
        kind,
        content_type,
        bytes: size,
        sha256: hex::encode(sha),
        width,
        height,
        duration_ms: file.duration_secs.map(|s| (s * 1000.0) as i64),
        thumb_key,
        nsfw: file.nsfw,
    })
}

async fn put(ctx: Jobs<'_>, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Problem> {
    let sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
    let storage = &ctx.storage;
    storage.put_bytes(&storage.results_bucket, key, bytes, content_type, &sha).await.map_err(|err| {
        tracing::warn!(%err, "storage refused a result");
        Problem::Retry("our storage did not accept the file".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_match_what_was_announced() {
        assert!(check_size(10, Some(10), Some(10)).is_ok());
        assert!(matches!(check_size(9, Some(10), None), Err(Problem::Retry(_))));
        assert!(matches!(check_size(10, None, Some(11)), Err(Problem::Retry(_))));
    }
}
