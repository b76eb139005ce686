//! The Create tab: the user's images (upload, see, delete). The model form arrives with
//! generation; for now it says what is needed before anything can be generated.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::keys::key_status;
use crate::api::uploads::{DeleteUpload, list_uploads};
use crate::components::uploader::{Queue, Uploader};
use crate::components::{AppFrame, ImageGrid};

#[component]
pub fn CreatePage() -> impl IntoView {
    let status = Resource::new(|| (), |_| key_status());
    let queue = Queue::new();
    let delete = ServerAction::<DeleteUpload>::new();
    let images = Resource::new(move || (queue.completed.get(), delete.version().get()), |_| list_uploads(None));
    view! {
        <AppFrame>
            <h1>"Create"</h1>
            <section class="card" aria-labelledby="images-heading">
                <h2 id="images-heading">"Your images"</h2>
                <Uploader queue />
                <Transition fallback=|| view! { <p class="muted">"Loading your images…"</p> }>
                    {move || Suspend::new(async move {
                        match images.await {
                            Ok(list) => view! { <ImageGrid images=list delete /> }.into_any(),
                            Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            <section class="card" aria-labelledby="generate-heading">
                <h2 id="generate-heading">"Generate"</h2>
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
