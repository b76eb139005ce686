//! Per-account quotas: an admin's values replace the server's defaults for one account only;
//! a full account can neither upload nor start a job until it makes room, and nothing of a
//! refused job reaches fal.

use app::api::quotas::QuotaView;
use app::server::jobs::rows::JobState;
use darkroom::fake_fal::{Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Client, Reply, TestApp};
use crate::jobs::{TEXT, user_with_key, wait_for};

const KIB: u64 = 1024;

/// Asks for an upload ticket declaring `bytes` (the bytes themselves never come: a ticket
/// counts what it declares).
async fn ticket(client: &Client, bytes: u64) -> Reply {
    let length = bytes.to_string();
    let sha = "ab".repeat(32);
    client.call("uploads/issue", &[("content_type", "image/png"), ("byte_length", &length), ("sha256", &sha)]).await
}

async fn set(admin: &Client, user_id: &str, uploads: &str, mib_day: &str, storage_mib: &str) -> Reply {
    admin
        .call(
            "admin/quotas",
            &[
                ("user_id", user_id),
                ("uploads_day", uploads),
                ("upload_mib_day", mib_day),
                ("storage_mib", storage_mib),
            ],
        )
        .await
}

#[tokio::test]
async fn an_admins_quotas_replace_the_defaults_for_that_account_only() {
    let app = TestApp::spawn_with(&[("DARKROOM_UPLOADS_PER_DAY", "2")]).await;
    let admin = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let ada_id = admin.account_id("ada@example.com").await;

    let view: QuotaView = set(&admin, &ada_id, "4", "", "").await.json();
    assert_eq!((view.uploads_day, view.set_uploads_day, view.storage_bytes), (4, Some(4), None));
    for n in 0..4 {
        assert_eq!(ticket(&ada, KIB).await.status, StatusCode::OK, "ada's ticket {n}");
    }
    let fifth = ticket(&ada, KIB).await;
    fifth.refused(StatusCode::TOO_MANY_REQUESTS, "upload.quota_exceeded");
    assert!(fifth.body.contains("limit of 4 uploads"), "{}", fifth.body);
    assert!(fifth.header("retry-after").is_some());
    for _ in 0..2 {
        assert_eq!(ticket(&bob, KIB).await.status, StatusCode::OK);
    }
    ticket(&bob, KIB).await.refused(StatusCode::TOO_MANY_REQUESTS, "upload.quota_exceeded");

    // A daily volume of its own: one upload larger than it is refused whatever the count.
    set(&admin, &ada_id, "100", "1", "").await;
    let big = ticket(&ada, 2 << 20).await;
    big.refused(StatusCode::TOO_MANY_REQUESTS, "upload.quota_exceeded");
    assert!(big.body.contains("upload volume of 1.0 MiB"), "{}", big.body);

    // Bad values say which field; only admins set quotas; each change is audited.
    for (uploads, mib, storage, field) in
        [("-1", "", "", "uploads_day"), ("", "1.5", "", "upload_mib_day"), ("", "", "ten", "storage_mib")]
    {
        let reply = set(&admin, &ada_id, uploads, mib, storage).await;
        reply.refused(StatusCode::BAD_REQUEST, "quota.invalid");
        assert_eq!(reply.json::<serde_json::Value>()["field"], field);
    }
    set(&ada, &ada_id, "1000", "", "").await.refused(StatusCode::FORBIDDEN, "auth.forbidden");
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'quota.set' AND subject_id = $1")
            .bind(&ada_id)
            .fetch_one(&app.db().pool)
            .await
            .unwrap();
    assert_eq!(audited, 2);

    // Empty fields give the account back to the defaults.
    let back: QuotaView = set(&admin, &ada_id, "", "", "").await.json();
    assert_eq!((back.uploads_day, back.set_uploads_day, back.set_upload_bytes_day), (2, None, None));
    ticket(&ada, KIB).await.refused(StatusCode::TOO_MANY_REQUESTS, "upload.quota_exceeded");
    let page = admin.get(&format!("/admin/users/{ada_id}")).await;
    assert!(page.body.contains("data-testid=\"quotas-apply\""), "the account page shows its quotas");
}

#[tokio::test]
async fn a_full_account_neither_uploads_nor_generates_until_it_makes_room() {
    let app = TestApp::spawn_with(&[("DARKROOM_STORAGE_QUOTA_MB", "1")]).await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let ada_id = admin.account_id("ada@example.com").await;

    // A ticket counts its declared size at once: after one, another that would pass the quota
    // is refused.
    let first = ticket(&ada, 700 * KIB).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let second = ticket(&ada, 400 * KIB).await;
    second.refused(StatusCode::CONFLICT, "quota.storage_full");
    assert!(second.body.contains("you keep 700 KB of the 1.0 MB allowed"), "{}", second.body);
    assert!(second.header("retry-after").is_none(), "waiting does not make room");
    let account = ada.get("/account").await;
    assert!(account.body.contains("You keep 700 KB of the 1.0 MB allowed."), "the Account tab says so");

    // Deleting makes room.
    let upload = first.json::<serde_json::Value>()["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(ada.call("uploads/delete", &[("upload", &upload)]).await.status, StatusCode::OK);
    assert_eq!(ticket(&ada, 400 * KIB).await.status, StatusCode::OK);

    // With nothing left, a job is refused before anything is sent to fal.
    set(&admin, &ada_id, "", "", "0").await;
    let sent = app.fake.submitted().len();
    let job = ada.create_job(TEXT, json!({ "prompt": "a lighthouse" }), &[]).await.unwrap_err();
    job.refused(StatusCode::CONFLICT, "quota.storage_full");
    assert_eq!(app.fake.submitted().len(), sent);
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(jobs, 0, "nothing half-stored");

    // An admin's larger quota for the account lets it go on.
    set(&admin, &ada_id, "", "", "100").await;
    let made = ada.create_job(TEXT, json!({ "prompt": "a lighthouse" }), &[]).await.unwrap();
    wait_for(&app, &made.id, JobState::Succeeded).await;
    let result = ada.job_view(&made.id).await.assets[0].id.clone();
    app.fake.script(Scenario { outcome: Outcome::ContentPolicy, ..Scenario::default() });
    let failing = ada.create_job(TEXT, json!({ "prompt": "refused" }), &[]).await.unwrap();
    wait_for(&app, &failing.id, JobState::Failed).await;

    // Full again: neither a retry nor a copy of a result as an input gets through.
    set(&admin, &ada_id, "", "", "0").await;
    let sent = app.fake.submitted().len();
    ada.call("jobs/retry", &[("id", &failing.id)]).await.refused(StatusCode::CONFLICT, "quota.storage_full");
    admin.call("admin/jobs/retry", &[("id", &failing.id)]).await.refused(StatusCode::CONFLICT, "quota.storage_full");
    ada.call("gallery/use_as_input", &[("id", &result)]).await.refused(StatusCode::CONFLICT, "quota.storage_full");
    assert_eq!(app.fake.submitted().len(), sent, "nothing sent to fal");
    assert_eq!(ada.job_view(&failing.id).await.state, JobState::Failed);
}
