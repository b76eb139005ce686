//! The Create tab. Uploads and the model form arrive with their issues; for now it says what
//! is needed before anything can be generated.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::keys::key_status;
use crate::components::AppFrame;

#[component]
pub fn CreatePage() -> impl IntoView {
    let status = Resource::new(|| (), |_| key_status());
    view! {
        <AppFrame>
            <h1>"Create"</h1>
            <section class="card">
                <Transition fallback=|| view! { <button type="button" class="primary" disabled=true>"Generate"</button> }>
                    {move || Suspend::new(async move {
                        let has_key = matches!(status.await, Ok(Some(_)));
                        view! {
                            {(!has_key)
                                .then(|| {
                                    view! {
                                        <p class="banner info" data-testid="needs-key">
                                            "Save your fal key on the " <A href="/account">"Account"</A>
                                            " tab to start generating."
                                        </p>
                                    }
                                })}
                            <button type="button" class="primary" disabled=!has_key>"Generate"</button>
                        }
                    })}
                </Transition>
            </section>
        </AppFrame>
    }
}
