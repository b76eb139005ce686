//! What the user keeps against their storage quota, and how much they may upload a day.

use leptos::prelude::*;

use crate::api::quotas::my_quotas;
use crate::messages::{t, tf, use_locale};
use crate::upload_queue::human_size;

#[component]
pub fn StorageCard() -> impl IntoView {
    let quotas = Resource::new(|| (), |_| my_quotas());
    let l = use_locale();
    view! {
        <section class="card" aria-labelledby="storage-heading">
            <h2 id="storage-heading">{t(l, "storage.heading")}</h2>
            <Transition fallback=move || view! { <p class="muted">{t(l, "common.loading")}</p> }>
                {move || Suspend::new(async move {
                    match quotas.await {
                        Ok(q) => {
                            let kept = match q.storage_bytes {
                                Some(limit) => tf(l, "storage.kept_of", &[("kept", &human_size(q.kept_bytes)), ("limit", &human_size(limit))]),
                                None => tf(l, "storage.kept", &[("kept", &human_size(q.kept_bytes))]),
                            };
                            view! {
                                <p data-testid="storage-kept">{kept}</p>
                                <p class="muted small">
                                    {tf(l, "storage.rules", &[("uploads", &q.uploads_day.to_string()), ("bytes", &human_size(q.upload_bytes_day))])}
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
