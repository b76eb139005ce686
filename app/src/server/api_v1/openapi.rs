//! The API's OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json`, and a reference page rendered from it at `/api/v1/reference`. The
//! token scheme lists every scope; `x-error-codes` lists every error code with its status.

use axum::Json;
use axum::response::Html;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use super::{assets, jobs, problem, tryons, uploads};
use crate::tokens::Scope;

#[derive(OpenApi)]
#[openapi(
    info(title = "Darkroom API", version = "1", description = "Uploads, try-ons, jobs and results for apps and scripts, with a personal access token."),
    paths(
        super::me, jobs::credits, uploads::presign, uploads::confirm, tryons::hairstyles, tryons::create, tryons::get,
        jobs::create, jobs::get, assets::list, assets::get, assets::favorite, assets::delete
    ),
    components(schemas(problem::ProblemDetails)),
    modifiers(&Extras)
)]
struct ApiDoc;

struct Extras;

impl utoipa::Modify for Extras {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scopes =
            Scope::ALL.iter().map(|s| format!("`{}` ({})", s.as_str(), s.describe())).collect::<Vec<_>>().join(", ");
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("drk_pat_…".into());
        bearer.description = Some(format!("A personal access token from the Account tab. Scopes: {scopes}."));
        doc.components.get_or_insert_with(Default::default).add_security_scheme("token", SecurityScheme::Http(bearer));
        let codes: serde_json::Map<String, serde_json::Value> =
            crate::error::code::ALL.iter().map(|c| (c.name.to_owned(), c.status.into())).collect();
        let scope_list: Vec<serde_json::Value> = Scope::ALL.iter().map(|s| s.as_str().into()).collect();
        let mut extensions = utoipa::openapi::extensions::Extensions::default();
        extensions.insert("x-error-codes".into(), serde_json::Value::Object(codes));
        extensions.insert("x-scopes".into(), serde_json::Value::Array(scope_list));
        doc.extensions.get_or_insert_with(Default::default).merge(extensions);
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /api/v1/openapi.json`.
pub async fn json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// `GET /api/v1/reference`: every operation with its scope, parameters, body and answers.
pub async fn reference() -> Html<String> {
    let doc = serde_json::to_value(document()).unwrap_or_default();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Darkroom API</title>\
         <style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
         code{background:#eee;padding:0 .2em}section{border-top:1px solid #ccc;padding:.5rem 0}</style></head><body>\
         <h1>Darkroom API</h1><p>The machine-readable document: <a href=\"/api/v1/openapi.json\">openapi.json</a>. \
         Send <code>Authorization: Bearer drk_pat_…</code>; errors are <code>application/problem+json</code>.</p>",
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let scopes: Vec<String> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["token"].as_array())
                    .flatten()
                    .filter_map(|s| s.as_str().map(|s| format!("<code>{}</code>", escape(s))))
                    .collect();
                let answers: Vec<String> = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(status, r)| {
                        format!("{} {}", escape(status), escape(r["description"].as_str().unwrap_or("")))
                    })
                    .collect();
                html.push_str(&format!(
                    "<section><h2><code>{} {}</code></h2><p>{}</p><p>Scope: {}</p><p>Answers: {}</p></section>",
                    escape(&method.to_uppercase()),
                    escape(path),
                    escape(op["description"].as_str().or(op["summary"].as_str()).unwrap_or("")),
                    if scopes.is_empty() { "any token".to_owned() } else { scopes.join(", ") },
                    answers.join("; "),
                ));
            }
        }
    }
    html.push_str("<h2>Error codes</h2><ul>");
    for c in crate::error::code::ALL {
        html.push_str(&format!("<li><code>{}</code> {}</li>", escape(c.name), c.status));
    }
    html.push_str("</ul></body></html>");
    Html(html)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
