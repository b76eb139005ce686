//! A user's uploaded images: listing them (newest first, keyset pages) and removing them.

use serde_json::json;

use super::rows::{self, COLUMNS, UploadRow, UploadState};
use super::{UploadError, Uploads};
use crate::server::audit::{self, Action, Event};

/// A ready image and a short-lived URL to view it.
#[derive(Clone, Debug)]
pub struct Image {
    pub row: UploadRow,
    pub url: String,
}

/// Rows after the cursor row `$3` of the same user, in `(created_at, id)` order.
const AFTER_CURSOR: &str =
    " AND (created_at, id) < (SELECT c.created_at, c.id FROM uploads c WHERE c.id = $3 AND c.user_id = $1)";

/// Ready images of `user_id`, newest first, after the image `before` (an id from the previous page).
pub async fn list(
    ctx: Uploads<'_>,
    user_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Image>, UploadError> {
    let limit = limit.clamp(1, 100);
    // A keyset: the cursor's (created_at, id) is looked up once and the index entered there,
    // so a deep page costs what the first costs.
    let after = if before.is_some() { AFTER_CURSOR } else { "" };
    // The state is written out (not bound) so the planner can use the partial index of ready
    // images.
    let sql = format!(
        "SELECT {COLUMNS} FROM uploads WHERE user_id = $1 AND state = '{ready}'{after} \
         ORDER BY created_at DESC, id DESC LIMIT $2",
        ready = UploadState::Ready.as_str()
    );
    let mut query = sqlx::query(&sql).bind(user_id).bind(limit);
    if let Some(cursor) = before {
        query = query.bind(cursor);
    }
    let rows = query.fetch_all(&ctx.db.pool).await?;
    let mut images = Vec::with_capacity(rows.len());
    for row in &rows {
        let row = rows::from_row(row)?;
        images.push(view(ctx, row).await?);
    }
    Ok(images)
}

/// A ready upload with a fresh viewing URL.
pub async fn view(ctx: Uploads<'_>, row: UploadRow) -> Result<Image, UploadError> {
    let key = row.object_key.as_deref().ok_or_else(|| UploadError::Internal("ready upload without object".into()))?;
    let url = ctx.storage.presign_get(&ctx.storage.uploads_bucket, key, ctx.config.view_ttl, ctx.origin).await?;
    Ok(Image { row, url })
}

/// Removes an upload: a ready image is deleted with its object; a ticket still waiting for its
/// bytes is canceled. Someone else's upload answers like a missing one.
pub async fn remove(ctx: Uploads<'_>, user_id: &str, upload_id: &str, ip: &str) -> Result<(), UploadError> {
    let ticket = rows::find_owned(ctx.db, upload_id, user_id).await?.ok_or(UploadError::NotFound)?;
    let (to, key) = match ticket.state {
        UploadState::Ready => (UploadState::Deleted, ticket.object_key.clone()),
        UploadState::Issued => (UploadState::Canceled, Some(ticket.upload_key.clone())),
        UploadState::Confirming => return Err(UploadError::Busy),
        _ => return Err(UploadError::NotFound),
    };
    if rows::transition(ctx.db, &ticket.id, &[ticket.state], to, None).await?.is_none() {
        return Err(UploadError::Busy);
    }
    if let Some(key) = key {
        match ctx.storage.delete(&ctx.storage.uploads_bucket, &key).await {
            Ok(()) => mark_swept(ctx, &ticket.id).await?,
            Err(err) => tracing::warn!(upload_id = %ticket.id, %err, "object not deleted yet; the sweeper will retry"),
        }
    }
    let detail = json!({ "state": ticket.state.as_str() });
    audit::record(
        ctx.db,
        Event::new(Action::UploadDeleted).actor(user_id).subject("upload", &ticket.id).ip(ip).detail(detail),
    )
    .await;
    Ok(())
}

pub(super) async fn mark_swept(ctx: Uploads<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET swept_at = $1 WHERE id = $2")
        .bind(crate::server::db::now_ms())
        .bind(id)
        .execute(&ctx.db.pool)
        .await?;
    Ok(())
}
