//! An admin looking into another account's gallery: nothing without a reason, read-only, for a
//! limited time, every page and result in the audit log with the reason, and the owner's list
//! of accesses on their Account tab.

use app::api::oversight::{AccessEntry, AccessView, Oversight};
use app::gallery::{AssetDetail, BulkReport, GalleryPage, Outcome};
use app::server::jobs::rows::JobState;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Client, Reply, TestApp};
use crate::jobs::{TEXT, start, user_with_key, wait_for};

const REASON: &str = "Support request #4512: a result is missing";

async fn list(admin: &Client, owner: &str) -> Reply {
    admin.call_json("admin/gallery/list", &json!({ "owner": owner, "query": {}, "after": null })).await
}

async fn made(app: &TestApp, client: &Client, prompt: &str) -> String {
    let job = start(client, TEXT, json!({ "prompt": prompt }), &[]).await;
    wait_for(app, &job, JobState::Succeeded).await;
    client.job_view(&job).await.assets[0].id.clone()
}

async fn audited(app: &TestApp, action: &str) -> Vec<(String, String, serde_json::Value)> {
    use sqlx::Row;
    let rows =
        sqlx::query("SELECT actor_id, subject_id, detail_json FROM audit_events WHERE action = $1 ORDER BY at, id")
            .bind(action)
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            let detail: String = r.get("detail_json");
            (r.get("actor_id"), r.get("subject_id"), serde_json::from_str(&detail).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn an_admin_sees_a_gallery_only_after_giving_a_reason_and_the_owner_sees_every_view() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    let lighthouse = made(&app, &ada, "a lighthouse at dusk").await;
    let fox = made(&app, &ada, "a red fox in snow").await;
    let bobs = made(&app, &bob, "bob's private picture").await;
    let ada_id = admin.account_id("ada@example.com").await;
    let admin_id = admin.account_id("root@example.com").await;

    // Nothing without a reason: not the grid, not a result, not the page's content.
    list(&admin, &ada_id).await.refused(StatusCode::FORBIDDEN, "admin.access_required");
    let one = admin.call("admin/gallery/get", &[("owner", &ada_id), ("id", &fox)]).await;
    one.refused(StatusCode::FORBIDDEN, "admin.access_required");
    let page = admin.get(&format!("/admin/users/{ada_id}/gallery")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-testid=\"reason-form\""), "the page asks why");
    assert!(!page.body.contains("lighthouse") && !page.body.contains("red fox"), "and shows nothing of the account");
    let head: Oversight = admin.call("admin/gallery/access", &[("owner", &ada_id)]).await.json();
    assert_eq!((head.owner_email.as_str(), head.access, head.minutes), ("ada@example.com", None, 30));

    // A reason that says nothing, the admin's own account, no such account.
    for weak in ["", "   ", "checking", "a reason \u{202E}reversed"] {
        let reply = admin.call("admin/gallery/open", &[("owner", &ada_id), ("reason", weak)]).await;
        reply.refused(StatusCode::BAD_REQUEST, "admin.reason_required");
        assert_eq!(reply.json::<serde_json::Value>()["field"], "reason", "{weak:?}");
    }
    let own = admin.call("admin/gallery/open", &[("owner", &admin_id), ("reason", REASON)]).await;
    own.refused(StatusCode::CONFLICT, "admin.own_account");
    let nobody = admin.call("admin/gallery/open", &[("owner", &app::server::db::new_id()), ("reason", REASON)]).await;
    nobody.refused(StatusCode::NOT_FOUND, "admin.user_not_found");
    assert!(audited(&app, "admin.access_opened").await.is_empty(), "nothing opened by refused attempts");
    list(&admin, &ada_id).await.refused(StatusCode::FORBIDDEN, "admin.access_required");

    // With a reason: the account's results and only those, for 30 minutes.
    let before = app::format::now_ms();
    let opened = admin.call("admin/gallery/open", &[("owner", &ada_id), ("reason", REASON)]).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let access: AccessView = opened.json();
    assert_eq!(access.reason, REASON);
    let until = app::format::epoch_ms(&access.expires_at).unwrap();
    assert!((before + 30 * 60_000 - 1_000..=app::format::now_ms() + 30 * 60_000).contains(&until), "{access:?}");
    let grid: GalleryPage = list(&admin, &ada_id).await.json();
    let shown: Vec<&str> = grid.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(shown, [fox.as_str(), lighthouse.as_str()], "ada's results, newest first, not bob's");
    let detail: AssetDetail = admin.call("admin/gallery/get", &[("owner", &ada_id), ("id", &fox)]).await.json();
    assert_eq!(detail.item.prompt.as_deref(), Some("a red fox in snow"));
    // Someone else's result under ada's access is missing, and not recorded as seen.
    let elsewhere = admin.call("admin/gallery/get", &[("owner", &ada_id), ("id", &bobs)]).await;
    elsewhere.refused(StatusCode::NOT_FOUND, "gallery.not_found");
    let page = admin.get(&format!("/admin/users/{ada_id}/gallery")).await;
    assert!(page.body.contains("a lighthouse at dusk") && page.body.contains(REASON), "the page shows the grid");
    assert!(!page.body.contains("data-testid=\"favorite\""), "read-only: no stars to press");

    // Read-only: the owner's curation refuses the admin (their ids are not the admin's).
    let curate = admin.call_json("gallery/curate", &json!({ "action": "trash", "ids": [fox] })).await;
    let report: BulkReport = curate.json();
    assert_eq!(report.items, vec![(fox.clone(), Outcome::NotFound)]);
    let still: GalleryPage = list(&admin, &ada_id).await.json();
    assert!(still.items.iter().all(|i| i.trashed_at.is_none()), "nothing of ada's changed");

    // Every page and result, in the audit log with the reason, before it was shown.
    let opened_events = audited(&app, "admin.access_opened").await;
    assert_eq!(opened_events.len(), 1);
    assert_eq!((opened_events[0].0.as_str(), opened_events[0].1.as_str()), (admin_id.as_str(), ada_id.as_str()));
    assert_eq!(opened_events[0].2["reason"], REASON);
    let pages = audited(&app, "admin.gallery_viewed").await;
    assert_eq!(pages.len(), 3, "two grids asked for and one page rendered: {pages:?}");
    assert!(pages.iter().all(|(actor, subject, d)| actor == &admin_id
        && subject == &access.id
        && d["reason"] == REASON
        && d["owner"] == ada_id.as_str()));
    assert_eq!(pages[0].2["results"], json!([fox, lighthouse]));
    let views = audited(&app, "admin.asset_viewed").await;
    assert_eq!(views.len(), 1, "the missing result was not seen: {views:?}");
    assert_eq!((views[0].2["result"].as_str(), views[0].2["reason"].as_str()), (Some(fox.as_str()), Some(REASON)));

    // The owner sees it all on their Account tab; bob sees nothing.
    let entries: Vec<AccessEntry> = ada.call("account/access", &[]).await.json();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!((entry.access.admin_email.as_str(), entry.access.reason.as_str()), ("root@example.com", REASON));
    assert_eq!((entry.access.pages_viewed, entry.access.assets_viewed), (3, 1), "{entry:?}");
    assert_eq!(entry.opened.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [fox.as_str()]);
    let account = ada.get("/account").await;
    assert!(account.body.contains("data-testid=\"access-entry\"") && account.body.contains(REASON));
    assert!(bob.call("account/access", &[]).await.json::<Vec<AccessEntry>>().is_empty());
    assert!(bob.get("/account").await.body.contains("data-testid=\"access-none\""));
    // The owner cannot read other accounts' lists through it, nor an admin's gallery calls.
    list(&bob, &ada_id).await.refused(StatusCode::FORBIDDEN, "auth.forbidden");

    // An admin who deletes their own account does not take the record of what they saw along.
    app.admin("keeper@example.com").await;
    let gone = admin.call("account/delete", &[("password", crate::helpers::PASSWORD), ("confirm", "DELETE")]).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    let entries: Vec<AccessEntry> = ada.call("account/access", &[]).await.json();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].access.admin_email.as_str(), entries[0].opened.len()), ("root@example.com", 1));
}

#[tokio::test]
async fn access_ends_when_its_time_is_up_or_the_admin_is_done_and_the_reason_is_asked_again() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let fox = made(&app, &ada, "a red fox in snow").await;
    let ada_id = admin.account_id("ada@example.com").await;
    let open = admin.call("admin/gallery/open", &[("owner", &ada_id), ("reason", REASON)]).await;
    let first: AccessView = open.json();
    assert_eq!(list(&admin, &ada_id).await.status, StatusCode::OK);

    // Thirty minutes later (the clock moved by moving the expiry back past now).
    sqlx::query("UPDATE admin_access SET expires_at = $1 WHERE id = $2")
        .bind(app::format::now_ms() - 1)
        .bind(&first.id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    list(&admin, &ada_id).await.refused(StatusCode::FORBIDDEN, "admin.access_required");
    let one = admin.call("admin/gallery/get", &[("owner", &ada_id), ("id", &fox)]).await;
    one.refused(StatusCode::FORBIDDEN, "admin.access_required");
    let page = admin.get(&format!("/admin/users/{ada_id}/gallery")).await;
    assert!(page.body.contains("data-testid=\"reason-form\"") && !page.body.contains("red fox"));

    // A new reason opens a new access; "Done looking" ends it at once.
    let reason = "Second look: the user asked again about the fox";
    let again: AccessView = admin.call("admin/gallery/open", &[("owner", &ada_id), ("reason", reason)]).await.json();
    assert_ne!(again.id, first.id);
    assert_eq!(list(&admin, &ada_id).await.status, StatusCode::OK);
    assert_eq!(admin.call("admin/gallery/end", &[("owner", &ada_id)]).await.status, StatusCode::OK);
    list(&admin, &ada_id).await.refused(StatusCode::FORBIDDEN, "admin.access_required");

    // Another admin's access is their own: it needs their own reason.
    let second = app.admin("second@example.com").await;
    list(&second, &ada_id).await.refused(StatusCode::FORBIDDEN, "admin.access_required");

    let entries: Vec<AccessEntry> = ada.call("account/access", &[]).await.json();
    let reasons: Vec<&str> = entries.iter().map(|e| e.access.reason.as_str()).collect();
    assert_eq!(reasons, [reason, REASON], "both accesses, newest first");
}
