//! Account self-service: password change ends the other sessions, sessions are listed and
//! ended one by one, and deleting an account leaves nothing of the person but the audit event
//! of the deletion, in either bucket or any table.

use app::server::jobs::rows::JobState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::{Backend, Client, PASSWORD, TestApp, backend};
use crate::jobs::{TEXT, selfie, start, user_with_key, wait_for};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn second_browser(app: &TestApp, email: &str, user_agent: &str) -> Client {
    let client = Client::with_user_agent(&app.base, user_agent);
    let reply = client.login(email, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    client
}

async fn audited(app: &TestApp, action: &str) -> Vec<(Option<String>, String)> {
    sqlx::query("SELECT actor_id, detail_json FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_all(&app.db().pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("actor_id"), r.get("detail_json")))
        .collect()
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_signs_out_every_other_session() {
    let app = TestApp::spawn().await;
    let here = app.user("ada@example.com").await;
    let phone =
        second_browser(&app, "ada@example.com", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1")
            .await;
    assert!(phone.me().await.is_some());

    let wrong = here
        .call(
            "account/password",
            &[("current", "not it at all"), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "auth.wrong_password");
    let weak =
        here.call("account/password", &[("current", PASSWORD), ("password", "short"), ("confirm", "short")]).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(weak.code(), "auth.weak_password");
    assert!(phone.me().await.is_some(), "refused changes end nothing");

    let changed = here
        .call("account/password", &[("current", PASSWORD), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body, "1", "one other session ended");
    assert_eq!(phone.me().await, None, "the other browser is signed out");
    assert_eq!(phone.call("keys/status", &[]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(here.me().await.as_deref(), Some("ada@example.com"), "this browser stays signed in");

    assert_eq!(app.client().login("ada@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.client().login("ada@example.com", NEW_PASSWORD).await.status, StatusCode::OK);
    let events = audited(&app, "account.password_changed").await;
    assert_eq!(events.len(), 1);
    assert!(events[0].1.contains("\"sessions_ended\":1"), "{events:?}");
    assert!(!events[0].1.contains(NEW_PASSWORD) && !events[0].1.contains(PASSWORD));
}

#[tokio::test]
async fn sessions_are_listed_with_their_device_and_any_other_can_be_ended() {
    let app = TestApp::spawn().await;
    let here = app.user("ada@example.com").await;
    let laptop = second_browser(
        &app,
        "ada@example.com",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    )
    .await;
    let other = app.user("bob@example.com").await;

    let listed: Vec<Value> = here.call("account/logins", &[]).await.json();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let current: Vec<&Value> = listed.iter().filter(|l| l["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let firefox = listed.iter().find(|l| l["device"] == "Firefox on Linux").expect("the laptop is named");
    assert_eq!(firefox["current"], false);
    assert_eq!(firefox["ip"], "127.0.0.1");
    let laptop_id = firefox["id"].as_str().unwrap();

    // Not one's own session, not someone else's, not this one.
    let bobs: Vec<Value> = other.call("account/logins", &[]).await.json();
    let bobs_id = bobs[0]["id"].as_str().unwrap();
    let foreign = here.call("account/logins/end", &[("id", bobs_id)]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.code(), "session.not_found");
    assert!(other.me().await.is_some(), "another person's session is out of reach");
    let own = here.call("account/logins/end", &[("id", current[0]["id"].as_str().unwrap())]).await;
    assert_eq!(own.status, StatusCode::CONFLICT);
    assert_eq!(own.code(), "account.current_session");
    let junk = "x".repeat(10_000);
    assert_eq!(here.call("account/logins/end", &[("id", &junk)]).await.status, StatusCode::NOT_FOUND);

    for _ in 0..2 {
        assert!(laptop.me().await.is_some(), "the laptop's session is verified and remembered");
    }
    let ended = here.call("account/logins/end", &[("id", laptop_id)]).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert_eq!(laptop.me().await, None, "the laptop is signed out at its next request");
    assert!(here.me().await.is_some());
    let listed: Vec<Value> = here.call("account/logins", &[]).await.json();
    assert_eq!(listed.len(), 1);
    assert_eq!(here.call("account/logins/end", &[("id", laptop_id)]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(audited(&app, "account.session_ended").await.len(), 1);
}

/// Rows anywhere in the database whose text mentions any of `needles`, as "table: row".
async fn rows_naming(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let pool = &app.db().pool;
    let columns: Vec<(String, String, bool)> = match backend() {
        Backend::Sqlite => {
            let tables: Vec<String> =
                sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get("name"))
                    .collect();
            let mut columns = Vec::new();
            for table in tables {
                let info = sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                columns.extend(info.iter().map(|r| (format!("\"{table}\""), r.get::<String, _>("name"), false)));
            }
            columns
        }
        Backend::Postgres => sqlx::query(
            "SELECT table_schema::text AS table_schema, table_name::text AS table_name, column_name::text AS column_name, \
             data_type::text AS data_type FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let table = format!("\"{}\".\"{}\"", r.get::<String, _>("table_schema"), r.get::<String, _>("table_name"));
            (table, r.get("column_name"), r.get::<String, _>("data_type") == "bytea")
        })
        .collect(),
    };
    let mut found = Vec::new();
    for (table, column, bytes) in columns {
        for needle in needles {
            let test = match (backend(), bytes) {
                (Backend::Sqlite, _) => format!("instr(CAST(\"{column}\" AS BLOB), CAST($1 AS BLOB)) > 0"),
                (Backend::Postgres, true) => format!("position(convert_to($1, 'UTF8') in \"{column}\") > 0"),
                (Backend::Postgres, false) => format!("position($1 in CAST(\"{column}\" AS TEXT)) > 0"),
            };
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {test}"))
                .bind(*needle)
                .fetch_one(pool)
                .await
                .unwrap()
                .get("n");
            if n > 0 {
                found.push(format!("{table}.{column} ({n} rows) names {needle}"));
            }
        }
    }
    found
}

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&app.db().pool).await.unwrap().get("id")
}

/// Every object key under the account's four prefixes, in both buckets.
async fn objects_of(app: &TestApp, id: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for area in ["uploads", "sources"] {
        keys.extend(app.keys(&format!("{area}/{id}/")).await);
    }
    for area in ["results", "thumbs"] {
        keys.extend(app.result_keys(&format!("{area}/{id}/")).await);
    }
    keys
}

#[tokio::test]
async fn deleting_an_account_leaves_no_object_and_no_row_naming_the_person() {
    let app = TestApp::spawn_with(&[("DARKROOM_ERASE_LAST_PASS_SECS", "0")]).await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = user_with_key(&app, "bob@example.com", "api").await;
    for client in [&ada, &bob] {
        let image = selfie(client).await;
        let job = start(client, TEXT, json!({ "prompt": "a lighthouse" }), &[]).await;
        wait_for(&app, &job, JobState::Succeeded).await;
        assert!(!image.is_empty());
    }
    let phone = second_browser(&app, "ada@example.com", "Mozilla/5.0 (Android 14) Chrome/120 Mobile").await;
    // A failed login names the address in the audit log and the rate-limit buckets.
    app.client().login("ada@example.com", "a wrong password!!").await;
    let (ada_id, bob_id) = (user_id(&app, "ada@example.com").await, user_id(&app, "bob@example.com").await);
    let before = objects_of(&app, &ada_id).await;
    assert!(
        before.iter().any(|k| k.starts_with("sources/")) && before.iter().any(|k| k.starts_with("thumbs/")),
        "{before:?}"
    );
    let bobs_before = objects_of(&app, &bob_id).await;

    let told: Value = ada.call("account/contents", &[]).await.json();
    assert_eq!(told, json!({ "email": "ada@example.com", "uploads": 1, "jobs": 1, "results": 1, "has_key": true }));

    let unconfirmed = ada.call("account/delete", &[("password", PASSWORD), ("confirm", "delete please")]).await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(unconfirmed.code(), "account.not_confirmed");
    let wrong = ada.call("account/delete", &[("password", "not my password"), ("confirm", "DELETE")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.code(), "auth.wrong_password");
    assert!(ada.me().await.is_some(), "a refused deletion deletes nothing");

    let deleted = ada.call("account/delete", &[("password", PASSWORD), ("confirm", "DELETE")]).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(ada.me().await, None);
    assert_eq!(phone.me().await, None, "every session of the account ended");
    assert_eq!(objects_of(&app, &ada_id).await, Vec::<String>::new());

    // The last pass (due at once here) forgets the erasure itself.
    crate::cli::run(&app, &["sweep"], None).await.success();
    let left = rows_naming(&app, &[&ada_id, "ada@example.com"]).await;
    assert_eq!(
        left,
        vec![format!("\"audit_events\".subject_id (1 rows) names {ada_id}")]
            .into_iter()
            .map(|s| if backend() == Backend::Postgres {
                s.replace("\"audit_events\"", "\"public\".\"audit_events\"")
            } else {
                s
            })
            .collect::<Vec<_>>()
    );
    // (Trying the old login afterwards is a new, anonymous failure, so it comes last.)
    assert_eq!(app.client().login("ada@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let events = audited(&app, "account.deleted").await;
    assert_eq!(events.len(), 1);
    assert!(events[0].1.contains("\"results\":1"), "{events:?}");

    // The bystander keeps everything.
    assert!(bob.me().await.is_some());
    assert_eq!(objects_of(&app, &bob_id).await, bobs_before);
    let bobs: Vec<Value> = bob.call("jobs/list", &[]).await.json();
    assert_eq!(bobs.len(), 1);
}

#[tokio::test]
async fn the_only_admin_cannot_delete_their_account_until_there_is_another() {
    let app = TestApp::spawn().await;
    let admin = app.admin("root@example.com").await;
    let refused = admin.call("account/delete", &[("password", PASSWORD), ("confirm", "DELETE")]).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::CONFLICT, "account.last_admin".into()));
    assert!(admin.me().await.is_some(), "nothing was deleted");
    app.admin("second@example.com").await;
    let deleted = admin.call("account/delete", &[("password", PASSWORD), ("confirm", "DELETE")]).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
}

#[tokio::test]
async fn a_deletion_interrupted_after_it_began_is_finished_by_the_sweeper() {
    let app = TestApp::spawn_with(&[("DARKROOM_ERASE_LAST_PASS_SECS", "0")]).await;
    let ada = app.user("ada@example.com").await;
    selfie(&ada).await;
    let id = user_id(&app, "ada@example.com").await;
    // What the first step of a deletion writes, as if the process died right after it.
    sqlx::query("INSERT INTO account_erasures (user_id, requested_at) VALUES ($1, 0)")
        .bind(&id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET disabled_at = 1 WHERE id = $1").bind(&id).execute(&app.db().pool).await.unwrap();
    sqlx::query("UPDATE auth_epoch SET version = version + 1").execute(&app.db().pool).await.unwrap();
    crate::helpers::eventually("a closing account is signed out", || async { ada.me().await.is_none().then_some(()) })
        .await;

    crate::cli::run(&app, &["sweep"], None).await.success();
    assert_eq!(objects_of(&app, &id).await, Vec::<String>::new());
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(&app.db().pool).await.unwrap().get("n");
    assert_eq!(count, 0);
    let pending: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM account_erasures").fetch_one(&app.db().pool).await.unwrap().get("n");
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn an_export_is_a_zip_of_every_result_with_a_manifest_of_how_each_was_made() {
    use std::io::Read;

    use darkroom::fake_fal::{Outcome, Scenario};

    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = app.user("bob@example.com").await;
    app.fake.script(Scenario { outcome: Outcome::Images { count: 2, width: 40, height: 30 }, ..Scenario::default() });
    let job = start(&ada, TEXT, json!({ "prompt": "a lighthouse at dusk", "num_images": "2" }), &[]).await;
    wait_for(&app, &job, JobState::Succeeded).await;

    assert_eq!(app.client().get("/account/export").await.status, StatusCode::UNAUTHORIZED);
    let reply = ada.send(ada.http.get(format!("{}/account/export", app.base))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/zip"));
    assert!(reply.header("content-disposition").unwrap().starts_with("attachment; filename=\"darkroom-export-"));
    // The body came through the text helper; read it again as bytes.
    let bytes = ada.http.get(format!("{}/account/export", app.base)).send().await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid zip");
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "manifest.json");
    let mut manifest = String::new();
    archive.by_name("manifest.json").unwrap().read_to_string(&mut manifest).unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["account"], "ada@example.com");
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), 1);
    let made = &manifest["jobs"][0];
    assert_eq!(made["id"], job.as_str());
    assert_eq!(made["model"], TEXT);
    assert_eq!(made["params"]["prompt"], "a lighthouse at dusk");
    let stored = app.result_keys(&format!("results/{}/{job}/", user_id(&app, "ada@example.com").await)).await;
    assert_eq!(stored.len(), 2);
    for (file, key) in made["files"].as_array().unwrap().iter().zip(&stored) {
        let name = file["name"].as_str().unwrap();
        assert!(name.starts_with("results/") && name.contains("-nano-banana-") && name.ends_with(".png"), "{name}");
        let mut inside = Vec::new();
        archive.by_name(name).unwrap().read_to_end(&mut inside).unwrap();
        let storage = app.storage();
        let Some(app::server::storage::Fetched::Bytes(original)) =
            storage.get_bytes(&storage.results_bucket, key, u64::MAX).await.unwrap()
        else {
            panic!("{key} is stored")
        };
        assert_eq!(inside, original, "{name} holds the stored bytes");
        assert_eq!(file["width"], 40);
    }
    let exported = audited(&app, "account.exported").await;
    assert_eq!(exported.len(), 2, "each export is audited");

    // Someone else's export holds nothing of Ada's.
    let theirs = bob.http.get(format!("{}/account/export", app.base)).send().await.unwrap().bytes().await.unwrap();
    let theirs = zip::ZipArchive::new(std::io::Cursor::new(theirs.to_vec())).unwrap();
    assert_eq!(theirs.file_names().collect::<Vec<_>>(), vec!["manifest.json"]);
}

#[tokio::test]
async fn the_email_address_changes_with_the_password_and_only_to_a_free_address() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.user("bob@example.com").await;
    let change = |email: &'static str, current: &'static str| {
        let ada = &ada;
        async move { ada.call("account/email", &[("email", email), ("current", current)]).await }
    };

    let wrong = change("ada@new.example", "not my password").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "auth.wrong_password".into()));
    let taken = change("BOB@example.com", PASSWORD).await;
    assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "auth.email_taken".into()));
    let invalid = change("not an address", PASSWORD).await;
    assert_eq!((invalid.status, invalid.code()), (StatusCode::BAD_REQUEST, "auth.invalid_email".into()));
    let same = change("ada@example.com", PASSWORD).await;
    assert_eq!((same.status, same.code()), (StatusCode::BAD_REQUEST, "auth.same_email".into()));
    assert_eq!(ada.me().await.as_deref(), Some("ada@example.com"), "refusals change nothing");

    let changed = change("Ada@New.Example", PASSWORD).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.json::<String>(), "ada@new.example");
    assert_eq!(ada.me().await.as_deref(), Some("ada@new.example"), "the session goes on under the new address");
    assert_eq!(app.client().login("ada@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.client().login("ada@new.example", PASSWORD).await.status, StatusCode::OK);
    let events = audited(&app, "account.email_changed").await;
    assert_eq!(events.len(), 1);
    assert!(events[0].1.contains("ada@new.example"), "{events:?}");
}
