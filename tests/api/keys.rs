use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Row;

use crate::helpers::{TestApp, captured_logs};

fn unique_key(prefix: &str) -> String {
    format!("{prefix}-{}:{}", &uuid::Uuid::new_v4().simple().to_string()[..8], uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn saving_a_key_shows_only_its_last_four_characters() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    assert_eq!(client.call("keys/status", &[]).await.body, "null");

    let key = unique_key("api");
    let saved = client.call("keys/save", &[("key", &format!("  {key}\n"))]).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let view: Value = saved.json();
    assert_eq!(view["last4"], key[key.len() - 4..]);

    let status: Value = client.call("keys/status", &[]).await.json();
    assert_eq!(status["last4"], key[key.len() - 4..]);
    assert!(status["saved_at"].as_str().unwrap().ends_with('Z'));
    let account_page = client.get("/account").await;
    assert!(
        account_page.body.contains(&key[key.len() - 4..]),
        "the account page ({}) shows the last four: {}",
        account_page.status,
        account_page
            .body
            .split("fal-key-heading")
            .nth(1)
            .unwrap_or(&account_page.body)
            .chars()
            .take(1500)
            .collect::<String>()
    );

    assert!(!client.everything_seen().contains(&key), "a response carried the key");
    let secret = key.split_once(':').unwrap().1;
    assert!(!client.everything_seen().contains(secret), "a response carried the key's secret");
}

#[tokio::test]
async fn the_stored_key_column_holds_no_plain_text() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let key = unique_key("api");
    client.call("keys/save", &[("key", &key)]).await;

    let row = sqlx::query("SELECT ciphertext, nonce, key_id, last4 FROM provider_keys")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    let ciphertext: Vec<u8> = row.get("ciphertext");
    let nonce: Vec<u8> = row.get("nonce");
    let key_id: String = row.get("key_id");
    let secret = key.split_once(':').unwrap().1.as_bytes();
    assert!(!ciphertext.windows(secret.len()).any(|w| w == secret), "ciphertext contains the secret");
    assert!(
        !ciphertext.windows(8).any(|w| key.as_bytes().windows(8).any(|k| k == w)),
        "ciphertext shares 8 bytes with the key"
    );
    assert_eq!(ciphertext.len(), key.len() + 16, "AES-GCM: same length plus the tag");
    assert_eq!(nonce.len(), 12);
    assert_eq!(key_id, app.running.state.vault.current_key_id());

    // Moving the ciphertext to another account does not give that account the key.
    let mallory = app.user("mallory@example.com").await;
    mallory.call("keys/save", &[("key", &unique_key("api"))]).await;
    let mallory_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'mallory@example.com'")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    sqlx::query("UPDATE provider_keys SET ciphertext = $1, nonce = $2 WHERE user_id = $3")
        .bind(&ciphertext)
        .bind(&nonce)
        .bind(&mallory_id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    let stolen = mallory.call("keys/test", &[]).await;
    assert_eq!(stolen.code(), "keys.unreadable", "{}", stolen.body);
    assert!(app.fake.requests().iter().all(|r| r.authorization.as_deref() != Some(&format!("Key {key}"))));
    // The positive control: the same ciphertext under its owner's id opens, and fal gets the key.
    let own = client.call("keys/test", &[]).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert!(app.fake.requests().iter().any(|r| r.authorization.as_deref() == Some(&format!("Key {key}"))));
}

#[tokio::test]
async fn test_key_and_credits_use_the_users_own_key() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;

    let api_key = unique_key("api");
    client.call("keys/save", &[("key", &api_key)]).await;
    let check = client.call("keys/test", &[]).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    let check: Value = check.json();
    assert_eq!(check["endpoint_id"], "fal-ai/nano-banana/edit");
    assert_eq!(check["unit_price"], 0.039);
    assert_eq!(check["unit"], "image");
    let pricing_call =
        app.fake.requests().into_iter().find(|r| r.path == "/v1/models/pricing").expect("fal pricing was called");
    assert_eq!(pricing_call.authorization.as_deref(), Some(format!("Key {api_key}").as_str()));
    assert_eq!(pricing_call.query.as_deref(), Some("endpoint_id=fal-ai%2Fnano-banana%2Fedit"));

    let credits: Value = client.call("keys/credits", &[]).await.json();
    assert_eq!(credits, Value::String("NeedsAdminKey".into()), "an API-scope key cannot read billing");

    let admin_key = unique_key("admin");
    client.call("keys/save", &[("key", &admin_key)]).await;
    app.fake.set_balance(12.34);
    let credits: Value = client.call("keys/credits", &[]).await.json();
    assert_eq!(credits["Balance"]["amount"], 12.34);
    assert_eq!(credits["Balance"]["currency"], "USD");
    let billing_call = app.fake.requests().into_iter().rfind(|r| r.path == "/v1/account/billing").unwrap();
    assert_eq!(billing_call.query.as_deref(), Some("expand=credits"));
}

#[tokio::test]
async fn a_key_fal_rejects_is_reported_as_such() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    client.call("keys/save", &[("key", &unique_key("invalid"))]).await;
    let check = client.call("keys/test", &[]).await;
    assert_eq!(check.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(check.code(), "fal.key_rejected");
    assert!(check.json::<Value>()["message"].as_str().unwrap().contains("Invalid API key"));
    // Billing refuses an unknown key the way it refuses a key without ADMIN scope; the answer
    // must still say the key is wrong, not that it needs more scope.
    let credits = client.call("keys/credits", &[]).await;
    assert_eq!((credits.status, credits.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "fal.key_rejected"));
}

#[tokio::test]
async fn malformed_keys_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    for bad in ["", "no-colon", "id:", "id:has spaces inside"] {
        let reply = client.call("keys/save", &[("key", bad)]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(reply.code(), "keys.malformed");
        assert_eq!(reply.json::<Value>()["field"], "key");
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provider_keys").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn replace_and_delete_are_audited_and_delete_forgets_the_key() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let first = unique_key("api");
    let second = unique_key("api");
    client.call("keys/save", &[("key", &first)]).await;
    let replaced: Value = client.call("keys/save", &[("key", &second)]).await.json();
    assert_eq!(replaced["last4"], second[second.len() - 4..]);
    assert_eq!(client.call("keys/delete", &[]).await.status, StatusCode::OK);
    assert_eq!(client.call("keys/status", &[]).await.body, "null");
    let after = client.call("keys/test", &[]).await;
    assert_eq!(after.code(), "keys.missing");

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'key.%' ORDER BY at, id")
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    assert_eq!(actions, ["key.saved", "key.replaced", "key.deleted"]);
    let details: Vec<String> =
        sqlx::query_scalar("SELECT detail_json FROM audit_events").fetch_all(&app.db().pool).await.unwrap();
    assert!(details.iter().all(|d| !d.contains(&first) && !d.contains(&second)), "the audit log holds no key");
}

#[tokio::test]
async fn keys_saved_at_once_by_many_users_are_all_kept_and_audited_once_each() {
    let app = TestApp::spawn().await;
    let mut clients = Vec::new();
    for n in 0..6 {
        clients.push(app.user(&format!("user{n}@example.com")).await);
    }
    // Every save writes while the others write: none may be refused for the others' sake.
    let saves = clients.iter().flat_map(|client| {
        (0..4).map(move |_| async move {
            let key = unique_key("api");
            let reply = client.call("keys/save", &[("key", &key)]).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        })
    });
    futures::future::join_all(saves).await;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT action, COUNT(*) FROM audit_events WHERE action LIKE 'key.%' GROUP BY action ORDER BY action",
    )
    .fetch_all(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(counts, [("key.replaced".to_owned(), 18), ("key.saved".to_owned(), 6)]);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provider_keys").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(stored, 6);
}

#[tokio::test]
async fn keys_belong_to_their_owner_only() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    ada.call("keys/save", &[("key", &unique_key("admin"))]).await;
    assert_eq!(bob.call("keys/status", &[]).await.body, "null");
    assert_eq!(bob.call("keys/credits", &[]).await.code(), "keys.missing");
    bob.call("keys/delete", &[]).await;
    assert_ne!(ada.call("keys/status", &[]).await.body, "null", "bob's delete did not touch ada's key");

    let visitor = app.client();
    for endpoint in ["keys/status", "keys/save", "keys/delete", "keys/test", "keys/credits"] {
        let reply = visitor.call(endpoint, &[("key", "id:secretvalue")]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
}

#[tokio::test]
async fn no_log_line_and_no_response_contains_the_key() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let key = unique_key("admin");
    client.call("keys/save", &[("key", &key)]).await;
    client.call("keys/test", &[]).await;
    client.call("keys/credits", &[]).await;
    client.get("/account").await;
    let invalid = unique_key("invalid");
    client.call("keys/save", &[("key", &invalid)]).await;
    client.call("keys/test", &[]).await;

    let logs = captured_logs();
    let user_id: String = sqlx::query_scalar("SELECT id FROM users").fetch_one(&app.db().pool).await.unwrap();
    assert!(logs.contains(&user_id), "the log capture works (it saw this test's requests)");
    assert!(logs.contains("/api/keys/save"), "the log capture saw the save request");
    for secret in [&key, &invalid] {
        assert!(!logs.contains(secret.as_str()), "a log line contains the key");
        assert!(!logs.contains(secret.split_once(':').unwrap().1), "a log line contains the key's secret");
        assert!(!client.everything_seen().contains(secret.as_str()), "a response contains the key");
    }
}
