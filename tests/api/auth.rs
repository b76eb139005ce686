use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn signup_logs_in_with_a_normalised_email() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let reply = client.signup("  Ada@Example.COM ", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/create"), "the app goes to Create after signup");
    assert_eq!(client.me().await.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn signup_refuses_bad_input_with_field_codes() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let cases = [
        (("not-an-email", PASSWORD, PASSWORD), "auth.invalid_email", "email"),
        (("ada@example.com", "short", "short"), "auth.weak_password", "password"),
        (("ada@example.com", PASSWORD, "correct horse battery!"), "auth.password_mismatch", "confirm"),
    ];
    for ((email, password, confirm), code, field) in cases {
        let reply = client.call("auth/signup", &[("email", email), ("password", password), ("confirm", confirm)]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{code}: {}", reply.body);
        assert_eq!(reply.code(), code);
        assert_eq!(reply.json::<serde_json::Value>()["field"], field);
    }
    assert_eq!(client.me().await, None, "nothing was signed in");
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(users, 0, "refused signups store nothing");
}

#[tokio::test]
async fn duplicate_email_is_refused() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let reply = app.client().signup("ADA@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "auth.email_taken");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let wrong_password = app.client().login("ada@example.com", "not the password").await;
    let unknown_email = app.client().login("nobody@example.com", "not the password").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.status, unknown_email.status);
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.code(), "auth.invalid_credentials");
}

#[tokio::test]
async fn the_sixth_rapid_failed_login_is_rate_limited() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let client = app.client();
    for attempt in 1..=5 {
        let reply = client.login("ada@example.com", "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let sixth = client.login("ada@example.com", "wrong password").await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.code(), "auth.rate_limited");
    let retry_after: u64 = sixth.header("retry-after").expect("Retry-After header").parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // While the account is locked, even the right password waits.
    let right = client.login("ada@example.com", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(client.me().await, None);
}

#[tokio::test]
async fn failures_from_one_ip_across_accounts_are_limited_too() {
    let app = TestApp::spawn_with(&[("DARKROOM_LOGIN_MAX_FAILURES_PER_IP", "3")]).await;
    let client = app.client();
    for n in 0..3 {
        let reply = client.login(&format!("user{n}@example.com"), "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = client.login("someone-else@example.com", "wrong password").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn signups_are_rate_limited_per_ip() {
    let app = TestApp::spawn_with(&[("DARKROOM_SIGNUPS_PER_IP", "2")]).await;
    assert_eq!(app.client().signup("a@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(app.client().signup("b@example.com", PASSWORD).await.status, StatusCode::OK);
    let third = app.client().signup("c@example.com", PASSWORD).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(third.header("retry-after").is_some());
}

#[tokio::test]
async fn login_rotates_the_session_id_and_the_old_one_dies() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let before = client.session_cookie().expect("a session cookie after signup");
    let reply = client.login("ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let after = client.session_cookie().expect("a session cookie after login");
    assert_ne!(before, after, "login must issue a new session id");

    // Someone holding the old id (fixation, theft) has nothing.
    let stale = app
        .client()
        .send(
            app.client()
                .http
                .post(format!("{}/api/auth/me", app.base))
                .header("cookie", format!("{}={before}", darkroom::server::SESSION_COOKIE)),
        )
        .await;
    assert_eq!(stale.body, "null");
    assert_eq!(client.me().await.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let cookie = client.session_cookie().unwrap();
    let reply = client.call("auth/logout", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(client.me().await, None);
    let rows: i64 = match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions WHERE id = $1"),
        crate::helpers::Backend::Postgres => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions.session WHERE id = $1")
        }
    }
    .bind(&cookie)
    .fetch_one(&app.db().pool)
    .await
    .unwrap();
    assert_eq!(rows, 0, "the session row is deleted, not just the cookie");
}

#[tokio::test]
async fn first_user_becomes_admin_only_when_the_operator_opts_in() {
    let closed = TestApp::spawn().await;
    closed.user("first@example.com").await;
    assert_eq!(closed.client().get("/admin").await.status, StatusCode::SEE_OTHER);
    let first = closed.client();
    first.login("first@example.com", PASSWORD).await;
    assert_eq!(first.get("/admin").await.status, StatusCode::FORBIDDEN, "no admin by being first");

    let open = TestApp::spawn_with(&[("DARKROOM_FIRST_USER_ADMIN", "true")]).await;
    let first = open.user("first@example.com").await;
    let second = open.user("second@example.com").await;
    assert_eq!(first.get("/admin").await.status, StatusCode::OK);
    assert_eq!(second.get("/admin").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn signup_can_be_closed() {
    let app = TestApp::spawn_with(&[("DARKROOM_ALLOW_SIGNUP", "false")]).await;
    let reply = app.client().signup("ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "auth.signup_closed");
}

#[tokio::test]
async fn audit_log_records_signup_login_and_failures() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    client.login("ada@example.com", "wrong password").await;
    client.login("ada@example.com", PASSWORD).await;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events ORDER BY at, id").fetch_all(&app.db().pool).await.unwrap();
    assert_eq!(actions, ["auth.signup", "auth.login_failed", "auth.login"]);
    let ip: Option<String> = sqlx::query_scalar("SELECT ip FROM audit_events WHERE action = 'auth.login'")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
}

/// A signed-in request checks its session without reading the session's record (the account and
/// login it belongs to are remembered). With verified sessions not kept
/// (`DARKROOM_SESSION_RECHECK_SECS=0`) a session removed or expired behind the app's back is
/// refused at the next request.
#[tokio::test]
async fn a_session_removed_or_expired_in_the_store_is_refused_at_the_next_request() {
    let app = TestApp::spawn_with(&[("DARKROOM_SESSION_RECHECK_SECS", "0")]).await;
    for (n, ending) in session_endings(&app).iter().enumerate() {
        let client = app.user(&format!("user{n}@example.com")).await;
        for _ in 0..2 {
            assert_eq!(client.call("keys/status", &[]).await.status, StatusCode::OK, "signed in");
        }
        sqlx::query(ending).execute(&app.db().pool).await.unwrap();
        assert_eq!(client.call("keys/status", &[]).await.status, StatusCode::UNAUTHORIZED, "{ending}");
    }
}

/// Kept verified sessions (the default) end when `auth_epoch` moves, which everything that ends
/// sessions in the app does and an operator does after changing sessions by hand: a session
/// removed behind the app's back lives on until then (here the recheck is an hour away), and
/// is refused once the server sees the counter move.
#[tokio::test]
async fn a_session_ended_behind_the_apps_back_is_refused_once_the_auth_epoch_moves() {
    let app = TestApp::spawn_with(&[("DARKROOM_SESSION_RECHECK_SECS", "3600")]).await;
    for (n, ending) in session_endings(&app).iter().enumerate() {
        let client = app.user(&format!("user{n}@example.com")).await;
        for _ in 0..2 {
            assert_eq!(client.call("keys/status", &[]).await.status, StatusCode::OK, "signed in");
        }
        sqlx::query(ending).execute(&app.db().pool).await.unwrap();
        assert_eq!(client.call("keys/status", &[]).await.status, StatusCode::OK, "still verified: {ending}");
        sqlx::query("UPDATE auth_epoch SET version = version + 1").execute(&app.db().pool).await.unwrap();
        crate::helpers::eventually(&format!("refused after {ending}"), || async {
            (client.call("keys/status", &[]).await.status == StatusCode::UNAUTHORIZED).then_some(())
        })
        .await;
    }
}

/// Deleting every session, and expiring every session, behind the app's back.
fn session_endings(app: &TestApp) -> [String; 2] {
    let (table, an_hour_ago) = match app.db().backend {
        app::server::db::Backend::Sqlite => ("tower_sessions", "datetime('now', '-1 hour')"),
        app::server::db::Backend::Postgres => ("tower_sessions.session", "now() - interval '1 hour'"),
    };
    [format!("DELETE FROM {table}"), format!("UPDATE {table} SET expiry_date = {an_hour_ago}")]
}
