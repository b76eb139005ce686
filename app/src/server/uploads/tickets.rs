//! Issuing an upload ticket: validate what the client declares, check the account's quotas, record
//! the ticket and sign a PUT that can only store exactly the declared bytes.

use std::sync::LazyLock;

use serde_json::json;
use sqlx::Row;

use super::policy::{ImageType, Keys, Sha256, display_filename};
use super::{UploadError, Uploads};
use crate::server::audit::{self, Action, Event};
use crate::server::db::{Bind, Unit, new_id, now_ms};
use crate::server::quota;
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
    let quotas = quota::of(ctx.db, ctx.config, user_id).await?;
    if quotas.uploads_day == 0 {
        return Err(UploadError::DailyCount { limit: 0, resets_at });
    }
    if request.byte_length > quotas.upload_bytes_day {
        return Err(UploadError::DailyBytes { limit: quotas.upload_bytes_day, resets_at });
    }
    if let Err((kept, limit)) = quota::room_for(ctx.db, quotas, user_id, request.byte_length).await? {
        return Err(UploadError::StorageFull { kept, limit });
    }
    let detail = json!({ "type": kind.mime(), "bytes": bytes });
    let event = Event::new(Action::UploadIssued).actor(user_id).subject("upload", &id).ip(ip).detail(detail);
    let text = |value: &str| Bind::Text(Some(value.to_owned()));
    let mut binds = vec![
        text(user_id),
        Bind::Int(day_start),
        Bind::Int(bytes),
        Bind::Int(i64::try_from(quotas.uploads_day).unwrap_or(i64::MAX)),
        Bind::Int(i64::try_from(quotas.upload_bytes_day).unwrap_or(i64::MAX)),
        text(&id),
        text(UploadState::Issued.as_str()),
        text(&key),
        text(kind.mime()),
        Bind::Text(Some(sha256.hex())),
        Bind::Text(display_filename(request.filename)),
        Bind::Int(expires_at),
        Bind::Int(now),
    ];
    binds.extend(audit::values(event));
    let (sqlite, postgres) = record_sql();
    let outcome = ctx.db.commit(Unit { sqlite, postgres, binds }).await?;
    if outcome.try_get::<i64, _>("issued")? != 1 {
        let tickets: i64 = outcome.try_get("tickets")?;
        return Err(if tickets as u64 >= quotas.uploads_day {
            UploadError::DailyCount { limit: quotas.uploads_day, resets_at }
        } else {
            UploadError::DailyBytes { limit: quotas.upload_bytes_day, resets_at }
        });
    }

    metrics::counter!("upload_issued_total").increment(1);
    Ok(Ticket { id, key, url: signed.url, headers: signed.headers, expires_at, max_bytes: ctx.config.max_bytes })
}

/// Counts a ticket against today's usage while both limits hold (concurrent issues cannot both
/// slip under a limit), records the ticket and its audit event, all or nothing, and answers
/// `issued` (1 or 0) with the day's ticket count, as one [`Unit`] of a group commit: one
/// hand-off to the database and a share of one commit per ticket, where a transaction of
/// separate statements costs a hand-off each (measured with `cargo bench --bench presign`).
///
/// `$1` user, `$2` day, `$3` bytes, `$4` tickets a day, `$5` bytes a day, `$6` … `$13` the
/// ticket, `$14` … `$21` the event (`audit::values`). Answers (SQLite text, PostgreSQL
/// function): PostgreSQL's is `darkroom_record_ticket` (migration 0013), the same statements
/// reading the same values in the same order.
fn record_sql() -> (&'static str, &'static str) {
    const COUNT: &str = "INSERT INTO upload_usage (user_id, day, tickets, bytes) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (user_id, day) DO UPDATE SET tickets = upload_usage.tickets + 1, \
         bytes = upload_usage.bytes + $3 WHERE upload_usage.tickets < $4 AND upload_usage.bytes + $3 <= $5";
    const TICKET: &str = "INSERT INTO uploads (id, user_id, state, upload_key, declared_type, declared_bytes, \
         declared_sha256, filename, expires_at, created_at, updated_at) \
         SELECT $6, $1, $7, $8, $9, $3, $10, $11, $12, $13, $13";
    const TICKETS: &str = "SELECT tickets FROM upload_usage WHERE user_id = $1 AND day = $2";
    static SQLITE: LazyLock<String> = LazyLock::new(|| {
        // `changes()` is what the previous statement wrote: each insert happens only when the
        // one before it did.
        format!(
            "{COUNT}; {TICKET} WHERE changes() = 1; {}; SELECT changes() AS issued, ({TICKETS}) AS tickets",
            audit::insert_select(14, "WHERE changes() = 1")
        )
    });
    (SQLITE.as_str(), "darkroom_record_ticket")
}
