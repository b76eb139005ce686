//! Attacks and faults against the request boundary: malformed bodies, bytes that databases
//! refuse, HEAD requests and hung-up page loads, login floods and lockouts, redirects and
//! forwarded addresses, account races. Each test performs the attack and checks what a user (or
//! the server's log) would notice.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, PASSWORD, Reply, TestApp};

/// Sends `body` as it is to a server function, the way a script or a broken client might.
async fn raw(client: &Client, endpoint: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
    let request = client
        .http
        .post(format!("{}/api/{endpoint}", client.base))
        .header("accept", "application/json")
        .header("content-type", content_type)
        .body(body);
    client.send(request).await
}

fn assert_refused(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!((reply.status, reply.code().as_str()), (status, code), "{what}: {}", reply.body);
    let message = reply.json::<Value>()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.len() > 10, "{what}: a message a person can read: {message:?}");
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test]
async fn malformed_arguments_get_a_4xx_with_a_code_never_a_500() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let issue = |byte_length: &str| format!("content_type=image%2Fpng&{byte_length}&sha256={SHA}");
    for (body, what) in [
        (issue("byte_length=abc"), "letters for a number"),
        (issue("byte_length=-1"), "a negative size"),
        (issue("byte_length=18446744073709551616"), "a size past u64"),
        (format!("content_type=image%2Fpng&sha256={SHA}"), "a missing field"),
        (issue("byte_length=1&byte_length=2"), "a repeated field"),
    ] {
        assert_refused(
            &raw(&client, "uploads/issue", FORM, body).await,
            StatusCode::BAD_REQUEST,
            "request.malformed",
            what,
        );
    }
    let json_to_form = json!({ "content_type": "image/png", "byte_length": 10, "sha256": SHA }).to_string();
    let reply = raw(&client, "uploads/issue", JSON, json_to_form).await;
    assert_refused(&reply, StatusCode::BAD_REQUEST, "request.malformed", "JSON to a form function");

    for (body, content_type, what) in [
        ("{".to_owned(), JSON, "broken JSON"),
        (json!({ "model": 5, "params": [], "images": "x" }).to_string(), JSON, "wrong types"),
        ("{}".to_owned(), JSON, "an empty object"),
        ("model=fal-ai%2Fnano-banana&images=x".to_owned(), FORM, "a form body to a JSON function"),
    ] {
        let reply = raw(&client, "jobs/create", content_type, body).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "request.malformed", what);
    }
    let huge = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "x".repeat(3 << 20) }, "images": [] });
    let reply = raw(&client, "jobs/create", JSON, huge.to_string()).await;
    assert_refused(&reply, StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", "a 3 MiB body");
    let jobs: Vec<Value> = client.call("jobs/list", &[]).await.json();
    assert!(jobs.is_empty(), "nothing was half-created");
}

#[tokio::test]
async fn nul_bytes_and_huge_values_are_refused_the_same_on_every_database() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let long_email = format!("{}@example.com", "a".repeat(3_000));
    for email in ["ada\0@example.com", long_email.as_str()] {
        let reply = app.client().signup(email, PASSWORD).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "auth.invalid_email", "signup");
        let reply = app.client().login(email, PASSWORD).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "auth.invalid_credentials", "login");
    }
    for endpoint in ["jobs/get", "jobs/cancel", "jobs/retry"] {
        for id in ["abc\0", &"9".repeat(3_000)] {
            let reply = client.call(endpoint, &[("id", id)]).await;
            assert_refused(&reply, StatusCode::NOT_FOUND, "job.not_found", endpoint);
        }
    }
    for endpoint in ["jobs/list", "uploads/list"] {
        let reply = client.call(endpoint, &[("before", "x\0y")]).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "request.invalid_cursor", endpoint);
    }
    let reply = client.call("uploads/confirm", &[("upload", "x\0y")]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    let reply = client.call("keys/save", &[("key", "id\0:secret-value")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
}

#[tokio::test]
async fn emails_that_hide_characters_are_refused_at_signup() {
    let app = TestApp::spawn().await;
    for spoof in ["admin\u{202E}moc.elpmaxe@evil.example", "ad\u{200B}min@example.com", "\u{FEFF}ada@example.com"] {
        let reply = app.client().signup(spoof, PASSWORD).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "auth.invalid_email", spoof);
        assert!(reply.body.contains("invisible"), "{}", reply.body);
    }
}

#[tokio::test]
async fn head_requests_meet_the_same_guards_and_hung_up_page_loads_never_panic() {
    let app = TestApp::spawn().await;
    let server = app.process("server", &[]).await;
    let ada = Client::new(&server.base);
    assert_eq!(ada.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);

    let head = |client: &Client, path: &str| client.http.head(format!("{}{path}", server.base)).send();
    assert_eq!(head(&ada, "/admin").await.unwrap().status(), StatusCode::FORBIDDEN, "HEAD /admin as a user");
    assert_eq!(ada.get("/admin").await.status, StatusCode::FORBIDDEN);
    let visitor = Client::new(&server.base);
    assert_eq!(head(&visitor, "/create").await.unwrap().status(), StatusCode::SEE_OTHER);

    // Page loads whose client hangs up at every stage: before the answer, after its headers,
    // midway through the streamed body; and HEADs, which never read a body.
    let mut loads = Vec::new();
    for n in 0..200u64 {
        let (client, path) = (ada.clone(), ["/create", "/account", "/admin", "/"][n as usize % 4]);
        let url = format!("{}{path}", server.base);
        loads.push(tokio::spawn(async move {
            match n % 4 {
                0 => drop(client.http.get(&url).timeout(Duration::from_millis(1 + n % 23)).send().await),
                1 => drop(client.http.get(&url).send().await),
                2 => {
                    if let Ok(mut response) = client.http.get(&url).send().await {
                        let _ = response.chunk().await;
                    }
                }
                _ => drop(client.http.head(&url).send().await),
            }
        }));
    }
    for load in loads {
        load.await.unwrap();
    }
    // Whole loads after the burst: the hung-up renders' work finishes first.
    for path in ["/create", "/account", "/create"] {
        assert_eq!(ada.get(path).await.status, StatusCode::OK);
    }
    assert_eq!(server.panics(), Vec::<String>::new(), "no panic in the server log");
}

#[tokio::test]
async fn a_login_flood_gets_only_the_allowed_guesses_and_memory_stays_flat() {
    let app = TestApp::spawn().await;
    let server = app.process("server", &[]).await;
    let owner = Client::new(&server.base);
    assert_eq!(owner.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    let before = server.rss_kib();
    let attacker = Client::new(&server.base);
    let flood = async {
        let guesses = (0..200).map(|n| {
            let attacker = attacker.clone();
            tokio::spawn(async move { attacker.login("ada@example.com", &format!("guess number {n}")).await })
        });
        let mut statuses = Vec::new();
        for guess in guesses.collect::<Vec<_>>() {
            statuses.push(guess.await.unwrap().status);
        }
        statuses
    };
    let (statuses, peak) = server.peak_rss_during(flood).await;
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    let (wrong, limited) = (count(StatusCode::UNAUTHORIZED), count(StatusCode::TOO_MANY_REQUESTS));
    assert!(wrong <= 5, "{wrong} guesses were checked; the limit is 5");
    assert_eq!(wrong + limited, 200, "every other attempt was refused as rate-limited: {statuses:?}");
    let grew_mib = peak.saturating_sub(before) / 1024;
    // The figures, for `-- --nocapture`: memory is measured, not only bounded.
    eprintln!(
        "login flood: 200 attempts, {wrong} checked, {limited} refused; RSS {} → peak {} MiB (+{grew_mib} MiB)",
        before / 1024,
        peak / 1024
    );
    // Two hashes at a time (19 MiB each) on this machine; 200 at once would be 3.8 GiB.
    assert!(grew_mib < 200, "resident memory grew by {grew_mib} MiB during the flood");
    assert!(server.panics().is_empty());
}

#[tokio::test]
async fn the_owner_still_gets_in_while_the_guessing_address_is_blocked() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let attacker = Client::from_address(&app.base, Some(other));
    for _ in 0..5 {
        assert_eq!(attacker.login("ada@example.com", "not the password").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attacker.login("ada@example.com", "not the password").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        attacker.login("ada@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "blocked address"
    );

    let owner = app.client();
    let reply = owner.login("ada@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "the owner, from their own address: {}", reply.body);
    assert_eq!(owner.me().await.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn login_redirects_stay_on_the_site_and_odd_values_never_panic() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    for (next, expected) in [
        ("/\t/evil.example", "/create"),
        ("/\n/evil.example", "/create"),
        ("/ /evil.example", "/create"),
        ("/\\evil.example", "/create"),
        ("/gallery/café", "/gallery/caf%C3%A9"),
        ("/\u{7f}x", "/create"),
        ("/account", "/account"),
    ] {
        let client = app.client();
        let reply =
            client.call("auth/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", next)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{next:?}: {}", reply.body);
        assert_eq!(reply.header("location"), Some(expected), "{next:?}");
    }
}

#[tokio::test]
async fn forwarded_addresses_count_what_our_proxy_saw_and_ipv6_per_64() {
    let app =
        TestApp::spawn_with(&[("DARKROOM_TRUST_FORWARDED_FOR", "true"), ("DARKROOM_LOGIN_MAX_FAILURES_PER_IP", "3")])
            .await;
    let login = |lines: Vec<String>, email: &str| {
        let client = app.client();
        let mut request = client
            .http
            .post(format!("{}/api/auth/login", app.base))
            .header("accept", "application/json")
            .form(&[("email", email), ("password", "wrong password")]);
        for line in lines {
            request = request.header("x-forwarded-for", line);
        }
        async move { client.send(request).await.status }
    };
    // The client writes a line of its own, different each time; our proxy appends the real one.
    for n in 0..3 {
        let status = login(vec![format!("10.0.0.{n}"), "203.0.113.5".into()], &format!("u{n}@example.com")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(vec!["10.9.9.9".into(), "203.0.113.5".into()], "x@example.com").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(vec!["203.0.113.5, 203.0.113.6".into()], "x@example.com").await,
        StatusCode::UNAUTHORIZED,
        "another client"
    );

    for n in 1..=3 {
        let status = login(vec![format!("2001:db8:1:2::{n}")], &format!("v{n}@example.com")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let same_64 = login(vec!["2001:db8:1:2:ffff:ffff:ffff:9".into()], "y@example.com").await;
    assert_eq!(same_64, StatusCode::TOO_MANY_REQUESTS, "a new address in the same /64 is the same client");
    assert_eq!(login(vec!["2001:db8:1:3::1".into()], "y@example.com").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_disabled_account_is_revealed_only_to_its_password() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    sqlx::query("UPDATE users SET disabled_at = 1 WHERE email = 'ada@example.com'")
        .execute(&app.db().pool)
        .await
        .unwrap();
    let client = app.client();
    let wrong = client.login("ada@example.com", "wrong password").await;
    let unknown = client.login("nobody@example.com", "wrong password").await;
    assert_eq!((wrong.status, wrong.body.clone()), (unknown.status, unknown.body), "indistinguishable from no account");
    let right = client.login("ada@example.com", PASSWORD).await;
    assert_eq!((right.status, right.code().as_str()), (StatusCode::FORBIDDEN, "auth.disabled"));
    assert_eq!(client.me().await, None);
}

#[tokio::test]
async fn concurrent_first_signups_make_exactly_one_admin() {
    let app = TestApp::spawn_with(&[("DARKROOM_FIRST_USER_ADMIN", "true"), ("DARKROOM_SIGNUPS_PER_IP", "100")]).await;
    let signups = (0..8).map(|n| {
        let client = app.client();
        tokio::spawn(async move { client.signup(&format!("first{n}@example.com"), PASSWORD).await.status })
    });
    for signup in signups.collect::<Vec<_>>() {
        assert_eq!(signup.await.unwrap(), StatusCode::OK);
    }
    let admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn concurrent_creates_cannot_pass_the_running_jobs_cap() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    client.call("keys/save", &[("key", "api-cap:secret-value-1234")]).await;
    for _ in 0..30 {
        app.fake.script(darkroom::fake_fal::Scenario { queue_ms: 600_000, ..Default::default() });
    }
    let creates = (0..30).map(|n| {
        let client = client.clone();
        tokio::spawn(async move {
            let body = json!({ "model": "fal-ai/nano-banana", "params": { "prompt": format!("n{n}") }, "images": [] });
            let request = client
                .http
                .post(format!("{}/api/jobs/create", client.base))
                .header("accept", "application/json")
                .json(&body);
            client.send(request).await
        })
    });
    let mut statuses = Vec::new();
    for create in creates.collect::<Vec<_>>() {
        let reply = create.await.unwrap();
        if reply.status != StatusCode::OK {
            assert_eq!(reply.code(), "job.rate_limited", "{}", reply.body);
        }
        statuses.push(reply.status);
    }
    let created = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(created, 20, "the cap is 20 unfinished jobs: {statuses:?}");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(rows, 20);
}

#[tokio::test]
async fn the_live_stream_ends_with_its_session_and_each_user_has_a_few() {
    let app = TestApp::spawn().await;
    let open = |client: &Client| {
        let request = client.http.get(format!("{}/events", client.base)).timeout(Duration::from_secs(60));
        async move { request.send().await.unwrap() }
    };
    let ended = |mut stream: reqwest::Response| async move {
        let drained = async { while let Ok(Some(_)) = stream.chunk().await {} };
        tokio::time::timeout(Duration::from_secs(20), drained).await.is_ok()
    };

    let ada = app.user("ada@example.com").await;
    let stream = open(&ada).await;
    assert_eq!(stream.status(), StatusCode::OK);
    // Logging out elsewhere with the same session (another tab) ends the stream.
    let other_tab = ada.clone();
    assert_eq!(other_tab.call("auth/logout", &[]).await.status, StatusCode::OK);
    assert!(ended(stream).await, "the stream ended after logout");

    let bob = app.user("bob@example.com").await;
    let stream = open(&bob).await;
    sqlx::query("UPDATE users SET disabled_at = 1 WHERE email = 'bob@example.com'")
        .execute(&app.db().pool)
        .await
        .unwrap();
    assert!(ended(stream).await, "the stream ended when the account was disabled");

    let cleo = app.user("cleo@example.com").await;
    let mut streams = Vec::new();
    for _ in 0..app::server::jobs::live::STREAMS_PER_USER {
        let stream = open(&cleo).await;
        assert_eq!(stream.status(), StatusCode::OK);
        streams.push(stream);
    }
    let one_more = open(&cleo).await;
    assert_eq!(one_more.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(streams.pop());
    crate::helpers::eventually("a closed stream frees its place", || async {
        let again = open(&cleo).await;
        (again.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unsigned_webhook_is_refused_before_its_body_is_read() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "self")]).await;
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    const CHUNK: usize = 64 * 1024;
    let chunks = futures::stream::unfold(0usize, move |sent| {
        let counter = counter.clone();
        async move {
            if sent >= 16 << 20 {
                return None;
            }
            counter.fetch_add(CHUNK, std::sync::atomic::Ordering::SeqCst);
            // Paced, so what the socket buffers absorb stays small next to what a reader takes.
            tokio::time::sleep(Duration::from_millis(2)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; CHUNK])), sent + CHUNK))
        }
    });
    let sent = reqwest::Client::new()
        .post(format!("{}/hooks/fal", app.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(response) = sent {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(pulled < 8 << 20, "{pulled} bytes of an unsigned 16 MiB delivery were taken in");
}

#[tokio::test]
async fn a_heic_bomb_is_refused_without_the_server_growing() {
    let app = TestApp::spawn().await;
    let server = app.process("server", &[]).await;
    let client = Client::new(&server.base);
    assert_eq!(client.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    let before = server.rss_kib();
    // 2,000 items of 65,535 zero-byte pieces each: about 2 GiB for a parser that trusts counts.
    let bomb = crate::testdata::heif_iloc_bomb(2_000, 65_535);
    let ((_, reply), peak) = server.peak_rss_during(crate::uploads::upload(&client, &bomb, "image/heic")).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "upload.undecodable"));
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "HEIC bomb: {} bytes refused as {}; RSS {} → peak {} MiB (+{grew_mib} MiB)",
        bomb.len(),
        reply.code(),
        before / 1024,
        peak / 1024
    );
    assert!(grew_mib < 64, "resident memory grew by {grew_mib} MiB for a {} byte file", bomb.len());
    assert!(server.panics().is_empty());
}
