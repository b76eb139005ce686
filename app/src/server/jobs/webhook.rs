//! `POST /hooks/fal`: fal's completion deliveries. Only a body signed by a key in fal's JWKS,
//! with a fresh timestamp, changes anything (the README's "Security in short"); everything else is
//! refused and audited. Accepted deliveries are recorded and answered at once: saving the
//! results happens in the worker, not while fal waits.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::complete::{Completion, Outcome, complete};
use crate::server::audit::{self, Action, Event};
use crate::server::fal::FalError;
use crate::server::fal::webhook::{Claim, WebhookError};
use crate::server::state::AppState;

/// Largest delivery accepted (outputs come as URLs; inline files are not requested).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Deliveries read and checked at once per process; more are asked to come back (fal retries).
const AT_ONCE: usize = 16;

fn turns() -> &'static tokio::sync::Semaphore {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(AT_ONCE);
    &TURNS
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// Receives a delivery. Whatever cannot be fal's (signature headers missing, malformed or
/// stale) is refused before a byte of the body is read; the body is read within its limit and
/// hashed only for a delivery that could be real, a few at a time.
pub async fn receive(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claimed_request =
        request.headers().get("x-fal-webhook-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let claim = match Claim::read(request.headers(), now) {
        Ok(claim) => claim,
        Err(err) => return refused(&state, claimed_request.as_deref(), &err).await,
    };
    let Ok(_turn) = turns().try_acquire() else {
        let mut busy = answer(StatusCode::SERVICE_UNAVAILABLE, "webhook.busy", "Try again later.");
        busy.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("5"));
        return busy;
    };
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return answer(StatusCode::PAYLOAD_TOO_LARGE, "webhook.too_large", "The delivery is larger than accepted.");
        }
    };
    let verified = match state.jobs.jwks.verify_claim(&claim, &body).await {
        Ok(verified) => verified,
        Err(WebhookError::Jwks(err)) => {
            tracing::error!(%err, "fal's JWKS is unavailable; asking fal to deliver again later");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "webhook.keys_unavailable", "Try again later.");
        }
        Err(err) => return refused(&state, Some(claim.request_id()), &err).await,
    };

    let Ok(delivery) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "webhook.malformed", "The body is not JSON.");
    };
    if delivery.get("request_id").and_then(Value::as_str) != Some(verified.request_id.as_str()) {
        reject(&state, Some(&verified.request_id), "request_id_mismatch").await;
        return answer(StatusCode::BAD_REQUEST, "webhook.mismatch", "The body is for another request.");
    }
    let outcome = match outcome(&delivery) {
        Some(outcome) => outcome,
        None => {
            // fal could not put the output in the delivery: fetch it from the queue right away.
            if let Err(err) = super::transition::due_now(&state.db, &verified.request_id).await {
                // The poller finds the result at its next look anyway.
                tracing::warn!(%err, "could not move the job's next look forward");
            }
            state.jobs.wake.notify_one();
            return answer(StatusCode::ACCEPTED, "webhook.accepted", "The result will be fetched from the queue.");
        }
    };
    match complete((&state).into(), &verified.request_id, outcome).await {
        Ok(Completion::Unknown) => {
            metrics::counter!("webhook_rejected_total", "reason" => "unknown_request").increment(1);
            reject(&state, Some(&verified.request_id), "unknown_request").await;
            answer(StatusCode::NOT_FOUND, "webhook.unknown_request", "No job has this request id.")
        }
        Ok(Completion::AlreadyDone(job_state)) => {
            tracing::info!(request = %verified.request_id, state = job_state.as_str(), "duplicate webhook ignored");
            answer(StatusCode::OK, "webhook.duplicate", "Already handled.")
        }
        Ok(Completion::Persisting(job) | Completion::Failed(job) | Completion::Requeued(job)) => {
            metrics::counter!("webhook_accepted_total").increment(1);
            metrics::histogram!("webhook_lag_seconds").record(claim.age_secs(now) as f64);
            audit::record(
                &state.db,
                Event::new(Action::WebhookAccepted)
                    .subject("job", &job.id)
                    .detail(json!({ "request_id": verified.request_id, "state": job.state.as_str() })),
            )
            .await;
            answer(StatusCode::OK, "webhook.accepted", "Thanks.")
        }
        Err(err) => {
            tracing::error!(%err, "webhook could not be recorded; fal will deliver again");
            answer(StatusCode::SERVICE_UNAVAILABLE, "webhook.unavailable", "Try again later.")
        }
    }
}

/// What a delivery says: the output, or the error the request ended with. `None` when the
/// output is not in the body (`payload_error`) and must be fetched from the queue.
fn outcome(delivery: &Value) -> Option<Outcome> {
    let payload = delivery.get("payload").cloned().unwrap_or(Value::Null);
    match delivery.get("status").and_then(Value::as_str) {
        Some("OK") if !payload.is_null() => Some(Outcome::Output(payload)),
        Some("OK") => None,
        _ => {
            // `error` reads "Invalid status code: 422"; the payload is the model's error body.
            let status = delivery
                .get("error")
                .and_then(Value::as_str)
                .and_then(|e| e.rsplit(' ').next())
                .and_then(|n| n.parse::<u16>().ok())
                .unwrap_or(500);
            let body = serde_json::to_vec(&payload).unwrap_or_default();
            Some(Outcome::Failed(FalError::from_response(status, &HeaderMap::new(), &body, false)))
        }
    }
}

async fn refused(state: &AppState, claimed_request: Option<&str>, err: &WebhookError) -> Response {
    tracing::warn!(%err, "webhook refused");
    metrics::counter!("webhook_rejected_total", "reason" => reason(err)).increment(1);
    reject(state, claimed_request, reason(err)).await;
    answer(StatusCode::UNAUTHORIZED, "webhook.unauthorized", "Signature check failed.")
}

fn reason(err: &WebhookError) -> &'static str {
    match err {
        WebhookError::MissingHeader(_) => "missing_header",
        WebhookError::BadTimestamp | WebhookError::Stale => "stale",
        WebhookError::MalformedSignature | WebhookError::BadSignature => "bad_signature",
        WebhookError::Jwks(_) => "keys_unavailable",
    }
}

/// Refusals audited per minute and process: anyone can post here, and must not be able to fill
/// the audit log (the metric still counts every refusal).
const AUDITED_REFUSALS_PER_MINUTE: u64 = 60;

fn may_audit_refusal() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let minute = (crate::server::db::now_ms() / 60_000) as u64;
    if WINDOW.swap(minute, Ordering::Relaxed) != minute {
        COUNT.store(0, Ordering::Relaxed);
    }
    COUNT.fetch_add(1, Ordering::Relaxed) < AUDITED_REFUSALS_PER_MINUTE
}

async fn reject(state: &AppState, request_id: Option<&str>, why: &str) {
    if !may_audit_refusal() {
        return;
    }
    // The claimed id is attacker-chosen text: keep it short.
    let request_id = request_id.map(|id| id.chars().take(64).collect::<String>());
    audit::record(
        &state.db,
        Event::new(Action::WebhookRejected).detail(json!({ "reason": why, "request_id": request_id })),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_become_outcomes() {
        let ok = json!({"request_id": "r", "status": "OK", "payload": {"images": []}});
        assert!(matches!(outcome(&ok), Some(Outcome::Output(p)) if p["images"].is_array()));
        let policy = json!({"request_id": "r", "status": "ERROR", "error": "Invalid status code: 422",
            "payload": {"detail": [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]}});
        assert!(matches!(outcome(&policy), Some(Outcome::Failed(e)) if e.is_content_policy()));
        let timeout = json!({"request_id": "r", "status": "ERROR", "error": "Invalid status code: 504", "payload": {"detail": "Request timed out", "error_type": "request_timeout"}});
        assert!(matches!(outcome(&timeout), Some(Outcome::Failed(e)) if e.is_retriable()));
        let unserialisable = json!({"request_id": "r", "status": "OK", "payload": null, "payload_error": "not JSON"});
        assert!(outcome(&unserialisable).is_none());
    }
}
