//! The JSON API for mobile apps and scripts, under `/api/v1`: the same services the pages use,
//! called by a personal access token (`Authorization: Bearer drk_pat_…`), never by a cookie,
//! answering errors as `application/problem+json`. Each route names the scope it needs.

mod assets;
mod idempotency;
mod jobs;
pub mod openapi;
mod problem;
mod tryons;
mod uploads;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use serde::Serialize;

pub use problem::{JsonBody, Problem};

use crate::error::{AppError, code};
use crate::messages::Locale;
use crate::server::auth::users::User;
use crate::server::request::{ClientIp, RequestId};
use crate::server::state::AppState;
use crate::server::tokens::{self, TokenRow};
use crate::tokens::Scope;

/// Every API route: (method, path under `/api/v1`). The router is built from this list, and
/// the OpenAPI document describes exactly these (a test holds the two together).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/me"),
    ("get", "/me/credits"),
    ("post", "/uploads/presign"),
    ("post", "/uploads/confirm"),
    ("get", "/hairstyles"),
    ("post", "/try-ons"),
    ("get", "/try-ons/{id}"),
    ("post", "/jobs"),
    ("get", "/jobs/{id}"),
    ("get", "/assets"),
    ("get", "/assets/{id}"),
    ("delete", "/assets/{id}"),
    ("post", "/assets/{id}/favorite"),
];

fn handler(method: &str, path: &str) -> MethodRouter<AppState> {
    match (method, path) {
        ("get", "/me") => get(me),
        ("get", "/me/credits") => get(jobs::credits),
        ("post", "/uploads/presign") => post(uploads::presign),
        ("post", "/uploads/confirm") => post(uploads::confirm),
        ("get", "/hairstyles") => get(tryons::hairstyles),
        ("post", "/try-ons") => post(tryons::create),
        ("get", "/try-ons/{id}") => get(tryons::get),
        ("post", "/jobs") => post(jobs::create),
        ("get", "/jobs/{id}") => get(jobs::get),
        ("get", "/assets") => get(assets::list),
        ("get", "/assets/{id}") => get(assets::get),
        ("delete", "/assets/{id}") => delete(assets::delete),
        ("post", "/assets/{id}/favorite") => post(assets::favorite),
        _ => panic!("the API route {method} {path} has no handler"),
    }
}

/// The routes of [`ROUTES`], each behind [`caller`], and the public description of them.
pub fn routes(state: AppState) -> Router<AppState> {
    let api = ROUTES
        .iter()
        .fold(Router::new(), |router, (method, path)| router.route(path, handler(method, path)))
        .route_layer(from_fn_with_state(state, caller))
        .route_layer(axum::middleware::from_fn(locale));
    Router::new().route("/openapi.json", get(openapi::json)).route("/reference", get(openapi::reference)).merge(api)
}

/// Who is calling: the token's account and the token itself, and from where.
#[derive(Clone)]
pub struct Caller {
    pub user: User,
    pub token: TokenRow,
    pub ip: String,
    /// The origin the client addressed us by, for links that must work from there.
    pub origin: Option<String>,
    pub request_id: Option<String>,
}

impl Caller {
    /// The caller's token may do `scope`, or the answer is 403 `token.scope_missing`.
    pub fn needs(&self, scope: Scope) -> Result<(), Problem> {
        if self.token.allows(scope) {
            return Ok(());
        }
        Err(Problem::from(AppError::new(
            code::TOKEN_SCOPE_MISSING,
            format!("This token may not do that: it needs the scope {}.", scope.as_str()),
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| Problem::from(AppError::unauthenticated()))
    }
}

/// Authenticates every API request by its token, before any route runs: a request that carries
/// a cookie is refused (a browser sends cookies on its own, so a cookie here could only be
/// another site's doing), as is one without a token or with one that does not work; then the
/// token's and the account's rate limits apply.
async fn caller(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.headers().contains_key(http::header::COOKIE) {
        return Problem::from(AppError::new(
            code::AUTH_COOKIE_NOT_ACCEPTED,
            "The API takes an access token (Authorization: Bearer drk_pat_…), not a cookie.",
        ))
        .into_response();
    }
    let bearer = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(raw) = bearer else {
        let missing =
            AppError::new(code::AUTH_UNAUTHENTICATED, "Send an access token: Authorization: Bearer drk_pat_…");
        let mut refused = Problem::from(missing).into_response();
        refused.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        return refused;
    };
    let (user, token) = match tokens::authenticate(&state.db, raw, crate::format::now_ms()).await {
        Ok(found) => found,
        Err(err) => return Problem::from(AppError::from(err)).into_response(),
    };
    let limits = [
        (format!("api-token:{}", token.id), state.config.auth.api_token_limit),
        (format!("api-user:{}", user.id), state.config.auth.api_account_limit),
    ];
    for (bucket, limit) in limits {
        match crate::server::rate_limit::hit(&state.db, &bucket, limit).await {
            Ok(None) => {}
            Ok(Some(wait)) => {
                let error = AppError::new(code::API_RATE_LIMITED, "Too many requests; slow down.")
                    .retry_after(wait.as_secs().max(1));
                return Problem::from(error).into_response();
            }
            Err(err) => {
                tracing::error!(%err, "API rate limit");
                return Problem::from(AppError::internal()).into_response();
            }
        }
    }
    let ip = request.extensions().get::<ClientIp>().map_or_else(|| "unknown".to_owned(), |ip| ip.0.clone());
    let request_id = request.extensions().get::<RequestId>().map(|id| id.0.clone());
    let origin = crate::server::request::origin_of(request.headers(), state.config.trusted_proxies);
    request.extensions_mut().insert(Caller { user, token, ip, origin, request_id });
    next.run(request).await
}

/// Largest JSON body the API reads (its requests are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// Decides the request's language, before anything can fail: the `locale` of a JSON body when
/// it names one we speak, else `Accept-Language`. Every error of the request is in it.
async fn locale(request: Request, next: Next) -> Response {
    let mut locale = request
        .headers()
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Locale::from_accept_language)
        .unwrap_or_default();
    let json = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let request = if json {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
            let error = AppError::new(code::REQUEST_TOO_LARGE, "The request is larger than the API accepts.");
            return problem::in_locale(locale, async { Problem::from(error).into_response() }).await;
        };
        let named = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("locale").and_then(|l| l.as_str()).and_then(Locale::parse));
        locale = named.unwrap_or(locale);
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        request
    };
    problem::in_locale(locale, next.run(request)).await
}

/// The account the token belongs to.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    id: String,
    email: String,
    #[schema(value_type = String)]
    role: &'static str,
    created_at: String,
    /// The calling token's scopes.
    #[schema(value_type = Vec<String>)]
    scopes: Vec<Scope>,
}

#[utoipa::path(get, path = "/api/v1/me", operation_id = "getMe", tag = "account",
    responses((status = 200, body = Me), (status = "4XX", body = problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["account:read"])))]
async fn me(caller: Caller) -> Result<axum::Json<Me>, Problem> {
    caller.needs(Scope::AccountRead)?;
    Ok(axum::Json(Me {
        id: caller.user.id.clone(),
        email: caller.user.email.clone(),
        role: caller.user.role.as_str(),
        created_at: crate::server::db::rfc3339(caller.user.created_at),
        scopes: caller.token.scopes.clone(),
    }))
}
