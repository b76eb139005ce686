//! The language switch: `GET /language?to=es&back=/gallery` remembers the choice in a cookie
//! (a year, readable by no script, sent on plain http too since it is no secret) and goes back
//! to the page it came from. A plain link, so it works before the page is hydrated.

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use app::error::{AppError, code};
use app::messages::{LANGUAGE_COOKIE, Locale};

#[derive(Deserialize)]
pub struct Switch {
    to: String,
    #[serde(default)]
    back: Option<String>,
}

pub async fn switch(Query(switch): Query<Switch>) -> Response {
    let Some(locale) = Locale::parse(&switch.to).filter(|l| l.as_str() == switch.to) else {
        return AppError::new(code::REQUEST_MALFORMED, "The language must be en or es.").into_response();
    };
    let back = switch.back.filter(|b| is_local_path(b)).unwrap_or_else(|| "/".to_owned());
    let cookie = format!("{LANGUAGE_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly", locale.as_str());
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    // Both are ASCII by construction: the path was checked, the cookie is made of known parts.
    if let (Ok(location), Ok(cookie)) = (HeaderValue::from_str(&back), HeaderValue::from_str(&cookie)) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A path on this site: never another origin (`//evil.example`, `/\evil.example`), a scheme, or
/// anything a header cannot carry.
fn is_local_path(back: &str) -> bool {
    back.starts_with('/')
        && !back.starts_with("//")
        && !back.starts_with("/\\")
        && back.len() <= 2048
        && back.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_this_sites_paths_are_gone_back_to() {
        assert!(is_local_path("/gallery?view=favorites"));
        assert!(is_local_path("/"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "gallery",
            "/a b",
            "/\r\nSet-Cookie: x=1",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
