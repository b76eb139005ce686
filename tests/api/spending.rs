//! Spending: estimates from fal's pricing API before Generate and on every job and result, and
//! caps per day and month that hold under concurrent submits.

use app::api::jobs::JobEstimate;
use app::api::spending::SpendingView;
use app::gallery::GalleryPage;
use app::server::jobs::rows::JobState;
use darkroom::fake_fal::{Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, Reply, TestApp};
use crate::jobs::{TEXT, user_with_key, wait_for};

const VIDEO: &str = "fal-ai/kling-video/v2.1/standard/image-to-video";

async fn estimate(client: &Client, model: &str, params: Value) -> Reply {
    let body = json!({ "model": model, "params": params });
    client.send(client.http.post(format!("{}/api/jobs/estimate", client.base)).json(&body)).await
}

async fn micros(client: &Client, model: &str, params: Value) -> Option<i64> {
    let reply = estimate(client, model, params).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json::<JobEstimate>().micros
}

fn pricing_calls(app: &TestApp) -> usize {
    app.fake.requests().iter().filter(|r| r.path.starts_with("/v1/models/pricing")).count()
}

async fn user_id(admin: &Client, email: &str) -> String {
    let page: app::api::admin::UsersPage = admin.call("admin/users", &[("q", email)]).await.json();
    page.users.into_iter().find(|u| u.email == email).expect("the user is listed").id
}

/// Every job fal is given stays in its queue for a minute: accepted jobs stay billable.
fn slow_queue(app: &TestApp, jobs: usize) {
    for _ in 0..jobs {
        app.fake.script(Scenario { queue_ms: 60_000, ..Scenario::default() });
    }
}

#[tokio::test]
async fn estimates_come_from_fals_prices_before_generate_and_stay_on_the_job_and_its_results() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;

    // Before Generate: from the inputs a price depends on, a half-filled form included.
    assert_eq!(micros(&ada, TEXT, json!({ "num_images": "2" })).await, Some(78_000));
    assert_eq!(micros(&ada, TEXT, json!({ "prompt": "" })).await, Some(39_000), "defaults: one image");
    let flux = json!({ "image_size": "square_hd", "num_images": "2", "prompt": "a fox" });
    assert_eq!(micros(&ada, "fal-ai/flux/dev", flux).await, Some(100_000), "two images of two megapixels each");
    assert_eq!(micros(&ada, VIDEO, json!({ "duration": "10" })).await, Some(2_800_000), "ten seconds of video");
    let unknown = estimate(&ada, "fal-ai/nothing", json!({})).await;
    assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::BAD_REQUEST, "job.unknown_model"));

    // Prices are kept: asking again does not ask fal again.
    let asked = pricing_calls(&app);
    assert_eq!(micros(&ada, TEXT, json!({ "num_images": "2" })).await, Some(78_000));
    assert_eq!(pricing_calls(&app), asked, "the second estimate came from the cache");
    let no_cap = estimate(&ada, TEXT, json!({})).await.json::<JobEstimate>();
    assert_eq!(no_cap.room, None, "no cap, so nothing is said about what is left");

    // A user without a key gets no price (fal is asked with the user's own key only).
    let bob = app.user("bob@example.com").await;
    let before = pricing_calls(&app);
    assert_eq!(micros(&bob, "fal-ai/nano-banana/edit", json!({})).await, None);
    assert_eq!(pricing_calls(&app), before);

    // The job keeps its estimate, and each of its results shows its share.
    app.fake.script(Scenario { outcome: Outcome::Images { count: 2, width: 64, height: 64 }, ..Scenario::default() });
    let job = ada.create_job(TEXT, json!({ "prompt": "two foxes", "num_images": 2 }), &[]).await.unwrap();
    assert_eq!(job.estimate_micros, Some(78_000));
    wait_for(&app, &job.id, JobState::Succeeded).await;
    assert_eq!(ada.job_view(&job.id).await.estimate_micros, Some(78_000));
    let listed = ada.send(ada.http.post(format!("{}/api/gallery/list", ada.base)).json(&json!({ "query": {} }))).await;
    let items = listed.json::<GalleryPage>().items;
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.estimate_micros == Some(39_000)), "each result shows half the job's estimate");
    let spent: SpendingView = ada.call("spending/get", &[]).await.json();
    assert_eq!((spent.spent_day, spent.spent_month), (78_000, 78_000));

    let metrics = app.client().get("/metrics").await.body;
    assert!(
        metrics.lines().any(|l| l.starts_with("estimated_spend_microdollars_total{model=\"fal-ai/nano-banana\"}")),
        "estimated spend by model is exported"
    );
}

#[tokio::test]
async fn with_a_ten_cent_cap_ten_concurrent_four_cent_jobs_accept_two_and_refuse_eight() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let ada_id = user_id(&admin, "ada@example.com").await;
    let set = admin.call("admin/spend_caps", &[("user_id", &ada_id), ("day", "0.10"), ("month", "")]).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json::<SpendingView>().cap_day, Some(100_000));
    slow_queue(&app, 12);
    assert_eq!(estimate(&ada, TEXT, json!({})).await.json::<JobEstimate>().room, Some(100_000));

    let submits = (0..10).map(|n| ada.create_job(TEXT, json!({ "prompt": format!("fox {n}") }), &[]));
    let answers = futures::future::join_all(submits).await;
    let accepted: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let refused: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!((accepted.len(), refused.len()), (2, 8), "{:?}", refused.iter().map(|r| &r.body).collect::<Vec<_>>());
    for reply in &refused {
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::TOO_MANY_REQUESTS, "spend.cap_exceeded"));
        let retry_after: i64 = reply.header("retry-after").expect("says when the cap resets").parse().unwrap();
        assert!((1..=86_400).contains(&retry_after), "{retry_after}");
        let message = reply.json::<Value>()["message"].as_str().unwrap().to_owned();
        assert!(message.contains("daily spending cap of $0.10") && message.contains("UTC"), "{message}");
    }
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(jobs, 2, "a refused submit leaves nothing behind");
    assert!(app.fake.submitted().len() <= 2, "nothing refused reached fal");
    assert_eq!(estimate(&ada, TEXT, json!({})).await.json::<JobEstimate>().room, Some(22_000));

    // A canceled job gives its reservation back; queued again, it takes one.
    let first = accepted[0].id.clone();
    let canceled = ada.call("jobs/cancel", &[("id", &first)]).await;
    assert_eq!(canceled.status, StatusCode::OK, "{}", canceled.body);
    let third = ada.create_job(TEXT, json!({ "prompt": "fox again" }), &[]).await;
    assert!(third.is_ok(), "the canceled job's $0.04 is free again");
    let retried = ada.call("jobs/retry", &[("id", &first)]).await;
    assert_eq!((retried.status, retried.code().as_str()), (StatusCode::TOO_MANY_REQUESTS, "spend.cap_exceeded"));
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(&first)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(state, JobState::Canceled.as_str(), "the refused retry left the job as it was");

    // Another user is held to their own caps only.
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    assert!(bob.create_job(TEXT, json!({ "prompt": "a cat" }), &[]).await.is_ok());
}

#[tokio::test]
async fn users_can_only_lower_their_caps_and_only_admins_set_them() {
    let app = TestApp::spawn_with(&[("DARKROOM_SPEND_CAP_MONTH_USD", "20")]).await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let ada_id = user_id(&admin, "ada@example.com").await;

    let shown: SpendingView = ada.call("spending/get", &[]).await.json();
    assert_eq!((shown.cap_day, shown.cap_month), (None, Some(20_000_000)), "the server's default applies");
    assert!(shown.day_resets_at.ends_with("T00:00:00Z") && shown.month_resets_at.contains("-01T00:00:00Z"));

    let lowered: SpendingView = ada.call("spending/set_own", &[("day", "0.05"), ("month", "50")]).await.json();
    assert_eq!(
        (lowered.cap_day, lowered.cap_month),
        (Some(50_000), Some(20_000_000)),
        "their own month is higher: no effect"
    );
    assert_eq!((lowered.own_day, lowered.own_month), (Some(50_000), Some(50_000_000)));
    let job = ada.create_job(TEXT, json!({ "prompt": "x", "num_images": 2 }), &[]).await.unwrap_err();
    assert_eq!(job.code(), "spend.cap_exceeded", "$0.08 is over their own $0.05");

    for bad in ["-1", "ten", "1e3", "0.1234567", "2000000"] {
        let refused = ada.call("spending/set_own", &[("day", bad), ("month", "")]).await;
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "spend.invalid_cap"), "{bad}");
        assert_eq!(refused.json::<Value>()["field"], "day");
    }

    // Only admins set a user's caps; a user cannot raise their own.
    let denied = ada.call("admin/spend_caps", &[("user_id", &ada_id), ("day", "100"), ("month", "100")]).await;
    assert_eq!((denied.status, denied.code().as_str()), (StatusCode::FORBIDDEN, "auth.forbidden"));
    let anonymous = app.client().call("admin/spend_caps", &[("user_id", &ada_id), ("day", ""), ("month", "")]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for missing in ["00000000-0000-0000-0000-000000000000", "not-an-id", "'; DROP TABLE users; --"] {
        let reply = admin.call("admin/spend_caps", &[("user_id", missing), ("day", ""), ("month", "")]).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::NOT_FOUND, "admin.user_not_found"), "{missing}");
    }
    let raised: SpendingView =
        admin.call("admin/spend_caps", &[("user_id", &ada_id), ("day", "1"), ("month", "5")]).await.json();
    assert_eq!(
        (raised.cap_day, raised.cap_month),
        (Some(50_000), Some(5_000_000)),
        "the admin's month replaces the default"
    );
    let cleared: SpendingView = ada.call("spending/set_own", &[("day", ""), ("month", "")]).await.json();
    assert_eq!((cleared.cap_day, cleared.cap_month), (Some(1_000_000), Some(5_000_000)));
    assert!(ada.create_job(TEXT, json!({ "prompt": "x", "num_images": 2 }), &[]).await.is_ok());

    let audited: Vec<String> =
        sqlx::query_scalar("SELECT actor_id FROM audit_events WHERE action = 'spend.caps_set' ORDER BY at")
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    let admin_id = user_id(&admin, "root@example.com").await;
    assert_eq!(audited, [ada_id.clone(), admin_id, ada_id], "each change is audited with who made it");
}

#[tokio::test]
async fn when_fals_prices_cannot_be_read_a_capped_user_waits_and_others_generate() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let capped = user_with_key(&app, "ada@example.com", "api").await;
    let free = user_with_key(&app, "bob@example.com", "api").await;
    let capped_id = user_id(&admin, "ada@example.com").await;
    admin.call("admin/spend_caps", &[("user_id", &capped_id), ("day", "5"), ("month", "")]).await;
    app.fake.set_pricing_down(true);

    let refused = capped.create_job(TEXT, json!({ "prompt": "x" }), &[]).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "spend.estimate_unavailable")
    );
    assert!(refused.header("retry-after").is_some());
    let unpriced = free.create_job(TEXT, json!({ "prompt": "x" }), &[]).await.expect("no cap: the job runs");
    assert_eq!(unpriced.estimate_micros, None);
    assert_eq!(micros(&free, TEXT, json!({})).await, None, "the form says the price is unknown");

    // Once read, a price outlives an outage.
    app.fake.set_pricing_down(false);
    assert!(capped.create_job(TEXT, json!({ "prompt": "x" }), &[]).await.is_ok());
    app.fake.set_pricing_down(true);
    let cached = capped.create_job(TEXT, json!({ "prompt": "y" }), &[]).await.expect("the price read before is used");
    assert_eq!(cached.estimate_micros, Some(39_000));
}
