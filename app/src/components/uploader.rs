//! The upload drop zone and its queue: drop, pick or paste images; each one is hashed in the
//! browser, PUT straight to storage with a progress bar, then confirmed by the server.

use leptos::html;
use leptos::prelude::*;

use crate::messages::{t, tf, use_locale};
pub use crate::upload_queue::{ACCEPT, Item, Phase, Queue, human_size};

#[component]
pub fn Uploader(queue: Queue) -> impl IntoView {
    let input = NodeRef::<html::Input>::new();
    let dragging = RwSignal::new(false);
    let l = use_locale();

    queue.take_pastes();

    view! {
        <div
            class="dropzone"
            class:dragging=move || dragging.get()
            data-testid="dropzone"
            on:dragover=move |ev| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                dragging.set(false);
                queue.take_drop(&ev);
            }
        >
            <p class="dropzone-title">
                <span class="on-desktop">{t(l, "upload.drop_here")}</span>
                <span class="on-touch">{t(l, "upload.take_photo")}</span>
            </p>
            <button type="button" class="primary" on:click=move |_| {
                if let Some(input) = input.get() {
                    input.click();
                }
            }>{t(l, "upload.choose")}</button>
            <p class="muted small" id="dropzone-help">
                {t(l, "upload.help")}
            </p>
            <input
                node_ref=input
                id="upload-input"
                class="visually-hidden"
                type="file"
                multiple
                accept=ACCEPT
                aria-describedby="dropzone-help"
                tabindex="-1"
                on:change=move |_ev| {
                    if let Some(input) = input.get() {
                        queue.take_picked(&input);
                    }
                }
            />
        </div>
        <ul class="queue" aria-label=t(l, "upload.uploads") aria-live="polite">
            <For each=move || queue.items.get() key=|item| item.key let:item>
                <QueueRow item queue />
            </For>
        </ul>
    }
    .into_any()
}

#[component]
fn QueueRow(item: Item, queue: Queue) -> impl IntoView {
    let phase = item.phase;
    let key = item.key;
    let failed = move || matches!(phase.get(), Phase::Failed(_));
    let l = use_locale();
    view! {
        <li class="queue-item" class:failed=failed data-testid="upload-item">
            {item.preview.map(|src| view! { <img class="thumb" src=src alt="" /> })}
            <div class="queue-body">
                <p class="queue-name">
                    <span class="name">{item.name.clone()}</span>
                    <span class="muted small">{human_size(item.size)}</span>
                </p>
                <progress
                    max="100"
                    value=move || phase.get().percent().to_string()
                    aria-label=tf(l, "upload.upload_of", &[("name", &item.name)])
                    data-testid="upload-progress"
                ></progress>
                <p class="queue-status" class:error=failed data-testid="upload-status">{move || phase.get().label(l)}</p>
            </div>
            {move || {
                if phase.get().is_active() {
                    view! {
                        <button type="button" class="link" on:click=move |_| queue.cancel(key)>{t(l, "common.cancel")}</button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button type="button" class="link" aria-label=t(l, "common.dismiss") on:click=move |_| {
                            queue.dismiss(key)
                        }>{t(l, "common.dismiss")}</button>
                    }
                    .into_any()
                }
            }}
        </li>
    }
}
