//! Direct uploads end to end: ticket, PUT straight to storage, confirm. Every bad upload is
//! refused with its code and leaves no object behind, on whichever storage the suite runs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Client, Reply, StorageKind, TestApp, eventually, storage_kind};
use crate::testdata;

#[derive(Clone)]
pub(crate) struct Issued {
    pub(crate) id: String,
    pub(crate) key: String,
    url: String,
    headers: Vec<(String, String)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sha256_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

async fn issue(client: &Client, bytes: &[u8], declared: &str) -> Reply {
    let length = bytes.len().to_string();
    let sha = sha256_hex(bytes);
    client
        .call(
            "uploads/issue",
            &[("content_type", declared), ("byte_length", &length), ("sha256", &sha), ("filename", "photo.jpg")],
        )
        .await
}

fn issued(reply: &Reply) -> Issued {
    assert_eq!(reply.status, StatusCode::OK, "issue failed: {}", reply.body);
    let ticket: Value = reply.json();
    Issued {
        id: ticket["upload_id"].as_str().unwrap().into(),
        key: ticket["key"].as_str().unwrap().into(),
        url: ticket["url"].as_str().unwrap().into(),
        headers: serde_json::from_value(ticket["headers"].clone()).unwrap(),
    }
}

/// PUTs `body` with the ticket's headers, like a browser (which sets Content-Length itself).
async fn put(ticket: &Issued, body: Vec<u8>, replace_type: Option<&str>) -> StatusCode {
    let mut request = reqwest::Client::new().put(&ticket.url).body(body);
    for (name, value) in &ticket.headers {
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {}
            "content-type" => request = request.header(name, replace_type.unwrap_or(value)),
            _ => request = request.header(name, value),
        }
    }
    request.send().await.expect("storage reachable").status()
}

async fn confirm(client: &Client, upload: &str) -> Reply {
    client.call("uploads/confirm", &[("upload", upload)]).await
}

/// Issue, PUT and confirm `bytes` declared as `declared`; returns the ticket and the confirm reply.
pub(crate) async fn upload(client: &Client, bytes: &[u8], declared: &str) -> (Issued, Reply) {
    let ticket = issued(&issue(client, bytes, declared).await);
    assert_eq!(put(&ticket, bytes.to_vec(), None).await, StatusCode::OK, "the PUT itself succeeds");
    let reply = confirm(client, &ticket.id).await;
    (ticket, reply)
}

async fn assert_nothing_stored(app: &TestApp, ticket: &Issued) {
    assert_eq!(app.object(&ticket.key).await, None, "the uploaded object is gone");
    let source = ticket.key.replacen("uploads/", "sources/", 1);
    assert_eq!(app.object(&source).await, None, "no sanitized copy exists");
}

#[tokio::test]
async fn a_gps_tagged_selfie_is_stored_clean_upright_and_out_of_reach_of_its_upload_url() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let selfie = testdata::jpeg_with_exif(120, 80, 6, true);
    let (ticket, reply) = upload(&client, &selfie, "image/jpeg").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let image: Value = reply.json();
    assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(80), Some(120)), "turned upright");
    assert_eq!(image["content_type"], "image/jpeg");
    assert_eq!(image["filename"], "photo.jpg");

    let source_key = format!("sources/{}", ticket.key.trim_start_matches("uploads/"));
    let stored = app.object(&source_key).await.expect("the sanitized copy exists");
    assert!(!testdata::has_exif(&stored) && !testdata::contains(&stored, testdata::GPS_MARK), "no GPS metadata");
    assert_eq!(image["byte_size"].as_u64(), Some(stored.len() as u64));
    assert_eq!(app.object(&ticket.key).await, None, "the original upload is deleted");

    // The viewing URL serves exactly the sanitized bytes.
    let viewed = reqwest::get(image["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(viewed.status(), StatusCode::OK);
    assert_eq!(viewed.bytes().await.unwrap().as_ref(), stored.as_slice());
    let listed: Vec<Value> = client.call("uploads/list", &[]).await.json();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], ticket.id.as_str());

    // A second PUT through the still-valid URL cannot touch the validated image...
    let other = testdata::png(5, 5);
    let replay = put(&ticket, selfie.clone(), None).await;
    assert_eq!(replay, StatusCode::OK, "the URL is still valid for its own bytes");
    assert_eq!(put(&ticket, other, Some("image/png")).await, StatusCode::FORBIDDEN);
    assert_eq!(app.object(&source_key).await.as_deref(), Some(stored.as_slice()), "the ready image is unchanged");
    let sha: String = sqlx::query_scalar("SELECT sha256 FROM uploads WHERE id = $1")
        .bind(&ticket.id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(sha, sha256_hex(&stored));
    // ...and the copy it left is swept once the URL has expired.
    assert!(app.object(&ticket.key).await.is_some());
    let swept = sweep_now(&app).await;
    assert_eq!(swept.orphans, 1);
    assert_eq!(app.object(&ticket.key).await, None);
    assert!(app.object(&source_key).await.is_some(), "the sweeper never deletes a referenced object");
}

async fn sweep_now(app: &TestApp) -> app::server::uploads::SweepReport {
    sweep_examining(app, 10_000).await
}

async fn sweep_examining(app: &TestApp, examine: usize) -> app::server::uploads::SweepReport {
    let state = &app.running.state;
    let ctx = app::server::uploads::Uploads::from(&**state);
    let options =
        app::server::uploads::Sweep { orphan_age: Duration::ZERO, stuck_after: Duration::from_secs(600), examine };
    app::server::uploads::sweep(ctx, options, &state.sweep_position, app::server::db::now_ms()).await.unwrap()
}

#[tokio::test]
async fn png_webp_and_heic_are_accepted_and_heic_metadata_blanked() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    for (bytes, declared, dims) in [
        (testdata::png(30, 20), "image/png", (30, 20)),
        (testdata::webp(16, 9), "image/webp", (16, 9)),
        (testdata::heif(b"heic", 4032, 3024), "image/heic", (4032, 3024)),
        (testdata::heif(b"avif", 640, 480), "image/avif", (640, 480)),
    ] {
        let (ticket, reply) = upload(&client, &bytes, declared).await;
        assert_eq!(reply.status, StatusCode::OK, "{declared}: {}", reply.body);
        let image: Value = reply.json();
        assert_eq!(
            (image["width"].as_u64().unwrap(), image["height"].as_u64().unwrap()),
            (dims.0, dims.1),
            "{declared}"
        );
        let stored = app.object(&ticket.key.replacen("uploads/", "sources/", 1)).await.unwrap();
        assert!(!testdata::contains(&stored, testdata::GPS_MARK), "{declared}: location removed");
    }
}

#[tokio::test]
async fn a_heic_keeps_only_its_picture_whatever_else_it_carries() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let markup = b"<html><body><script>fetch('/api/keys/save')</script></body></html>";
    let heic = testdata::HeifBuilder::new(b"heic", 1024, 768)
        .item(testdata::HeifItem::v0_mime(b"application/rdf+xml", b"<x:xmpmeta>DARKROOM-GPS-TEST</x:xmpmeta>"))
        .item(testdata::HeifItem::typed(b"Exif", b"\0\0\0\0Exif\0\0DARKROOM-GPS-TEST"))
        .top_box(b"free", markup)
        .top_box(b"uuid", &[&[9; 16][..], markup].concat())
        .mdat_gap(markup)
        .build();
    let (ticket, reply) = upload(&client, &heic, "image/heic").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let stored = app.object(&ticket.key.replacen("uploads/", "sources/", 1)).await.unwrap();
    assert!(!testdata::contains(&stored, testdata::GPS_MARK), "no location in any item");
    assert!(!testdata::contains(&stored, b"<script"), "no markup in any box");
    assert!(testdata::contains(&stored, testdata::HEVC_MARK), "the picture itself is kept");
}

#[tokio::test]
async fn bad_declarations_are_refused_before_any_ticket_exists() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let sha = sha256_hex(b"x");
    let cases: [(&str, String, &str, StatusCode, &str); 6] = [
        ("image/svg+xml", "100".into(), sha.as_str(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "upload.unsupported_type"),
        ("text/html", "100".into(), sha.as_str(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "upload.unsupported_type"),
        ("image/jpeg", "0".into(), sha.as_str(), StatusCode::BAD_REQUEST, "upload.empty"),
        (
            "image/jpeg",
            (16 * 1024 * 1024 + 1).to_string(),
            sha.as_str(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload.too_large",
        ),
        ("image/jpeg", "100".into(), "not-a-checksum", StatusCode::BAD_REQUEST, "upload.malformed_checksum"),
        ("image/png", "100".into(), &sha[..60], StatusCode::BAD_REQUEST, "upload.malformed_checksum"),
    ];
    for (declared, length, checksum, status, code) in cases {
        let reply = client
            .call("uploads/issue", &[("content_type", declared), ("byte_length", &length), ("sha256", checksum)])
            .await;
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{declared} {length}: {}", reply.body);
    }
    let at_limit = client
        .call(
            "uploads/issue",
            &[("content_type", "image/jpeg"), ("byte_length", &(16 * 1024 * 1024).to_string()), ("sha256", &sha)],
        )
        .await;
    assert_eq!(at_limit.status, StatusCode::OK, "exactly 16 MiB is allowed");
    let tickets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(tickets, 1, "refused declarations leave no ticket");
}

#[tokio::test]
async fn stored_bytes_that_are_not_what_was_declared_are_refused_and_deleted() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let jpeg = testdata::jpeg_with_exif(64, 64, 1, false);
    let mut polyglot = jpeg.clone();
    polyglot.extend_from_slice(b"<html><body><script>fetch('/api/keys/save')</script></body></html>");
    let header_then_html = [&jpeg[..20], b"<!DOCTYPE html><html><script>alert(1)</script></html>"].concat();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("PNG declared as JPEG", testdata::png(8, 8), "image/jpeg", "upload.type_mismatch"),
        (
            "HTML declared as PNG",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
            "image/png",
            "upload.type_mismatch",
        ),
        (
            "SVG declared as PNG",
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            "image/png",
            "upload.type_mismatch",
        ),
        ("truncated JPEG", jpeg[..jpeg.len() / 2].to_vec(), "image/jpeg", "upload.undecodable"),
        ("JPEG followed by HTML", polyglot, "image/jpeg", "upload.polyglot"),
        ("JPEG header followed by HTML", header_then_html, "image/jpeg", "upload.undecodable"),
        ("decompression bomb", testdata::png_claiming(60_000, 60_000), "image/png", "upload.too_many_pixels"),
    ];
    for (case, bytes, declared, code) in cases {
        let (ticket, reply) = upload(&client, &bytes, declared).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{case}: {}", reply.body);
        assert_eq!(reply.code(), code, "{case}");
        assert_nothing_stored(&app, &ticket).await;
        let (state, reason): (String, Option<String>) =
            sqlx::query_as("SELECT state, reject_reason FROM uploads WHERE id = $1")
                .bind(&ticket.id)
                .fetch_one(&app.db().pool)
                .await
                .unwrap();
        assert_eq!((state.as_str(), reason.as_deref()), ("rejected", Some(code)), "{case}");
        let again = confirm(&client, &ticket.id).await;
        assert_eq!(
            (again.status, again.code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{case}: a repeated confirm answers the same refusal, and the ticket stays rejected"
        );
    }
    assert_eq!(app.keys("uploads/").await, Vec::<String>::new());
    assert_eq!(app.keys("sources/").await, Vec::<String>::new());
}

#[tokio::test]
async fn storage_refuses_puts_that_break_the_signature() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let jpeg = testdata::jpeg_with_exif(32, 32, 1, false);

    let ticket = issued(&issue(&client, &jpeg, "image/jpeg").await);
    let mut longer = jpeg.clone();
    longer.extend_from_slice(b"more");
    assert_eq!(put(&ticket, longer, None).await, StatusCode::FORBIDDEN, "a longer body");
    assert_eq!(put(&ticket, jpeg.clone(), Some("image/png")).await, StatusCode::FORBIDDEN, "another Content-Type");
    let reply = confirm(&client, &ticket.id).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::CONFLICT, "upload.not_uploaded"));
    assert_nothing_stored(&app, &ticket).await;
    assert_eq!(put(&ticket, jpeg.clone(), None).await, StatusCode::OK, "the ticket still works for the right bytes");
    assert_eq!(confirm(&client, &ticket.id).await.status, StatusCode::OK);

    // Same length, other bytes: the signed checksum does not match.
    let ticket = issued(&issue(&client, &jpeg, "image/jpeg").await);
    let mut tampered = jpeg.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    let status = put(&ticket, tampered, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the storage service checks the signed checksum");
    let reply = confirm(&client, &ticket.id).await;
    // s3s-fs keeps the bad body (it answers BadDigest after writing); Garage never stores it.
    let expected = match storage_kind() {
        StorageKind::Embedded => "upload.checksum_mismatch",
        StorageKind::Garage => "upload.not_uploaded",
    };
    assert_eq!(reply.code(), expected, "{}", reply.body);
    assert_nothing_stored(&app, &ticket).await;
}

#[tokio::test]
async fn an_expired_ticket_cannot_be_used_or_confirmed() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let jpeg = testdata::jpeg_with_exif(16, 16, 1, false);
    let mut ticket = issued(&issue(&client, &jpeg, "image/jpeg").await);
    // The ticket's time has passed: its row says so, and its URL is the same one signed an hour
    // ago (storage refuses it by its signature's own time, which no row can change).
    sqlx::query("UPDATE uploads SET expires_at = $1 WHERE id = $2")
        .bind(app::server::db::now_ms() - 1)
        .bind(&ticket.id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    let storage = app.storage();
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let sha = ticket.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-checksum-sha256")).unwrap().1.clone();
    let expired = storage
        .presign_put(
            &storage.uploads_bucket,
            &ticket.key,
            "image/jpeg",
            jpeg.len() as i64,
            &sha,
            app::server::storage::Validity { ttl: Duration::from_secs(300), at: an_hour_ago },
            None,
        )
        .await
        .unwrap();
    (ticket.url, ticket.headers) = (expired.url, expired.headers);
    let status = put(&ticket, jpeg.clone(), None).await;
    assert!(matches!(status, StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST), "PUT after expiry: {status}");
    let reply = confirm(&client, &ticket.id).await;
    assert_eq!((reply.status, reply.code().as_str()), (StatusCode::GONE, "upload.expired"));
    assert_nothing_stored(&app, &ticket).await;
}

#[tokio::test]
async fn a_ticket_confirms_once_and_only_for_its_owner() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let jpeg = testdata::jpeg_with_exif(16, 16, 1, false);
    let ticket = issued(&issue(&ada, &jpeg, "image/jpeg").await);
    assert_eq!(put(&ticket, jpeg.clone(), None).await, StatusCode::OK);

    let missing = confirm(&bob, &uuid::Uuid::new_v4().to_string()).await;
    let foreign = confirm(&bob, &ticket.id).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.body, missing.body, "someone else's upload answers exactly like a missing one");
    let foreign_key = confirm(&bob, &ticket.key).await;
    assert_eq!((foreign_key.status, foreign_key.body.as_str()), (StatusCode::NOT_FOUND, missing.body.as_str()));
    assert_eq!(bob.call("uploads/delete", &[("upload", &ticket.id)]).await.body, missing.body);
    for sneaky in [
        format!("uploads/{}/../{}", ticket.key.split('/').nth(1).unwrap(), ticket.id),
        format!("sources/{}", ticket.key.trim_start_matches("uploads/")),
        "../../etc/passwd".to_owned(),
    ] {
        let reply = confirm(&bob, &sneaky).await;
        assert_eq!((reply.status, reply.code().as_str()), (StatusCode::BAD_REQUEST, "upload.invalid_key"), "{sneaky}");
    }

    let first = confirm(&ada, &ticket.key).await;
    assert_eq!(first.status, StatusCode::OK, "the owner confirms by key: {}", first.body);
    // Confirming again is safe for a client that lost the first answer: it gets the same image.
    let second = confirm(&ada, &ticket.id).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.json::<Value>()["id"], first.json::<Value>()["id"]);
    assert_eq!(bob.call("uploads/list", &[]).await.body, "[]", "bob does not learn it exists");
    assert!(!bob.everything_seen().contains(&ticket.id), "no answer to bob names ada's upload");

    // Without a signature, storage itself refuses to serve it.
    let source = first.json::<Value>()["url"].as_str().unwrap().split('?').next().unwrap().to_owned();
    let unsigned = reqwest::get(&source).await.unwrap().status();
    assert!(
        matches!(unsigned, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST),
        "{unsigned}"
    );
}

#[tokio::test]
async fn a_confirm_whose_client_hangs_up_still_finishes_and_a_repeat_answers_its_outcome() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let photo = testdata::png(800, 600);
    let ticket = issued(&issue(&client, &photo, "image/png").await);
    assert_eq!(put(&ticket, photo, None).await, StatusCode::OK);
    let hung_up = client
        .http
        .post(format!("{}/api/uploads/confirm", client.base))
        .header("accept", "application/json")
        .form(&[("upload", ticket.id.as_str())])
        .timeout(Duration::from_millis(5))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up before the answer");
    let again = confirm(&client, &ticket.id).await;
    assert_eq!(again.status, StatusCode::OK, "the check went on without the client: {}", again.body);
    assert_eq!(again.json::<Value>()["id"], ticket.id.as_str());
    let state: String = sqlx::query_scalar("SELECT state FROM uploads WHERE id = $1")
        .bind(&ticket.id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(state, "ready");
}

#[tokio::test]
async fn deleting_an_image_removes_its_object() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let (ticket, reply) = upload(&client, &testdata::png(6, 6), "image/png").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(client.call("uploads/delete", &[("upload", &ticket.id)]).await.status, StatusCode::OK);
    assert_nothing_stored(&app, &ticket).await;
    assert_eq!(client.call("uploads/list", &[]).await.body, "[]");
    assert_eq!(client.call("uploads/delete", &[("upload", &ticket.id)]).await.code(), "upload.not_found");

    let pending = issued(&issue(&client, &testdata::png(6, 6), "image/png").await);
    assert_eq!(client.call("uploads/delete", &[("upload", &pending.id)]).await.status, StatusCode::OK, "cancel");
    assert_eq!(confirm(&client, &pending.id).await.code(), "upload.closed");
}

#[tokio::test]
async fn the_daily_quota_answers_429_with_its_reset_time() {
    let app = TestApp::spawn_with(&[("DARKROOM_UPLOADS_PER_DAY", "2")]).await;
    let client = app.user("ada@example.com").await;
    let png = testdata::png(4, 4);
    issued(&issue(&client, &png, "image/png").await);
    issued(&issue(&client, &png, "image/png").await);
    let third = issue(&client, &png, "image/png").await;
    assert_eq!((third.status, third.code().as_str()), (StatusCode::TOO_MANY_REQUESTS, "upload.quota_exceeded"));
    let message = third.json::<Value>()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("limit of 2 uploads") && message.contains("resets at 00:00 UTC"), "{message}");
    let retry_after: u64 = third.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after));
    let bob = app.user("bob@example.com").await;
    assert_eq!(issue(&bob, &png, "image/png").await.status, StatusCode::OK, "quotas are per user");

    let volume = TestApp::spawn_with(&[("DARKROOM_UPLOAD_BYTES_PER_DAY", "100")]).await;
    let client = volume.user("ada@example.com").await;
    let reply = issue(&client, &testdata::png(40, 40), "image/png").await;
    assert_eq!(reply.code(), "upload.quota_exceeded");
    assert!(reply.json::<Value>()["message"].as_str().unwrap().contains("upload volume of 100 bytes"));
}

/// The quota is counted and the ticket recorded in one statement batch: concurrent requests
/// stop exactly at the limit, and every ticket answered 200 is stored with its audit event.
#[tokio::test]
async fn concurrent_tickets_stop_exactly_at_the_quota_and_every_answered_ticket_is_stored() {
    let app = TestApp::spawn_with(&[("DARKROOM_UPLOADS_PER_DAY", "5")]).await;
    let client = app.user("ada@example.com").await;
    let png = testdata::png(4, 4);
    let replies = futures::future::join_all((0..24).map(|_| issue(&client, &png, "image/png"))).await;
    let mut accepted: Vec<String> =
        replies.iter().filter(|r| r.status == StatusCode::OK).map(|r| issued(r).id).collect();
    let refused = replies.iter().filter(|r| r.code() == "upload.quota_exceeded").count();
    assert_eq!((accepted.len(), refused), (5, 19), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());

    let pool = &app.db().pool;
    let mut stored: Vec<String> = sqlx::query_scalar("SELECT id FROM uploads").fetch_all(pool).await.unwrap();
    let mut audited: Vec<String> =
        sqlx::query_scalar("SELECT subject_id FROM audit_events WHERE action = 'upload.issued'")
            .fetch_all(pool)
            .await
            .unwrap();
    accepted.sort();
    stored.sort();
    audited.sort();
    assert_eq!(stored, accepted, "the tickets stored are exactly those answered");
    assert_eq!(audited, accepted, "each with its audit event");
    let counted: i64 = sqlx::query_scalar("SELECT tickets FROM upload_usage").fetch_one(pool).await.unwrap();
    assert_eq!(counted, 5);
}

/// A ticket that cannot be recorded (here a trigger refuses its row, after its usage was
/// counted) is not issued and leaves nothing behind; tickets committed together with it are
/// issued all the same, and the connection that failed is not handed to the next request.
#[tokio::test]
async fn a_ticket_that_fails_half_way_leaves_nothing_and_fails_no_other() {
    let app = TestApp::spawn_with(&[("DARKROOM_UPLOADS_PER_DAY", "9")]).await;
    let client = app.user("ada@example.com").await;
    let (good, bad) = (testdata::png(4, 4), testdata::png(5, 5));
    assert_ne!(good.len(), bad.len());
    issued(&issue(&client, &good, "image/png").await);
    let pool = &app.db().pool;
    let (refuse, allow) = match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => (
            format!(
                "CREATE TRIGGER refuse_ticket BEFORE INSERT ON uploads WHEN NEW.declared_bytes = {} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                bad.len()
            ),
            "DROP TRIGGER refuse_ticket",
        ),
        crate::helpers::Backend::Postgres => (
            format!(
                "CREATE FUNCTION refuse_ticket() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
                 CREATE TRIGGER refuse_ticket BEFORE INSERT ON uploads FOR EACH ROW \
                 WHEN (NEW.declared_bytes = {}) EXECUTE FUNCTION refuse_ticket()",
                bad.len()
            ),
            "DROP TRIGGER refuse_ticket ON uploads",
        ),
    };
    sqlx::raw_sql(&refuse).execute(pool).await.unwrap();
    let send = |bytes: &Vec<u8>| {
        let (client, bytes) = (client.clone(), bytes.clone());
        tokio::spawn(async move { issue(&client, &bytes, "image/png").await })
    };
    // The refused ticket must share a transaction with good ones: hold a lock the tickets need
    // while one good ticket waits for it and the rest queue behind, then let them all go.
    let db = app.db();
    let mut lock = pool.acquire().await.unwrap();
    let take_lock = match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => "BEGIN IMMEDIATE",
        crate::helpers::Backend::Postgres => "BEGIN; LOCK TABLE upload_usage IN EXCLUSIVE MODE",
    };
    sqlx::raw_sql(take_lock).execute(&mut *lock).await.unwrap();
    let taken = db.group_commit.taken();
    let first = send(&good);
    eventually("the first ticket to wait for the lock", || async { (db.group_commit.taken() > taken).then_some(()) })
        .await;
    let failed = send(&bad);
    let rest: Vec<_> = (0..5).map(|_| send(&good)).collect();
    eventually("six tickets queued", || async { (db.group_commit.waiting() == 6).then_some(()) }).await;
    sqlx::query("COMMIT").execute(&mut *lock).await.unwrap();
    drop(lock);
    let failed = failed.await.unwrap();
    let mut others = vec![first.await.unwrap()];
    for reply in rest {
        others.push(reply.await.unwrap());
    }
    assert_eq!((failed.status, failed.code().as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
    for other in &others {
        issued(other);
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads").fetch_one(pool).await.unwrap();
    let counted: i64 = sqlx::query_scalar("SELECT tickets FROM upload_usage").fetch_one(pool).await.unwrap();
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'upload.issued'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!((rows, counted, events), (7, 7, 7), "the failed ticket left nothing behind");

    sqlx::raw_sql(allow).execute(pool).await.unwrap();
    // Room for two more: a half-counted failure would have taken one.
    issued(&issue(&client, &bad, "image/png").await);
    issued(&issue(&client, &good, "image/png").await);
    assert_eq!(issue(&client, &good, "image/png").await.code(), "upload.quota_exceeded");
}

#[tokio::test]
async fn the_sweeper_expires_unconfirmed_tickets_and_deletes_their_objects() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let png = testdata::png(4, 4);
    let ticket = issued(&issue(&client, &png, "image/png").await);
    assert_eq!(put(&ticket, png.clone(), None).await, StatusCode::OK);
    // The ticket's five minutes are over (moved back in the database rather than waited out).
    sqlx::query("UPDATE uploads SET expires_at = expires_at - 600000 WHERE id = $1")
        .bind(&ticket.id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    let report = sweep_now(&app).await;
    assert_eq!(report.expired, 1);
    assert_nothing_stored(&app, &ticket).await;
    let state: String = sqlx::query_scalar("SELECT state FROM uploads WHERE id = $1")
        .bind(&ticket.id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(state, "expired");
    assert_eq!(sweep_now(&app).await, Default::default(), "a second pass finds nothing to do");
}

#[tokio::test]
async fn one_bad_row_never_stops_the_sweeper_and_deleting_a_missing_object_succeeds() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    let storage = app.storage();
    storage.delete(&storage.uploads_bucket, "uploads/nobody/never-existed").await.expect("deleting nothing succeeds");
    assert!(storage.delete(&storage.uploads_bucket, "").await.is_err(), "the bad row's delete really fails");

    // A row whose object cannot be deleted (an empty key no request can be made for),
    // then an expired ticket with an object, then an old rate-limit window.
    let user_id: String = sqlx::query_scalar("SELECT id FROM users").fetch_one(&app.db().pool).await.unwrap();
    sqlx::query(
        "INSERT INTO uploads (id, user_id, state, upload_key, declared_type, declared_bytes, declared_sha256, \
         expires_at, created_at, updated_at) VALUES ($1, $2, 'rejected', '', 'image/png', 1, $3, 0, 0, 0)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&user_id)
    .bind(SHA_OF_NOTHING)
    .execute(&app.db().pool)
    .await
    .unwrap();
    let png = testdata::png(4, 4);
    let ticket = issued(&issue(&client, &png, "image/png").await);
    assert_eq!(put(&ticket, png, None).await, StatusCode::OK);
    sqlx::query("UPDATE uploads SET expires_at = 0 WHERE id = $1")
        .bind(&ticket.id)
        .execute(&app.db().pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('login:ip:old', 0, 9)")
        .execute(&app.db().pool)
        .await
        .unwrap();

    for _ in 0..2 {
        app::server::maintenance::run_once(&app.running.state).await.expect("a pass completes");
    }
    assert_nothing_stored(&app, &ticket).await;
    let state: String = sqlx::query_scalar("SELECT state FROM uploads WHERE id = $1")
        .bind(&ticket.id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(state, "expired", "the ticket after the bad row was handled");
    let windows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rate_limits WHERE bucket = 'login:ip:old'")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(windows, 0, "the steps after the sweep still ran");
}

const SHA_OF_NOTHING: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[tokio::test]
async fn orphan_reconciliation_goes_on_where_it_stopped() {
    let app = TestApp::spawn().await;
    let client = app.user("ada@example.com").await;
    for n in 0..6 {
        let (_, reply) = upload(&client, &testdata::png(3 + n, 3), "image/png").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // Orphans that sort after every needed object ("z" comes after any user id).
    let storage = app.storage();
    for n in 0..4 {
        let key = format!("sources/zzzz/orphan-{n}");
        storage
            .put_bytes(&storage.uploads_bucket, &key, b"x".to_vec(), "image/png", &sha256_base64(b"x"))
            .await
            .unwrap();
    }
    // Each pass looks at five objects: the first sees only needed ones; the next goes on.
    assert_eq!(sweep_examining(&app, 5).await.orphans, 0);
    let mut removed = 0;
    for _ in 0..3 {
        removed += sweep_examining(&app, 5).await.orphans;
    }
    assert_eq!(removed, 4, "every orphan was reached");
    assert!(app.keys("sources/zzzz/").await.is_empty());
    assert_eq!(app.keys("sources/").await.len(), 6, "needed objects stay");
}

#[tokio::test]
async fn refusals_and_deletes_leave_nothing_behind_and_no_error_lines() {
    let app = TestApp::spawn().await;
    if crate::helpers::storage_kind() != crate::helpers::StorageKind::Embedded {
        return; // What is on disk is the embedded endpoint's business.
    }
    let client = app.user("ada@example.com").await;
    let jpeg = testdata::jpeg_with_exif(16, 16, 1, false);
    let mut polyglot = jpeg.clone();
    polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>");
    for bytes in [polyglot.clone(), polyglot] {
        let (_, reply) = upload(&client, &bytes, "image/jpeg").await;
        assert_eq!(reply.code(), "upload.polyglot");
    }
    let (kept, reply) = upload(&client, &jpeg, "image/jpeg").await;
    assert_eq!(reply.status, StatusCode::OK);
    let (deleted, reply) = upload(&client, &testdata::png(5, 5), "image/png").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(client.call("uploads/delete", &[("upload", &deleted.id)]).await.status, StatusCode::OK);
    // Refused PUTs: a tampered signature, and one for another body.
    let ticket = issued(&issue(&client, &jpeg, "image/jpeg").await);
    let mut tampered = ticket.clone();
    tampered.url = tampered.url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_ne!(put(&tampered, jpeg.clone(), None).await, StatusCode::OK);
    assert_ne!(put(&ticket, jpeg.clone(), Some("image/png")).await, StatusCode::OK);

    let root = app.dir.join("s3");
    let mut sidecars = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(".bucket-") {
            let encoded_key = rest.split(".object-").nth(1).unwrap().split('.').next().unwrap();
            use base64::Engine;
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded_key).unwrap();
            sidecars.push(String::from_utf8(key).unwrap());
        }
    }
    let kept_source = kept.key.replacen("uploads/", "sources/", 1);
    assert!(sidecars.iter().all(|key| *key == kept_source), "only the kept image has attribute files: {sidecars:?}");
    assert!(!crate::helpers::captured_logs().contains("failed to prepare"), "refusals wrote no error lines");
}

#[tokio::test]
async fn uploads_are_audited_and_counted() {
    let app = TestApp::spawn().await;
    // A server process of its own: its counters are this test's alone (the in-process server
    // shares one recorder with every test running beside it), so the deltas are exact.
    let server = app.process("server", &[]).await;
    let client = Client::new(&server.base);
    assert_eq!(client.signup("ada@example.com", crate::helpers::PASSWORD).await.status, StatusCode::OK);
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let before = Client::new(&server.base).get("/metrics").await.body;
    let (_, ok) = upload(&client, &testdata::png(4, 4), "image/png").await;
    let (_, bad) = upload(&client, &testdata::png(4, 4), "image/jpeg").await;
    assert_eq!((ok.status, bad.status), (StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY));
    client.call("uploads/delete", &[("upload", ok.json::<Value>()["id"].as_str().unwrap())]).await;
    let after = Client::new(&server.base).get("/metrics").await.body;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    assert_eq!(delta("upload_issued_total"), 2.0, "{after}");
    assert_eq!(delta("upload_confirmed_total"), 1.0, "{after}");
    assert_eq!(delta("upload_rejected_total{reason=\"type_mismatch\"}"), 1.0, "{after}");

    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT action, detail_json FROM audit_events WHERE action LIKE 'upload.%' ORDER BY at, id")
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["upload.issued", "upload.confirmed", "upload.issued", "upload.rejected", "upload.deleted"]);
    assert!(audit[3].1.contains("upload.type_mismatch"), "the rejection reason is audited: {}", audit[3].1);

    let proxied = app
        .client()
        .send(app.client().http.get(format!("{}/metrics", app.base)).header("x-forwarded-for", "203.0.113.9"))
        .await;
    assert_eq!(proxied.status, StatusCode::NOT_FOUND, "metrics are not served through a proxy without the token");
}
