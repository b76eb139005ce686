//! The Create tab. Uploads and the model form arrive with their issues; for now it says what
//! is needed before anything can be generated.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::keys::key_status;
use crate::components::AppFrame;

#[component]
pub fn CreatePage() -> impl IntoView {
    let status = Resource::new(|| (), |_| key_status());
    let has_key = move || matches!(status.get(), Some(Ok(Some(_))));
    view! {
        <AppFrame>
            <h1>"Create"</h1>
            <section class="card">
                <Transition fallback=|| ()>
                    {move || {
                        (!has_key())
                            .then(|| {
                                view! {
                                    <p class="banner info" data-testid="needs-key">
                                        "Save your fal key on the " <A href="/account">"Account"</A>
                                        " tab to start generating."
                                    </p>
                                }
                            })
                    }}
                </Transition>
                <button type="button" class="primary" disabled=move || !has_key()>"Generate"</button>
            </section>
        </AppFrame>
    }
}
