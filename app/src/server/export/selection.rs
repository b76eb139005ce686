//! `POST /gallery/download`: the results picked in the gallery as one streamed ZIP. A form post
//! rather than a server fn, so the browser saves the archive as it arrives instead of holding it
//! in the page. Ids the account does not own are left out exactly like ids that never existed,
//! and `manifest.json` lists them under `not_found`.

use std::collections::HashSet;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Map, json};
use tower_sessions::Session;

use super::{Item, Slot, busy, signed_in, stream};
use crate::error::{AppError, code};
use crate::gallery::MAX_BULK_IDS;
use crate::server::audit::{self, Action, Event};
use crate::server::db::{Db, now_ms, parse_id, rfc3339};
use crate::server::gallery::links;
use crate::server::jobs::AssetRow;
use crate::server::state::AppState;

/// Largest form read: the most ids a selection may hold, each percent-encoded with its
/// separator, with room to spare (a larger body is refused as it arrives).
pub const MAX_SELECTION_FORM: usize = 256 * 1024;

#[derive(Deserialize)]
pub struct Picked {
    /// Result ids separated by commas (or whitespace), in the order the archive lists them.
    ids: String,
}

pub async fn selection(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    form: Result<Form<Picked>, FormRejection>,
) -> Response {
    match archive(state, session, form).await {
        Ok(response) => response,
        Err(err) => refused(&headers, err),
    }
}

async fn archive(
    state: AppState,
    session: Session,
    form: Result<Form<Picked>, FormRejection>,
) -> Result<Response, AppError> {
    let user = signed_in(&state, &session).await?;
    let Form(picked) = form.map_err(|rejection| {
        if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(code::REQUEST_TOO_LARGE, "That list of results is too long to read.")
        } else {
            AppError::new(code::REQUEST_MALFORMED, "Send the results to download as a form field `ids`.")
        }
    })?;
    let raw: Vec<&str> = picked.ids.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).collect();
    if raw.len() > MAX_BULK_IDS {
        return Err(crate::server::gallery::GalleryError::TooMany(raw.len()).into());
    }
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    let mut not_found = Vec::new();
    for given in raw {
        match parse_id(given) {
            Some(id) if seen.insert(id.clone()) => wanted.push(id),
            Some(_) => {}
            None => not_found.push(given.chars().take(64).collect::<String>()),
        }
    }
    if wanted.is_empty() {
        return Err(AppError::new(code::REQUEST_MALFORMED, "Pick at least one result to download."));
    }
    let Some(slot) = Slot::take(&user.id) else { return Err(busy()) };
    let mut items = owned(&state.db, &user.id, &wanted).await.map_err(|err| {
        tracing::error!(%err, "listing results for a download failed");
        AppError::internal()
    })?;
    if items.is_empty() {
        return Err(AppError::new(code::GALLERY_NOT_FOUND, "None of those results exist."));
    }
    let found: HashSet<&str> = items.iter().map(|item| item.asset.id.as_str()).collect();
    not_found.extend(wanted.iter().filter(|id| !found.contains(id.as_str())).cloned());
    name_uniquely(&mut items);
    audit::record(
        &state.db,
        Event::new(Action::AssetsDownloaded).actor(&user.id).detail(json!({ "files": items.len() })),
    )
    .await;
    let mut head = Map::new();
    head.insert("not_found".into(), json!(not_found));
    let name = format!("darkroom-{}-{}.zip", &rfc3339(now_ms())[..10], items.len());
    Ok(stream(state, slot, items, head, &name))
}

/// The account's results among `ids`, in the order given (trashed ones too: they are still
/// the user's until deleted for good).
async fn owned(db: &Db, user_id: &str, ids: &[String]) -> Result<Vec<Item>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT {}, j.model, j.params_json, j.created_at AS job_created_at \
         FROM assets a JOIN jobs j ON j.id = a.job_id WHERE a.user_id = $1 AND a.id IN ({})",
        AssetRow::columns("a."),
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(user_id);
    for id in ids {
        query = query.bind(id);
    }
    let rows = query.fetch_all(&db.pool).await?;
    let mut items = rows.iter().map(Item::from_row).collect::<Result<Vec<_>, _>>()?;
    let order: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    items.sort_by_key(|item| order.get(item.asset.id.as_str()).copied().unwrap_or(usize::MAX));
    Ok(items)
}

/// Each file gets the name its single download has (`darkroom-<model>-<date>-<n>.<ext>`); a
/// name already taken in this archive gets `-2`, `-3`… before its extension.
fn name_uniquely(items: &mut [Item]) {
    let mut taken = HashSet::new();
    for item in items {
        let base = links::file_name(&item.model, item.asset.created_at, item.asset.position, &item.asset.content_type);
        let (stem, ext) = base.rsplit_once('.').unwrap_or((&base, "bin"));
        let mut name = base.clone();
        let mut k = 1;
        while !taken.insert(name.clone()) {
            k += 1;
            name = format!("{stem}-{k}.{ext}");
        }
        item.name = name;
    }
}

/// The refusal as JSON for scripts, or as a short page for a browser that navigated here.
fn refused(headers: &HeaderMap, err: AppError) -> Response {
    let html = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if !html {
        return err.into_response();
    }
    let status = http::StatusCode::from_u16(err.status()).unwrap_or(http::StatusCode::BAD_REQUEST);
    let message = html_escape(&err.message);
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Download refused</title>\
         <p>{message}</p><p><a href=\"/gallery\">Back to the gallery</a></p>"
    );
    (status, Html(page)).into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
