use leptos::prelude::*;
use leptos_router::components::A;

use crate::messages::{t, use_locale};

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    let l = use_locale();
    view! {
        <main class="auth-page">
            <div class="auth-card">
                <h1>{t(l, "notfound.title")}</h1>
                <p>{t(l, "notfound.text")}</p>
                <A href="/">{t(l, "notfound.home")}</A>
            </div>
        </main>
    }
}
