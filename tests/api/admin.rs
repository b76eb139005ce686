use std::time::Duration;

use app::api::admin::{UserRow, UsersPage};
use app::server::jobs::rows::JobState;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::jobs::{EDIT, TEXT, selfie, start, user_with_key, wait_for};

#[tokio::test]
async fn admin_pages_answer_403_to_users_and_send_visitors_to_login() {
    let app = TestApp::spawn().await;
    let user = app.user("ada@example.com").await;
    assert_eq!(user.get("/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(user.get("/admin/anything").await.status, StatusCode::FORBIDDEN);
    let denied = user.call("admin/users", &[]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "auth.forbidden");

    let visitor = app.client().get("/admin").await;
    assert_eq!(visitor.status, StatusCode::SEE_OTHER);
    assert_eq!(visitor.header("location"), Some("/login?next=%2Fadmin"));
    assert_eq!(app.client().call("admin/users", &[]).await.status, StatusCode::UNAUTHORIZED);

    let denials: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'admin.denied'")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(denials, 2, "each refused admin page view is audited");
}

#[tokio::test]
async fn admins_see_every_account_with_its_usage_newest_first_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let image = selfie(&ada).await;
    let job = start(&ada, EDIT, json!({ "prompt": "a bob cut" }), &[&image]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let admin = app.admin("root@example.com").await;

    let page: UsersPage = admin.call("admin/users", &[]).await.json();
    let emails: Vec<&str> = page.users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["root@example.com", "ada@example.com"], "newest first");
    assert_eq!(page.next, None);
    let row = &page.users[1];
    let stored: (i64, i64) = sqlx::query_as("SELECT byte_size, 0 FROM uploads WHERE id = $1")
        .bind(&image)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    let result_bytes: i64 = sqlx::query_scalar("SELECT byte_size FROM assets WHERE job_id = $1")
        .bind(&job)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(
        (row.role.as_str(), row.disabled, row.uploads, row.upload_bytes, row.results, row.result_bytes),
        ("user", false, 1, stored.0, 1, result_bytes)
    );
    assert_eq!((row.jobs_this_month, row.spend_this_month), (1, 39_000));
    assert!(row.last_login_at.as_deref().is_some_and(|t| t.ends_with('Z')), "signing up signs in");

    // Many accounts: every one exactly once, newest first, across pages; a search takes `%` and
    // `_` as themselves.
    let base: i64 = 1_700_000_000_000;
    for n in 0..120_i64 {
        sqlx::query("INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, 'x', 'user', $3)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(format!("bulk{n:03}{}@example.com", if n == 7 { "_%" } else { "" }))
            .bind(base + n / 2)
            .execute(&app.db().pool)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut form = vec![];
        if let Some(a) = &after {
            form.push(("after", a.as_str()));
        }
        let page: UsersPage = admin.call("admin/users", &form).await.json();
        assert!(page.users.len() <= 50);
        seen.extend(page.users.into_iter().map(|u| (u.created_at, u.email)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 122);
    let unique: std::collections::HashSet<_> = seen.iter().map(|(_, e)| e).collect();
    assert_eq!(unique.len(), 122, "no account twice");
    let ms = |t: &str| app::format::epoch_ms(t).unwrap();
    assert!(seen.windows(2).all(|w| ms(&w[0].0) >= ms(&w[1].0)), "newest first throughout");
    let found: UsersPage = admin.call("admin/users", &[("q", "_%")]).await.json();
    assert_eq!(found.users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["bulk007_%@example.com"]);
    let found: UsersPage = admin.call("admin/users", &[("q", "ADA@")]).await.json();
    assert_eq!(found.users.len(), 1, "any case");

    let page = admin.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada@example.com") && page.body.contains("root@example.com"));
    assert!(page.body.contains("data-testid=\"next-page\""), "a link to the next page, rendered on the server");
    let next = admin.get(&format!("/admin?after={}", after_first_page(&admin).await)).await;
    assert!(next.body.contains("bulk") && !next.body.contains("ada@example.com"));
}

async fn after_first_page(admin: &crate::helpers::Client) -> String {
    admin.call("admin/users", &[]).await.json::<UsersPage>().next.expect("more than one page")
}

#[tokio::test]
async fn a_disabled_account_is_signed_out_everywhere_at_once_and_its_queued_jobs_wait() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let laptop = app.client();
    assert_eq!(laptop.login("ada@example.com", crate::helpers::PASSWORD).await.status, StatusCode::OK);
    let ada_id = admin.account_id("ada@example.com").await;
    let mut stream =
        ada.http.get(format!("{}/events", ada.base)).timeout(Duration::from_secs(60)).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let changed = admin.call("admin/users/change", &[("id", &ada_id), ("change", "disable")]).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert!(changed.json::<UserRow>().disabled);
    // The open page is told and its stream ends.
    let mut seen = String::new();
    let told = async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), told).await.expect("the stream ends");
    assert!(seen.contains("event: signed_out"), "{seen}");
    assert_eq!(ada.me().await, None);
    assert_eq!(laptop.me().await, None, "every session of the account");
    let again = app.client().login("ada@example.com", crate::helpers::PASSWORD).await;
    assert_eq!(again.code(), "auth.disabled");

    // A job of the account that is still queued is not sent to fal while it is disabled.
    let job = uuid::Uuid::new_v4().to_string();
    let now = app::format::now_ms();
    sqlx::query(
        "INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, next_attempt_at, \
         queued_at, created_at, updated_at) VALUES ($1, $2, $3, '{\"prompt\":\"held\"}', '[]', 'queued', 5, $4, $4, $4, $4)",
    )
    .bind(&job)
    .bind(&ada_id)
    .bind(TEXT)
    .bind(now)
    .execute(&app.db().pool)
    .await
    .unwrap();
    let claimed = app::server::jobs::worker::claim((&app.running.state).into(), 100).await.unwrap();
    assert!(claimed.is_empty(), "nothing of a disabled account is claimed");
    let row = crate::jobs::job(&app, &job).await;
    assert_eq!((row.state, row.lease_owner), (JobState::Queued, None), "no worker took it either");

    // Enabled again: the job goes on, and the account signs in anew.
    let enabled = admin.call("admin/users/change", &[("id", &ada_id), ("change", "enable")]).await;
    assert!(!enabled.json::<UserRow>().disabled);
    wait_for(&app, &job, JobState::Succeeded).await;
    assert_eq!(ada.me().await, None, "the old session stays ended");
    assert_eq!(ada.login("ada@example.com", crate::helpers::PASSWORD).await.status, StatusCode::OK);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE subject_id = $1 AND action LIKE 'user.%' ORDER BY at",
    )
    .bind(&ada_id)
    .fetch_all(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(actions, ["user.disabled", "user.enabled"]);
}

#[tokio::test]
async fn a_new_role_ends_the_accounts_sessions_and_an_admin_cannot_lock_themselves_out() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let ada_id = admin.account_id("ada@example.com").await;
    let root_id = admin.account_id("root@example.com").await;

    let promoted = admin.call("admin/users/change", &[("id", &ada_id), ("change", "promote")]).await;
    assert_eq!(promoted.json::<UserRow>().role, "admin");
    assert_eq!(ada.me().await, None, "the old session, made as a user, is gone");
    assert_eq!(ada.login("ada@example.com", crate::helpers::PASSWORD).await.status, StatusCode::OK);
    assert_eq!(ada.get("/admin").await.status, StatusCode::OK, "the new session is an admin's");

    // Neither admin can disable or demote themselves; each can the other.
    for change in ["disable", "demote"] {
        let refused = admin.call("admin/users/change", &[("id", &root_id), ("change", change)]).await;
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::CONFLICT, "admin.own_account"), "{change}");
    }
    let demoted = ada.call("admin/users/change", &[("id", &root_id), ("change", "demote")]).await;
    assert_eq!(demoted.json::<UserRow>().role, "user");
    assert_eq!(admin.get("/admin").await.status, StatusCode::SEE_OTHER, "root's admin session ended");
    let bad = ada.call("admin/users/change", &[("id", &root_id), ("change", "delete")]).await;
    assert_eq!((bad.status, bad.code().as_str()), (StatusCode::BAD_REQUEST, "admin.invalid_change"));
    for missing in ["00000000-0000-0000-0000-000000000000", "x"] {
        let reply = ada.call("admin/users/change", &[("id", missing), ("change", "disable")]).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::NOT_FOUND, "admin.user_not_found"));
    }
}

/// Every admin server function and page, called by a visitor, a user and an admin. Extend
/// `ADMIN_CALLS` with each new one.
const ADMIN_CALLS: &[&str] = &[
    "admin/users",
    "admin/user",
    "admin/users/change",
    "admin/spend_caps",
    "admin/quotas",
    "admin/jobs",
    "admin/jobs/retry",
    "admin/jobs/cancel",
    "admin/audit",
    // In this order: access is opened before the gallery is read, and ended last.
    "admin/gallery/access",
    "admin/gallery/open",
    "admin/gallery/list",
    "admin/gallery/get",
    "admin/gallery/end",
];

#[tokio::test]
async fn every_admin_function_and_page_answers_only_admins() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let user = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let bob_id = admin.account_id("bob@example.com").await;
    // A job of bob's that can be neither retried nor canceled: the call is let through and
    // answered on its merits (409), which for the matrix means "not refused".
    let bob_with_key = bob.call("keys/save", &[("key", &crate::jobs::key("api"))]).await;
    assert_eq!(bob_with_key.status, StatusCode::OK);
    let job = start(&bob, TEXT, json!({ "prompt": "x" }), &[]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let bob_result = bob.job_view(&job).await.assets[0].id.clone();
    let list = json!({ "owner": bob_id, "query": {}, "after": null });
    let form = |endpoint: &str| -> Vec<(&'static str, String)> {
        match endpoint {
            "admin/gallery/access" | "admin/gallery/end" | "admin/gallery/list" => vec![("owner", bob_id.clone())],
            "admin/gallery/open" => {
                vec![("owner", bob_id.clone()), ("reason", "Support request about a result".into())]
            }
            "admin/gallery/get" => vec![("owner", bob_id.clone()), ("id", bob_result.clone())],
            "admin/users" => vec![],
            "admin/user" => vec![("id", bob_id.clone())],
            "admin/users/change" => vec![("id", bob_id.clone()), ("change", "enable".into())],
            "admin/spend_caps" => vec![("user_id", bob_id.clone()), ("day", String::new()), ("month", String::new())],
            "admin/quotas" => vec![
                ("user_id", bob_id.clone()),
                ("uploads_day", String::new()),
                ("upload_mib_day", String::new()),
                ("storage_mib", String::new()),
            ],
            "admin/jobs" | "admin/audit" => vec![],
            "admin/jobs/retry" | "admin/jobs/cancel" => vec![("id", job.clone())],
            other => panic!("no form for {other}"),
        }
    };
    let visitor = app.client();
    for endpoint in ADMIN_CALLS {
        let fields = form(endpoint);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The one that takes JSON, as the hydrated grid sends it.
        let call = async |client: &crate::helpers::Client| match *endpoint {
            "admin/gallery/list" => client.call_json(endpoint, &list).await,
            _ => client.call(endpoint, &fields).await,
        };
        let anonymous = call(&visitor).await;
        assert_eq!(
            (anonymous.status, anonymous.code().as_str()),
            (StatusCode::UNAUTHORIZED, "auth.unauthenticated"),
            "{endpoint}"
        );
        let refused = call(&user).await;
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::FORBIDDEN, "auth.forbidden"), "{endpoint}");
        let allowed = call(&admin).await;
        let expected = if endpoint.starts_with("admin/jobs/") { StatusCode::CONFLICT } else { StatusCode::OK };
        assert_eq!(allowed.status, expected, "{endpoint}: {}", allowed.body);
    }
    let pages = [
        "/admin".to_owned(),
        format!("/admin/users/{bob_id}"),
        format!("/admin/users/{bob_id}/gallery"),
        "/admin/jobs".into(),
        "/admin/audit".into(),
    ];
    for page in pages {
        assert_eq!(visitor.get(&page).await.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(user.get(&page).await.status, StatusCode::FORBIDDEN, "{page}");
        let shown = admin.get(&page).await;
        assert_eq!(shown.status, StatusCode::OK, "{page}");
    }
    assert!(admin.get(&format!("/admin/users/{bob_id}")).await.body.contains("bob@example.com"));
    assert!(bob.me().await.is_some(), "enabling an enabled account changed nothing");
}

#[tokio::test]
async fn admins_follow_everyones_jobs_by_filter_and_retry_a_failed_one_as_its_owner_could() {
    use app::api::admin::{AdminJobRow, AdminJobsPage};
    use darkroom::fake_fal::{Outcome, Scenario};
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    let done = start(&ada, TEXT, json!({ "prompt": "a fox" }), &[]).await;
    wait_for(&app, &done, JobState::Succeeded).await;
    app.fake.script(Scenario { outcome: Outcome::ContentPolicy, ..Scenario::default() });
    let failed = start(&bob, TEXT, json!({ "prompt": "refused" }), &[]).await;
    wait_for(&app, &failed, JobState::Failed).await;
    app.fake.script(Scenario { queue_ms: 600_000, ..Scenario::default() });
    let waiting = start(&bob, TEXT, json!({ "prompt": "waiting" }), &[]).await;
    wait_for(&app, &waiting, JobState::Submitted).await;

    let jobs = |form: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = admin.call("admin/jobs", &form).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.json::<AdminJobsPage>()
        }
    };
    let all = jobs(vec![]).await;
    assert_eq!(all.jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [&waiting, &failed, &done], "newest first");
    assert_eq!(
        all.depth.iter().map(|(s, n)| (s.as_str(), *n)).collect::<Vec<_>>(),
        [("queued", 0), ("submitted", 1), ("running", 0), ("persisting", 0)]
    );
    let failures = jobs(vec![("state", "failed".into())]).await.jobs;
    let [failure]: [AdminJobRow; 1] = failures.try_into().unwrap();
    assert_eq!(
        (failure.email.as_str(), failure.error_code.as_deref()),
        ("bob@example.com", Some("fal.content_policy"))
    );
    assert!(failure.error_message.as_deref().is_some_and(|m| !m.is_empty()) && failure.can_retry);
    assert_eq!(jobs(vec![("user", "ada@example.com".into())]).await.jobs.len(), 1);
    assert_eq!(jobs(vec![("user", "nobody@example.com".into())]).await.jobs.len(), 0);
    assert_eq!(jobs(vec![("model", "fal-ai/flux/dev".into())]).await.jobs.len(), 0);
    assert_eq!(jobs(vec![("from", "2000-01-01".into()), ("to", "2000-01-31".into())]).await.jobs.len(), 0);
    for (field, value) in [("state", "exploded"), ("from", "yesterday"), ("model", "fal ai")] {
        let refused = admin.call("admin/jobs", &[(field, value)]).await;
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (StatusCode::BAD_REQUEST, "admin.invalid_filter"),
            "{field}"
        );
    }
    let bad_cursor = admin.call("admin/jobs", &[("after", "nonsense")]).await;
    assert_eq!(bad_cursor.code(), "request.invalid_cursor");

    // Retried by the admin, the failed job runs again and succeeds; the log says who retried.
    let retried = admin.call("admin/jobs/retry", &[("id", &failed)]).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    wait_for(&app, &failed, JobState::Succeeded).await;
    let canceled = admin.call("admin/jobs/cancel", &[("id", &waiting)]).await;
    assert_eq!(canceled.json::<AdminJobRow>().state, JobState::Canceled);
    assert!(app.fake.submitted().iter().any(|r| r.canceled), "canceled at fal too");
    let again = admin.call("admin/jobs/cancel", &[("id", &waiting)]).await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::CONFLICT, "job.not_cancelable"));
    let missing = admin.call("admin/jobs/retry", &[("id", "00000000-0000-0000-0000-000000000000")]).await;
    assert_eq!((missing.status, missing.code().as_str()), (StatusCode::NOT_FOUND, "job.not_found"));
    let root_id = admin.account_id("root@example.com").await;
    let actors: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT actor_id FROM audit_events WHERE action IN ('job.retried', 'job.canceled') ORDER BY at",
    )
    .fetch_all(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(actors, [Some(root_id.clone()), Some(root_id)]);

    let page = admin.get("/admin/jobs?state=failed").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-testid=\"queue-depth\""));
}

#[tokio::test]
async fn the_audit_log_filters_by_who_what_which_and_when_a_page_at_a_time() {
    use app::api::admin::AuditPage;
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let ada_id = admin.account_id("ada@example.com").await;
    ada.call("auth/logout", &[]).await;
    ada.login("ada@example.com", crate::helpers::PASSWORD).await;
    // Many events: every one exactly once across pages, newest first.
    for n in 0..230_i64 {
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor_id, action, subject_type, subject_id, ip, detail_json) \
             VALUES ($1, $2, $3, 'key.tested', 'user', $3, '10.0.0.1', '{}')",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(1_700_000_000_000 + n / 3)
        .bind(&ada_id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    }
    let audit = |form: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = admin.call("admin/audit", &form).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.json::<AuditPage>()
        }
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut form = vec![("actor", "ada@example.com".to_owned()), ("action", "key.tested".to_owned())];
        if let Some(a) = after.take() {
            form.push(("after", a));
        }
        let page = audit(form).await;
        assert!(page.entries.len() <= 100);
        seen.extend(page.entries.into_iter().map(|e| (app::format::epoch_ms(&e.at).unwrap(), e.id)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 230);
    assert_eq!(seen.iter().map(|(_, id)| id).collect::<std::collections::HashSet<_>>().len(), 230);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0));

    let logins = audit(vec![("actor", ada_id.clone()), ("action", "auth.".into())]).await.entries;
    let actions: Vec<&str> = logins.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["auth.login", "auth.logout", "auth.signup"], "the family, newest first");
    assert_eq!(logins[0].actor_email.as_deref(), Some("ada@example.com"));
    let about_ada =
        audit(vec![("subject", ada_id.clone()), ("from", "2023-11-14".into()), ("to", "2023-11-14".into())]).await;
    assert_eq!(about_ada.entries.len(), 100, "the day of the bulk events");
    assert!(audit(vec![("actor", "nobody@example.com".into())]).await.entries.is_empty());
    for (field, value) in [("action", "DROP TABLE"), ("to", "2023-13-01")] {
        let refused = admin.call("admin/audit", &[(field, value)]).await;
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (StatusCode::BAD_REQUEST, "admin.invalid_filter"),
            "{field}"
        );
    }
    let page = admin.get(&format!("/admin/audit?actor={ada_id}&action=auth.")).await;
    assert!(page.body.contains("auth.logout") && page.body.contains("data-testid=\"audit-entry\""));
}
