//! Every signed-in page finishes rendering, however many are asked for at once. A page whose
//! response stalls leaves the browser spinning with half a document and no error anywhere, so
//! each answer here must end, complete, in time; a stalled one reports how far it got and what
//! the server logged about it.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::helpers::TestApp;

/// Rounds of concurrent page loads; `DARKROOM_TEST_PAGE_ROUNDS` raises it for a longer hunt
/// (about 1 page render in 600 to 5,000 stalled while the rest of the suite ran; a stuck render
/// is now started again after 5 s, see `src/render.rs`).
fn rounds() -> usize {
    std::env::var("DARKROOM_TEST_PAGE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}
/// Pages asked for at once (`DARKROOM_TEST_PAGE_AT_ONCE`).
fn at_once() -> usize {
    std::env::var("DARKROOM_TEST_PAGE_AT_ONCE").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

#[tokio::test]
async fn signed_in_pages_always_finish_rendering_under_concurrent_requests() {
    let app = TestApp::spawn().await;
    let admin = app.admin("ada@example.com").await;
    let saved = admin.call("keys/save", &[("key", "pages-test:secret-value-1234")]).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let paths = ["/account", "/create", "/gallery", "/admin"];
    let mut stalled = Vec::new();
    for round in 0..rounds() {
        let answers = futures::stream::iter((0..at_once()).map(|i| {
            let path = paths[(round + i) % paths.len()];
            let request = admin.http.get(format!("{}{path}", app.base)).timeout(Duration::from_secs(10));
            async move {
                let mut got = Vec::new();
                let mut id = String::new();
                let outcome = async {
                    let mut response = request.send().await?;
                    id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                    let status = response.status();
                    while let Some(chunk) = response.chunk().await? {
                        got.extend_from_slice(&chunk);
                    }
                    Ok::<_, reqwest::Error>((status, String::from_utf8_lossy(&got).into_owned()))
                }
                .await;
                let outcome = outcome.map_err(|e| {
                    let text = String::from_utf8_lossy(&got);
                    let log = if id.is_empty() {
                        "(no answer, so no request id)".to_owned()
                    } else {
                        crate::helpers::lines_about(&id)
                    };
                    format!(
                        "{e:?} after {} bytes ending …{}\nlog:\n{log}",
                        got.len(),
                        &text[text.len().saturating_sub(100)..],
                    )
                });
                (path, outcome)
            }
        }))
        .buffer_unordered(at_once())
        .collect::<Vec<_>>()
        .await;
        for (path, outcome) in answers {
            match outcome {
                Ok((status, body)) => {
                    assert_eq!(status, StatusCode::OK, "{path}");
                    assert!(body.contains("</html>"), "{path} ended before the document did");
                }
                Err(e) => stalled.push(format!("round {round} {path}: {e}")),
            }
        }
    }
    let restarted = crate::helpers::captured_logs().matches("rendering it again").count();
    eprintln!("{} page loads; renders started again so far in this process: {restarted}", rounds() * at_once());
    assert!(
        stalled.is_empty(),
        "{} of {} pages never finished:\n{}",
        stalled.len(),
        rounds() * at_once(),
        stalled.join("\n")
    );
}
