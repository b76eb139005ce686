//! Webhook deliveries (README, "fal's API": webhooks): the body fal posts when a request finishes, signed
//! with the fake's own Ed25519 key, plus the misbehaviours tests need.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

use super::queue::outcome_body;
use super::{Delivery, FakeState, WebhookMode};

pub const FAKE_USER_ID: &str = "fake-fal-user";

pub(super) async fn deliver_when_done(state: Arc<FakeState>, id: String, url: String) {
    let (wait, mode) = {
        let requests = state.requests.lock().expect("request lock");
        let Some(request) = requests.get(&id) else { return };
        (
            Duration::from_millis(request.scenario.queue_ms + request.scenario.run_ms + 20),
            request.scenario.webhook.clone(),
        )
    };
    tokio::time::sleep(wait).await;
    // A run ends only once its inputs were read.
    for _ in 0..600 {
        let done = {
            let requests = state.requests.lock().expect("request lock");
            requests.get(&id).is_none_or(|r| matches!(super::queue::phase(r), super::queue::Phase::Done))
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = {
        let requests = state.requests.lock().expect("request lock");
        let Some(request) = requests.get(&id) else { return };
        if request.canceled {
            return;
        }
        let (status, payload) = outcome_body(&state.base_url(), request);
        let mut body = json!({ "request_id": id, "gateway_request_id": id, "status": "OK", "payload": payload });
        if !status.is_success() {
            body["status"] = json!("ERROR");
            body["error"] = json!(format!("Invalid status code: {}", status.as_u16()));
        }
        body.to_string()
    };
    let now = time_now();
    match mode {
        WebhookMode::None => {}
        WebhookMode::Normal => send(&state, &id, &url, &body, &state.signing_key, now, 3).await,
        WebhookMode::Duplicate(times) => {
            for _ in 0..times {
                send(&state, &id, &url, &body, &state.signing_key, now, 1).await;
            }
        }
        WebhookMode::Forged => {
            let impostor = SigningKey::from_bytes(&[0x42; 32]);
            send(&state, &id, &url, &body, &impostor, now, 1).await;
        }
        WebhookMode::Stale => send(&state, &id, &url, &body, &state.signing_key, now - 600, 1).await,
    }
}

fn time_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Posts one signed delivery, retrying 5xx answers up to `tries` times.
pub(super) async fn send(
    state: &FakeState,
    id: &str,
    url: &str,
    body: &str,
    key: &SigningKey,
    timestamp: i64,
    tries: u32,
) {
    let timestamp = timestamp.to_string();
    let message = app::server::fal::webhook::message(id, FAKE_USER_ID, &timestamp, body.as_bytes());
    let signature = hex::encode(key.sign(&message).to_bytes());
    for attempt in 1..=tries {
        let status = state
            .client()
            .post(url)
            .header("content-type", "application/json")
            .header("x-fal-webhook-request-id", id)
            .header("x-fal-webhook-user-id", FAKE_USER_ID)
            .header("x-fal-webhook-timestamp", &timestamp)
            .header("x-fal-webhook-signature", &signature)
            .body(body.to_owned())
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        state.deliveries.lock().expect("delivery lock").push(Delivery { request_id: id.to_owned(), status });
        if (status != 0 && status < 500) || attempt == tries {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
}
