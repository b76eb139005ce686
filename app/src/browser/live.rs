//! The live job stream (`GET /events`) in the browser, through `EventSource` (which reconnects
//! by itself after a network blip).

use std::cell::RefCell;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{EventSource, MessageEvent};

use crate::api::jobs::JobView;

type Listener = Closure<dyn FnMut(MessageEvent)>;

thread_local! {
    // The page's one stream; closures live as long as it does.
    static STREAM: RefCell<Option<(EventSource, Listener, Listener)>> = const { RefCell::new(None) };
}

/// Opens the stream: `on_job` gets each changed job, `on_resync` is called whenever the page
/// may have missed changes (on connect, on reconnect, after falling behind).
pub fn open(on_job: impl Fn(JobView) + 'static, on_resync: impl Fn() + 'static) {
    close();
    let Ok(source) = EventSource::new("/events") else { return };
    let job = Listener::new(move |event: MessageEvent| {
        if let Some(view) = event.data().as_string().and_then(|text| serde_json::from_str::<JobView>(&text).ok()) {
            on_job(view);
        }
    });
    let resync = Listener::new(move |_| on_resync());
    let _ = source.add_event_listener_with_callback("job", job.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("resync", resync.as_ref().unchecked_ref());
    let _ = source.add_event_listener_with_callback("ready", resync.as_ref().unchecked_ref());
    STREAM.with(|stream| *stream.borrow_mut() = Some((source, job, resync)));
}

pub fn close() {
    STREAM.with(|stream| {
        if let Some((source, ..)) = stream.borrow_mut().take() {
            source.close();
        }
    });
}
