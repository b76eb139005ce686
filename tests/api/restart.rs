//! A worker process killed (SIGKILL) while it streams a large output into storage: after a new
//! process takes over, the job completes with exactly one copy of the output and nothing left
//! behind. The web side runs in the test (with no worker of its own); the workers are real
//! `darkroom serve` processes sharing its database and storage.

use std::time::Duration;

use app::server::jobs::rows::{self, JobState};
use darkroom::fake_fal::{Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::helpers::{StorageKind, TestApp, storage_kind};
use crate::process::ServerProcess;

const VIDEO_BYTES: u64 = 48 * 1024 * 1024;

/// A worker process on the app's database and storage.
async fn worker(app: &TestApp, generation: u32) -> ServerProcess {
    app.process(&format!("worker-{generation}"), &[("DARKROOM_WORKERS", "2"), ("DARKROOM_JOB_LEASE_SECS", "2")]).await
}

#[tokio::test]
async fn a_worker_killed_mid_persist_is_replaced_and_the_output_is_stored_exactly_once() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let client = app.user("ada@example.com").await;
    client.call("keys/save", &[("key", "api-restart:secret-value-1234")]).await;
    // Slow enough that the kill lands mid-download: about 4 s for the whole file.
    app.fake.script(Scenario {
        outcome: Outcome::Video { bytes: VIDEO_BYTES, bytes_per_sec: Some(12 * 1024 * 1024) },
        ..Scenario::default()
    });
    let body = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "waves" }, "images": [] });
    let request =
        client.http.post(format!("{}/api/jobs/create", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.json::<Value>()["id"].as_str().unwrap().to_owned();

    let mut first = worker(&app, 1).await;
    // Kill once a quarter of the file has gone out: mid-download whatever the machine's load.
    let started = tokio::time::Instant::now();
    while app.fake.video_downloads().first().is_none_or(|sent| *sent < VIDEO_BYTES / 4) {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        assert!(!job.state.is_final(), "the job ended before the kill: {job:?}");
        assert!(started.elapsed() < Duration::from_secs(120), "the first worker never got far into the download");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.start_kill().unwrap(); // SIGKILL
    first.child.wait().await.unwrap();
    let job = rows::find(app.db(), &id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Persisting, "killed while persisting");
    let cut_off = app.fake.video_downloads()[0];
    assert!(cut_off < VIDEO_BYTES, "killed mid-download ({cut_off} of {VIDEO_BYTES} bytes sent)");

    let mut second = worker(&app, 2).await;
    let started = tokio::time::Instant::now();
    let done = loop {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        if job.state.is_final() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the replacement worker never finished: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let errors: Vec<String> = second.log().lines().filter(|l| l.contains(" ERROR ")).map(str::to_owned).collect();
    assert!(errors.is_empty(), "resuming wrote no error lines: {errors:?}");
    assert!(
        !crate::helpers::captured_logs().contains("status: 501"),
        "storage was never asked for what it cannot do (listing open uploads)"
    );
    second.child.start_kill().unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}: {:?}", done.error_code, done.error_message);

    // How often the replacement fetched the file depends on its own leases and retries; what
    // matters is that it fetched the whole file again and stored it once, byte for byte.
    let downloads = app.fake.video_downloads();
    assert!(downloads[1..].contains(&VIDEO_BYTES), "the whole output was fetched again after the kill: {downloads:?}");
    let prefix = format!("results/{}/{}/", done.user_id, done.id);
    let keys = app.result_keys(&prefix).await;
    assert_eq!(keys, [format!("{prefix}0.mp4")], "exactly one copy, no orphan");
    let storage = app.storage();
    let recorded: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM multipart_uploads").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(recorded, 0, "every multipart upload was completed or aborted");
    match storage_kind() {
        StorageKind::Garage => {
            let open = storage.client().list_multipart_uploads().bucket(&storage.results_bucket).send().await.unwrap();
            assert!(open.uploads().is_empty(), "no unfinished multipart upload is left open");
        }
        StorageKind::Embedded => {
            let parts: Vec<String> = std::fs::read_dir(app.dir.join("s3"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(".upload_id-"))
                .collect();
            assert!(parts.is_empty(), "the killed worker's parts were removed: {parts:?}");
        }
    }

    let assets = sqlx::query(
        "SELECT object_key, byte_size, sha256, content_type, duration_ms, width, height FROM assets WHERE job_id = $1",
    )
    .bind(&id)
    .fetch_all(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].get::<i64, _>("byte_size") as u64, VIDEO_BYTES);
    assert_eq!(assets[0].get::<String, _>("content_type"), "video/mp4");
    let (ms, w, h): (Option<i64>, Option<i64>, Option<i64>) =
        (assets[0].get("duration_ms"), assets[0].get("width"), assets[0].get("height"));
    assert_eq!((ms, w, h), (Some(5_000), Some(1280), Some(720)), "read from the video's own moov box");
    let stored = match storage.get_bytes(&storage.results_bucket, &keys[0], u64::MAX).await.unwrap() {
        Some(app::server::storage::Fetched::Bytes(bytes)) => bytes,
        other => panic!("the object is readable: {other:?}"),
    };
    assert_eq!(stored.len() as u64, VIDEO_BYTES);
    assert_eq!(assets[0].get::<String, _>("sha256"), hex::encode(Sha256::digest(&stored)));
}
