//! `GET /events`: a server-sent event stream of the caller's job changes, so the Create tab
//! updates without reloading. Each event carries the job as its owner sees it (the same view
//! the API returns); `resync` asks the page to reload its list after it fell behind.
//!
//! A stream lives only as long as the session that opened it: it checks every few seconds (and
//! before each event, and when told its account changed) that the session still exists and the
//! account is still allowed in; after a logout, an expiry or a disable it sends `signed_out` and
//! ends. Each user may hold a few streams per replica.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
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
use super::views;
use crate::server::state::AppState;

/// How often an open stream checks that its session is still good.
const SESSION_CHECK: Duration = Duration::from_secs(2);
/// Open streams one user may hold on one replica (a few tabs; more is a leak or an attack).
pub const STREAMS_PER_USER: usize = 8;

/// The streams open on this replica, per user.
#[derive(Clone, Default)]
pub struct OpenStreams(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream; dropping it (the stream ended or the client left) frees the place.
pub struct StreamPlace {
    streams: OpenStreams,
    user_id: String,
}

impl OpenStreams {
    fn open(&self, user_id: &str) -> Option<StreamPlace> {
        let mut open = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(user_id.to_owned()).or_default();
        if *count >= STREAMS_PER_USER {
            return None;
        }
        *count += 1;
        Some(StreamPlace { streams: self.clone(), user_id: user_id.to_owned() })
    }
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

struct Follow {
    events: tokio::sync::broadcast::Receiver<super::JobEvent>,
    closing: tokio::sync::watch::Receiver<bool>,
    check: tokio::time::Interval,
    state: AppState,
    session_id: tower_sessions::session::Id,
    user_id: String,
    /// The origin the browser used, for the links in each view.
    origin: Option<String>,
    /// Set once the page was told its session has ended: the stream ends next.
    signed_out: bool,
    _place: StreamPlace,
}

impl Follow {
    async fn signed_in(&self) -> bool {
        let session = crate::server::auth::session::still_valid(
            &*self.state.sessions,
            &self.state.db,
            &self.session_id,
            &self.user_id,
        );
        session.await
    }
}

pub async fn stream(
    State(state): State<AppState>,
    headers: http::HeaderMap,
    session: tower_sessions::Session,
) -> Response {
    let user = crate::server::auth::session::current_user(&session, &state.db, None).await;
    let (Ok(Some(user)), Some(session_id)) = (user, session.id()) else {
        let body = json!({ "code": "auth.unauthenticated", "message": "Please log in to continue." });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    };
    let Some(place) = state.jobs.streams.open(&user.id) else {
        let body = json!({
            "code": "events.too_many",
            "message": format!("At most {STREAMS_PER_USER} pages can follow your jobs at once. Close a tab and reload."),
        });
        return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    };
    let mut check = tokio::time::interval(SESSION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let origin = crate::server::request::origin_of(&headers, state.config.trusted_proxies);
    let follow = Follow {
        events: state.jobs.events.subscribe(),
        closing: state.jobs.closing.subscribe(),
        check,
        state,
        session_id,
        user_id: user.id,
        origin,
        signed_out: false,
        _place: place,
    };
    let hello = futures::stream::once(async { Ok::<_, Infallible>(SseEvent::default().event("ready").data("{}")) });
    let updates = futures::stream::unfold(follow, |mut follow| async move {
        // The page is told, so it can leave for the login page instead of reconnecting.
        let signed_out = |mut follow: Follow| {
            follow.signed_out = true;
            Some((Ok(SseEvent::default().event("signed_out").data("{}")), follow))
        };
        loop {
            if *follow.closing.borrow() || follow.signed_out {
                return None;
            }
            let received = tokio::select! {
                received = follow.events.recv() => received,
                // The server is shutting down: end the stream so the connection can close.
                _ = follow.closing.changed() => continue,
                _ = follow.check.tick() => {
                    if follow.signed_in().await { continue } else { return signed_out(follow) }
                }
            };
            let event = match received {
                Ok(event) if event.user_id == follow.user_id => event,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return Some((Ok(SseEvent::default().event("resync").data("{}")), follow)),
                Err(RecvError::Closed) => return None,
            };
            // Never a view (with fresh media URLs) for a session that has ended. An event without
            // a job says something about the account changed: the check above is all it asks.
            if !follow.signed_in().await {
                return signed_out(follow);
            }
            let Ok(Some(job)) = rows::find_owned(&follow.state.db, &event.job_id, &follow.user_id).await else {
                continue;
            };
            let Ok(view) = views::one((&follow.state).into(), job, follow.origin.as_deref()).await else { continue };
            let data = serde_json::to_string(&view).unwrap_or_default();
            return Some((Ok(SseEvent::default().event("job").data(data)), follow));
        }
    });
    let mut response =
        Sse::new(hello.chain(updates)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    // Proxies must pass events through as they come.
    response.headers_mut().insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}
