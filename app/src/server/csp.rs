//! The Content-Security-Policy of rendered pages: scripts only from us or carrying this
//! response's nonce (Leptos puts it on its hydration and streaming scripts), wasm compilation
//! allowed, and the storage origins allowed for presigned uploads and previews (none beyond our
//! own when the embedded endpoint serves storage on our origin). `blob:` (URLs of
//! files the page itself holds, bound to our origin) is allowed for previews and reads.

use leptos::prelude::use_context;

use super::state::AppState;

pub fn policy(nonce: &str, storage_origins: &[String]) -> String {
    let storage: String = storage_origins.iter().map(|o| format!(" {o}")).collect();
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
    let storage = use_context::<AppState>().map(|s| s.storage.link_origins_for_csp().to_vec()).unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_str(&policy(&nonce, &storage)) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::policy;

    #[test]
    fn scripts_need_the_nonce_and_storage_is_reachable() {
        let origins =
            ["https://b1.s3.eu-west-1.amazonaws.com".to_owned(), "https://b2.s3.eu-west-1.amazonaws.com".to_owned()];
        let p = policy("abc123", &origins);
        assert!(p.contains("script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval';"));
        assert!(p.contains(
            "connect-src 'self' blob: https://b1.s3.eu-west-1.amazonaws.com https://b2.s3.eu-west-1.amazonaws.com;"
        ));
        assert!(policy("n", &[]).contains("connect-src 'self' blob:;"), "our own origin only");
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(!p.contains("unsafe-inline"));
    }
}
