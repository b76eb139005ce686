//! Faults a real deployment meets: a media host down for longer than a few retries, our own
//! storage restarting with the server while fal is fetching inputs. Jobs are delayed, never lost,
//! and never blamed on the user.

use app::server::jobs::rows::{self, JobState};
use darkroom::fake_fal::Scenario;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, PASSWORD, StorageKind, TestApp, eventually, storage_kind};
use crate::process::free_port;
use crate::testdata;

async fn create(client: &Client, model: &str, params: Value, images: &[&str]) -> String {
    let body = json!({ "model": model, "params": params, "images": images });
    let request =
        client.http.post(format!("{}/api/jobs/create", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json::<Value>()["id"].as_str().unwrap().to_owned()
}

async fn signed_up(base: &str, email: &str) -> Client {
    let client = Client::new(base);
    assert_eq!(client.signup(email, PASSWORD).await.status, StatusCode::OK);
    let saved = client.call("keys/save", &[("key", &format!("api-{email}:secret-value"))]).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    client
}

#[tokio::test]
async fn a_media_host_outage_delays_the_save_and_the_result_is_kept_once() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let server = app.process("server", &[("DARKROOM_WORKERS", "2")]).await;
    let client = signed_up(&server.base, "ada@example.com").await;
    app.fake.set_media_down(true);
    let id = create(&client, "fal-ai/nano-banana", json!({ "prompt": "a lighthouse" }), &[]).await;

    // Past the point where five tries used to give up and delete what was stored.
    let retrying = eventually("the save retried six times", || async {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        assert!(!job.state.is_final(), "the outage ended the job: {:?} {:?}", job.error_code, job.error_message);
        (job.state == JobState::Persisting && job.attempts >= 6).then_some(job)
    })
    .await;
    let message = retrying.error_message.unwrap_or_default();
    assert!(message.contains("503") && !message.contains("http"), "a sentence for the user: {message}");
    let view = client.job_view(&id).await;
    assert!(view.status.starts_with("Saving results, retrying ("), "{view:?}");

    app.fake.set_media_down(false);
    let done = eventually("the job finished", || async {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        job.state.is_final().then_some(job)
    })
    .await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}: {:?}", done.error_code, done.error_message);
    let prefix = format!("results/{}/{}/", done.user_id, done.id);
    assert_eq!(app.result_keys(&prefix).await.len(), 1, "one copy of the output");
    assert!(server.panics().is_empty());
}

#[tokio::test]
async fn past_the_retry_window_the_job_fails_with_a_reason_and_keeps_nothing() {
    let app = TestApp::spawn_with(&[("DARKROOM_JOB_RETRY_WINDOW_SECS", "2")]).await;
    let client = signed_up(&app.base, "ada@example.com").await;
    app.fake.set_media_down(true);
    let id = create(&client, "fal-ai/nano-banana", json!({ "prompt": "a lighthouse" }), &[]).await;
    let failed = eventually("the job gave up", || async {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        job.state.is_final().then_some(job)
    })
    .await;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("job.persist_failed"));
    let message = failed.error_message.unwrap();
    assert!(message.contains("503") && !message.contains("http"), "{message}");
    let prefix = format!("results/{}/{}/", failed.user_id, failed.id);
    assert!(app.result_keys(&prefix).await.is_empty(), "nothing half-stored is left");
}

#[tokio::test]
async fn our_storage_restarting_under_fal_never_fails_a_job() {
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let data = app.dir.join("server-data");
    let (site_addr, data_dir) = (format!("127.0.0.1:{}", free_port()), data.display().to_string());
    let settings = [
        ("LEPTOS_SITE_ADDR", site_addr.as_str()),
        ("DARKROOM_DATA_DIR", data_dir.as_str()),
        ("DARKROOM_WORKERS", "8"),
        ("DARKROOM_JOB_LEASE_SECS", "2"),
        // fal reads the inputs from us: the restart lands under its feet.
        ("DARKROOM_FAL_INPUTS", "links"),
    ];
    let mut server = app.process_with_own_storage("server-0", &settings).await;

    // Thirty try-ons from two people, each queued at fal long enough for a restart to land
    // between the submit and the moment fal reads the input.
    for _ in 0..30 {
        app.fake.script(Scenario { queue_ms: 1_500, run_ms: 100, ..Scenario::default() });
    }
    let mut jobs = Vec::new();
    for email in ["ada@example.com", "bob@example.com"] {
        let client = signed_up(&server.base, email).await;
        let (_, reply) = crate::uploads::upload(&client, &testdata::png(48, 64), "image/png").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let photo = reply.json::<Value>()["id"].as_str().unwrap().to_owned();
        for n in 0..15 {
            jobs.push(
                create(&client, "fal-ai/nano-banana/edit", json!({ "prompt": format!("cut {n}") }), &[&photo]).await,
            );
        }
    }

    for (round, submitted) in [10, 20, 30].into_iter().enumerate() {
        eventually(&format!("{submitted} submissions"), || async {
            (app.fake.submitted().len() >= submitted).then_some(())
        })
        .await;
        server.child.start_kill().unwrap(); // SIGKILL: storage goes down with the server
        server.child.wait().await.unwrap();
        if storage_kind() == StorageKind::Embedded {
            eventually("fal failing to read an input", || async {
                let failed = app.fake.submitted().iter().flat_map(|r| r.input_fetches.clone()).any(|(_, s)| s == 0);
                failed.then_some(())
            })
            .await;
        }
        server = app.process_with_own_storage(&format!("server-{}", round + 1), &settings).await;
    }

    for id in &jobs {
        let done = eventually("every job finished", || async {
            let job = rows::find(app.db(), id).await.unwrap().unwrap();
            job.state.is_final().then_some(job)
        })
        .await;
        assert_eq!(done.state, JobState::Succeeded, "{}: {:?} {:?}", done.id, done.error_code, done.error_message);
    }
    let assets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(assets, 30, "one result per job");
    assert!(server.panics().is_empty());
}
