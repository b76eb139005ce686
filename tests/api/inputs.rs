//! How fal receives input images when it cannot reach Darkroom (no public URL): a copy in fal's
//! own storage, uploaded with the user's key, that fal deletes after a short lifecycle.

use std::time::Duration;

use app::server::jobs::rows::JobState;
use serde_json::json;

use crate::helpers::TestApp;
use crate::jobs::{EDIT, selfie, start, user_with_key, wait_for};

#[tokio::test]
async fn without_a_public_url_a_try_on_reaches_fal_through_its_storage() {
    let app = TestApp::spawn_with(&[("DARKROOM_FAL_INPUT_COPY_TTL_SECS", "600")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    let photo = selfie(&client).await;
    let id = start(&client, EDIT, json!({ "prompt": app::catalog::HAIRSTYLES[0].prompt }), &[&photo]).await;
    wait_for(&app, &id, JobState::Succeeded).await;

    let sent = app.fake.submitted().pop().unwrap();
    let url = sent.input["image_urls"][0].as_str().unwrap().to_owned();
    let stored = app.fake.stored_files();
    assert_eq!(stored.len(), 1, "one input, one copy");
    let copy = &stored[0];
    assert_eq!(url, copy.file_url, "the model reads the copy");
    assert!(!url.to_ascii_lowercase().contains("x-amz-"), "no presigned link to our storage: {url}");
    assert!(!url.starts_with(&app.base), "nothing points fal back at Darkroom: {url}");
    assert_eq!(copy.lifecycle_secs, Some(600), "fal deletes the copy after the configured time");
    assert!(!copy.put_authorization, "the fal key never travels with the upload to the presigned URL");
    assert_eq!(sent.input_fetches, [(url.clone(), 200)], "fal read the copy");

    let source: String = sqlx::query_scalar("SELECT object_key FROM uploads WHERE id = $1")
        .bind(&photo)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    let ours = app.object(&source).await.expect("the sanitized source is stored");
    assert_eq!(copy.bytes.as_deref(), Some(ours.as_slice()), "the copy is the sanitized picture, byte for byte");
    let initiated = app.fake.requests().into_iter().find(|r| r.path.ends_with("/storage/upload/initiate")).unwrap();
    assert!(initiated.authorization.is_some_and(|a| a.starts_with("Key api-")), "uploaded with the user's own key");

    let told: String = client.call("jobs/input_policy", &[]).await.json();
    assert!(told.contains("uploaded to fal's storage") && told.ends_with("deleted there after 10 minutes."), "{told}");

    app.fake.age_stored_files(Duration::from_secs(601));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404, "gone once its lifecycle ends");
}

#[tokio::test]
async fn a_key_fal_storage_refuses_fails_the_job_as_a_refused_submit_would() {
    let app = TestApp::spawn().await;
    let client = user_with_key(&app, "ada@example.com", "invalid").await;
    let photo = selfie(&client).await;
    let id = start(&client, EDIT, json!({ "prompt": "short bob" }), &[&photo]).await;
    let failed = wait_for(&app, &id, JobState::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("fal.key_rejected"));
    assert!(app.fake.submitted().is_empty(), "nothing was submitted without its input");
    assert!(app.fake.stored_files().is_empty());
}

#[tokio::test]
async fn an_operator_can_choose_links_even_without_a_public_url() {
    let app = TestApp::spawn_with(&[("DARKROOM_FAL_INPUTS", "links")]).await;
    let client = user_with_key(&app, "ada@example.com", "api").await;
    let photo = selfie(&client).await;
    let id = start(&client, EDIT, json!({ "prompt": "short bob" }), &[&photo]).await;
    wait_for(&app, &id, JobState::Succeeded).await;
    let sent = app.fake.submitted().pop().unwrap();
    let url = sent.input["image_urls"][0].as_str().unwrap();
    assert!(url.to_ascii_lowercase().contains("x-amz-expires=300"), "a presigned link: {url}");
    assert!(app.fake.stored_files().is_empty());
    let told: String = client.call("jobs/input_policy", &[]).await.json();
    assert!(told.contains("private links that expire after 5 minutes"), "{told}");
}
