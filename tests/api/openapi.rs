//! The OpenAPI document: generated from the code, served at /api/v1/openapi.json, and it matches
//! the live routes both ways; the scopes and error codes are in it; the reference page renders.

use std::collections::BTreeSet;

use app::server::api_v1::ROUTES;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_live_routes() {
    let app = TestApp::spawn().await;
    let anyone = Client::new(&app.base);
    let served = anyone.get("/api/v1/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    let doc: Value = served.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);

    // Documented operations and routed ones are the same set.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let path = path.strip_prefix("/api/v1").unwrap_or_else(|| panic!("{path} is outside /api/v1"));
            documented.insert((method.clone(), path.to_owned()));
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} documents no answer");
            for scope in op["security"].as_array().into_iter().flatten().filter_map(|s| s["token"].as_array()).flatten()
            {
                assert!(
                    app::tokens::Scope::parse(scope.as_str().unwrap()).is_some(),
                    "{method} {path}: unknown scope {scope}"
                );
            }
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, routed, "documented vs routed");

    // The token scheme names every scope; every error code is listed with its status.
    let scheme = &doc["components"]["securitySchemes"]["token"];
    assert_eq!((scheme["type"].as_str(), scheme["scheme"].as_str()), (Some("http"), Some("bearer")));
    for scope in app::tokens::Scope::ALL {
        assert!(scheme["description"].as_str().unwrap().contains(scope.as_str()), "{scope:?}");
    }
    for code in app::error::code::ALL {
        assert_eq!(doc["x-error-codes"][code.name], code.status, "{}", code.name);
    }
    assert!(doc["components"]["schemas"]["Problem"]["properties"]["code"].is_object());

    // Every routed operation answers as itself (a problem of its own at worst), never as a
    // route that does not exist.
    let ada = app.user("ada@example.com").await;
    let scopes: Vec<&str> = app::tokens::Scope::ALL.iter().map(|s| s.as_str()).collect();
    let made = ada.call_json("tokens/create", &json!({ "name": "probe", "scopes": scopes, "days": 1 })).await;
    let token = made.json::<Value>()["token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    for (method, path) in ROUTES {
        let url = format!("{}/api/v1{}", app.base, path.replace("{id}", &app::server::db::new_id()));
        let request = match *method {
            "get" => http.get(&url),
            "post" => http.post(&url).json(&json!({})),
            "delete" => http.delete(&url),
            other => panic!("{other}"),
        };
        let reply = anyone.send(request.bearer_auth(&token)).await;
        let ours = reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json") || t == "application/problem+json");
        assert!(
            ours && reply.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }
    let unrouted = anyone.send(http.get(format!("{}/api/v1/nothing-here", app.base)).bearer_auth(&token)).await;
    assert_eq!(unrouted.status, StatusCode::NOT_FOUND, "the probe tells a missing route apart");
    assert!(
        !unrouted.header("content-type").is_some_and(|t| t.contains("json")),
        "{:?}",
        unrouted.header("content-type")
    );

    // The reference page lists every operation and error code.
    let page = anyone.get("/api/v1/reference").await;
    assert_eq!(page.status, StatusCode::OK);
    for (method, path) in ROUTES {
        assert!(page.body.contains(&format!("{} /api/v1{}", method.to_uppercase(), path)), "{method} {path}");
    }
    assert!(page.body.contains("token.scope_missing"));
}
