//! Page renders run to their end, even when the browser has gone.
//!
//! A server-rendered page streams out while its data loads; the reactive owner that holds the
//! page's signals is released when that stream finishes. When a client hangs up mid-page (a
//! closed tab, a HEAD, which never reads a body), hyper drops the handler, or the stream, at
//! once, the owner with it, while the page's data loads are still running on other tasks: they
//! then touch signals that no longer exist and panic. Instead, a page is rendered in a task of
//! its own, and a body nobody reads any more is handed to a task that reads it to its natural end
//! (within [`LIMIT`]) and discards it, so every render ends the way it began: in order, inside its
//! owner.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

/// How long an abandoned render may still run.
const LIMIT: Duration = Duration::from_secs(60);

/// A page that has produced nothing in this long is stuck, not slow: pages take milliseconds.
const STUCK: Duration = Duration::from_secs(5);

pub async fn finish_abandoned(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let page_load = matches!(*request.method(), http::Method::GET | http::Method::HEAD)
        && !path.starts_with("/api/")
        && path != "/events";
    if !page_load {
        return next.run(request).await;
    }
    // Under concurrent load, about one page render in several thousand never wakes again after
    // its data has loaded (inside Leptos's rendering; the `pages` integration test counts them).
    // A page load only reads, so a stuck one is dropped and the page rendered once more, rather
    // than leaving the browser waiting for ever.
    let again = replay(&request);
    let mut first = render(next.clone(), request);
    let joined = match tokio::time::timeout(STUCK, &mut first).await {
        Ok(joined) => joined,
        Err(_) => {
            first.abort();
            metrics::counter!("page_render_restarts_total").increment(1);
            tracing::warn!(%path, "a page render produced nothing in 5 s; rendering it again");
            render(next, again).await
        }
    };
    joined.unwrap_or_else(|err| {
        tracing::error!(%err, "a page render failed");
        http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

fn render(next: Next, request: Request) -> tokio::task::JoinHandle<Response> {
    tokio::spawn(tracing::Instrument::in_current_span(async move { finishing(next.run(request).await) }))
}

/// The same bodiless request again (a page load is a GET or HEAD).
fn replay(request: &Request) -> Request {
    let mut again = Request::new(Body::empty());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    *again.extensions_mut() = request.extensions().clone();
    again
}

/// A page's body that is read to its end whether or not anyone is listening.
fn finishing(response: Response) -> Response {
    let is_page = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_page {
        return response;
    }
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::from_stream(Finishing { body: Some(body.into_data_stream()), ended: false }))
}

struct Finishing {
    body: Option<BodyDataStream>,
    ended: bool,
}

impl Stream for Finishing {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(None) };
        let next = body.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None)) {
            self.ended = true;
        }
        next
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take().filter(|_| !self.ended) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LIMIT, async { while body.next().await.is_some() {} }).await;
        });
    }
}
