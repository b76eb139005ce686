//! What an operator relies on: readiness that tells database and storage apart, structured logs
//! whose request id follows a request into its jobs, metrics, and metrics that stay private.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, PASSWORD, StorageKind, TestApp, eventually, storage_kind};

#[tokio::test]
async fn readiness_names_what_is_unreachable() {
    let app = TestApp::spawn().await;
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json::<Value>(), json!({ "database": "ok", "storage": "ok" }));
    if storage_kind() == StorageKind::Embedded {
        // The uploads bucket goes away under the running server.
        std::fs::rename(app.dir.join("s3/darkroom-uploads"), app.dir.join("s3/gone")).unwrap();
        let down = app.client().get("/readyz").await;
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.json::<Value>(), json!({ "database": "ok", "storage": "unreachable" }));
        assert_eq!(app.client().get("/healthz").await.status, StatusCode::OK, "alive, just not ready");
    }
}

#[tokio::test]
async fn behind_a_proxy_metrics_need_the_token() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://darkroom.example")]).await;
    // A proxy on this host connects from loopback and need not add any header.
    assert_eq!(app.client().get("/metrics").await.status, StatusCode::NOT_FOUND);

    let app = TestApp::spawn_with(&[("DARKROOM_METRICS_TOKEN", "scrape-me-please")]).await;
    assert_eq!(app.client().get("/metrics").await.status, StatusCode::NOT_FOUND, "a token, once set, is required");
    let scrape = |token: &str| {
        let request = app.client().http.get(format!("{}/metrics", app.base)).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(scrape("wrong").await, StatusCode::NOT_FOUND);
    assert_eq!(scrape("scrape-me-please").await, StatusCode::OK);
}

#[tokio::test]
async fn metrics_cover_requests_jobs_webhooks_and_the_sweeper() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self"), ("DARKROOM_METRICS_TOKEN", "scrape")]).await;
    let client = app.user("ada@example.com").await;
    client.call("keys/save", &[("key", "api-metrics:secret-value")]).await;
    assert_eq!(app.client().get("/no-such-path").await.status, StatusCode::NOT_FOUND);
    let body = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "a lighthouse" }, "images": [] });
    let created = client
        .send(
            client.http.post(format!("{}/api/jobs/create", app.base)).header("accept", "application/json").json(&body),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let id = created.json::<Value>()["id"].as_str().unwrap().to_owned();
    eventually("the job succeeded", || async {
        let job = app::server::jobs::rows::find(app.db(), &id).await.unwrap().unwrap();
        (job.state == app::server::jobs::rows::JobState::Succeeded).then_some(())
    })
    .await;
    app::server::maintenance::run_once(&app.running.state).await.unwrap();

    let scrape = app.client().http.get(format!("{}/metrics", app.base)).bearer_auth("scrape");
    let metrics = app.client().send(scrape).await.body;
    for expected in [
        "http_requests_total{route=\"/api/jobs/create\",status=\"200\"}",
        "http_request_duration_seconds_count{route=\"/api/jobs/create\"}",
        "jobs{state=\"succeeded\"}",
        "jobs{state=\"failed\"} 0",
        "webhook_lag_seconds_count",
        "sweep_runs_total",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }
    assert!(!metrics.contains("route=\"/no-such-path\""), "unknown paths do not make new series");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_into_the_jobs_it_creates() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let server = app.process("server", &[("DARKROOM_WORKERS", "2"), ("LOG_FORMAT", "json")]).await;
    let client = Client::new(&server.base);
    assert_eq!(client.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    client.call("keys/save", &[("key", "api-logs:secret-value")]).await;
    let body = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "a lighthouse" }, "images": [] });
    let created = client
        .send(
            client
                .http
                .post(format!("{}/api/jobs/create", server.base))
                .header("accept", "application/json")
                .json(&body),
        )
        .await;
    let request_id = created.header("x-request-id").expect("every answer names its request").to_owned();
    let job_id = created.json::<Value>()["id"].as_str().unwrap().to_owned();

    let submitted = eventually("the worker's line about the submit", || async {
        server
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|line| line["fields"]["message"] == "submitted to fal")
    })
    .await;
    assert_eq!(submitted["span"]["job_id"], job_id.as_str(), "{submitted}");
    assert_eq!(submitted["span"]["request_id"], request_id.as_str(), "{submitted}");
    for line in server.log().lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "every line is JSON: {line}");
    }
}
