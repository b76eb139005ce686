//! What the user keeps against their storage quota, and how much they may upload a day.

use leptos::prelude::*;

use crate::api::quotas::my_quotas;
use crate::upload_queue::human_size;

#[component]
pub fn StorageCard() -> impl IntoView {
    let quotas = Resource::new(|| (), |_| my_quotas());
    view! {
        <section class="card" aria-labelledby="storage-heading">
            <h2 id="storage-heading">"Storage"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match quotas.await {
                        Ok(q) => {
                            let kept = match q.storage_bytes {
                                Some(limit) => format!("You keep {} of the {} allowed.", human_size(q.kept_bytes), human_size(limit)),
                                None => format!("You keep {} (no limit).", human_size(q.kept_bytes)),
                            };
                            view! {
                                <p data-testid="storage-kept">{kept}</p>
                                <p class="muted small">
                                    {format!(
                                        "Images and results count; the trash too, until it is emptied. Each day you may upload {} images, {} in all.",
                                        q.uploads_day,
                                        human_size(q.upload_bytes_day)
                                    )}
                                </p>
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
