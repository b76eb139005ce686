//! Probes for load balancers and orchestrators: `/healthz` (the process answers and reaches its
//! database) and `/readyz` (database and storage both answer, each within two seconds).

use std::time::Duration;

use app::server::state::AppState;
use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde_json::json;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if database_ok(&state).await {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let (database, storage) = tokio::join!(database_ok(&state), storage_ok(&state));
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let status = if database && storage { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "database": word(database), "storage": word(storage) })))
}

async fn database_ok(state: &AppState) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.db.pool)).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::error!(%err, "probe: database unreachable");
            false
        }
        Err(_) => {
            tracing::error!("probe: the database did not answer within 2 s");
            false
        }
    }
}

async fn storage_ok(state: &AppState) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, state.storage.reachable()).await {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            tracing::error!(%err, "probe: storage unreachable");
            false
        }
        Err(_) => {
            tracing::error!("probe: storage did not answer within 2 s");
            false
        }
    }
}
