//! Errors in the language the request asks for: English or Spanish, with the same codes, decided
//! per request (`locale` in the body, else `Accept-Language`), on the API and on the web app's
//! server functions; interleaved requests never get the other's language.

use app::messages::{Locale, message};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};

async fn me(app: &TestApp, language: Option<&str>) -> Value {
    let http = reqwest::Client::new();
    let mut request = http.get(format!("{}/api/v1/me", app.base));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let reply = Client::new(&app.base).send(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    reply.json()
}

#[tokio::test]
async fn errors_come_in_the_language_asked_for_with_the_same_codes() {
    let app = TestApp::spawn().await;
    let spanish = me(&app, Some("es-MX,es;q=0.9,en;q=0.5")).await;
    assert_eq!((spanish["code"].as_str(), spanish["locale"].as_str()), (Some("auth.unauthenticated"), Some("es")));
    assert_eq!(spanish["detail"], message("auth.unauthenticated", Locale::Es).unwrap());
    let english = me(&app, Some("en-US")).await;
    assert_eq!((english["code"].as_str(), english["locale"].as_str()), (Some("auth.unauthenticated"), Some("en")));
    assert!(english["detail"].as_str().unwrap().contains("Authorization: Bearer"));
    assert_eq!(me(&app, None).await["locale"], "en", "English without a preference");
    assert_eq!(me(&app, Some("fr, de;q=0.5")).await["locale"], "en", "and for languages we do not speak");

    // The body's `locale` wins over the header.
    let ada = app.user("ada@example.com").await;
    let made = ada.call_json("tokens/create", &json!({ "name": "app", "scopes": ["uploads:write"], "days": 1 })).await;
    let token = made.json::<Value>()["token"].as_str().unwrap().to_owned();
    let bare = Client::new(&app.base);
    let presign = |locale: &str, header: &str| {
        let body =
            json!({ "contentType": "image/svg+xml", "byteLength": 10, "checksum": "ab".repeat(32), "locale": locale });
        bare.send(
            bare.http
                .post(format!("{}/api/v1/uploads/presign", app.base))
                .bearer_auth(&token)
                .header("accept-language", header)
                .json(&body),
        )
    };
    let refused: Value = presign("es", "en").await.json();
    assert_eq!((refused["code"].as_str(), refused["locale"].as_str()), (Some("upload.unsupported_type"), Some("es")));
    assert_eq!(refused["detail"], message("upload.unsupported_type", Locale::Es).unwrap());
    let refused: Value = presign("en", "es").await.json();
    assert_eq!(refused["locale"], "en");

    // The web app's server functions answer in the browser's language too.
    let form = ada.http.post(format!("{}/api/keys/save", app.base)).header("accept", "application/json");
    let wrong = ada.send(form.header("accept-language", "es").form(&[("key", "not a key")])).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (StatusCode::BAD_REQUEST, "keys.malformed"));
    assert_eq!(wrong.json::<Value>()["message"], message("keys.malformed", Locale::Es).unwrap());
}

#[tokio::test]
async fn a_thousand_interleaved_requests_each_get_their_own_language() {
    let app = TestApp::spawn().await;
    let answers = futures::stream::iter(0..1000)
        .map(|i| {
            let app = &app;
            async move {
                let asked = if i % 2 == 0 { "es" } else { "en" };
                (asked, me(app, Some(asked)).await)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let wrong: Vec<_> = answers.iter().filter(|(asked, got)| got["locale"] != *asked).collect();
    assert!(wrong.is_empty(), "{} of 1000 in the wrong language: {:?}", wrong.len(), wrong.first());
    for (asked, got) in &answers {
        assert_eq!(got["code"], "auth.unauthenticated");
        let spanish = got["detail"] == message("auth.unauthenticated", Locale::Es).unwrap();
        assert_eq!(spanish, *asked == "es", "{got}");
    }
}

#[tokio::test]
async fn pages_speak_the_browsers_language_until_the_switch_picks_another() {
    let app = TestApp::spawn().await;
    let page = |client: &Client, language: &'static str| {
        let request = client.http.get(format!("{}/login", app.base)).header("accept-language", language);
        let client = client.clone();
        async move { client.send(request).await }
    };
    let visitor = app.client();
    let spanish = page(&visitor, "es-ES,es;q=0.9").await;
    assert_eq!(spanish.status, StatusCode::OK);
    assert!(spanish.body.contains(r#"<html lang="es""#), "{}", &spanish.body[..200.min(spanish.body.len())]);
    assert!(spanish.body.contains("Iniciar sesión") && spanish.body.contains("Contraseña"));
    let english = page(&visitor, "en-GB").await;
    assert!(english.body.contains(r#"<html lang="en""#) && english.body.contains(">Password<"));

    // The switch: a cookie for a year, then back to the page; it beats the browser's header, for
    // the page and for the errors of server functions.
    let switched = visitor.get("/language?to=en&back=%2Flogin%3Fnext%3D%2Fgallery").await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.header("location"), Some("/login?next=/gallery"));
    assert!(switched.header("set-cookie").unwrap().starts_with("darkroom_lang=en;"));
    let chosen = page(&visitor, "es-ES").await;
    assert!(chosen.body.contains(r#"<html lang="en""#) && chosen.body.contains(">Password<"), "the choice wins");
    let request = visitor.http.post(format!("{}/api/auth/login", app.base)).header("accept-language", "es");
    let refused = visitor
        .send(
            request
                .header("accept", "application/json")
                .form(&[("email", "x@example.com"), ("password", "wrong-password-1")]),
        )
        .await;
    assert_eq!(refused.code(), "auth.invalid_credentials", "{}", refused.body);
    assert_ne!(refused.json::<Value>()["message"], message("auth.invalid_credentials", Locale::Es).unwrap());

    // Only this site's paths are gone back to, and only our languages are taken.
    let away = visitor.get("/language?to=es&back=//evil.example/").await;
    assert_eq!((away.status, away.header("location")), (StatusCode::SEE_OTHER, Some("/")));
    let unknown = visitor.get("/language?to=fr").await;
    assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::BAD_REQUEST, "request.malformed"));
}
