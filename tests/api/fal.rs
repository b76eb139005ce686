//! The fal client against the fake fal server: the queue protocol and webhook signatures.

use std::time::Duration;

use app::server::fal::webhook::{Jwks, WebhookError};
use app::server::fal::{CancelOutcome, FalError, FalKey, QueueStatus};
use darkroom::fake_fal::{FAKE_USER_ID, Outcome, Scenario};
use serde_json::json;

use crate::helpers::{TestApp, eventually};

fn key(prefix: &str) -> FalKey {
    FalKey::parse(&format!("{prefix}-id:secret-value")).unwrap()
}

#[tokio::test]
async fn submit_poll_and_fetch_a_result_through_the_queue() {
    let app = TestApp::spawn().await;
    let fal = &app.running.state.fal;
    let webhook: url::Url = "https://darkroom.example/hooks/fal".parse().unwrap();
    let input = json!({ "prompt": "a bob cut", "image_urls": [] });
    app.fake.script(Scenario { queue_ms: 60_000, run_ms: 60_000, ..Scenario::default() });
    let submitted = fal.submit(&key("api"), "fal-ai/nano-banana/edit", &input, Some(&webhook), 3600).await.unwrap();
    assert!(!submitted.request_id.is_empty());

    let seen = app.fake.submitted().pop().unwrap();
    assert_eq!(seen.endpoint, "fal-ai/nano-banana/edit", "submitted to the full endpoint id");
    assert_eq!(seen.webhook.as_deref(), Some("https://darkroom.example/hooks/fal"));
    assert_eq!(seen.input, input);
    let call = app.fake.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(call.authorization.as_deref(), Some("Key api-id:secret-value"));

    let first = fal.status(&key("api"), "fal-ai/nano-banana/edit", &submitted.request_id).await.unwrap();
    assert!(matches!(first, QueueStatus::InQueue { .. }), "{first:?}");
    let status_call = app.fake.requests().into_iter().rfind(|r| r.path.ends_with("/status")).unwrap();
    assert_eq!(status_call.path, format!("/queue/fal-ai/nano-banana/requests/{}/status", submitted.request_id));

    app.fake.advance(&submitted.request_id, Duration::from_secs(120));
    let done = fal.status(&key("api"), "fal-ai/nano-banana/edit", &submitted.request_id).await.unwrap();
    assert_eq!(done, QueueStatus::Completed { error: None, error_type: None });
    let output = fal.result(&key("api"), "fal-ai/nano-banana/edit", &submitted.request_id).await.unwrap();
    assert!(output["images"][0]["url"].as_str().unwrap().starts_with(&app.fake.base_url()));
    let cancel = fal.cancel(&key("api"), "fal-ai/nano-banana/edit", &submitted.request_id).await.unwrap();
    assert_eq!(cancel, CancelOutcome::AlreadyCompleted);
}

#[tokio::test]
async fn failures_come_back_typed() {
    let app = TestApp::spawn().await;
    let fal = &app.running.state.fal;
    let input = json!({ "prompt": "x" });
    app.fake.script(Scenario { submit_failures: 1, ..Scenario::default() });
    let unavailable = fal.submit(&key("api"), "fal-ai/nano-banana", &input, None, 60).await.unwrap_err();
    assert!(unavailable.is_retriable(), "{unavailable:?}");
    assert!(fal.submit(&key("api"), "fal-ai/nano-banana", &input, None, 60).await.is_ok(), "the next submit succeeds");

    let locked = fal.submit(&key("locked"), "fal-ai/nano-banana", &input, None, 60).await.unwrap_err();
    assert!(matches!(locked, FalError::AccountLocked { ref message } if message.contains("Exhausted balance")));
    let rejected = fal.submit(&key("invalid"), "fal-ai/nano-banana", &input, None, 60).await.unwrap_err();
    assert!(matches!(rejected, FalError::KeyRejected { .. }));

    app.fake.script(Scenario { queue_ms: 0, run_ms: 0, outcome: Outcome::ContentPolicy, ..Scenario::default() });
    let submitted = fal.submit(&key("api"), "fal-ai/nano-banana", &input, None, 60).await.unwrap();
    let status = fal.status(&key("api"), "fal-ai/nano-banana", &submitted.request_id).await.unwrap();
    assert!(matches!(status, QueueStatus::Completed { error: Some(_), .. }));
    let policy = fal.result(&key("api"), "fal-ai/nano-banana", &submitted.request_id).await.unwrap_err();
    assert!(policy.is_content_policy(), "{policy:?}");

    let queued = fal.submit(&key("api"), "fal-ai/nano-banana", &input, None, 60).await.unwrap();
    assert_eq!(
        fal.cancel(&key("api"), "fal-ai/nano-banana", &queued.request_id).await.unwrap(),
        CancelOutcome::Requested
    );
    assert_eq!(
        fal.cancel(&key("api"), "fal-ai/nano-banana", "no-such-request").await.unwrap(),
        CancelOutcome::NotFound
    );
}

#[tokio::test]
async fn the_fake_fetches_presigned_inputs_only_while_they_are_valid() {
    let app = TestApp::spawn().await;
    let storage = app.storage();
    storage
        .put_bytes(&storage.uploads_bucket, "sources/u/x", b"bytes".to_vec(), "image/png", &sha256(b"bytes"))
        .await
        .unwrap();
    let fresh =
        storage.presign_get(&storage.uploads_bucket, "sources/u/x", Duration::from_secs(60), None).await.unwrap();
    // Signed an hour ago for a minute: already expired.
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let expired = app::server::storage::Validity { ttl: Duration::from_secs(60), at: an_hour_ago };
    let short = storage.presign_get(&storage.uploads_bucket, "sources/u/x", expired, None).await.unwrap();
    let fal = &app.running.state.fal;
    let input = json!({ "prompt": "x", "image_urls": [fresh, short] });
    fal.submit(&key("api"), "fal-ai/nano-banana/edit", &input, None, 60).await.unwrap();
    let fetches = eventually("the fake fetched both inputs", || async {
        Some(app.fake.submitted().pop().unwrap().input_fetches).filter(|f| f.len() == 2)
    })
    .await;
    let statuses: Vec<u16> = fetches.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0], 200, "a valid presigned GET works for the provider");
    assert!(matches!(statuses[1], 400 | 403), "an expired one does not: {}", statuses[1]);
}

fn sha256(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn webhook_signatures_are_checked_against_the_jwks() {
    let app = TestApp::spawn().await;
    let jwks = Jwks::new(format!("{}/rest/.well-known/jwks.json", app.fake.base_url()).parse().unwrap());
    let body = br#"{"request_id":"r1","status":"OK","payload":{}}"#;
    let headers = |request_id: &str, timestamp: i64, signature: &str| {
        let mut h = http::HeaderMap::new();
        h.insert("x-fal-webhook-request-id", request_id.parse().unwrap());
        h.insert("x-fal-webhook-user-id", FAKE_USER_ID.parse().unwrap());
        h.insert("x-fal-webhook-timestamp", timestamp.to_string().parse().unwrap());
        h.insert("x-fal-webhook-signature", signature.parse().unwrap());
        h
    };
    // Every check is judged at the same instant `t`: a clock tick mid-test must not move the window.
    let t = now();
    let good = headers("r1", t, &app.fake.sign("r1", t, body));
    let verified = jwks.verify(&good, body, t).await.unwrap();
    assert_eq!((verified.request_id.as_str(), verified.user_id.as_str()), ("r1", FAKE_USER_ID));

    let tampered = br#"{"request_id":"r1","status":"OK","payload":{"x":1}}"#;
    assert_eq!(jwks.verify(&good, tampered, t).await, Err(WebhookError::BadSignature));
    let other_request = headers("r2", t, &app.fake.sign("r1", t, body));
    assert_eq!(jwks.verify(&other_request, body, t).await, Err(WebhookError::BadSignature));
    let stale = t - 301;
    assert_eq!(
        jwks.verify(&headers("r1", stale, &app.fake.sign("r1", stale, body)), body, t).await,
        Err(WebhookError::Stale)
    );
    let future = t + 301;
    assert_eq!(
        jwks.verify(&headers("r1", future, &app.fake.sign("r1", future, body)), body, t).await,
        Err(WebhookError::Stale)
    );
    assert_eq!(jwks.verify(&headers("r1", t, "abcd"), body, t).await, Err(WebhookError::MalformedSignature));
    let mut missing = good.clone();
    missing.remove("x-fal-webhook-user-id");
    assert_eq!(jwks.verify(&missing, body, t).await, Err(WebhookError::MissingHeader("x-fal-webhook-user-id")));
    let jwks_fetches = app.fake.requests().iter().filter(|r| r.path.ends_with("jwks.json")).count();
    assert_eq!(jwks_fetches, 1, "the key set is cached, and forgeries do not trigger refetches");
}
