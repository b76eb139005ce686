//! What every request leaves behind: an id that follows it (into the jobs it creates, onto each
//! log line it causes, back to the client as `X-Request-Id`), one access line, and the HTTP
//! metrics by route and status.

use app::server::request::RequestId;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

const HEADER: &str = "x-request-id";

/// Names the request: a proxy's `X-Request-Id` when it is a plain token, else a new id.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let given = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).filter(|id| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let id = given.map_or_else(app::server::db::new_id, str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// One line per request: method, path (never the query, which may carry signed values), status
/// and latency, failures at warn; and `http_requests_total` / `http_request_duration_seconds`
/// labelled with the matched route (a fixed set, whatever paths clients invent).
pub async fn access_log(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let (status, ms) = (response.status().as_u16(), elapsed.as_millis() as u64);
    if response.status().is_server_error() {
        tracing::warn!(%method, %path, status, ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status, ms, "request");
    }
    let labels = [("route", route), ("status", status.to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => labels[0].1.clone()).record(elapsed.as_secs_f64());
    response
}
