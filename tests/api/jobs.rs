//! Generation jobs end to end against the fake fal: submit, webhook or polling, persist into our
//! results bucket exactly once, failures with their codes, and ownership.

use std::time::Duration;

use app::server::jobs::rows::{self, JobRow, JobState};
use darkroom::fake_fal::{Outcome, Scenario, WebhookMode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Client, TestApp, eventually};
use crate::testdata;
use crate::uploads::upload;

pub(crate) const EDIT: &str = "fal-ai/nano-banana/edit";
pub(crate) const TEXT: &str = "fal-ai/nano-banana";

pub(crate) fn key(prefix: &str) -> String {
    format!("{prefix}-{}:secret-{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// A signed-up user with a saved fal key of the given kind (`api`, `locked`, `invalid`).
pub(crate) async fn user_with_key(app: &TestApp, email: &str, kind: &str) -> Client {
    let client = app.user(email).await;
    let saved = client.call("keys/save", &[("key", &key(kind))]).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    client
}

pub(crate) async fn selfie(client: &Client) -> String {
    upload_id(client, &testdata::png(48, 64), "image/png").await
}

/// The id of `bytes`, uploaded and confirmed through the web app.
pub(crate) async fn upload_id(client: &Client, bytes: &[u8], content_type: &str) -> String {
    let (_, reply) = upload(client, bytes, content_type).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json::<Value>()["id"].as_str().unwrap().to_owned()
}

async fn create(client: &Client, model: &str, params: Value, images: &[&str]) -> crate::helpers::Reply {
    let body = json!({ "model": model, "params": params, "images": images });
    let request =
        client.http.post(format!("{}/api/jobs/create", client.base)).header("accept", "application/json").json(&body);
    client.send(request).await
}

pub(crate) async fn start(client: &Client, model: &str, params: Value, images: &[&str]) -> String {
    let job = client.create_job(model, params, images).await.unwrap_or_else(|reply| panic!("{}", reply.body));
    assert_eq!(job.state, JobState::Queued);
    job.id
}

pub(crate) async fn job(app: &TestApp, id: &str) -> JobRow {
    rows::find(app.db(), id).await.unwrap().expect("the job exists")
}

/// Waits until the job is in `state`, failing early if it ends elsewhere.
pub(crate) async fn wait_for(app: &TestApp, id: &str, state: JobState) -> JobRow {
    eventually(&format!("job {id} reaching {state:?}"), || async {
        let row = job(app, id).await;
        if row.state != state && row.state.is_final() {
            panic!("job ended {:?} ({:?}: {:?}) instead of {state:?}", row.state, row.error_code, row.error_message);
        }
        (row.state == state).then_some(row)
    })
    .await
}

async fn asset_count(app: &TestApp, job_id: &str) -> i64 {
    use sqlx::Row;
    sqlx::query("SELECT COUNT(*) AS n FROM assets WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap()
        .get("n")
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    use sqlx::Row;
    sqlx::query("SELECT action FROM audit_events ORDER BY at")
        .fetch_all(&app.db().pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("action"))
        .collect()
}

fn prefix(kind: &str, row: &JobRow) -> String {
    format!("{kind}/{}/{}/", row.user_id, row.id)
}

#[tokio::test]
async fn a_selfie_and_a_hairstyle_become_a_result_in_our_bucket_through_the_webhook() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self")]).await;
    let client = app.user("ada@example.com").await;
    let secret_key = key("api");
    client.call("keys/save", &[("key", &secret_key)]).await;
    let photo = selfie(&client).await;
    let prompt = app::catalog::HAIRSTYLES[0].prompt;
    let id = start(&client, EDIT, json!({ "prompt": prompt }), &[&photo]).await;
    let done = wait_for(&app, &id, JobState::Succeeded).await;

    let sent = app.fake.submitted().pop().unwrap();
    assert_eq!(sent.endpoint, EDIT);
    assert_eq!(sent.webhook.as_deref(), Some(format!("{}/hooks/fal", app.base).as_str()));
    assert_eq!(sent.lifecycle.as_deref(), Some(r#"{"expiration_duration_seconds":86400}"#));
    assert_eq!(sent.input["prompt"], prompt);
    let urls = sent.input["image_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Expires=300") || url.contains("x-amz-expires=300"),
        "inputs are presigned for 5 minutes: {url}"
    );
    assert_eq!(sent.input_fetches.first().map(|(_, s)| *s), Some(200), "fal could read the presigned input");
    assert!(app.fake.stored_files().is_empty(), "with a public URL, no input is copied into fal's storage");
    // The status may be checked meanwhile (so the page can say "Generating"), never the result.
    let result_path = format!("/requests/{}", sent.id);
    let fetched = app.fake.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with(&result_path)).count();
    assert_eq!(fetched, 0, "the webhook brought the result, not the poller");
    assert_eq!(app.fake.deliveries().iter().map(|d| d.status).collect::<Vec<_>>(), [200]);

    let keys = app.result_keys(&prefix("results", &done)).await;
    assert_eq!(keys, [format!("{}0.png", prefix("results", &done))]);
    assert_eq!(app.result_keys(&prefix("thumbs", &done)).await.len(), 1, "a thumbnail was made");

    let view: Value = client.call("jobs/get", &[("id", &id)]).await.json();
    assert_eq!(view["state"], "succeeded");
    assert_eq!(view["status"], "Done");
    let asset = &view["assets"][0];
    assert_eq!((asset["kind"].as_str(), asset["content_type"].as_str()), (Some("image"), Some("image/png")));
    assert_eq!((asset["width"].as_u64(), asset["height"].as_u64()), (Some(64), Some(64)));
    let served = asset["url"].as_str().unwrap();
    assert!(!served.starts_with(&app.fake.base_url()), "served from our bucket, not fal's: {served}");
    let bytes = reqwest::get(served).await.unwrap().bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "the stored result is the image");
    let thumb = reqwest::get(asset["thumb_url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert_eq!(&thumb[8..12], b"WEBP");
    let thumb_picture = image::load_from_memory(&thumb).unwrap();
    assert_eq!((thumb_picture.width(), thumb_picture.height()), (64, 64), "a 64×64 result is not upscaled");
    assert!(thumb.len() < 16 * 1024, "a thumbnail smaller than its original: {} bytes", thumb.len());

    let stored_sha: String = {
        use sqlx::Row;
        sqlx::query("SELECT sha256 FROM assets WHERE job_id = $1")
            .bind(&id)
            .fetch_one(&app.db().pool)
            .await
            .unwrap()
            .get("sha256")
    };
    assert_eq!(stored_sha, hex::encode(Sha256::digest(&bytes)));
    let logs = crate::helpers::captured_logs();
    let signature = url.split("Signature=").nth(1).unwrap().split('&').next().unwrap();
    if let Some(at) = logs.find(signature) {
        let line_start = logs[..at].rfind('\n').unwrap_or(0);
        panic!("a presigned input URL reached the logs: {}", &logs[line_start..(at + 200).min(logs.len())]);
    }
    assert!(!logs.contains(secret_key.split(':').nth(1).unwrap()), "the fal key reached the logs");
    let actions = audit_actions(&app).await;
    for expected in ["job.created", "fal.invoked", "webhook.accepted", "asset.persisted"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} audited: {actions:?}");
    }
}

#[tokio::test]
async fn without_a_public_url_the_poller_completes_the_job() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { outcome: Outcome::Images { count: 2, width: 40, height: 30 }, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "a lighthouse", "num_images": "2" }), &[]).await;
    let done = wait_for(&app, &id, JobState::Succeeded).await;

    let sent = app.fake.submitted().pop().unwrap();
    assert_eq!(sent.webhook, None, "no public URL, no webhook");
    assert_eq!(
        sent.input,
        json!({ "prompt": "a lighthouse", "num_images": 2, "aspect_ratio": "1:1", "output_format": "png" })
    );
    let polls = app.fake.requests().iter().filter(|r| r.path.ends_with("/status")).count();
    assert!(polls >= 1, "the status was polled");
    assert!(app.fake.deliveries().is_empty());
    assert_eq!(asset_count(&app, &id).await, 2);
    let keys = app.result_keys(&prefix("results", &done)).await;
    assert_eq!(keys.len(), 2, "{keys:?}");

    let listed: Vec<Value> = client.call("jobs/list", &[]).await.json();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["assets"].as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["assets"][0]["width"], 40);
}

#[tokio::test]
async fn a_webhook_delivered_three_times_stores_one_set_of_assets() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { webhook: WebhookMode::Duplicate(3), ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;
    let done = wait_for(&app, &id, JobState::Succeeded).await;
    eventually("all three deliveries made", || async { (app.fake.deliveries().len() == 3).then_some(()) }).await;
    let request = done.fal_request_id.clone().unwrap();
    app.fake.redeliver(&request).await;

    let statuses: Vec<u16> = app.fake.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200], "every delivery is acknowledged");
    assert_eq!(asset_count(&app, &id).await, 1, "one asset, however often fal delivers");
    assert_eq!(app.result_keys(&prefix("results", &done)).await.len(), 1);
    assert_eq!(app.result_keys(&prefix("thumbs", &done)).await.len(), 1);
    let accepted = audit_actions(&app).await.iter().filter(|a| *a == "webhook.accepted").count();
    assert_eq!(accepted, 1, "only the first delivery changed anything");
}

#[tokio::test]
async fn forged_stale_unsigned_and_unknown_deliveries_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { webhook: WebhookMode::Forged, ..Scenario::default() });
    let forged = start(&client, TEXT, json!({ "prompt": "one" }), &[]).await;
    app.fake.script(Scenario { webhook: WebhookMode::Stale, ..Scenario::default() });
    let stale = start(&client, TEXT, json!({ "prompt": "two" }), &[]).await;
    eventually("both deliveries made", || async { (app.fake.deliveries().len() >= 2).then_some(()) }).await;
    let statuses: Vec<u16> = app.fake.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [401, 401], "a forged signature and a stale timestamp are refused");

    let hook = format!("{}/hooks/fal", app.base);
    let http = reqwest::Client::new();
    let body = br#"{"request_id":"nope","status":"OK","payload":{"images":[]}}"#;
    let unsigned = http.post(&hook).body(body.to_vec()).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let unknown = http
        .post(&hook)
        .header("x-fal-webhook-request-id", "nope")
        .header("x-fal-webhook-user-id", darkroom::fake_fal::FAKE_USER_ID)
        .header("x-fal-webhook-timestamp", now.to_string())
        .header("x-fal-webhook-signature", app.fake.sign("nope", now, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "a signed delivery for no job of ours");

    for id in [&forged, &stale] {
        let row = job(&app, id).await;
        assert!(JobState::AT_FAL.contains(&row.state), "no state change: {:?}", row.state);
        assert_eq!(asset_count(&app, id).await, 0);
    }
    let rejected = audit_actions(&app).await.iter().filter(|a| *a == "webhook.rejected").count();
    assert_eq!(rejected, 4);

    // The same result, properly signed, is accepted: the refusals were about the signatures.
    let request = job(&app, &forged).await.fal_request_id.unwrap();
    app.fake.redeliver(&request).await;
    wait_for(&app, &forged, JobState::Succeeded).await;
}

#[tokio::test]
async fn an_unavailable_provider_is_retried_until_the_job_succeeds() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { submit_failures: 2, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;
    let done = wait_for(&app, &id, JobState::Succeeded).await;
    assert_eq!(done.attempts, 0, "the persist step starts its own count");
    let submits = app.fake.requests().iter().filter(|r| r.method == "POST" && r.path.starts_with("/queue/")).count();
    assert_eq!(submits, 3, "two 503s, then the accepted submit");
    let invoked = audit_actions(&app).await.iter().filter(|a| *a == "fal.invoked").count();
    assert_eq!(invoked, 3);
    assert_eq!(asset_count(&app, &id).await, 1);
}

#[tokio::test]
async fn retries_are_bounded_and_say_why_they_gave_up() {
    let app = TestApp::spawn_with(&[("DARKROOM_JOB_MAX_ATTEMPTS", "3")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { submit_failures: 10, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("job.retries_exhausted"));
    assert!(failed.error_message.unwrap().contains("503"));
    let submits = app.fake.requests().iter().filter(|r| r.method == "POST" && r.path.starts_with("/queue/")).count();
    assert_eq!(submits, 3);
}

#[tokio::test]
async fn content_policy_and_account_problems_fail_with_their_reason() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { outcome: Outcome::ContentPolicy, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "something flagged" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("fal.content_policy"));
    assert_eq!(
        failed.error_message.as_deref(),
        Some(
            "Blocked by the provider's content policy: The content could not be processed because it contained material flagged by a content checker."
        )
    );
    assert_eq!(asset_count(&app, &id).await, 0);
    assert!(app.result_keys(&prefix("results", &failed)).await.is_empty());
    let view: Value = client.call("jobs/get", &[("id", &id)]).await.json();
    assert_eq!((view["status"].as_str(), view["can_retry"].as_bool()), (Some("Failed"), Some(true)));

    app.fake.script(Scenario {
        outcome: Outcome::Invalid { field: "aspect_ratio".into(), message: "unsupported".into() },
        ..Scenario::default()
    });
    let id = start(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("fal.invalid_input"));
    assert!(failed.error_message.unwrap().contains("aspect_ratio: unsupported"));

    let locked = user_with_key(&app, "locked@example.com", "locked").await;
    let id = start(&locked, TEXT, json!({ "prompt": "x" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("fal.account_locked"));
    assert!(failed.error_message.unwrap().contains("Exhausted balance"));

    let rejected = user_with_key(&app, "rejected@example.com", "invalid").await;
    let id = start(&rejected, TEXT, json!({ "prompt": "x" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("fal.key_rejected"));

    let metrics = reqwest::get(format!("{}/metrics", app.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("fal_request_failure_total{code=\"fal.content_policy\"}"), "{metrics}");
}

#[tokio::test]
async fn outputs_on_hosts_outside_the_allow_list_are_never_fetched() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    // A "metadata service" on loopback that counts who reaches it.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = target.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let direct = format!("http://localhost:{port}/latest/meta-data");
    let redirected = format!("{}/files/redirect/x?to=http://localhost:{port}/latest/meta-data", app.fake.base_url());
    for url in [direct, redirected] {
        app.fake.script(Scenario { outcome: Outcome::Url(url.clone()), ..Scenario::default() });
        let id = start(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
        let failed = wait_for(&app, &id, JobState::Failed).await;
        assert_eq!(failed.error_code.as_deref(), Some("job.disallowed_host"), "{url}");
        assert!(failed.error_message.as_deref().unwrap().contains("localhost"));
        assert!(app.result_keys(&prefix("results", &failed)).await.is_empty());
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing outside the allow-list was contacted");
}

#[tokio::test]
async fn another_user_cannot_see_cancel_retry_or_borrow_inputs() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    app.fake.script(Scenario { outcome: Outcome::ContentPolicy, ..Scenario::default() });
    let photo = selfie(&ada).await;
    let id = start(&ada, EDIT, json!({ "prompt": "a bob cut" }), &[&photo]).await;
    wait_for(&app, &id, JobState::Failed).await;

    for endpoint in ["jobs/get", "jobs/cancel", "jobs/retry"] {
        let reply = bob.call(endpoint, &[("id", &id)]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "job.not_found".into()), "{endpoint}");
    }
    let listed: Vec<Value> = bob.call("jobs/list", &[]).await.json();
    assert!(listed.is_empty());
    assert_eq!(job(&app, &id).await.state, JobState::Failed, "bob's retry changed nothing");

    let borrowed = create(&bob, EDIT, json!({ "prompt": "a bob cut" }), &[&photo]).await;
    assert_eq!(borrowed.code(), "job.input_missing", "ada's photo is not bob's input");
    assert_eq!(app.fake.submitted().len(), 1, "nothing of bob's reached fal");
}

#[tokio::test]
async fn bad_requests_get_a_code_and_leave_no_job() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let no_key = create(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
    assert_eq!(no_key.code(), "keys.missing");
    client.call("keys/save", &[("key", &key("api"))]).await;
    let cases = [
        (create(&client, "fal-ai/unknown", json!({ "prompt": "x" }), &[]).await, "job.unknown_model", "model"),
        (create(&client, TEXT, json!({}), &[]).await, "job.invalid_input", "prompt"),
        (
            create(&client, TEXT, json!({ "prompt": "x", "num_images": 9 }), &[]).await,
            "job.invalid_input",
            "num_images",
        ),
        (
            create(&client, TEXT, json!({ "prompt": "x", "sync_mode": true }), &[]).await,
            "job.invalid_input",
            "sync_mode",
        ),
        (create(&client, EDIT, json!({ "prompt": "x" }), &[]).await, "job.invalid_input", "image_urls"),
    ];
    for (reply, code, field) in cases {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.code(), code);
        assert_eq!(reply.json::<Value>()["field"], field);
    }
    let jobs: Vec<Value> = client.call("jobs/list", &[]).await.json();
    assert!(jobs.is_empty());
    assert!(app.fake.submitted().is_empty());
}

#[tokio::test]
async fn a_job_can_be_canceled_at_fal_and_retried() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { queue_ms: 10_000, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "slow" }), &[]).await;
    wait_for(&app, &id, JobState::Submitted).await;
    let canceled: Value = client.call("jobs/cancel", &[("id", &id)]).await.json();
    assert_eq!(canceled["state"], "canceled");
    assert!(app.fake.submitted()[0].canceled, "the request was canceled at fal too");
    let again = client.call("jobs/cancel", &[("id", &id)]).await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::CONFLICT, "job.not_cancelable"));

    let retried: Value = client.call("jobs/retry", &[("id", &id)]).await.json();
    assert_eq!(retried["state"], "queued");
    wait_for(&app, &id, JobState::Succeeded).await;
    let done_twice = client.call("jobs/retry", &[("id", &id)]).await;
    assert_eq!((done_twice.status, done_twice.code().as_str()), (StatusCode::CONFLICT, "job.not_retriable"));
    assert_eq!(app.fake.submitted().len(), 2);
    assert_eq!(asset_count(&app, &id).await, 1);
}

#[tokio::test]
async fn the_event_stream_reports_each_change_to_the_owner_only() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    let anonymous = app.client().get("/events").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let open = |client: &Client| {
        let request = client.http.get(format!("{}/events", client.base)).timeout(Duration::from_secs(60));
        async move { request.send().await.unwrap() }
    };
    let mut ada_events = open(&ada).await;
    let mut bob_events = open(&bob).await;
    assert_eq!(ada_events.headers()["content-type"], "text/event-stream");
    let id = start(&ada, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;

    let mut states = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while states.last().map(String::as_str) != Some("succeeded") {
        let chunk =
            tokio::time::timeout_at(deadline, ada_events.chunk()).await.expect("events keep coming").unwrap().unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) =
                event.lines().find_map(|l| l.strip_prefix("data: ")).filter(|_| event.contains("event: job"))
            {
                let view: Value = serde_json::from_str(data).unwrap();
                assert_eq!(view["id"], id.as_str());
                let state = view["state"].as_str().unwrap().to_owned();
                if states.last() != Some(&state) {
                    states.push(state);
                }
                if view["state"] == "succeeded" {
                    assert!(view["assets"][0]["url"].as_str().is_some(), "the done event carries the results");
                }
            }
        }
    }
    assert!(
        states.iter().any(|s| s == "queued" || s == "submitted" || s == "running"),
        "the stream reported the job while it ran, not only at the end: {states:?}"
    );

    // Bob's stream was open all along. His own job is the control: the first job event he
    // hears must be about it, so nothing of ada's reached him before it.
    let bobs = start(&bob, TEXT, json!({ "prompt": "a harbour" }), &[]).await;
    let mut heard = String::new();
    let first_job_event = loop {
        let chunk = tokio::time::timeout_at(tokio::time::Instant::now() + Duration::from_secs(20), bob_events.chunk())
            .await
            .expect("bob hears his own job")
            .unwrap()
            .expect("the stream stays open");
        heard.push_str(&String::from_utf8_lossy(&chunk));
        let Some(at) = heard.find("event: job") else { continue };
        let Some(end) = heard[at..].find("\n\n") else { continue };
        break heard[at..at + end].to_owned();
    };
    let data = first_job_event.lines().find_map(|l| l.strip_prefix("data: ")).expect("the event carries a job");
    let view: Value = serde_json::from_str(data).unwrap();
    assert_eq!(view["id"], bobs.as_str(), "bob's first job event is about his own job: {heard}");
    assert!(!heard.contains(&id), "nothing on bob's stream names ada's job: {heard}");
}

#[tokio::test]
async fn a_retried_job_gets_a_fresh_time_limit() {
    let app = TestApp::spawn_with(&[("DARKROOM_JOB_TIMEOUT_SECS", "600")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    let quick = Scenario { queue_ms: 0, run_ms: 0, ..Scenario::default() };
    app.fake.script(Scenario { outcome: Outcome::ContentPolicy, ..quick.clone() });
    let id = start(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
    wait_for(&app, &id, JobState::Failed).await;
    // The job was created two hours ago, far beyond its 10-minute limit.
    let two_hours_ms = 2 * 3600 * 1000_i64;
    sqlx::query("UPDATE jobs SET created_at = created_at - $1, queued_at = queued_at - $1 WHERE id = $2")
        .bind(two_hours_ms)
        .bind(&id)
        .execute(&app.db().pool)
        .await
        .unwrap();

    app.fake.script(quick);
    let retried = client.call("jobs/retry", &[("id", &id)]).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    wait_for(&app, &id, JobState::Succeeded).await;
}

#[tokio::test]
async fn links_in_provider_messages_lose_their_query_everywhere_they_are_kept() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    let secret = "X-Amz-Signature=0123456789abcdef";
    app.fake.script(Scenario {
        outcome: Outcome::Invalid {
            field: "image_url".into(),
            message: format!("could not read https://storage.example/b/k.png?{secret}&X-Amz-Credential=id"),
        },
        ..Scenario::default()
    });
    let id = start(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    let message = failed.error_message.unwrap();
    assert!(message.contains("https://storage.example/b/k.png?…"), "{message}");
    let view = client.call("jobs/get", &[("id", &id)]).await;
    use sqlx::Row;
    let audit: Vec<String> = sqlx::query("SELECT detail_json FROM audit_events")
        .fetch_all(&app.db().pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("detail_json"))
        .collect();
    for (place, text) in [("the job", message), ("the answer", view.body), ("the audit log", audit.join("\n"))] {
        assert!(!text.contains(secret), "{place} keeps a signed link: {text}");
    }
    assert!(!crate::helpers::captured_logs().contains(secret), "the logs keep a signed link");
}

#[tokio::test]
async fn with_a_webhook_coming_the_page_still_learns_that_fal_is_generating() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { queue_ms: 0, run_ms: 3_000, ..Scenario::default() });
    let id = start(&client, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;

    let running = wait_for(&app, &id, JobState::Running).await;
    assert!(running.webhook, "a webhook is expected");
    let listed: Vec<Value> = client.call("jobs/list", &[]).await.json();
    assert_eq!(listed[0]["status"], "Generating");
    assert!(listed[0]["started_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", listed[0]);

    wait_for(&app, &id, JobState::Succeeded).await;
    let sent = app.fake.submitted().pop().unwrap();
    let result_path = format!("/requests/{}", sent.id);
    let fetched = app.fake.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with(&result_path)).count();
    assert_eq!(fetched, 0, "the webhook brought the result; the poller only asked how far fal was");
    assert_eq!(app.fake.deliveries().iter().map(|d| d.status).collect::<Vec<_>>(), [200]);
}

#[tokio::test]
async fn a_flag_column_holds_zero_or_one_on_every_backend() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    let id = start(&client, TEXT, json!({ "prompt": "x" }), &[]).await;
    let set = |value: i64| {
        sqlx::query("UPDATE jobs SET webhook = $1 WHERE id = $2").bind(value).bind(id.clone()).execute(&app.db().pool)
    };
    set(1).await.expect("1 is a flag");
    let refused = set(2).await.expect_err("2 is not a flag");
    assert!(refused.to_string().to_lowercase().contains("check"), "{refused}");
    assert_eq!(rows::find(app.db(), &id).await.unwrap().unwrap().webhook, true, "the refused update changed nothing");
}
