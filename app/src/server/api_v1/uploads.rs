//! `POST /uploads/presign` and `POST /uploads/confirm`: the browser's upload flow for an app.
//! The app asks for a ticket, PUTs the bytes straight to storage with the headers it was given,
//! then confirms; the server checks the stored bytes exactly as it does for the web app.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{Caller, JsonBody, Problem};
use crate::error::{AppError, code};
use crate::server::db::rfc3339;
use crate::server::state::AppState;
use crate::server::uploads::{self, IssueRequest, UploadError, Uploads, policy};
use crate::tokens::Scope;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    content_type: String,
    byte_length: u64,
    /// The bytes' SHA-256, hex or base64: storage refuses any other bytes.
    checksum: String,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadResponse {
    upload_url: String,
    key: String,
    expires_at: String,
    max_bytes: u64,
    /// Send exactly these with the PUT.
    headers: BTreeMap<String, String>,
}

/// Asks for an upload: a presigned PUT that can store only the declared bytes, for five minutes.
#[utoipa::path(post, path = "/api/v1/uploads/presign", operation_id = "presignUpload", tag = "uploads", request_body = UploadRequest,
    responses((status = 200, body = UploadResponse), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["uploads:write"])))]
pub async fn presign(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<UploadRequest>,
) -> Result<Json<UploadResponse>, Problem> {
    caller.needs(Scope::UploadsWrite)?;
    let _ = body.locale;
    let request = IssueRequest {
        content_type: &body.content_type,
        byte_length: body.byte_length,
        sha256: &body.checksum,
        filename: body.filename.as_deref(),
    };
    let ctx = Uploads::from(&*state).linked_at(caller.origin.as_deref());
    let ticket = uploads::issue(ctx, &caller.user.id, &caller.ip, request).await.map_err(AppError::from)?;
    Ok(Json(UploadResponse {
        upload_url: ticket.url,
        key: ticket.key,
        expires_at: rfc3339(ticket.expires_at),
        max_bytes: ticket.max_bytes,
        headers: ticket.headers.into_iter().collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadConfirmRequest {
    key: String,
    #[serde(default, rename = "eTag")]
    e_tag: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirmed {
    key: String,
    content_type: Option<String>,
    byte_length: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    /// Until when the image is kept unless a job uses it again.
    kept_until: Option<String>,
}

/// Confirms an upload once its bytes are stored: 404 when nothing was stored for the key; 422
/// when the stored image is not what the metadata says (the image is then deleted).
#[utoipa::path(post, path = "/api/v1/uploads/confirm", operation_id = "confirmUpload", tag = "uploads", request_body = UploadConfirmRequest,
    responses((status = 200, body = Confirmed), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["uploads:write"])))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<UploadConfirmRequest>,
) -> Result<Json<Confirmed>, Problem> {
    caller.needs(Scope::UploadsWrite)?;
    let _ = body.e_tag;
    let ctx = Uploads::from(&*state).linked_at(caller.origin.as_deref());
    let id = policy::upload_id_from_client(&body.key, &caller.user.id).map_err(AppError::from)?;
    let row = match uploads::confirm(ctx, &caller.user.id, &id, &caller.ip).await {
        Ok(row) => row,
        Err(UploadError::NotUploaded) => {
            return Err(AppError::new(code::UPLOAD_OBJECT_MISSING, "Nothing was uploaded for this key.").into());
        }
        Err(err) => return Err(AppError::from(err).into()),
    };
    let differs = |said: Option<u32>, is: Option<i64>| said.is_some_and(|s| Some(i64::from(s)) != is);
    if differs(body.metadata.width, row.width) || differs(body.metadata.height, row.height) {
        uploads::remove(ctx, &caller.user.id, &row.id, &caller.ip).await.map_err(AppError::from)?;
        return Err(AppError::new(
            code::UPLOAD_METADATA_MISMATCH,
            format!(
                "The image is {}×{}, not what the metadata says; it was deleted.",
                row.width.unwrap_or(0),
                row.height.unwrap_or(0)
            ),
        )
        .into());
    }
    Ok(Json(Confirmed {
        key: body.key,
        content_type: row.content_type,
        byte_length: row.byte_size,
        width: row.width,
        height: row.height,
        kept_until: row.kept_until.map(rfc3339),
    }))
}
