//! SIGTERM against a real process: it stops accepting, ends live streams, lets job steps reach
//! a safe point within its grace period, never cuts a submit fal accepted before its request id
//! is stored, gives back its leases, and exits 0; another process carries on.

use std::time::Duration;

use app::server::jobs::rows::{self, JobState};
use darkroom::fake_fal::{Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, PASSWORD, TestApp, eventually};

async fn user(base: &str) -> Client {
    let client = Client::new(base);
    assert_eq!(client.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(client.call("keys/save", &[("key", "api-shutdown:secret-value")]).await.status, StatusCode::OK);
    client
}

async fn create(client: &Client) -> String {
    let body = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "waves" }, "images": [] });
    let request =
        client.http.post(format!("{}/api/jobs/create", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json::<Value>()["id"].as_str().unwrap().to_owned()
}

async fn finished(app: &TestApp, id: &str) -> rows::JobRow {
    eventually("the job finished", || async {
        let job = rows::find(app.db(), id).await.unwrap().unwrap();
        job.state.is_final().then_some(job)
    })
    .await
}

#[tokio::test]
async fn sigterm_waits_for_a_submit_fal_accepted_and_ends_live_streams() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    // A grace period shorter than fal's answer: the submit is waited for all the same.
    let mut server = app.process("server-1", &[("DARKROOM_WORKERS", "2"), ("DARKROOM_SHUTDOWN_GRACE_SECS", "1")]).await;
    let client = user(&server.base).await;
    let mut stream = client.http.get(format!("{}/events", server.base)).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    app.fake.script(Scenario { submit_ms: 3_000, ..Scenario::default() });
    let id = create(&client).await;
    eventually("fal accepted the submit", || async { (app.fake.submitted().len() == 1).then_some(()) }).await;

    let status = server.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(
        tokio::time::timeout(Duration::from_secs(5), async { while let Ok(Some(_)) = stream.chunk().await {} })
            .await
            .is_ok()
    );
    let job = rows::find(app.db(), &id).await.unwrap().unwrap();
    let accepted = app.fake.submitted()[0].id.clone();
    assert_eq!((job.state, job.fal_request_id.as_deref()), (JobState::Submitted, Some(accepted.as_str())));
    assert_eq!(job.lease_owner, None, "the lease was given back");
    assert!(server.panics().is_empty());

    let _next = app.process("server-2", &[("DARKROOM_WORKERS", "2")]).await;
    assert_eq!(finished(&app, &id).await.state, JobState::Succeeded);
    assert_eq!(app.fake.submitted().len(), 1, "fal was not asked (nor billed) twice");
}

#[tokio::test]
async fn sigterm_mid_save_stops_at_a_safe_point_and_another_process_finishes() {
    const VIDEO: u64 = 48 * 1024 * 1024;
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let mut server =
        app.process("server-1", &[("DARKROOM_WORKERS", "2"), ("DARKROOM_SHUTDOWN_GRACE_SECS", "20")]).await;
    let client = user(&server.base).await;
    app.fake.script(Scenario {
        outcome: Outcome::Video { bytes: VIDEO, bytes_per_sec: Some(12 * 1024 * 1024) },
        ..Scenario::default()
    });
    let id = create(&client).await;
    eventually("the save under way", || async {
        app.fake.video_downloads().first().is_some_and(|sent| *sent >= VIDEO / 4).then_some(())
    })
    .await;

    let status = server.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    assert!(app.fake.video_downloads()[0] < VIDEO, "stopped mid-save, without waiting for the whole file");
    let job = rows::find(app.db(), &id).await.unwrap().unwrap();
    assert_eq!((job.state, job.lease_owner.as_deref(), job.attempts), (JobState::Persisting, None, 0));
    assert!(server.panics().is_empty());

    let _next = app.process("server-2", &[("DARKROOM_WORKERS", "2")]).await;
    let done = finished(&app, &id).await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error_message);
    let keys = app.result_keys(&format!("results/{}/{}/", done.user_id, done.id)).await;
    assert_eq!(keys.len(), 1, "one copy: {keys:?}");
}
