//! Prometheus metrics at `/metrics`: counters such as `upload_issued_total`,
//! `upload_rejected_total{reason}`. Open to direct loopback callers; anyone else needs the bearer
//! token `DARKROOM_METRICS_TOKEN`.

use std::net::SocketAddr;
use std::sync::OnceLock;

use app::server::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder, installed on first use (several servers in one test process share it).
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().expect("no other metrics recorder is installed"))
}

pub async fn route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // Behind a reverse proxy on this host every request comes from loopback: then only the token counts.
    let proxied = state.config.trusted_proxies > 0
        || headers.contains_key("x-forwarded-for")
        || headers.contains_key("forwarded");
    let local = peer.ip().is_loopback() && !proxied;
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = matches!((&state.config.metrics_token, bearer), (Some(expected), Some(given)) if constant_eq(expected.0.as_bytes(), given.as_bytes()));
    if !local && !token_ok {
        return StatusCode::NOT_FOUND.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], recorder().render()).into_response()
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
