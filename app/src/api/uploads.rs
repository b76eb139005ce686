use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// A presigned PUT and exactly what to send with it (seed 002's UploadResponse).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTicket {
    pub upload_id: String,
    /// The object key the URL writes (also accepted by `confirm_upload`).
    pub key: String,
    pub url: String,
    pub method: String,
    /// Every header the signature covers; a browser sets `content-length` itself.
    pub headers: Vec<(String, String)>,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub max_bytes: u64,
}

/// A validated, sanitized image the user owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedImage {
    pub id: String,
    pub content_type: String,
    pub byte_size: u64,
    pub width: u32,
    pub height: u32,
    pub filename: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// A short-lived URL to view the image.
    pub url: String,
    /// RFC 3339, UTC: when the image is deleted unless a job uses it before (each use keeps it
    /// `DARKROOM_SOURCE_TTL_HOURS` from then); `None` when images are kept.
    pub kept_until: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<crate::server::uploads::Image> for UploadedImage {
    fn from(image: crate::server::uploads::Image) -> Self {
        let row = image.row;
        Self {
            id: row.id,
            content_type: row.content_type.unwrap_or_default(),
            byte_size: row.byte_size.unwrap_or_default() as u64,
            width: row.width.unwrap_or_default() as u32,
            height: row.height.unwrap_or_default() as u32,
            filename: row.filename,
            created_at: crate::server::db::rfc3339(row.created_at),
            url: image.url,
            kept_until: row.kept_until.map(crate::server::db::rfc3339),
        }
    }
}

/// Asks for an upload: the server checks type, size, checksum and quota, records a ticket valid
/// for five minutes, and signs a PUT that can store only the declared bytes.
#[server(endpoint = "uploads/issue")]
pub async fn issue_upload(
    content_type: String,
    byte_length: u64,
    sha256: String,
    filename: Option<String>,
) -> Result<UploadTicket, AppError> {
    use crate::server::db::rfc3339;
    use crate::server::request::{client_ip, origin, require_user, respond, state};
    use crate::server::uploads::{self, IssueRequest, Uploads};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let request =
            IssueRequest { content_type: &content_type, byte_length, sha256: &sha256, filename: filename.as_deref() };
        let origin = origin();
        let ctx = Uploads::from(&*state).linked_at(origin.as_deref());
        let ticket = uploads::issue(ctx, &user.id, &client_ip(), request).await?;
        Ok(UploadTicket {
            upload_id: ticket.id,
            key: ticket.key,
            url: ticket.url,
            method: "PUT".into(),
            headers: ticket.headers,
            expires_at: rfc3339(ticket.expires_at),
            max_bytes: ticket.max_bytes,
        })
    })
    .await
}

/// Confirms an upload by its id (or the key it was PUT to) once the bytes are in storage.
#[server(endpoint = "uploads/confirm")]
pub async fn confirm_upload(upload: String) -> Result<UploadedImage, AppError> {
    use crate::server::request::{client_ip, origin, require_user, respond, state};
    use crate::server::uploads::{self, Uploads, policy};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let origin = origin();
        let ctx = Uploads::from(&*state).linked_at(origin.as_deref());
        let id = policy::upload_id_from_client(&upload, &user.id)?;
        let row = uploads::confirm(ctx, &user.id, &id, &client_ip()).await?;
        Ok(uploads::library::view(ctx, row).await?.into())
    })
    .await
}

/// The caller's images, newest first; `before` is the last id of the previous page.
#[server(endpoint = "uploads/list")]
pub async fn list_uploads(before: Option<String>) -> Result<Vec<UploadedImage>, AppError> {
    use crate::server::request::{cursor, origin, require_user, respond, state};
    use crate::server::uploads::{self, Uploads};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let origin = origin();
        let ctx = Uploads::from(&*state).linked_at(origin.as_deref());
        let images = uploads::list(ctx, &user.id, cursor(before)?.as_deref(), 60).await?;
        Ok(images.into_iter().map(UploadedImage::from).collect())
    })
    .await
}

/// Deletes an image (or cancels an upload still in flight).
#[server(endpoint = "uploads/delete")]
pub async fn delete_upload(upload: String) -> Result<(), AppError> {
    use crate::server::request::{client_ip, require_user, respond, state};
    use crate::server::uploads::{self, Uploads, policy};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let id = policy::upload_id_from_client(&upload, &user.id)?;
        Ok(uploads::remove(Uploads::from(&*state), &user.id, &id, &client_ip()).await?)
    })
    .await
}
