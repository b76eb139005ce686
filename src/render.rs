//! Page renders run to their end, in a task of their own, and a stuck one is rendered again.
//!
//! A server-rendered page is produced while its data loads; the reactive owner that holds the
//! page's signals is released when that production ends. When a client hangs up mid-page (a
//! closed tab, a HEAD, which never reads a body), hyper drops the handler at once, the owner with
//! it, while the page's data loads are still running on other tasks: they then touch signals that
//! no longer exist and panic. So a page is rendered in a spawned task that reads its whole body,
//! whether or not anyone is still listening, and every render ends the way it began: in order,
//! inside its owner.
//!
//! Under concurrent load, about one page render in several thousand never wakes again once its
//! data has loaded: a lost wake-up inside Leptos's suspense streaming, seen both before the first
//! byte and in the middle of the body. A page load only reads, so a render that makes no progress
//! for [`STUCK`] is dropped and the page rendered once more. That is why the body is gathered
//! before the answer starts: bytes already sent could not be taken back. Pages take milliseconds
//! and are tens of kilobytes, so the browser loses nothing it would notice.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// A page that has made no progress in this long is stuck, not slow: pages take milliseconds.
const STUCK: Duration = Duration::from_secs(5);

/// Renders of one page load before giving up (each stuck one is dropped).
const ATTEMPTS: usize = 3;

/// Pages are ours and small; a body larger than this is not buffered but streamed as it comes.
const MAX_BUFFERED: usize = 8 << 20;

pub async fn finish_abandoned(request: Request, next: Next) -> Response {
    render_page(request, next, STUCK).await
}

async fn render_page(request: Request, next: Next, stuck: Duration) -> Response {
    let path = request.uri().path().to_owned();
    let page_load = matches!(*request.method(), http::Method::GET | http::Method::HEAD)
        && !path.starts_with("/api/")
        && path != "/events";
    if !page_load {
        return next.run(request).await;
    }
    let mut request = Some(request);
    for attempt in 1..=ATTEMPTS {
        // The last render keeps the original request; earlier ones run on a copy.
        let this = if attempt == ATTEMPTS {
            request.take().expect("kept for the last attempt")
        } else {
            replay(request.as_ref().expect("kept"))
        };
        let mut task = tokio::spawn(tracing::Instrument::in_current_span(whole(next.clone(), this, stuck)));
        match (&mut task).await {
            Ok(Rendered::Whole(response)) => return response,
            Ok(Rendered::Stuck) => {
                metrics::counter!("page_render_restarts_total").increment(1);
                tracing::warn!(%path, attempt, "a page render made no progress in {stuck:?}; rendering it again");
            }
            Err(err) => {
                tracing::error!(%err, "a page render failed");
                return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    tracing::error!(%path, "a page render was stuck {ATTEMPTS} times");
    let mut response = http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

enum Rendered {
    Whole(Response),
    Stuck,
}

/// Runs the handler and, for an HTML page, reads its body to the end, giving up when no new
/// part has come for `stuck`.
async fn whole(next: Next, request: Request, stuck: Duration) -> Rendered {
    let Ok(response) = tokio::time::timeout(stuck, next.run(request)).await else { return Rendered::Stuck };
    let is_page = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_page {
        return Rendered::Whole(response);
    }
    let (mut parts, body) = response.into_parts();
    let mut body = body.into_data_stream();
    let mut gathered = Vec::new();
    loop {
        match tokio::time::timeout(stuck, body.next()).await {
            Err(_) => return Rendered::Stuck,
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => {
                gathered.extend_from_slice(&chunk);
                if gathered.len() > MAX_BUFFERED {
                    let head = futures::stream::once(async move { Ok::<_, axum::Error>(Bytes::from(gathered)) });
                    return Rendered::Whole(Response::from_parts(parts, Body::from_stream(head.chain(body))));
                }
            }
            Ok(Some(Err(err))) => {
                tracing::error!(%err, "a page's body failed");
                return Rendered::Whole(http::StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        }
    }
    // The length is known now; the streaming headers no longer apply.
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(gathered.len()));
    Rendered::Whole(Response::from_parts(parts, Body::from(gathered)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    const QUICK: Duration = Duration::from_millis(200);

    /// A page whose first `stalls` renders send their start and then never another byte, the way
    /// the stuck Leptos renders do.
    fn app(stalls: usize) -> (Router, Arc<AtomicUsize>) {
        let renders = Arc::new(AtomicUsize::new(0));
        let counted = renders.clone();
        let page = move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let start = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"<html><body>"))]);
                let rest: futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> = if n < stalls {
                    futures::stream::pending().boxed()
                } else {
                    futures::stream::iter([Ok(Bytes::from_static(b"render done</body></html>"))]).boxed()
                };
                ([(http::header::CONTENT_TYPE, "text/html; charset=utf-8")], Body::from_stream(start.chain(rest)))
            }
        };
        let router = Router::new()
            .route("/page", get(page))
            .layer(from_fn(|request: Request, next: Next| render_page(request, next, QUICK)));
        (router, renders)
    }

    async fn load(router: Router) -> (http::StatusCode, String) {
        let response = router.oneshot(Request::get("/page").body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_page_stuck_in_the_middle_of_its_body_is_rendered_again() {
        let (router, renders) = app(1);
        let (status, body) = load(router).await;
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(
            body, "<html><body>render done</body></html>",
            "the browser gets one whole page, not the stuck start"
        );
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_that_never_finishes_answers_503_instead_of_hanging() {
        let (router, renders) = app(usize::MAX);
        let (status, _) = load(router).await;
        assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(renders.load(Ordering::SeqCst), ATTEMPTS);
    }

    #[tokio::test]
    async fn a_healthy_page_is_rendered_once_with_its_length() {
        let (router, renders) = app(0);
        let response = router.oneshot(Request::get("/page").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.headers().get(http::header::CONTENT_LENGTH).unwrap(), "37");
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }
}
