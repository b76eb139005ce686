//! Retention of uploaded images (`DARKROOM_SOURCE_TTL_HOURS`), judged by a clock the tests move
//! (`maintenance::run_once_at`) instead of waiting hours.

use app::server::db::now_ms;
use app::states::JobState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};
use crate::jobs::{EDIT, TEXT, selfie, start, user_with_key, wait_for};

const HOUR: i64 = 3_600_000;

/// The caller's images as the library lists them: id → `kept_until` (milliseconds).
async fn library(client: &Client) -> Vec<(String, Option<i64>)> {
    let listed: Vec<Value> = client.call("uploads/list", &[]).await.json();
    listed
        .iter()
        .map(|image| {
            let kept = image["kept_until"].as_str().map(|at| app::format::epoch_ms(at).expect("RFC 3339"));
            (image["id"].as_str().unwrap().to_owned(), kept)
        })
        .collect()
}

async fn sweep_at(app: &TestApp, at: i64) {
    app::server::maintenance::run_once_at(&app.running.state, at).await.unwrap();
}

/// As if uploaded `hours` earlier.
async fn age(app: &TestApp, upload: &str, hours: i64) {
    sqlx::query("UPDATE uploads SET created_at = created_at - $1, kept_until = kept_until - $1 WHERE id = $2")
        .bind(hours * HOUR)
        .bind(upload)
        .execute(&app.db().pool)
        .await
        .unwrap();
}

async fn object_key(app: &TestApp, upload: &str) -> String {
    sqlx::query_scalar("SELECT object_key FROM uploads WHERE id = $1")
        .bind(upload)
        .fetch_one(&app.db().pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_image_is_kept_its_time_after_upload_or_last_use_and_never_while_a_job_needs_it() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let before = now_ms();
    let unused = selfie(&ada).await;
    let used = selfie(&ada).await;
    let after = now_ms();
    // The library says when each goes: a day (the default) after its upload.
    for (id, kept) in library(&ada).await {
        let kept = kept.unwrap_or_else(|| panic!("{id} shows no time"));
        assert!((before + 24 * HOUR..=after + 24 * HOUR).contains(&kept), "{id}: {kept}");
    }
    let (unused_key, used_key) = (object_key(&app, &unused).await, object_key(&app, &used).await);

    // Both uploaded 20 hours ago; one is used by a job now, which keeps it a day from now.
    age(&app, &unused, 20).await;
    age(&app, &used, 20).await;
    let job = start(&ada, EDIT, json!({ "prompt": "a bob cut" }), &[&used]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let now = now_ms();
    sweep_at(&app, now + 5 * HOUR).await;
    let kept = library(&ada).await;
    assert_eq!(kept.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), [used.as_str()]);
    assert!(kept[0].1.unwrap() >= now + 23 * HOUR, "kept a day from its use");
    assert_eq!(app.object(&unused_key).await, None, "the unused image's file is gone");
    assert!(app.object(&used_key).await.is_some());
    let gone = ada.call("uploads/delete", &[("upload", &unused)]).await;
    assert_eq!(gone.code(), "upload.not_found");

    // Past its time, but a job that has not finished lists it: kept until that job is done.
    let waiting = uuid::Uuid::now_v7().to_string();
    let ada_id: String = sqlx::query_scalar("SELECT user_id FROM uploads WHERE id = $1")
        .bind(&used)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, next_attempt_at, \
         queued_at, created_at, updated_at) VALUES ($1, $2, $3, '{}', $4, 'queued', 5, $5, $6, $6, $6)",
    )
    .bind(&waiting)
    .bind(&ada_id)
    .bind(TEXT)
    .bind(json!([used]).to_string())
    .bind(now + 1_000 * HOUR)
    .bind(now)
    .execute(&app.db().pool)
    .await
    .unwrap();
    sweep_at(&app, now + 30 * HOUR).await;
    assert_eq!(library(&ada).await.len(), 1, "a queued job still needs it");
    sqlx::query("UPDATE jobs SET state = 'canceled' WHERE id = $1")
        .bind(&waiting)
        .execute(&app.db().pool)
        .await
        .unwrap();
    sweep_at(&app, now + 30 * HOUR).await;
    assert!(library(&ada).await.is_empty());
    assert_eq!(app.object(&used_key).await, None);

    // Retrying the job that needed it is refused up front too, not queued to fail.
    let retry = ada.call("jobs/retry", &[("id", &waiting)]).await;
    assert_eq!((retry.status, retry.code().as_str()), (StatusCode::BAD_REQUEST, "job.input_missing"), "{}", retry.body);

    // A job asking for an image that is gone is refused before anything is queued.
    let refused = ada.create_job(EDIT, json!({ "prompt": "again" }), &[&used]).await.unwrap_err();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}

#[tokio::test]
async fn with_no_time_set_images_are_kept_until_their_owner_deletes_them() {
    let app = TestApp::spawn_with(&[("DARKROOM_SOURCE_TTL_HOURS", "0")]).await;
    let ada = app.user("ada@example.com").await;
    let image = selfie(&ada).await;
    assert_eq!(library(&ada).await, vec![(image.clone(), None)]);
    // A time left from when one was set is dropped, not kept for when one is set again.
    sqlx::query("UPDATE uploads SET kept_until = $1").bind(now_ms()).execute(&app.db().pool).await.unwrap();
    sweep_at(&app, now_ms() + 10_000 * HOUR).await;
    assert_eq!(library(&ada).await, vec![(image, None)]);
}

#[tokio::test]
async fn images_uploaded_before_times_were_kept_get_theirs_from_the_next_sweep() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let image = selfie(&ada).await;
    let before = now_ms();
    sqlx::query("UPDATE uploads SET kept_until = NULL").execute(&app.db().pool).await.unwrap();
    age(&app, &image, 1_000).await;
    let now = now_ms();
    sweep_at(&app, now).await;
    let kept = library(&ada).await;
    assert_eq!(kept.len(), 1, "not deleted at once on upgrade");
    // From this sweep (or the server's own, if it ran in between).
    let kept_until = kept[0].1.expect("a time");
    assert!((before + 24 * HOUR..=now + 24 * HOUR).contains(&kept_until), "{kept_until}");
    sweep_at(&app, now + 25 * HOUR).await;
    assert!(library(&ada).await.is_empty());
}
