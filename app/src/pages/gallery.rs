use leptos::prelude::*;

use crate::components::AppFrame;

#[component]
pub fn GalleryPage() -> impl IntoView {
    view! {
        <AppFrame>
            <h1>"Gallery"</h1>
            <section class="card empty">
                <p>"Your results will appear here, kept in your private storage."</p>
            </section>
        </AppFrame>
    }
}
