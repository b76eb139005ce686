//! The upload queue: each file the user gave, where it is in its journey (hashing, uploading,
//! verifying, ready), and the actions on it. The work itself runs in the browser
//! (`browser::upload`); on the server the queue is only ever empty.

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
    pub fn label(&self, l: crate::messages::Locale) -> String {
        use crate::messages::{t, tf};
        match self {
            Self::Hashing => t(l, "upload.preparing").into(),
            Self::Uploading(percent) => tf(l, "upload.uploading", &[("percent", &percent.to_string())]),
            Self::Retrying { attempt, of } => {
                tf(l, "upload.retrying", &[("attempt", &attempt.to_string()), ("max", &of.to_string())])
            }
            Self::Verifying => t(l, "upload.verifying").into(),
            Self::Ready => t(l, "upload.ready").into(),
            Self::Failed(message) => message.clone(),
            Self::Canceled => t(l, "job.canceled").into(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Self::Hashing | Self::Uploading(_) | Self::Retrying { .. } | Self::Verifying)
    }

    pub fn percent(&self) -> u8 {
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

    /// Queues images pasted anywhere on the page while the component lives.
    pub fn take_pastes(self) {
        #[cfg(feature = "hydrate")]
        {
            let paste =
                window_event_listener(leptos::ev::paste, move |ev| crate::browser::upload::from_paste(self, &ev));
            // The handle does not remove the listener when dropped; without this every visit adds one.
            on_cleanup(move || paste.remove());
        }
    }

    /// Queues the images dropped on the drop zone.
    pub fn take_drop(self, event: &leptos::web_sys::DragEvent) {
        #[cfg(feature = "hydrate")]
        crate::browser::upload::from_drop(self, event);
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    }

    /// Queues the images picked in the file input.
    pub fn take_picked(self, input: &leptos::web_sys::HtmlInputElement) {
        #[cfg(feature = "hydrate")]
        crate::browser::upload::from_input(self, input);
        #[cfg(not(feature = "hydrate"))]
        let _ = input;
    }

    /// Stops the upload of item `key`.
    pub fn cancel(self, key: u64) {
        #[cfg(feature = "hydrate")]
        crate::browser::upload::cancel(self, key);
        #[cfg(not(feature = "hydrate"))]
        let _ = key;
    }

    /// Takes item `key` off the list (and frees its preview).
    pub fn dismiss(self, key: u64) {
        #[cfg(feature = "hydrate")]
        crate::browser::upload::release_preview(self, key);
        self.items.update(|items| items.retain(|i| i.key != key));
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
