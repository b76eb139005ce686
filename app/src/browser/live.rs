//! The live job stream (`GET /events`) in the browser, through `EventSource` (which reconnects
//! by itself after a network blip).

use std::cell::RefCell;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{EventSource, MessageEvent};

use crate::api::jobs::JobView;

type Listener = Closure<dyn FnMut(MessageEvent)>;

/// Which opening of the stream a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened(u64);

thread_local! {
    // The page's one stream, and which opening it is; closures live as long as it does.
    static STREAM: RefCell<Option<(Opened, EventSource, [Listener; 3])>> = const { RefCell::new(None) };
    static OPENINGS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Opens the stream: `on_job` gets each changed job, `on_resync` is called whenever the page
/// may have missed changes (on connect, on reconnect, after falling behind). The page closes it
/// with what this returns.
pub fn open(on_job: impl Fn(JobView) + 'static, on_resync: impl Fn() + 'static) -> Opened {
    let opened = Opened(OPENINGS.with(|n| {
        n.set(n.get() + 1);
        n.get()
    }));
    end();
    let Ok(source) = EventSource::new("/events") else { return opened };
    let job = Listener::new(move |event: MessageEvent| {
        if let Some(view) = event.data().as_string().and_then(|text| serde_json::from_str::<JobView>(&text).ok()) {
            on_job(view);
        }
    });
    let resync = Listener::new(move |_| on_resync());
    // The session ended (logged out elsewhere, the account disabled): the page goes to the login
    // page at once rather than showing what it may no longer act on.
    let signed_out = Listener::new(move |_| {
        // Closed, not dropped: this listener is one of the stream's own closures.
        STREAM.with(|stream| {
            if let Some((_, source, _)) = stream.borrow().as_ref() {
                source.close();
            }
        });
        if let Some(window) = web_sys::window() {
            let here = window.location().pathname().unwrap_or_default();
            let next: String = js_sys::encode_uri_component(&here).into();
            let _ = window.location().assign(&format!("/login?next={next}"));
        }
    });
    let _ = source.add_event_listener_with_callback("job", job.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("resync", resync.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("ready", resync.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("signed_out", signed_out.as_ref().unchecked_ref());
    STREAM.with(|stream| *stream.borrow_mut() = Some((opened, source, [job, resync, signed_out])));
    opened
}

/// Closes the stream `opened`, unless another page has opened its own since: a page that is
/// left is cleaned up after the next one has started.
pub fn close(opened: Opened) {
    let current = STREAM.with(|stream| stream.borrow().as_ref().map(|(o, ..)| *o));
    if current == Some(opened) {
        end();
    }
}

fn end() {
    STREAM.with(|stream| {
        if let Some((_, source, ..)) = stream.borrow_mut().take() {
            source.close();
        }
    });
}
