//! The Content-Security-Policy of rendered pages: scripts only from us or carrying this
//! response's nonce (Leptos puts it on its hydration and streaming scripts), wasm compilation
//! allowed, and the storage origin allowed for presigned uploads and previews. `blob:` (URLs of
//! files the page itself holds, bound to our origin) is allowed for previews and reads.

use leptos::prelude::use_context;

use super::state::AppState;

pub fn policy(nonce: &str, storage_origin: Option<&str>) -> String {
    let storage = storage_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:{storage}; media-src 'self' blob:{storage}; connect-src 'self' blob:{storage}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Puts the policy for this render's nonce on the response.
pub fn attach() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let storage = use_context::<AppState>().and_then(|s| s.storage.origin().map(str::to_owned));
    if let Ok(value) = http::HeaderValue::from_str(&policy(&nonce, storage.as_deref())) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::policy;

    #[test]
    fn scripts_need_the_nonce_and_storage_is_reachable() {
        let p = policy("abc123", Some("http://127.0.0.1:3900"));
        assert!(p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"));
        assert!(p.contains("connect-src 'self' blob: http://127.0.0.1:3900;"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(!p.contains("unsafe-inline"));
    }
}
