//! The upload drop zone and its queue: drop, pick or paste images; each one is hashed in the
//! browser, PUT straight to storage with a progress bar, then confirmed by the server.

use leptos::html;
use leptos::prelude::*;

/// Where one file is in its journey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Hashing,
    Uploading(u8),
    Retrying { attempt: u8, of: u8 },
    Verifying,
    Ready,
    Failed(String),
    Canceled,
}

impl Phase {
    fn label(&self) -> String {
        match self {
            Self::Hashing => "Preparing…".into(),
            Self::Uploading(percent) => format!("Uploading {percent}%"),
            Self::Retrying { attempt, of } => format!("Connection lost, retrying ({attempt}/{of})…"),
            Self::Verifying => "Checking the image…".into(),
            Self::Ready => "Ready".into(),
            Self::Failed(message) => message.clone(),
            Self::Canceled => "Canceled".into(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Self::Hashing | Self::Uploading(_) | Self::Retrying { .. } | Self::Verifying)
    }

    fn percent(&self) -> u8 {
        match self {
            Self::Uploading(p) => *p,
            Self::Verifying | Self::Ready => 100,
            _ => 0,
        }
    }
}

/// One file in the queue.
#[derive(Clone)]
pub struct Item {
    pub key: u64,
    pub name: String,
    pub size: u64,
    /// A local `blob:` URL for the preview; never leaves the browser.
    pub preview: Option<String>,
    pub phase: RwSignal<Phase>,
    /// The stored image's id once it is ready: its row leaves the queue when the image shows
    /// in the grid, so each upload is shown once.
    pub upload_id: RwSignal<Option<String>>,
}

/// The queue, and a counter that moves each time an image becomes ready (lists refetch on it).
#[derive(Clone, Copy)]
pub struct Queue {
    pub items: RwSignal<Vec<Item>>,
    pub completed: RwSignal<u64>,
}

impl Queue {
    pub fn new() -> Self {
        Self { items: RwSignal::new(Vec::new()), completed: RwSignal::new(0) }
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub const ACCEPT: &str = "image/jpeg,image/png,image/webp,image/heic,image/heif,image/avif,.heic,.heif,.avif";

#[component]
pub fn Uploader(queue: Queue) -> impl IntoView {
    let input = NodeRef::<html::Input>::new();
    let dragging = RwSignal::new(false);

    #[cfg(feature = "hydrate")]
    {
        let paste = window_event_listener(leptos::ev::paste, move |ev| crate::browser::upload::from_paste(queue, &ev));
        // The handle does not remove the listener when dropped; without this every visit adds one.
        on_cleanup(move || paste.remove());
    }

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
                #[cfg(feature = "hydrate")]
                crate::browser::upload::from_drop(queue, &ev);
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
                    #[cfg(feature = "hydrate")]
                    if let Some(input) = input.get() {
                        crate::browser::upload::from_input(queue, &input);
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
                        <button type="button" class="link" on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            crate::browser::upload::cancel(queue, key);
                        }>"Cancel"</button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button type="button" class="link" aria-label="Dismiss" on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            crate::browser::upload::release_preview(queue, key);
                            queue.items.update(|items| items.retain(|i| i.key != key));
                        }>"Dismiss"</button>
                    }
                    .into_any()
                }
            }}
        </li>
    }
}
