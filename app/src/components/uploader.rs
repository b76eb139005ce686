//! The upload drop zone and its queue: drop, pick or paste images; each one is hashed in the
//! browser, PUT straight to storage with a progress bar, then confirmed by the server.

use leptos::html;
use leptos::prelude::*;

pub use crate::upload_queue::{ACCEPT, Item, Phase, Queue, human_size};

#[component]
pub fn Uploader(queue: Queue) -> impl IntoView {
    let input = NodeRef::<html::Input>::new();
    let dragging = RwSignal::new(false);

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
                <span class="on-desktop">"Drop images here, paste them, or"</span>
                <span class="on-touch">"Take a photo or pick one from your library"</span>
            </p>
            <button type="button" class="primary" on:click=move |_| {
                if let Some(input) = input.get() {
                    input.click();
                }
            }>"Choose images"</button>
            <p class="muted small" id="dropzone-help">
                "JPEG, PNG, WebP, HEIC or AVIF, up to 16 MB each. Location and camera data are removed before anything is kept."
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
        <ul class="queue" aria-label="Uploads" aria-live="polite">
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
                    aria-label=format!("Upload of {}", item.name)
                    data-testid="upload-progress"
                ></progress>
                <p class="queue-status" class:error=failed data-testid="upload-status">{move || phase.get().label()}</p>
            </div>
            {move || {
                if phase.get().is_active() {
                    view! {
                        <button type="button" class="link" on:click=move |_| queue.cancel(key)>"Cancel"</button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button type="button" class="link" aria-label="Dismiss" on:click=move |_| {
                            queue.dismiss(key)
                        }>"Dismiss"</button>
                    }
                    .into_any()
                }
            }}
        </li>
    }
}
