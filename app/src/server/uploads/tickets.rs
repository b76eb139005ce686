//! Issuing an upload ticket: validate what the client declares, check the daily quota, record
//! the ticket and sign a PUT that can only store exactly the declared bytes.

use serde_json::json;
use sqlx::Row;

use super::policy::{ImageType, Keys, Sha256, display_filename};
use super::{UploadError, Uploads};
use crate::server::audit::{self, Action, Event};
use crate::server::db::{new_id, now_ms};
use crate::states::UploadState;

pub struct IssueRequest<'a> {
    pub content_type: &'a str,
    pub byte_length: u64,
    pub sha256: &'a str,
    pub filename: Option<&'a str>,
}

/// What the client needs to upload: where, with which headers, until when.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub id: String,
    pub key: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: i64,
    pub max_bytes: u64,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

pub async fn issue(
    ctx: Uploads<'_>,
    user_id: &str,
    ip: &str,
    request: IssueRequest<'_>,
) -> Result<Ticket, UploadError> {
    let kind = ImageType::parse(request.content_type)?;
    if request.byte_length == 0 {
        return Err(UploadError::Empty);
    }
    if request.byte_length > ctx.config.max_bytes {
        return Err(UploadError::TooLarge { bytes: request.byte_length, max: ctx.config.max_bytes });
    }
    let sha256 = Sha256::parse(request.sha256)?;
    let bytes = i64::try_from(request.byte_length)
        .map_err(|_| UploadError::TooLarge { bytes: request.byte_length, max: ctx.config.max_bytes })?;

    let id = new_id();
    let key = Keys::upload(user_id, &id);
    // The URL is signed after `now`, so it never expires before the ticket does.
    let now = now_ms();
    let expires_at = now + ctx.config.ticket_ttl.as_millis() as i64;
    // Signing is local computation; doing it first means a failure leaves no ticket behind.
    let signed = ctx
        .storage
        .presign_put(
            &ctx.storage.uploads_bucket,
            &key,
            kind.mime(),
            bytes,
            &sha256.base64(),
            ctx.config.ticket_ttl,
            ctx.origin,
        )
        .await?;

    let day_start = now - now.rem_euclid(DAY_MS);
    let resets_at = day_start + DAY_MS;
    if ctx.config.per_day == 0 {
        return Err(UploadError::DailyCount { limit: 0, resets_at });
    }
    if request.byte_length > ctx.config.bytes_per_day {
        return Err(UploadError::DailyBytes { limit: ctx.config.bytes_per_day, resets_at });
    }
    let mut tx = ctx.db.begin_write().await?;
    // One statement counts the ticket against today's usage, and only while both limits hold:
    // concurrent issues cannot both slip under a limit.
    let counted = sqlx::query(
        "INSERT INTO upload_usage (user_id, day, tickets, bytes) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (user_id, day) DO UPDATE SET tickets = upload_usage.tickets + 1, bytes = upload_usage.bytes + $3 \
         WHERE upload_usage.tickets < $4 AND upload_usage.bytes + $3 <= $5 RETURNING tickets",
    )
    .bind(user_id)
    .bind(day_start)
    .bind(bytes)
    .bind(ctx.config.per_day as i64)
    .bind(ctx.config.bytes_per_day as i64)
    .fetch_optional(&mut *tx)
    .await?;
    if counted.is_none() {
        let usage = sqlx::query("SELECT tickets FROM upload_usage WHERE user_id = $1 AND day = $2")
            .bind(user_id)
            .bind(day_start)
            .fetch_one(&mut *tx)
            .await?;
        let tickets: i64 = usage.try_get("tickets")?;
        return Err(if tickets as u64 >= ctx.config.per_day {
            UploadError::DailyCount { limit: ctx.config.per_day, resets_at }
        } else {
            UploadError::DailyBytes { limit: ctx.config.bytes_per_day, resets_at }
        });
    }
    sqlx::query(
        "INSERT INTO uploads (id, user_id, state, upload_key, declared_type, declared_bytes, declared_sha256, \
         filename, expires_at, created_at, updated_at) VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(&key)
    .bind(kind.mime())
    .bind(bytes)
    .bind(sha256.hex())
    .bind(display_filename(request.filename))
    .bind(expires_at)
    .bind(now)
    .bind(UploadState::Issued.as_str())
    .execute(&mut *tx)
    .await?;
    // The usage, the ticket and its audit event commit together: one commit per ticket, and
    // no ticket without its record.
    let detail = json!({ "type": kind.mime(), "bytes": bytes });
    let event = Event::new(Action::UploadIssued).actor(user_id).subject("upload", &id).ip(ip).detail(detail);
    audit::record_in(&mut tx, event).await?;
    tx.commit().await?;

    metrics::counter!("upload_issued_total").increment(1);
    Ok(Ticket { id, key, url: signed.url, headers: signed.headers, expires_at, max_bytes: ctx.config.max_bytes })
}
