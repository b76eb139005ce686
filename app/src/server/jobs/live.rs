//! `GET /events`: a server-sent event stream of the caller's job changes, so the Create tab
//! updates without reloading. Each event carries the job as its owner sees it (the same view
//! the API returns); `resync` asks the page to reload its list after it fell behind.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::StatusCode;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::rows;
use crate::api::jobs::views;
use crate::server::state::AppState;

pub async fn stream(State(state): State<AppState>, session: tower_sessions::Session) -> Response {
    let user = match crate::server::auth::session::current_user(&session, &state.db).await {
        Ok(Some(user)) => user,
        _ => {
            let body = json!({ "code": "auth.unauthenticated", "message": "Please log in to continue." });
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    };
    let events = state.jobs.events.subscribe();
    let closing = state.jobs.closing.subscribe();
    let hello = futures::stream::once(async { Ok::<_, Infallible>(SseEvent::default().event("ready").data("{}")) });
    let updates = futures::stream::unfold(
        (events, closing, state, user.id),
        |(mut events, mut closing, state, user_id)| async move {
            loop {
                let received = tokio::select! {
                    received = events.recv() => received,
                    // The server is shutting down: end the stream so the connection can close.
                    _ = closing.wait_for(|closing| *closing) => return None,
                };
                let event = match received {
                    Ok(event) if event.user_id == user_id => event,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        return Some((
                            Ok(SseEvent::default().event("resync").data("{}")),
                            (events, closing, state, user_id),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                };
                let Ok(Some(job)) = rows::find_owned(&state.db, &event.job_id, &user_id).await else { continue };
                let Ok(view) = views::one(&state, job).await else { continue };
                let data = serde_json::to_string(&view).unwrap_or_default();
                return Some((Ok(SseEvent::default().event("job").data(data)), (events, closing, state, user_id)));
            }
        },
    );
    let mut response =
        Sse::new(hello.chain(updates)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    // Proxies must pass events through as they come.
    response.headers_mut().insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}
