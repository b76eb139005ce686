//! Request guards that apply to every route: who is calling (IP), where the request comes from
//! (Origin), which pages need an account, and the security headers on every answer.

use std::net::SocketAddr;

use app::error::{AppError, code};
use app::server::audit::{self, Action, Event};
use app::server::auth::logins::Seen;
use app::server::auth::session::current_user;
use app::server::request::ClientIp;
use app::server::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tower_sessions::Session;

/// Puts the caller's IP into the request extensions. `X-Forwarded-For` is believed only when the
/// operator said how many proxies of theirs are in front (`DARKROOM_TRUST_FORWARDED_FOR`).
pub async fn client_ip(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let forwarded = forwarded_client(request.headers(), state.config.trusted_proxies);
    let ip = forwarded.or(peer).map_or_else(|| "unknown".into(), |ip| ip.to_string());
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// The client address our `hops` proxies recorded. Each proxy appends the address it was
/// reached from, so the right-most `hops` entries (across every header line: a client may send
/// lines of its own, which come first) are ours, and the left-most of them is the client.
/// Anything a client wrote further left is ignored. `None` when there are fewer entries than
/// proxies (the request did not come through them) or the entry is not an address.
fn forwarded_client(headers: &HeaderMap, hops: u8) -> Option<std::net::IpAddr> {
    if hops == 0 {
        return None;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .collect();
    let at = entries.len().checked_sub(usize::from(hops))?;
    entries[at].parse().ok()
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

/// An access token is for the JSON API (`/api/v1`) only: sent anywhere else (the pages and
/// their server functions, which go by the session cookie), it is refused rather than ignored,
/// so a client that sent it to the wrong place learns so.
pub async fn tokens_only_on_the_api(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let bearer_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().get(..7).filter(|s| s.eq_ignore_ascii_case("bearer ")).map(|_| v.trim()[7..].trim()))
        .is_some_and(|t| t.starts_with("drk_pat_"));
    if bearer_token && !path.starts_with("/api/v1/") {
        return AppError::new(
            code::AUTH_TOKEN_NOT_ACCEPTED_HERE,
            "Access tokens work only on the API (/api/v1); the web app signs in with its own session.",
        )
        .into_response();
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
    AppError::new(code::REQUEST_CROSS_ORIGIN, "Requests from other sites are not allowed.").into_response()
}

/// Pages that need an account send visitors to the login page; `/admin` answers 403 to anyone
/// who is not an admin; the login screens send signed-in users onward. Whatever the method: a
/// HEAD (or anything else) is answered like the GET it stands for.
pub async fn pages(State(state): State<AppState>, session: Session, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let needs_account = matches!(path.as_str(), "/" | "/create" | "/gallery" | "/account") || is_admin_path(&path);
    let auth_screen = matches!(path.as_str(), "/login" | "/signup");
    if !needs_account && !auth_screen {
        return next.run(request).await;
    }
    let seen = Seen {
        ip: request.extensions().get::<ClientIp>().map_or_else(|| "unknown".into(), |ip| ip.0.clone()),
        user_agent: request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
    };
    let user = match current_user(&session, &state.db, Some(&seen)).await {
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
    // Browsers honour (and otherwise complain about) COOP only on trustworthy origins: https,
    // or loopback. A plain-http address on a home network is neither.
    let coop = state.config.secure_cookies() || request_host_is_loopback(request.headers());
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
    if coop {
        set(headers, header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    }
    set(headers, header::HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=()");
    if state.config.secure_cookies() {
        set(headers, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

fn request_host_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            request_host_is_loopback(&headers)
        };
        assert!(host("127.0.0.1:3000") && host("localhost:3000") && host("[::1]:3000") && host("localhost"));
        assert!(!host("192.168.1.10:3000") && !host("darkroom.test:3100") && !host("[2001:db8::1]:80"));
    }

    #[test]
    fn the_client_is_the_address_our_proxies_recorded() {
        let ip = |values: &[&str], hops| forwarded_client(&lines(values), hops).map(|ip| ip.to_string());
        // A client's own line comes first; our proxy appended the real address last.
        assert_eq!(ip(&["6.6.6.6", "203.0.113.9"], 1).as_deref(), Some("203.0.113.9"));
        assert_eq!(ip(&["6.6.6.6, 7.7.7.7, 203.0.113.9"], 1).as_deref(), Some("203.0.113.9"));
        // A CDN then a load balancer: the CDN recorded the client, the balancer the CDN.
        assert_eq!(ip(&["6.6.6.6, 203.0.113.9", "198.51.100.1"], 2).as_deref(), Some("203.0.113.9"));
        assert_eq!(ip(&["203.0.113.9"], 2), None, "fewer entries than proxies: not through them");
        assert_eq!(ip(&["not-an-ip"], 1), None);
        assert_eq!(ip(&["203.0.113.9"], 0), None, "no proxy, no belief");
        assert_eq!(ip(&["2001:db8::7"], 1).as_deref(), Some("2001:db8::7"));
    }
}
