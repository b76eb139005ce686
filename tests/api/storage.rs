//! The embedded S3 endpoint: presigned URLs are verified (signature, expiry, signed headers).

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use app::server::storage::Validity;

use crate::helpers::{StorageKind, TestApp, storage_kind};

const BODY: &[u8] = b"\xff\xd8\xff\xe0 pretend this is a JPEG";

fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

async fn presign(app: &TestApp, key: &str, validity: impl Into<Validity>) -> app::server::storage::PresignedPut {
    let storage = &app.running.state.storage;
    storage
        .presign_put(&storage.uploads_bucket, key, "image/jpeg", BODY.len() as i64, &sha256_b64(BODY), validity, None)
        .await
        .unwrap()
}

fn put(url: &str, headers: &[(String, String)], body: &'static [u8]) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new().put(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

#[tokio::test]
async fn a_valid_presigned_put_is_accepted_and_signs_length_type_and_checksum() {
    let app = TestApp::spawn().await;
    let signed = presign(&app, "uploads/u1/valid", Duration::from_secs(300)).await;
    let query: Vec<(String, String)> = url::Url::parse(&signed.url).unwrap().query_pairs().into_owned().collect();
    let signed_headers = query.iter().find(|(k, _)| k == "X-Amz-SignedHeaders").map(|(_, v)| v.as_str());
    assert_eq!(signed_headers, Some("content-length;content-type;host;x-amz-checksum-sha256"));

    let response = put(&signed.url, &signed.headers, BODY).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());

    let storage = &app.running.state.storage;
    let stored =
        storage.client().get_object().bucket(&storage.uploads_bucket).key("uploads/u1/valid").send().await.unwrap();
    assert_eq!(stored.body.collect().await.unwrap().into_bytes().as_ref(), BODY);
}

#[tokio::test]
async fn an_expired_presigned_put_is_refused() {
    let app = TestApp::spawn().await;
    // Signed an hour ago for a minute: expired, without waiting for it.
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let signed = presign(&app, "uploads/u1/expired", Validity { ttl: Duration::from_secs(60), at: an_hour_ago }).await;
    let response = put(&signed.url, &signed.headers, BODY).send().await.unwrap();
    // s3s answers 403, Garage 400; both say why.
    assert!(matches!(response.status(), StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST), "{}", response.status());
    assert!(response.text().await.unwrap().to_lowercase().contains("expired"));
    assert_object_absent(&app, "uploads/u1/expired").await;
}

#[tokio::test]
async fn a_presigned_put_with_an_altered_signature_is_refused() {
    let app = TestApp::spawn().await;
    let signed = presign(&app, "uploads/u1/tampered", Duration::from_secs(300)).await;
    let mut url = url::Url::parse(&signed.url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "X-Amz-Signature" {
                let (first, rest) = v.split_at(1);
                let flipped = format!("{}{rest}", if first == "0" { "1" } else { "0" });
                (k, flipped)
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let response = put(url.as_str(), &signed.headers, BODY).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The same URL with another key (path) is refused as well: the path is signed.
    let moved = signed.url.replace("uploads/u1/tampered", "uploads/u2/tampered");
    assert_eq!(put(&moved, &signed.headers, BODY).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_object_absent(&app, "uploads/u1/tampered").await;
    assert_object_absent(&app, "uploads/u2/tampered").await;
}

#[tokio::test]
async fn a_presigned_put_refuses_another_type_or_length() {
    let app = TestApp::spawn().await;
    let signed = presign(&app, "uploads/u1/headers", Duration::from_secs(300)).await;
    let other_type: Vec<(String, String)> = signed
        .headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("content-type") {
                (k.clone(), "text/html".into())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(put(&signed.url, &other_type, BODY).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let longer: &'static [u8] = b"\xff\xd8\xff\xe0 pretend this is a JPEG, and then some";
    let without_length: Vec<(String, String)> =
        signed.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("content-length")).cloned().collect();
    assert_eq!(put(&signed.url, &without_length, longer).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_object_absent(&app, "uploads/u1/headers").await;
}

#[tokio::test]
async fn cors_admits_the_app_origin_only() {
    let app = TestApp::spawn().await;
    let storage = match storage_kind() {
        // External storage learns the app's origin from `darkroom storage setup`.
        StorageKind::Garage => {
            crate::cli::run(&app, &["storage", "setup", "--origin", &app.base], None).await.success();
            app.storage().link_origins_for_csp()[0].clone()
        }
        // The embedded endpoint shares the app's origin: no other site gets a preflight through.
        StorageKind::Embedded => {
            let link = presign(&app, "uploads/u1/x", Duration::from_secs(60)).await.url;
            assert!(link.starts_with(&format!("{}/{}/", app.base, app.storage().uploads_bucket)), "{link}");
            app.base.clone()
        }
    };
    let bucket = app.storage().uploads_bucket.clone();
    let preflight = |origin: &str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{storage}/{bucket}/uploads/x"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type,x-amz-checksum-sha256")
    };
    if storage_kind() == StorageKind::Garage {
        let ours = preflight(&app.base).send().await.unwrap();
        assert!(ours.status().is_success(), "preflight from the app: {}", ours.status());
        assert_eq!(ours.headers().get("access-control-allow-origin").unwrap(), app.base.as_str());
        let allowed = ours.headers().get("access-control-allow-headers").unwrap().to_str().unwrap().to_owned();
        assert!(allowed.contains("x-amz-checksum-sha256") && allowed.contains("content-type"), "{allowed}");
    }

    // A browser lets the PUT through only after a 2xx preflight naming its origin (or `*`).
    // (Garage answers 403 with a blanket `*` on the error; s3s's layer just omits the header.)
    let theirs = preflight("https://evil.example").send().await.unwrap();
    let granted = theirs.status().is_success()
        && theirs.headers().get("access-control-allow-origin").is_some_and(|v| v == "*" || v == "https://evil.example");
    assert!(!granted, "another site's preflight must fail: {} {:?}", theirs.status(), theirs.headers());
}

#[tokio::test]
async fn storage_setup_and_sweep_run_from_the_command_line() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://darkroom.example")]).await;
    let setup = crate::cli::run(&app, &["storage", "setup"], None).await.success();
    match storage_kind() {
        StorageKind::Embedded => assert!(setup.stdout.contains("needs no setup"), "{}", setup.stdout),
        StorageKind::Garage => {
            let uploads = &app.storage().uploads_bucket;
            assert!(
                setup.stdout.contains(&format!("{uploads}: CORS allows PUT, GET, HEAD from https://darkroom.example")),
                "{}",
                setup.stdout
            );
            assert!(setup.stdout.contains(&format!("{uploads}: lifecycle")), "{}", setup.stdout);
            let cors = app.storage().client().get_bucket_cors().bucket(uploads).send().await.unwrap();
            let rule = &cors.cors_rules()[0];
            assert_eq!(rule.allowed_origins(), ["https://darkroom.example"]);
            assert!(rule.allowed_headers().iter().any(|h| h == "x-amz-checksum-sha256"));
            assert_eq!(rule.expose_headers(), ["ETag"]);
        }
    }
    let sweep = crate::cli::run(&app, &["sweep"], None).await.success();
    assert!(sweep.stdout.starts_with("expired 0 ticket(s)"), "{}", sweep.stdout);
}

async fn assert_object_absent(app: &TestApp, key: &str) {
    let storage = &app.running.state.storage;
    let head = storage.client().head_object().bucket(&storage.uploads_bucket).key(key).send().await;
    assert!(head.is_err(), "{key} must not exist");
}
