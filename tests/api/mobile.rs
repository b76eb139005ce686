//! What a mobile app does, with nothing but an HTTP client and an access token: presign, PUT the
//! selfie straight to storage, confirm, start a try-on (retried with the same Idempotency-Key:
//! one job), poll it to its result, fetch the result by its short-lived link, delete it.

use std::collections::HashMap;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Client, Reply, TestApp, eventually};
use crate::testdata;

/// Real photographs (see tests/fixtures/README.md): one face, and none.
const SELFIE: &[u8] = include_bytes!("../fixtures/selfie.jpg");
const LANDSCAPE: &[u8] = include_bytes!("../fixtures/landscape.jpg");

const ALL_SCOPES: [&str; 6] =
    ["uploads:write", "jobs:write", "jobs:read", "assets:read", "assets:write", "account:read"];

/// A new token of `owner`'s (signed in on the web app) with `scopes`.
async fn token(owner: &Client, scopes: &[&str]) -> String {
    let made = owner.call_json("tokens/create", &json!({ "name": "phone", "scopes": scopes, "days": 30 })).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    made.json::<Value>()["token"].as_str().unwrap().to_owned()
}

/// An app: no cookies, a token on every call.
struct App {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl App {
    fn new(app: &TestApp, token: &str) -> Self {
        Self { http: reqwest::Client::new(), base: format!("{}/api/v1", app.base), token: token.to_owned() }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Client::new(&self.base).send(request.bearer_auth(&self.token)).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    async fn try_on(&self, body: &Value, key: Option<&str>) -> Reply {
        let mut request = self.http.post(format!("{}/try-ons", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// Presign, PUT and confirm `bytes` as a PNG; answers the key and the confirm's reply.
    async fn upload(&self, bytes: &[u8], metadata: Value) -> (String, Reply) {
        self.upload_as(bytes, "image/png", metadata).await
    }

    async fn upload_as(&self, bytes: &[u8], content_type: &str, metadata: Value) -> (String, Reply) {
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
        let presigned = self
            .post(
                "/uploads/presign",
                json!({ "contentType": content_type, "byteLength": bytes.len(), "checksum": checksum, "locale": "en" }),
            )
            .await;
        assert_eq!(presigned.status, StatusCode::OK, "{}", presigned.body);
        let ticket: Value = presigned.json();
        let headers: HashMap<String, String> = serde_json::from_value(ticket["headers"].clone()).unwrap();
        let mut put = reqwest::Client::new().put(ticket["uploadUrl"].as_str().unwrap()).body(bytes.to_vec());
        for (name, value) in &headers {
            if !name.eq_ignore_ascii_case("content-length") {
                put = put.header(name, value);
            }
        }
        assert!(put.send().await.unwrap().status().is_success(), "the PUT to storage");
        let key = ticket["key"].as_str().unwrap().to_owned();
        let confirmed = self.post("/uploads/confirm", json!({ "key": key, "metadata": metadata })).await;
        (key, confirmed)
    }
}

#[tokio::test]
async fn a_mobile_app_uploads_a_selfie_tries_a_hairstyle_on_fetches_and_deletes_the_result() {
    // A real selfie, so the face check runs as it does by default.
    let app = TestApp::spawn_with(&[("DARKROOM_FACE_CHECK", "on")]).await;
    let ada = crate::jobs::user_with_key(&app, "ada@example.com", "api").await;
    let phone = App::new(&app, &token(&ada, &ALL_SCOPES).await);

    // Upload: presign, PUT, confirm (the metadata must match the image).
    let (key, confirmed) = phone.upload_as(SELFIE, "image/jpeg", json!({ "width": 512, "height": 512 })).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(
        (confirmed.json::<Value>()["width"].as_i64(), confirmed.json::<Value>()["height"].as_i64()),
        (Some(512), Some(512))
    );

    // The styles, then a try-on, sent three times at once with one key: one job.
    let styles: Vec<Value> = phone.get("/hairstyles").await.json();
    assert!(styles.iter().any(|s| s["id"] == "curly-afro"));
    let body = json!({ "key": key, "hairstyleId": "curly-afro", "locale": "en" });
    let jobs_before = app.fake.submitted().len();
    let answers = futures::future::join_all((0..3).map(|_| phone.try_on(&body, Some("tap-7f3a")))).await;
    let ids: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
            r.json::<Value>()["jobId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one job for one key: {ids:?}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(stored, 1);
    let job = ids[0].clone();
    // The same key on another request is refused; without a key each request is its own.
    let other = json!({ "key": key, "hairstyleId": "bob-cut", "locale": "en" });
    let reused = phone.try_on(&other, Some("tap-7f3a")).await;
    assert_eq!((reused.status, reused.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "api.idempotency_mismatch"));

    // Poll to the result, fetch it by its short-lived link, delete it.
    let done = eventually("the try-on to succeed", || async {
        let now: Value = phone.get(&format!("/try-ons/{job}")).await.json();
        (now["status"] == "succeeded").then_some(now)
    })
    .await;
    assert_eq!(app.fake.submitted().len(), jobs_before + 1, "fal saw one request");
    assert!(app.fake.submitted().last().unwrap().input["prompt"].as_str().unwrap().contains("curly afro"));
    let url = done["resultUrl"].as_str().unwrap();
    let fetched = reqwest::get(url).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert!(!fetched.bytes().await.unwrap().is_empty());
    let result = done["resultId"].as_str().unwrap();
    let deleted = phone.send(phone.http.delete(format!("{}/assets/{result}", phone.base))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(!reqwest::get(url).await.unwrap().status().is_success(), "the result's file is gone");
    let again = phone.send(phone.http.delete(format!("{}/assets/{result}", phone.base))).await;
    assert_eq!((again.status, again.code().as_str()), (StatusCode::NOT_FOUND, "gallery.not_found"));
}

/// Two people side by side: `selfie.jpg` twice.
fn group_photo() -> Vec<u8> {
    let selfie = image::load_from_memory(SELFIE).unwrap().to_rgb8();
    let mut canvas = image::RgbImage::new(selfie.width() * 2, selfie.height());
    image::imageops::replace(&mut canvas, &selfie, 0, 0);
    image::imageops::replace(&mut canvas, &selfie, i64::from(selfie.width()), 0);
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(canvas)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[tokio::test]
async fn a_try_on_without_exactly_one_face_is_refused_in_the_users_language_before_fal_hears_of_it() {
    let app = TestApp::spawn_with(&[("DARKROOM_FACE_CHECK", "on")]).await;
    let ada = crate::jobs::user_with_key(&app, "ada@example.com", "api").await;
    let phone = App::new(&app, &token(&ada, &ALL_SCOPES).await);
    let (landscape, ok) = phone.upload_as(LANDSCAPE, "image/jpeg", json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let (group, ok) = phone.upload(&group_photo(), json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let fal_calls = app.fake.requests().len();

    let refused =
        phone.try_on(&json!({ "key": landscape, "hairstyleId": "bob-cut", "locale": "en" }), Some("k1")).await;
    refused.refused(StatusCode::UNPROCESSABLE_ENTITY, "tryon.no_face");
    assert!(refused.json::<Value>()["detail"].as_str().unwrap().contains("No face"), "{}", refused.body);
    let spanish = phone.try_on(&json!({ "key": landscape, "hairstyleId": "bob-cut", "locale": "es" }), None).await;
    spanish.refused(StatusCode::UNPROCESSABLE_ENTITY, "tryon.no_face");
    assert!(spanish.json::<Value>()["detail"].as_str().unwrap().contains("ninguna cara"), "{}", spanish.body);
    let crowd = phone.try_on(&json!({ "key": group, "hairstyleId": "pixie-cut" }), None).await;
    crowd.refused(StatusCode::UNPROCESSABLE_ENTITY, "tryon.many_faces");
    assert!(crowd.json::<Value>()["detail"].as_str().unwrap().contains("2 faces"), "{}", crowd.body);
    // The web app's try-on (a style's instruction) is checked the same way.
    let web_landscape = crate::jobs::upload_id(&ada, LANDSCAPE, "image/jpeg").await;
    let style = app::catalog::HAIRSTYLES[0].prompt;
    let web = ada.create_job(app::catalog::HAIRSTYLE_TRY_ON, json!({ "prompt": style }), &[&web_landscape]).await;
    let web = web.expect_err("a landscape is no selfie");
    assert_eq!((web.status, web.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "tryon.no_face"), "{}", web.body);
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(jobs, 0, "no job was made");
    assert!(
        app.fake.requests()[fal_calls..].iter().all(|r| !r.path.contains("nano-banana")),
        "no refused try-on reached fal"
    );

    // A refused key is not spent: the same key starts the try-on once the photo is right.
    let (selfie, _) = phone.upload_as(SELFIE, "image/jpeg", json!({})).await;
    let retried = phone.try_on(&json!({ "key": selfie, "hairstyleId": "bob-cut", "locale": "en" }), Some("k1")).await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
    // An edit from any other instruction is not a try-on and needs no face.
    let edit = json!({ "prompt": "Make the sky a sunset." });
    ada.create_job(app::catalog::HAIRSTYLE_TRY_ON, edit, &[&web_landscape]).await.expect("an ordinary edit");

    // Turned off, the check lets a landscape through.
    let unchecked = TestApp::spawn_with(&[("DARKROOM_FACE_CHECK", "off")]).await;
    let bob = crate::jobs::user_with_key(&unchecked, "bob@example.com", "api").await;
    let bobs_phone = App::new(&unchecked, &token(&bob, &ALL_SCOPES).await);
    let (landscape, _) = bobs_phone.upload_as(LANDSCAPE, "image/jpeg", json!({})).await;
    let allowed = bobs_phone.try_on(&json!({ "key": landscape, "hairstyleId": "bob-cut" }), None).await;
    assert_eq!(allowed.status, StatusCode::ACCEPTED, "{}", allowed.body);
}

#[tokio::test]
async fn the_api_answers_mistakes_and_strangers_with_the_seed_contracts_status_codes() {
    let app = TestApp::spawn().await;
    let ada = crate::jobs::user_with_key(&app, "ada@example.com", "api").await;
    let bob = crate::jobs::user_with_key(&app, "bob@example.com", "api").await;
    let phone = App::new(&app, &token(&ada, &ALL_SCOPES).await);
    let stranger = App::new(&app, &token(&bob, &ALL_SCOPES).await);
    let reader = App::new(&app, &token(&ada, &["jobs:read"]).await);
    let problem = |reply: &Reply, status: StatusCode, code: &str| {
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    };

    // Metadata that does not match the image: 422, and the image is gone.
    let (key, wrong) = phone.upload(&testdata::png(48, 64), json!({ "width": 640, "height": 480 })).await;
    problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY, "upload.metadata_mismatch");
    let images: Vec<Value> = ada.call("uploads/list", &[]).await.json();
    assert!(images.is_empty(), "{images:?}");
    let started = phone.try_on(&json!({ "key": key, "hairstyleId": "bob-cut", "locale": "en" }), None).await;
    assert!(started.status.is_client_error(), "{}", started.body);

    // A key nothing was uploaded to: 404.
    let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"never sent"));
    let ticket: Value = phone
        .post("/uploads/presign", json!({ "contentType": "image/png", "byteLength": 10, "checksum": checksum }))
        .await
        .json();
    problem(
        &phone.post("/uploads/confirm", json!({ "key": ticket["key"], "metadata": {} })).await,
        StatusCode::NOT_FOUND,
        "upload.object_missing",
    );

    // Bad bodies and unknown styles: 400, as problems.
    problem(
        &phone.post("/uploads/presign", json!({ "contentType": "image/png" })).await,
        StatusCode::BAD_REQUEST,
        "request.malformed",
    );
    let (key, ok) = phone.upload(&testdata::png(48, 64), json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let unknown = phone.try_on(&json!({ "key": key, "hairstyleId": "mohawk", "locale": "en" }), None).await;
    problem(&unknown, StatusCode::BAD_REQUEST, "tryon.unknown_hairstyle");
    let bad_key = phone.try_on(&json!({ "key": key, "hairstyleId": "bob-cut" }), Some("a key with spaces")).await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST, "{}", bad_key.body);

    // Without the scope: 403. Someone else's selfie or try-on: 404, as if it did not exist.
    let body = json!({ "key": key, "hairstyleId": "bob-cut", "locale": "en" });
    problem(&reader.try_on(&body, None).await, StatusCode::FORBIDDEN, "token.scope_missing");
    problem(&stranger.try_on(&body, None).await, StatusCode::NOT_FOUND, "upload.not_found");
    let mine = phone.try_on(&body, None).await;
    assert_eq!(mine.status, StatusCode::ACCEPTED, "{}", mine.body);
    let job = mine.json::<Value>()["jobId"].as_str().unwrap().to_owned();
    problem(&stranger.get(&format!("/try-ons/{job}")).await, StatusCode::NOT_FOUND, "api.job_not_found");
    assert_eq!(reader.get(&format!("/try-ons/{job}")).await.status, StatusCode::OK);
    problem(&stranger.get("/try-ons/not-an-id").await, StatusCode::NOT_FOUND, "api.job_not_found");
}

#[tokio::test]
async fn any_model_runs_through_the_api_and_its_results_are_listed_favorited_and_private() {
    let app = TestApp::spawn().await;
    let ada = crate::jobs::user_with_key(&app, "ada@example.com", "api").await;
    let bob = crate::jobs::user_with_key(&app, "bob@example.com", "api").await;
    let script = App::new(&app, &token(&ada, &ALL_SCOPES).await);
    let stranger = App::new(&app, &token(&bob, &ALL_SCOPES).await);

    let body = json!({ "model": crate::jobs::TEXT, "params": { "prompt": "a lighthouse at dusk" } });
    let send = || {
        script.send(script.http.post(format!("{}/jobs", script.base)).header("Idempotency-Key", "batch-1").json(&body))
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let job = first.json::<Value>()["id"].as_str().unwrap().to_owned();
    assert_eq!(send().await.json::<Value>()["id"], job.as_str(), "a retry gets the same job");
    let done = eventually("the job to succeed", || async {
        let now: Value = script.get(&format!("/jobs/{job}")).await.json();
        (now["status"] == "succeeded").then_some(now)
    })
    .await;
    let result = done["results"][0]["id"].as_str().unwrap().to_owned();
    let bad = script.post("/jobs", json!({ "model": "fal-ai/unknown", "params": {} })).await;
    assert!(
        bad.status.is_client_error() && bad.header("content-type") == Some("application/problem+json"),
        "{}",
        bad.body
    );

    // Listed with the gallery's search, one by one with its link, favorited.
    let page: Value = script.get("/assets?q=lighthouse").await.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], result.as_str());
    assert!(script.get("/assets?q=submarine").await.json::<Value>()["items"].as_array().unwrap().is_empty());
    let one: Value = script.get(&format!("/assets/{result}")).await.json();
    assert_eq!((one["prompt"].as_str(), one["favorite"].as_bool()), (Some("a lighthouse at dusk"), Some(false)));
    assert_eq!(reqwest::get(one["url"].as_str().unwrap()).await.unwrap().status(), StatusCode::OK);
    let starred: Value = script.post(&format!("/assets/{result}/favorite"), json!({})).await.json();
    assert_eq!(starred["favorite"], true);
    let favorites: Value = script.get("/assets?view=favorites").await.json();
    assert_eq!(favorites["items"].as_array().unwrap().len(), 1);
    assert_eq!(script.get("/me/credits").await.status, StatusCode::OK);

    // Someone else's: 404 for every route, and nothing of ada's changes.
    for path in [format!("/jobs/{job}"), format!("/assets/{result}")] {
        let reply = stranger.get(&path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}: {}", reply.body);
    }
    assert_eq!(
        stranger.post(&format!("/assets/{result}/favorite"), json!({ "favorite": false })).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = stranger.send(stranger.http.delete(format!("{}/assets/{result}", stranger.base))).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(stranger.get("/assets").await.json::<Value>()["items"].as_array().unwrap().is_empty());
    assert_eq!(script.get(&format!("/assets/{result}")).await.json::<Value>()["favorite"], true);
}

/// `method` on `path` by `client`, with `body` when it posts.
async fn call(client: &App, method: &str, path: &str, body: &Value) -> Reply {
    let url = format!("{}{path}", client.base);
    let request = match method {
        "get" => client.http.get(url),
        "post" => client.http.post(url).json(body),
        _ => client.http.delete(url),
    };
    client.send(request).await
}

/// Every API route with the scope it needs and what someone else's token gets for ada's things
/// (`None`: the route has nothing of ada's in it).
fn matrix(
    key: &str,
    job: &str,
    result: &str,
) -> Vec<(&'static str, &'static str, String, Option<&'static str>, Value, Option<&'static str>)> {
    let png = json!({ "contentType": "image/png", "byteLength": 10, "checksum": "ab".repeat(32) });
    vec![
        ("get", "/me", "/me".into(), Some("account:read"), Value::Null, None),
        ("get", "/me/credits", "/me/credits".into(), Some("account:read"), Value::Null, None),
        ("post", "/uploads/presign", "/uploads/presign".into(), Some("uploads:write"), png, None),
        (
            "post",
            "/uploads/confirm",
            "/uploads/confirm".into(),
            Some("uploads:write"),
            json!({ "key": key, "metadata": {} }),
            Some("upload.not_found"),
        ),
        ("get", "/hairstyles", "/hairstyles".into(), None, Value::Null, None),
        (
            "post",
            "/try-ons",
            "/try-ons".into(),
            Some("jobs:write"),
            json!({ "key": key, "hairstyleId": "bob-cut", "locale": "en" }),
            Some("upload.not_found"),
        ),
        ("get", "/try-ons/{id}", format!("/try-ons/{job}"), Some("jobs:read"), Value::Null, Some("api.job_not_found")),
        (
            "post",
            "/jobs",
            "/jobs".into(),
            Some("jobs:write"),
            json!({ "model": crate::jobs::EDIT, "params": { "prompt": "x" }, "images": [key] }),
            Some("upload.not_found"),
        ),
        ("get", "/jobs/{id}", format!("/jobs/{job}"), Some("jobs:read"), Value::Null, Some("api.job_not_found")),
        ("get", "/assets", "/assets".into(), Some("assets:read"), Value::Null, None),
        (
            "get",
            "/assets/{id}",
            format!("/assets/{result}"),
            Some("assets:read"),
            Value::Null,
            Some("gallery.not_found"),
        ),
        (
            "post",
            "/assets/{id}/favorite",
            format!("/assets/{result}/favorite"),
            Some("assets:write"),
            json!({}),
            Some("gallery.not_found"),
        ),
        (
            "delete",
            "/assets/{id}",
            format!("/assets/{result}"),
            Some("assets:write"),
            Value::Null,
            Some("gallery.not_found"),
        ),
    ]
}

#[tokio::test]
async fn every_api_route_refuses_a_token_without_its_scope_and_hides_other_accounts_things() {
    let app = TestApp::spawn().await;
    let ada = crate::jobs::user_with_key(&app, "ada@example.com", "api").await;
    let bob = crate::jobs::user_with_key(&app, "bob@example.com", "api").await;
    let phone = App::new(&app, &token(&ada, &ALL_SCOPES).await);
    let stranger = App::new(&app, &token(&bob, &ALL_SCOPES).await);
    let (key, confirmed) = phone.upload(&testdata::png(48, 64), json!({})).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let started = phone.try_on(&json!({ "key": key, "hairstyleId": "bob-cut", "locale": "en" }), None).await;
    let job = started.json::<Value>()["jobId"].as_str().unwrap().to_owned();
    let done = eventually("the try-on to succeed", || async {
        let now: Value = phone.get(&format!("/try-ons/{job}")).await.json();
        (now["status"] == "succeeded").then_some(now)
    })
    .await;
    let result = done["resultId"].as_str().unwrap().to_owned();
    let rows = matrix(&key, &job, &result);
    let covered: std::collections::BTreeSet<(&str, &str)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let routed: std::collections::BTreeSet<(&str, &str)> = app::server::api_v1::ROUTES.iter().copied().collect();
    assert_eq!(covered, routed, "every route is in the matrix");

    for (method, route, path, scope, body, stranger_gets) in &rows {
        if let Some(scope) = scope {
            let others: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| s != scope).collect();
            let narrow = App::new(&app, &token(&ada, &others).await);
            let refused = call(&narrow, method, path, body).await;
            assert_eq!(
                (refused.status, refused.code().as_str()),
                (StatusCode::FORBIDDEN, "token.scope_missing"),
                "{method} {route}: {}",
                refused.body
            );
        }
        if let Some(code) = stranger_gets {
            let hidden = call(&stranger, method, path, body).await;
            assert_eq!(
                (hidden.status, hidden.code().as_str()),
                (StatusCode::NOT_FOUND, *code),
                "{method} {route}: {}",
                hidden.body
            );
        }
    }
    // Nothing of ada's moved: the result is there, not a favorite, in nobody else's list.
    let mine: Value = phone.get(&format!("/assets/{result}")).await.json();
    assert_eq!(mine["favorite"], false);
    assert!(stranger.get("/assets").await.json::<Value>()["items"].as_array().unwrap().is_empty());
}
