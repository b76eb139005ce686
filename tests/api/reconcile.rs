//! `darkroom storage reconcile`: storage checked against the rows, on whichever storage the suite
//! runs on (the embedded endpoint or Garage), with the clock moved instead of waited for.

use std::time::Duration;

use app::server::reconcile::{Area, Missing, run};
use app::states::JobState;
use serde_json::json;

use crate::helpers::TestApp;
use crate::jobs::{EDIT, selfie, start, user_with_key, wait_for};

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn only_old_objects_no_row_needs_are_deleted_and_rows_without_objects_are_reported() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let image = selfie(&ada).await;
    let job = start(&ada, EDIT, json!({ "prompt": "a bob cut" }), &[&image]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let (db, storage) = (app.db(), app.storage());
    let (ada_id, source): (String, String) = sqlx::query_as("SELECT user_id, object_key FROM uploads WHERE id = $1")
        .bind(&image)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (result_id, result_key, thumb_key, result_bytes): (String, String, Option<String>, i64) =
        sqlx::query_as("SELECT id, object_key, thumb_key, byte_size FROM assets").fetch_one(&db.pool).await.unwrap();
    let grace = Duration::from_secs(24 * 3600);

    // Everything agrees: nothing to delete, nothing missing, no drift.
    let clean = run(db, storage, app::server::db::now_ms() + 2 * DAY, grace).await.unwrap();
    assert_eq!((clean.orphans_deleted, clean.orphans_recent, clean.missing.len()), (0, 0, 0), "{clean:?}");
    assert_eq!(clean.users[&ada_id].drift(), (0, 0));

    // A stray file in ada's results, one outside Darkroom's areas, and a result whose file is gone.
    let stray = format!("results/{ada_id}/stray.png");
    let bytes = crate::testdata::png(4, 4);
    let sha = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes))
    };
    for key in [stray.as_str(), "elsewhere/notes.png"] {
        storage.put_bytes(&storage.results_bucket, key, bytes.clone(), "image/png", &sha).await.unwrap();
    }
    storage.delete(&storage.results_bucket, &result_key).await.unwrap();
    let stored = async |bucket: &str, key: &str| storage.get_bytes(bucket, key, u64::MAX).await.unwrap().is_some();
    let missing = vec![Missing { area: Area::Result, id: result_id.clone(), key: result_key.clone() }];

    // The stray is younger than the grace period: left, and counted in the drift.
    let now = app::server::db::now_ms();
    let young = run(db, storage, now, grace).await.unwrap();
    assert_eq!((young.orphans_deleted, young.orphans_recent, young.foreign), (0, 1, 1), "{young:?}");
    assert_eq!(young.missing, missing);
    assert_eq!(young.users[&ada_id].drift(), (0, bytes.len() as i64 - result_bytes), "{young:?} {}", bytes.len());
    assert!(stored(&storage.results_bucket, &stray).await);

    // Two days on, the servers' periodic check (the same pass, a day's grace) deletes it; the
    // foreign file and every file a row needs stay, and the row whose file is gone is reported
    // again, not deleted.
    assert_eq!(app::server::maintenance::RECONCILE_GRACE, grace);
    let later = app::server::maintenance::reconcile_at(&app.running.state, now + 2 * DAY).await.unwrap();
    assert_eq!((later.orphans_deleted, later.foreign), (1, 1), "{later:?}");
    assert_eq!(later.missing, missing);
    assert_eq!(later.users[&ada_id].drift(), (0, -result_bytes));
    assert!(!stored(&storage.results_bucket, &stray).await);
    assert!(stored(&storage.results_bucket, "elsewhere/notes.png").await);
    assert!(stored(&storage.uploads_bucket, &source).await, "the source image is needed by its row");
    if let Some(thumb) = &thumb_key {
        assert!(stored(&storage.results_bucket, thumb).await, "the thumbnail is needed by its row");
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE id = $1")
        .bind(&result_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "a row is never deleted because its object is missing");
}

#[tokio::test]
async fn the_command_says_what_it_found_and_fails_while_a_row_lacks_its_object() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let image = selfie(&ada).await;
    let clean = crate::cli::run(&app, &["storage", "reconcile"], None).await.success();
    assert!(clean.stdout.contains("deleted 0 orphan(s)"), "{}", clean.stdout);

    let source: String = sqlx::query_scalar("SELECT object_key FROM uploads WHERE id = $1")
        .bind(&image)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    app.storage().delete(&app.storage().uploads_bucket, &source).await.unwrap();
    let out = crate::cli::run(&app, &["storage", "reconcile"], None).await;
    assert!(!out.status.success(), "a row without its object fails the command");
    assert!(out.stdout.contains(&format!("missing: Image {image} has no object at {source}")), "{}", out.stdout);
    assert!(out.stdout.contains("drift: user "), "{}", out.stdout);
}
