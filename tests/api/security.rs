use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn a_cross_origin_post_to_a_server_function_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let forged = client
        .send(
            client
                .http
                .post(format!("{}/api/keys/save", app.base))
                .header("origin", "https://evil.example")
                .form(&[("key", "attacker:controlledvalue")]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.code(), "request.cross_origin");
    assert_eq!(client.call("keys/status", &[]).await.body, "null", "the forged request changed nothing");

    let fetch_metadata = client
        .send(client.http.post(format!("{}/api/auth/logout", app.base)).header("sec-fetch-site", "cross-site"))
        .await;
    assert_eq!(fetch_metadata.status, StatusCode::FORBIDDEN);
    assert!(client.me().await.is_some(), "still logged in");

    let same_origin = client
        .send(
            client
                .http
                .post(format!("{}/api/keys/save", app.base))
                .header("origin", &app.base)
                .header("accept", "application/json")
                .form(&[("key", "mine:legitimatevalue")]),
        )
        .await;
    assert_eq!(same_origin.status, StatusCode::OK, "{}", same_origin.body);
}

#[tokio::test]
async fn with_a_public_url_only_its_origin_may_post() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://darkroom.example")]).await;
    let client = app.client();
    let request = |origin: &str| {
        client
            .http
            .post(format!("{}/api/auth/login", app.base))
            .header("origin", origin)
            .header("accept", "application/json")
            .form(&[("email", "a@example.com"), ("password", "whatever-123")])
    };
    assert_eq!(client.send(request(&app.base)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(client.send(request("https://darkroom.example")).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_carry_security_headers_and_a_nonce_csp() {
    let app = TestApp::spawn().await;
    let page = app.client().get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    let csp = page.header("content-security-policy").expect("a CSP");
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    assert!(page.body.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the nonce");
    assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    // External storage's origins are allowed; the embedded endpoint is on our own origin.
    let storage: String = app.running.state.storage.link_origins_for_csp().iter().map(|o| format!(" {o}")).collect();
    assert!(csp.contains(&format!("connect-src 'self' blob:{storage};")), "uploads may go to storage: {csp}");

    let other = app.client().get("/login").await;
    assert_ne!(other.header("content-security-policy"), Some(csp), "a fresh nonce per response");

    let api = app.client().call("auth/me", &[]).await;
    assert_eq!(api.header("x-content-type-options"), Some("nosniff"));
    assert!(api.header("content-security-policy").unwrap().starts_with("default-src 'none'"));
}

#[tokio::test]
async fn session_cookies_are_httponly_lax_and_secure_only_over_https() {
    let plain = TestApp::spawn().await;
    let reply = plain.client().signup("ada@example.com", PASSWORD).await;
    let cookie = reply.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with("darkroom_session="));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "http deployments cannot use Secure cookies: {cookie}");

    let https = TestApp::spawn_with(&[("PUBLIC_URL", "https://darkroom.example")]).await;
    let reply = https.client().signup("ada@example.com", PASSWORD).await;
    let cookie = reply.header("set-cookie").expect("a session cookie");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    assert!(reply.header("strict-transport-security").is_some());
}

#[tokio::test]
async fn pages_that_need_an_account_send_visitors_to_login() {
    let app = TestApp::spawn().await;
    let visitor = app.client();
    for (path, target) in
        [("/create", "/login?next=%2Fcreate"), ("/account", "/login?next=%2Faccount"), ("/", "/login")]
    {
        let reply = visitor.get(path).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.header("location"), Some(target), "{path}");
    }
    let user = app.user("ada@example.com").await;
    assert_eq!(user.get("/login").await.header("location"), Some("/create"));
    assert_eq!(user.get("/account").await.status, StatusCode::OK);
    assert_eq!(app.client().get("/no-such-page").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_only_redirects_to_local_paths() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let client = app.client();
    let reply = client
        .call("auth/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "https://evil.example/")])
        .await;
    assert_eq!(reply.header("location"), Some("/create"));
    let reply =
        client.call("auth/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/account")]).await;
    assert_eq!(reply.header("location"), Some("/account"));
}

#[tokio::test]
async fn health_reports_the_database() {
    let app = TestApp::spawn().await;
    let reply = app.client().get("/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn cross_origin_isolation_is_only_asked_where_browsers_honour_it() {
    let app = TestApp::spawn().await;
    let page = |host: &'static str| {
        let request = reqwest::Client::new().get(format!("{}/login", app.base)).header("host", host);
        async move { request.send().await.unwrap() }
    };
    let local = page("127.0.0.1:3000").await;
    assert_eq!(local.headers().get("cross-origin-opener-policy").map(|v| v.to_str().unwrap()), Some("same-origin"));
    // Plain http on a home network is not a trustworthy origin: the browser would ignore the
    // header and log an error on every page.
    let lan = page("192.168.1.10:3000").await;
    assert_eq!(lan.status(), StatusCode::OK);
    assert!(lan.headers().get("cross-origin-opener-policy").is_none());
}
