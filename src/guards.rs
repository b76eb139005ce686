//! Request guards that apply to every route: who is calling (IP), where the request comes from
//! (Origin), which pages need an account, and the security headers on every answer.

use std::net::SocketAddr;

use app::server::audit::{self, Action, Event};
use app::server::auth::session::current_user;
use app::server::request::ClientIp;
use app::server::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tower_sessions::Session;

/// Puts the caller's IP into the request extensions. `X-Forwarded-For` is believed only when the
/// operator said a proxy is in front; then its last hop (the one our proxy appended) is used.
pub async fn client_ip(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let forwarded = state
        .config
        .trust_forwarded_for
        .then(|| {
            request.headers().get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next().map(|s| s.trim().to_owned())
        })
        .flatten()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    let ip = forwarded.or(peer).unwrap_or_else(|| "unknown".into());
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// Refuses state-changing requests that a browser sent from another site (CSRF). Requests with
/// neither `Origin` nor `Sec-Fetch-Site` come from non-browser clients and carry no ambient
/// authority worth stealing, so they pass.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_safe(request.method()) || request.uri().path().starts_with("/hooks/") {
        return next.run(request).await;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = allowed_origin(&state, request.headers());
        if allowed.as_deref() != origin.to_str().ok() {
            tracing::warn!(origin = ?origin, path = request.uri().path(), "refused a cross-origin request");
            return forbidden_cross_origin();
        }
    } else if request.headers().get("sec-fetch-site").is_some_and(|v| v == "cross-site") {
        return forbidden_cross_origin();
    }
    next.run(request).await
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `PUBLIC_URL`'s origin when set; otherwise the origin the browser addressed us by.
fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<String> {
    match &state.config.public_url {
        Some(url) => Some(url.origin().ascii_serialization()),
        None => headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|host| format!("http://{host}")),
    }
}

fn forbidden_cross_origin() -> Response {
    let body = r#"{"code":"request.cross_origin","message":"Requests from other sites are not allowed."}"#;
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Pages that need an account send visitors to the login page; `/admin` answers 403 to anyone
/// who is not an admin; the login screens send signed-in users onward.
pub async fn pages(State(state): State<AppState>, session: Session, request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    let needs_account = matches!(path.as_str(), "/" | "/create" | "/gallery" | "/account") || is_admin_path(&path);
    let auth_screen = matches!(path.as_str(), "/login" | "/signup");
    if !needs_account && !auth_screen {
        return next.run(request).await;
    }
    let user = match current_user(&session, &state.db).await {
        Ok(user) => user,
        Err(err) => {
            tracing::error!(%err, "could not read the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match user {
        Some(_) if auth_screen || path == "/" => Redirect::to("/create").into_response(),
        None if needs_account => {
            let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
            let next_param = if path == "/" { String::new() } else { format!("?next={}", urlencode(target)) };
            Redirect::to(&format!("/login{next_param}")).into_response()
        }
        Some(user) if is_admin_path(&path) && !user.is_admin() => {
            let ip = request.extensions().get::<ClientIp>().map(|ip| ip.0.clone());
            let mut event = Event::new(Action::AdminDenied).actor(&user.id).detail(serde_json::json!({ "path": path }));
            if let Some(ip) = &ip {
                event = event.ip(ip);
            }
            audit::record(&state.db, event).await;
            (StatusCode::FORBIDDEN, Html(FORBIDDEN_PAGE)).into_response()
        }
        _ => next.run(request).await,
    }
}

fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

const FORBIDDEN_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Forbidden · Darkroom</title>\
<link rel=\"stylesheet\" href=\"/pkg/darkroom.css\"></head><body><main class=\"auth-page\"><div class=\"auth-card\">\
<h1>Admins only</h1><p>Your account does not have access to the admin pages.</p><a href=\"/create\">Back to Darkroom</a>\
</div></main></body></html>";

/// Headers every response carries. Pages set their own nonce-based CSP; anything else gets a
/// policy that allows nothing.
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // No Referer leaves the site. (`no-referrer` would also make browsers send `Origin: null`
    // on our own form posts, which the same-origin guard must refuse.)
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(headers, header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'self'; frame-ancestors 'none'");
    set(headers, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(headers, header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()");
    if state.config.secure_cookies() {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}
