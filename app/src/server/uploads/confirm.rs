//! Confirming an upload: the stored bytes are checked against the ticket, validated as an image
//! and sanitized; the clean copy goes to a key no presigned URL was issued for, and only then is
//! the upload `ready`. Whatever fails is deleted from storage and recorded with its reason.
//!
//! Once a ticket is claimed, its check runs to the end in a task of its own, holding its decode
//! slot, whether or not the client waits (a closed tab, a timeout): the ticket never stays
//! `confirming`, and decodes never outnumber the slots. Confirming again answers the outcome: the
//! image when it is ready, the reason when it was refused, after waiting for a check under way.

use std::sync::OnceLock;

use serde_json::json;
use tokio::sync::Semaphore;

use super::library::mark_swept;
use super::policy::{ImageType, Keys, Sha256};
use super::rows::{self, UploadRow, UploadState};
use super::sanitize::{Sanitized, sanitize};
use super::{UploadError, Uploads};
use crate::server::audit::{self, Action, Event};
use crate::server::db::now_ms;
use crate::server::storage::Fetched;

/// Decoding a 50-megapixel photo takes hundreds of megabytes: one decode per core at a time.
pub(crate) fn decode_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// How long a repeated confirm waits for a check already under way.
const WAIT_FOR_CHECK: std::time::Duration = std::time::Duration::from_secs(45);

pub async fn confirm(ctx: Uploads<'_>, user_id: &str, upload_id: &str, ip: &str) -> Result<UploadRow, UploadError> {
    // From the claim on, the work belongs to a task of its own: a request dropped between the
    // claim and the check (a client hanging up) must not leave the ticket claimed by nobody.
    let (db, storage, config) = (ctx.db.clone(), ctx.storage.clone(), ctx.config.clone());
    let (user_id, upload_id, ip) = (user_id.to_owned(), upload_id.to_owned(), ip.to_owned());
    // The task carries the request's span on, with the upload and its owner named once for
    // every line the check logs.
    let span = tracing::info_span!("upload", %upload_id, %user_id);
    let settle = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let ctx = Uploads { db: &db, storage: &storage, config: &config, origin: None };
            settle(ctx, &user_id, &upload_id, &ip).await
        },
        span,
    ));
    settle.await.map_err(|e| UploadError::Internal(format!("confirm task: {e}")))?
}

/// Claims the ticket and checks it, or answers the outcome of a check already made (waiting for
/// one under way).
async fn settle(ctx: Uploads<'_>, user_id: &str, upload_id: &str, ip: &str) -> Result<UploadRow, UploadError> {
    let started = tokio::time::Instant::now();
    let ticket = loop {
        let Some(ticket) = rows::find_owned(ctx.db, upload_id, user_id).await? else {
            return Err(UploadError::NotFound);
        };
        match ticket.state {
            UploadState::Issued if ticket.expires_at <= now_ms() => {
                expire(ctx, &ticket).await;
                return Err(UploadError::Expired);
            }
            UploadState::Issued => {
                match rows::transition(ctx.db, &ticket.id, &[UploadState::Issued], UploadState::Confirming, None)
                    .await?
                {
                    Some(claimed) => break claimed,
                    // Another confirm claimed it just now: wait for its outcome.
                    None => continue,
                }
            }
            UploadState::Confirming if started.elapsed() < WAIT_FOR_CHECK => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            UploadState::Confirming => return Err(UploadError::Busy),
            UploadState::Ready => return Ok(ticket),
            UploadState::Rejected => return Err(UploadError::refused(ticket.reject_reason.as_deref())),
            UploadState::Expired => return Err(UploadError::Expired),
            other => return Err(UploadError::Closed(other.as_str())),
        }
    };
    check(ctx, &ticket, ip).await
}

/// Validates a claimed ticket and settles it: ready, back to issued (a passing problem), or
/// rejected.
async fn check(ctx: Uploads<'_>, ticket: &UploadRow, ip: &str) -> Result<UploadRow, UploadError> {
    match validate(ctx, ticket).await {
        Ok(clean) => finish(ctx, ticket, clean, ip).await,
        Err(err) if err.is_transient() => {
            // Storage hiccup or the PUT has not landed yet: the ticket stays usable until it expires.
            rows::transition(ctx.db, &ticket.id, &[UploadState::Confirming], UploadState::Issued, None).await?;
            Err(err)
        }
        Err(err) => {
            reject(ctx, ticket, &err, ip).await;
            Err(err)
        }
    }
}

async fn validate(ctx: Uploads<'_>, ticket: &UploadRow) -> Result<Sanitized, UploadError> {
    let declared_bytes = ticket.declared_bytes as u64;
    let fetched = ctx.storage.get_bytes(&ctx.storage.uploads_bucket, &ticket.upload_key, ctx.config.max_bytes).await?;
    let bytes = match fetched {
        None => return Err(UploadError::NotUploaded),
        Some(Fetched::TooLarge(actual)) => {
            return Err(UploadError::TooLarge { bytes: actual, max: ctx.config.max_bytes });
        }
        Some(Fetched::Bytes(bytes)) => bytes,
    };
    if bytes.len() as u64 != declared_bytes {
        return Err(UploadError::SizeMismatch { declared: declared_bytes, actual: bytes.len() as u64 });
    }
    if Sha256::of(&bytes).hex() != ticket.declared_sha256 {
        return Err(UploadError::ChecksumMismatch);
    }
    let declared = ImageType::parse(&ticket.declared_type)?;
    let max_pixels = ctx.config.max_pixels;
    let _slot = decode_slots().acquire().await.map_err(|e| UploadError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || sanitize(&bytes, declared, max_pixels))
        .await
        .map_err(|e| UploadError::Internal(format!("sanitizer task: {e}")))?
}

async fn finish(ctx: Uploads<'_>, ticket: &UploadRow, clean: Sanitized, ip: &str) -> Result<UploadRow, UploadError> {
    let source_key = Keys::source(&ticket.user_id, &ticket.id);
    let checksum = Sha256::of(&clean.bytes);
    let size = clean.bytes.len() as i64;
    let stored = ctx
        .storage
        .put_bytes(&ctx.storage.uploads_bucket, &source_key, clean.bytes, clean.kind.mime(), &checksum.base64())
        .await;
    if let Err(err) = stored {
        rows::transition(ctx.db, &ticket.id, &[UploadState::Confirming], UploadState::Issued, None).await?;
        return Err(err.into());
    }
    // The original is no longer needed; a failure here is retried by the sweeper.
    if let Err(err) = ctx.storage.delete(&ctx.storage.uploads_bucket, &ticket.upload_key).await {
        tracing::warn!(%err, "could not delete the original upload yet");
    }
    let checksum_hex = checksum.hex();
    let clean_row = rows::Clean {
        object_key: &source_key,
        content_type: clean.kind.mime(),
        byte_size: size,
        sha256: &checksum_hex,
        width: clean.width,
        height: clean.height,
    };
    let ready = rows::mark_ready(ctx.db, &ticket.id, clean_row, ctx.config.source_ttl).await?;
    let Some(ready) = ready else {
        // The sweeper gave up on this ticket meanwhile: do not leave the copy behind.
        let _ = ctx.storage.delete(&ctx.storage.uploads_bucket, &source_key).await;
        return Err(UploadError::Internal("the ticket changed state during confirmation".into()));
    };
    metrics::counter!("upload_confirmed_total").increment(1);
    let detail = json!({ "type": clean.kind.mime(), "bytes": size, "width": clean.width, "height": clean.height });
    audit::record(
        ctx.db,
        Event::new(Action::UploadConfirmed).actor(&ticket.user_id).subject("upload", &ticket.id).ip(ip).detail(detail),
    )
    .await;
    Ok(ready)
}

/// Refuses the ticket for good: its object goes, the reason is kept.
async fn reject(ctx: Uploads<'_>, ticket: &UploadRow, err: &UploadError, ip: &str) {
    let reason = err.code().name;
    if let Err(db) =
        rows::transition(ctx.db, &ticket.id, &[UploadState::Confirming], UploadState::Rejected, Some(reason)).await
    {
        tracing::error!(%db, "could not mark an upload rejected");
    }
    match ctx.storage.delete(&ctx.storage.uploads_bucket, &ticket.upload_key).await {
        Ok(()) => {
            let _ = mark_swept(ctx, &ticket.id).await;
        }
        Err(storage) => {
            tracing::warn!(%storage, "could not delete a rejected upload yet; the sweeper will")
        }
    }
    metrics::counter!("upload_rejected_total", "reason" => reason.trim_start_matches("upload.")).increment(1);
    let detail = json!({ "reason": reason, "why": err.to_string() });
    audit::record(
        ctx.db,
        Event::new(Action::UploadRejected).actor(&ticket.user_id).subject("upload", &ticket.id).ip(ip).detail(detail),
    )
    .await;
}

/// A ticket found past its expiry: mark it and remove anything that arrived late.
async fn expire(ctx: Uploads<'_>, ticket: &UploadRow) {
    if let Ok(Some(_)) =
        rows::transition(ctx.db, &ticket.id, &[UploadState::Issued], UploadState::Expired, Some("upload.expired")).await
    {
        let _ = ctx.storage.delete(&ctx.storage.uploads_bucket, &ticket.upload_key).await;
    }
}
