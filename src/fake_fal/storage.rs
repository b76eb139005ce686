//! fal's storage (README, "fal's API": storage) in the fake: `POST /rest/storage/upload/initiate`
//! answers a presigned upload URL and the file's public URL, the `PUT` stores the bytes, and the
//! file is served until its lifecycle (`X-Fal-Object-Lifecycle`) ends, then answers 404 like a
//! deleted object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::FakeState;
use super::auth::account;

/// Largest file the fake's storage takes (fal's single-request limit is about 90 MB).
const MAX_FILE: usize = 90 * 1024 * 1024;

/// One file in the fake's storage.
#[derive(Clone, Debug)]
pub struct StoredFile {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    /// `expiration_duration_seconds` of the initiate's lifecycle header; `None`: kept forever.
    pub lifecycle_secs: Option<u64>,
    /// The uploaded bytes; `None` until the PUT arrives.
    pub bytes: Option<Vec<u8>>,
    /// Whether the PUT carried an `Authorization` header (fal's key must not go there).
    pub put_authorization: bool,
    pub created: Instant,
    pub file_url: String,
    token: String,
}

impl StoredFile {
    fn expired(&self) -> bool {
        self.lifecycle_secs.is_some_and(|secs| self.created.elapsed() >= Duration::from_secs(secs))
    }
}

#[derive(Deserialize)]
pub struct Initiate {
    content_type: String,
    file_name: String,
}

pub async fn initiate(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    if account(&headers).is_err() {
        let detail = "No user found for Key ID and Secret";
        return (StatusCode::UNAUTHORIZED, Json(json!({ "detail": detail }))).into_response();
    }
    let Ok(request) = serde_json::from_slice::<Initiate>(&body) else {
        let detail =
            [json!({ "loc": ["body"], "msg": "content_type and file_name are required", "type": "value_error" })];
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": detail }))).into_response();
    };
    let lifecycle_secs = headers
        .get("x-fal-object-lifecycle")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .and_then(|v| v.get("expiration_duration_seconds").and_then(Value::as_u64));
    let id = uuid::Uuid::new_v4().simple().to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let base = state.base_url();
    let name: String =
        request.file_name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    let file = StoredFile {
        id: id.clone(),
        file_name: name.clone(),
        content_type: request.content_type,
        lifecycle_secs,
        bytes: None,
        put_authorization: false,
        created: Instant::now(),
        file_url: format!("{base}/storage/files/{id}/{name}"),
        token: token.clone(),
    };
    let answer = json!({ "upload_url": format!("{base}/_fake/storage/{id}?token={token}"), "file_url": file.file_url });
    state.storage.lock().expect("storage lock").push(file);
    Json(answer).into_response()
}

#[derive(Deserialize)]
pub struct Token {
    token: Option<String>,
}

pub async fn put(
    State(state): State<Arc<FakeState>>,
    Path(id): Path<String>,
    Query(query): Query<Token>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > MAX_FILE {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let mut files = state.storage.lock().expect("storage lock");
    let Some(file) = files.iter_mut().find(|f| f.id == id) else { return StatusCode::NOT_FOUND.into_response() };
    if query.token.as_deref() != Some(file.token.as_str()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    file.put_authorization = headers.contains_key(header::AUTHORIZATION);
    if let Some(kind) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        file.content_type = kind.to_owned();
    }
    file.bytes = Some(body.to_vec());
    StatusCode::OK.into_response()
}

pub async fn file(State(state): State<Arc<FakeState>>, Path((id, _name)): Path<(String, String)>) -> Response {
    let files = state.storage.lock().expect("storage lock");
    match files.iter().find(|f| f.id == id) {
        Some(file) if !file.expired() && file.bytes.is_some() => {
            ([(header::CONTENT_TYPE, file.content_type.clone())], file.bytes.clone().unwrap_or_default())
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
