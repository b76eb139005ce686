//! Prometheus metrics at `/metrics`: HTTP requests by route and status, jobs by state, webhook
//! lag, the sweeper's work, uploads and fal calls.
//!
//! Who may read them: with `DARKROOM_METRICS_TOKEN` set, whoever sends it as a bearer token,
//! and nobody else. Without one, only a caller on this machine talking to Darkroom directly, and
//! only when no `PUBLIC_URL` says a proxy stands in front: a proxy on the same host connects
//! from loopback too, and may add no header that would tell it apart.

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
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new().install_recorder().expect("no other metrics recorder is installed");
        // Histograms keep every sample until upkeep folds them in: without it, a server nobody
        // scrapes would hold one more sample per request for ever.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        if let Err(err) = spawned {
            tracing::warn!(%err, "metrics upkeep did not start; histograms are folded in at each scrape only");
        }
        handle
    })
}

pub async fn route(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let allowed = match &state.config.metrics_token {
        Some(expected) => {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            bearer.is_some_and(|given| constant_eq(expected.0.as_bytes(), given.as_bytes()))
        }
        None => {
            let proxied = state.config.public_url.is_some()
                || state.config.trusted_proxies > 0
                || headers.contains_key("x-forwarded-for")
                || headers.contains_key("forwarded");
            peer.ip().is_loopback() && !proxied
        }
    };
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    count_jobs(&state).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], recorder().render()).into_response()
}

/// `jobs{state}`: how many jobs are in each state right now, counted when scraped.
async fn count_jobs(state: &AppState) {
    use sqlx::Row;
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetch_all(&state.db.pool).await;
    let Ok(rows) = rows else { return };
    for state in app::states::JobState::ALL {
        let name = state.as_str();
        let n = rows
            .iter()
            .find(|r| r.try_get::<String, _>("state").is_ok_and(|s| s == name))
            .and_then(|r| r.try_get::<i64, _>("n").ok())
            .unwrap_or(0);
        metrics::gauge!("jobs", "state" => name).set(n as f64);
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
