//! Personal access tokens and the JSON API's door: made and shown once, stored as a hash,
//! scoped, expiring, revoked at once; cookies refused on the API and tokens refused everywhere
//! else; a mistyped token refused without a database lookup.

use app::tokens::{CreatedToken, TokenView};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, Reply, TestApp};

async fn create(client: &Client, name: &str, scopes: &[&str], days: u32) -> Reply {
    client.call_json("tokens/create", &json!({ "name": name, "scopes": scopes, "days": days })).await
}

/// `GET /api/v1{path}` with `token`, from a client that holds no cookie.
async fn api(app: &TestApp, token: &str, path: &str) -> Reply {
    let bare = Client::new(&app.base);
    bare.send(bare.http.get(format!("{}/api/v1{path}", app.base)).bearer_auth(token)).await
}

fn problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{}", reply.body);
    let body: Value = reply.json();
    assert_eq!(body["code"], code, "{}", reply.body);
    assert_eq!(
        (body["status"].as_u64(), body["type"].as_str()),
        (Some(status.as_u16() as u64), Some(&*format!("urn:darkroom:error:{code}")))
    );
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty() && !d.contains("drk_pat_A")));
}

#[tokio::test]
async fn tokens_are_shown_once_scoped_expiring_revocable_and_only_for_the_api() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;

    // Made: shown once, stored as a hash only, listed without the secret.
    let made: CreatedToken = create(&ada, "  my   phone ", &["account:read", "jobs:read"], 90).await.json();
    let token = made.token.clone();
    assert!(token.starts_with("drk_pat_") && token.len() == 46, "{token}");
    assert_eq!(made.view.name, "my phone");
    assert!(token.starts_with(&made.view.prefix) && made.view.prefix.len() == 12);
    let listed = ada.call("tokens/list", &[]).await;
    assert!(!listed.body.contains(&token), "the list never shows a secret");
    let list: Vec<TokenView> = listed.json();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].last_used_at, None);
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, prefix, token_hash FROM access_tokens").fetch_all(&app.db().pool).await.unwrap();
    assert!(stored.iter().all(|(_, prefix, hash)| !hash.contains(&token[8..]) && !prefix.contains(&token[12..])));
    assert!(bob.call("tokens/list", &[]).await.json::<Vec<TokenView>>().is_empty(), "bob sees none of ada's");

    // The API answers the token's account, by scope.
    let me = api(&app, &token, "/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let me: Value = me.json();
    assert_eq!(
        (me["email"].as_str(), me["scopes"].clone()),
        (Some("ada@example.com"), json!(["jobs:read", "account:read"]))
    );
    let used: Vec<TokenView> = ada.call("tokens/list", &[]).await.json();
    assert!(used[0].last_used_at.is_some(), "last use is recorded");
    let narrow: CreatedToken = create(&ada, "uploader", &["uploads:write"], 1).await.json();
    problem(&api(&app, &narrow.token, "/me").await, StatusCode::FORBIDDEN, "token.scope_missing");

    // Bad requests to make one say which field.
    for (name, scopes, days, field) in [
        ("", vec!["jobs:read"], 90, "name"),
        ("ci", vec![], 90, "scopes"),
        ("ci", vec!["admin"], 90, "scopes"),
        ("ci", vec!["jobs:read"], 0, "days"),
        ("ci", vec!["jobs:read"], 366, "days"),
    ] {
        let reply = create(&ada, name, &scopes, days).await;
        reply.refused(StatusCode::BAD_REQUEST, "token.invalid");
        assert_eq!(reply.json::<Value>()["field"], field);
    }
    assert_eq!(
        Client::new(&app.base)
            .call_json("tokens/create", &json!({ "name": "x", "scopes": ["jobs:read"], "days": 1 }))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // No token, a cookie, a token on a cookie route: each refused, saying why.
    let anonymous = Client::new(&app.base);
    let none = anonymous.send(anonymous.http.get(format!("{}/api/v1/me", app.base))).await;
    problem(&none, StatusCode::UNAUTHORIZED, "auth.unauthenticated");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    problem(&ada.get("/api/v1/me").await, StatusCode::UNAUTHORIZED, "auth.cookie_not_accepted");
    let both = ada.send(ada.http.get(format!("{}/api/v1/me", app.base)).bearer_auth(&token)).await;
    problem(&both, StatusCode::UNAUTHORIZED, "auth.cookie_not_accepted");
    for path in ["/api/tokens/list", "/api/keys/status"] {
        let bare = Client::new(&app.base);
        let reply = bare.send(bare.http.post(format!("{}{path}", app.base)).bearer_auth(&token)).await;
        reply.refused(StatusCode::UNAUTHORIZED, "auth.token_not_accepted_here");
    }
    let page = Client::new(&app.base);
    let page = page.send(page.http.get(format!("{}/account", app.base)).bearer_auth(&token)).await;
    page.refused(StatusCode::UNAUTHORIZED, "auth.token_not_accepted_here");

    // A well-formed token that no longer works: only a lookup tells.
    let revoked: CreatedToken = create(&bob, "temp", &["account:read"], 1).await.json();
    bob.call("tokens/revoke", &[("id", &revoked.view.id)]).await;
    problem(&api(&app, &revoked.token, "/me").await, StatusCode::UNAUTHORIZED, "token.not_accepted");

    // Revoked: refused at once. Someone else cannot revoke it.
    let id = made.view.id.clone();
    bob.call("tokens/revoke", &[("id", &id)]).await.refused(StatusCode::NOT_FOUND, "token.not_found");
    assert_eq!(api(&app, &token, "/me").await.status, StatusCode::OK);
    assert_eq!(ada.call("tokens/revoke", &[("id", &id)]).await.status, StatusCode::OK);
    problem(&api(&app, &token, "/me").await, StatusCode::UNAUTHORIZED, "token.not_accepted");
    let after: Vec<TokenView> = ada.call("tokens/list", &[]).await.json();
    assert!(after.iter().any(|t| t.id == id && t.revoked));

    // Expired: refused from that moment.
    let short: CreatedToken = create(&ada, "short", &["account:read"], 1).await.json();
    assert_eq!(api(&app, &short.token, "/me").await.status, StatusCode::OK);
    sqlx::query("UPDATE access_tokens SET expires_at = $1 WHERE id = $2")
        .bind(app::format::now_ms() - 1)
        .bind(&short.view.id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    problem(&api(&app, &short.token, "/me").await, StatusCode::UNAUTHORIZED, "token.not_accepted");

    // Audited, without the secret.
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT action, detail_json FROM audit_events WHERE action LIKE 'token.%' ORDER BY at, id")
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    assert!(events.iter().filter(|(a, _)| a == "token.created").count() >= 4);
    assert!(events.iter().any(|(a, _)| a == "token.revoked"));
    assert!(events.iter().all(|(_, detail)| !detail.contains("drk_pat_")), "{events:?}");

    // A typo is refused by its checksum alone: even with the database gone it answers 401
    // token.malformed, where a well-formed token, which needs a lookup, can no longer be checked.
    let mut typo = token.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    app.db().pool.close().await;
    for bad in [typo.as_str(), "drk_pat_short", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"] {
        problem(&api(&app, bad, "/me").await, StatusCode::UNAUTHORIZED, "token.malformed");
    }
    assert_eq!(
        api(&app, &short.token, "/me").await.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "this one needed the database"
    );
}

#[tokio::test]
async fn each_token_and_each_account_has_its_own_rate_limit() {
    let app = TestApp::spawn_with(&[("DARKROOM_API_REQUESTS_PER_MINUTE", "3")]).await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let first: CreatedToken = create(&ada, "one", &["account:read"], 1).await.json();
    let second: CreatedToken = create(&ada, "two", &["account:read"], 1).await.json();
    let bobs: CreatedToken = create(&bob, "bob", &["account:read"], 1).await.json();
    for _ in 0..3 {
        assert_eq!(api(&app, &first.token, "/me").await.status, StatusCode::OK);
    }
    let limited = api(&app, &first.token, "/me").await;
    problem(&limited, StatusCode::TOO_MANY_REQUESTS, "api.rate_limited");
    assert!(limited.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
    // Another token of the same account goes on, until the account's own limit (twice a
    // token's: 6, of which the first token used 3; its refused request did not count).
    let mut answered = Vec::new();
    for _ in 0..4 {
        answered.push(api(&app, &second.token, "/me").await.status);
    }
    assert_eq!(answered, [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    problem(&api(&app, &second.token, "/me").await, StatusCode::TOO_MANY_REQUESTS, "api.rate_limited");
    // Someone else's token is not slowed by ada's.
    assert_eq!(api(&app, &bobs.token, "/me").await.status, StatusCode::OK);
}
