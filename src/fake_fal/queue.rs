//! The queue API (README, "fal's API": the queue) of the fake: submit, status, result, cancel, with a
//! scripted life for every request and its webhook deliveries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::auth::{Account, account};
use super::{FakeState, FalRequest, Outcome, Scenario};

/// Every queue route: `POST /queue/{endpoint…}` submits; `…/requests/{id}[/status|/cancel]`
/// reads or cancels, whatever prefix the client used (README, "fal's API": the queue).
pub async fn route(
    State(state): State<Arc<FakeState>>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match account(&headers) {
        Err(refusal) => return queue_refusal(refusal),
        Ok(Account::Locked) if method == Method::POST => {
            let detail = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.";
            return (StatusCode::FORBIDDEN, Json(json!({ "detail": detail }))).into_response();
        }
        Ok(_) => {}
    }
    let segments: Vec<&str> = path.split('/').collect();
    let requests_at = segments.iter().rposition(|s| *s == "requests");
    match (method, requests_at) {
        (Method::POST, None) => submit(&state, &path, query.as_deref(), &headers, &body).await,
        (Method::GET, Some(at)) if segments.len() == at + 3 && segments[at + 2] == "status" => {
            status(&state, segments[at + 1])
        }
        (Method::GET, Some(at)) if segments.len() == at + 2 => result(&state, segments[at + 1]),
        (Method::PUT, Some(at)) if segments.len() == at + 3 && segments[at + 2] == "cancel" => {
            cancel(&state, segments[at + 1])
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({ "detail": "Not Found" }))).into_response(),
    }
}

fn queue_refusal(refusal: super::auth::Refusal) -> Response {
    let detail = match refusal {
        super::auth::Refusal::Malformed => "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'.",
        super::auth::Refusal::Missing | super::auth::Refusal::Unknown => "No user found for Key ID and Secret",
    };
    (StatusCode::UNAUTHORIZED, Json(json!({ "detail": detail }))).into_response()
}

async fn submit(
    state: &Arc<FakeState>,
    endpoint: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Ok(input) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "detail": [{ "loc": ["body"], "msg": "Invalid JSON", "type": "value_error" }] })),
        )
            .into_response();
    };
    let scenario = {
        let mut scripts = state.scripts.lock().expect("script lock");
        match scripts.front_mut() {
            Some(next) if next.submit_failures > 0 => {
                next.submit_failures -= 1;
                None
            }
            // Unscripted, a video model answers with a real (decodable) video, as fal's do.
            _ => Some(scripts.pop_front().unwrap_or_else(|| {
                if endpoint.contains("-to-video") {
                    Scenario { outcome: Outcome::Clip, ..Scenario::default() }
                } else {
                    Scenario::default()
                }
            })),
        }
    };
    let Some(scenario) = scenario else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("x-fal-error-type", "runner_scheduling_failure")],
            Json(json!({ "detail": "No runner available", "error_type": "runner_scheduling_failure" })),
        )
            .into_response();
    };

    let webhook = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "fal_webhook").map(|(_, v)| v.into_owned())
    });
    let id = uuid::Uuid::new_v4().to_string();
    let (input_field, image_urls): (Option<&'static str>, Vec<String>) =
        match (input.get("image_urls").and_then(Value::as_array), input.get("image_url").and_then(Value::as_str)) {
            (Some(urls), _) => (Some("image_urls"), urls.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            (None, Some(url)) => (Some("image_url"), vec![url.to_owned()]),
            (None, None) => (None, Vec::new()),
        };
    let request = FalRequest {
        id: id.clone(),
        endpoint: endpoint.to_owned(),
        input: input.clone(),
        webhook: webhook.clone(),
        lifecycle: headers.get("x-fal-object-lifecycle-preference").and_then(|v| v.to_str().ok()).map(str::to_owned),
        scenario: scenario.clone(),
        started: Instant::now(),
        canceled: false,
        input_fetches: Vec::new(),
        inputs_fetched: image_urls.is_empty(),
        input_field,
    };
    state.requests.lock().expect("request lock").insert(id.clone(), request);

    // Like a model would, fetch the inputs when the run starts (and record whether that worked).
    let fetcher = state.clone();
    let fetch_id = id.clone();
    let queued_for = Duration::from_millis(scenario.queue_ms);
    tokio::spawn(async move {
        tokio::time::sleep(queued_for).await;
        for url in image_urls {
            let status = match fetcher.client().get(&url).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            if let Some(r) = fetcher.requests.lock().expect("request lock").get_mut(&fetch_id) {
                r.input_fetches.push((url, status));
            }
        }
        if let Some(r) = fetcher.requests.lock().expect("request lock").get_mut(&fetch_id) {
            r.inputs_fetched = true;
        }
    });
    if let Some(webhook) = webhook {
        tokio::spawn(super::webhooks::deliver_when_done(state.clone(), id.clone(), webhook));
    }
    // Accepted (it runs whatever happens to this answer), then answered after a while.
    tokio::time::sleep(Duration::from_millis(scenario.submit_ms)).await;
    let base = state.base_url();
    let app = app_path(endpoint);
    let at = format!("{base}/queue/{app}/requests/{id}");
    Json(json!({
        "status": "IN_QUEUE",
        "request_id": id,
        "response_url": at,
        "status_url": format!("{at}/status"),
        "cancel_url": format!("{at}/cancel"),
        "logs": null,
        "metrics": {},
        "queue_position": 0,
    }))
    .into_response()
}

fn app_path(endpoint: &str) -> String {
    endpoint.split('/').take(2).collect::<Vec<_>>().join("/")
}

/// Where a request is in its scripted life.
pub enum Phase {
    Queued,
    Running,
    Done,
}

pub fn phase(request: &FalRequest) -> Phase {
    let elapsed = request.started.elapsed();
    let Scenario { queue_ms, run_ms, .. } = request.scenario;
    if request.canceled {
        Phase::Done
    } else if elapsed < Duration::from_millis(queue_ms) {
        Phase::Queued
    } else if elapsed < Duration::from_millis(queue_ms + run_ms) || !request.inputs_fetched {
        Phase::Running
    } else {
        Phase::Done
    }
}

fn status(state: &Arc<FakeState>, id: &str) -> Response {
    let requests = state.requests.lock().expect("request lock");
    let Some(request) = requests.get(id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "detail": "Request not found" }))).into_response();
    };
    let response_url = format!("{}/queue/{}/requests/{id}", state.base_url(), app_path(&request.endpoint));
    let body = match phase(request) {
        Phase::Queued => {
            json!({ "status": "IN_QUEUE", "request_id": id, "queue_position": 1, "response_url": response_url })
        }
        Phase::Running => json!({
            "status": "IN_PROGRESS", "request_id": id, "response_url": response_url,
            "logs": [{ "message": "Generating…", "timestamp": "2026-01-01T00:00:00Z" }],
        }),
        Phase::Done => {
            let mut done = json!({ "status": "COMPLETED", "request_id": id, "response_url": response_url, "logs": null, "metrics": { "inference_time": 0.42 } });
            if request.canceled {
                done["error"] = json!("Request was cancelled");
                done["error_type"] = json!("client_cancelled");
            } else if let Some((_, error_type, message)) = failure(request) {
                done["error"] = json!(message);
                done["error_type"] = json!(error_type);
            }
            done
        }
    };
    Json(body).into_response()
}

fn result(state: &Arc<FakeState>, id: &str) -> Response {
    let requests = state.requests.lock().expect("request lock");
    let Some(request) = requests.get(id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "detail": "Request not found" }))).into_response();
    };
    if !matches!(phase(request), Phase::Done) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "detail": "Request is still in progress" }))).into_response();
    }
    let (status, body) = outcome_body(&state.base_url(), request);
    (status, [("x-fal-request-id", id.to_owned())], Json(body)).into_response()
}

/// A failed outcome's (status, error_type, message), or `None` for a success.
pub fn failure(request: &FalRequest) -> Option<(u16, &'static str, String)> {
    if unreadable_input(request).is_some() {
        return Some((422, "file_download_error", "Invalid status code: 422".into()));
    }
    match &request.scenario.outcome {
        Outcome::ContentPolicy => Some((422, "content_policy_violation", "Invalid status code: 422".into())),
        Outcome::Invalid { .. } => Some((422, "value_error", "Invalid status code: 422".into())),
        Outcome::Timeout => Some((504, "request_timeout", "Request timed out".into())),
        _ => None,
    }
}

/// The location (`["body", field, index]`) of the first input the model could not download.
fn unreadable_input(request: &FalRequest) -> Option<Value> {
    let at = request.input_fetches.iter().position(|(_, status)| !(200..300).contains(status))?;
    Some(match request.input_field {
        Some("image_url") => json!(["body", "image_url"]),
        field => json!(["body", field.unwrap_or("image_urls"), at]),
    })
}

/// The result body (or error body) of a finished request.
pub fn outcome_body(base: &str, request: &FalRequest) -> (StatusCode, Value) {
    let files = format!("{base}/files/{}", request.id);
    if request.canceled {
        let status = StatusCode::from_u16(499).expect("499 is a valid status");
        return (status, json!({ "detail": "Request cancelled", "error_type": "client_cancelled" }));
    }
    if let Some(loc) = unreadable_input(request) {
        let detail = json!([{ "loc": loc, "msg": "Failed to download the file. Please check if the URL is accessible.", "type": "file_download_error", "url": "https://docs.fal.ai/errors#file_download_error" }]);
        return (StatusCode::UNPROCESSABLE_ENTITY, json!({ "detail": detail }));
    }
    match &request.scenario.outcome {
        Outcome::Images { count, width, height } => {
            let images: Vec<Value> = (0..*count)
                .map(|n| {
                    // Some outputs omit the optional fields, as fal's schemas allow.
                    if n % 2 == 0 {
                        json!({ "url": format!("{files}/{n}.png?w={width}&h={height}"), "content_type": "image/png", "file_name": format!("{n}.png"), "width": width, "height": height })
                    } else {
                        json!({ "url": format!("{files}/{n}.png?w={width}&h={height}") })
                    }
                })
                .collect();
            (
                StatusCode::OK,
                json!({ "images": images, "description": "A fake result", "has_nsfw_concepts": vec![false; *count as usize] }),
            )
        }
        Outcome::Video { bytes, .. } => (
            StatusCode::OK,
            json!({ "video": { "url": format!("{files}/0.mp4?bytes={bytes}"), "content_type": "video/mp4", "file_size": bytes } }),
        ),
        Outcome::Clip => (
            StatusCode::OK,
            json!({ "video": { "url": format!("{files}/0.mp4?clip=1"), "content_type": "video/mp4", "file_size": super::media::CLIP.len() } }),
        ),
        Outcome::Url(url) => (StatusCode::OK, json!({ "image": { "url": url } })),
        Outcome::ContentPolicy => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": [{ "loc": ["body", "prompt"], "msg": "The content could not be processed because it contained material flagged by a content checker.", "type": "content_policy_violation", "url": "https://docs.fal.ai/errors#content_policy_violation" }] }),
        ),
        Outcome::Invalid { field, message } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": [{ "loc": ["body", field], "msg": message, "type": "value_error" }] }),
        ),
        Outcome::Timeout => {
            (StatusCode::GATEWAY_TIMEOUT, json!({ "detail": "Request timed out", "error_type": "request_timeout" }))
        }
    }
}

fn cancel(state: &Arc<FakeState>, id: &str) -> Response {
    let mut requests = state.requests.lock().expect("request lock");
    let Some(request) = requests.get_mut(id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "status": "NOT_FOUND" }))).into_response();
    };
    match phase(request) {
        Phase::Done => (StatusCode::BAD_REQUEST, Json(json!({ "status": "ALREADY_COMPLETED" }))).into_response(),
        Phase::Queued | Phase::Running => {
            request.canceled = true;
            (StatusCode::ACCEPTED, Json(json!({ "status": "CANCELLATION_REQUESTED" }))).into_response()
        }
    }
}
