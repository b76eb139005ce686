//! fal's queue API (README, "fal's API": the queue): submit, status, result, cancel.
//!
//! Status, result and cancel live under the app's `owner/alias` path with any sub-path
//! stripped (`fal-ai/nano-banana/edit` is polled at `fal-ai/nano-banana/requests/{id}`), as the
//! official clients build them.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::client::{FalClient, authorization, join, transport};
use super::{FalError, FalKey};

/// What a submit answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    pub request_id: String,
    pub queue_position: Option<u64>,
}

/// A queued request's state. fal has no FAILED status: a failure is COMPLETED with an error.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueStatus {
    InQueue { position: Option<u64> },
    InProgress { logs: Vec<String> },
    Completed { error: Option<String>, error_type: Option<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Requested,
    AlreadyCompleted,
    NotFound,
}

/// The app part of an endpoint id: `owner/alias`, or `ns/owner/alias` for the `workflows` and
/// `comfy` namespaces.
pub fn app_path(endpoint_id: &str) -> String {
    let parts: Vec<&str> = endpoint_id.trim_matches('/').split('/').collect();
    let take = if matches!(parts.first(), Some(&"workflows" | &"comfy")) { 3 } else { 2 };
    parts.into_iter().take(take).collect::<Vec<_>>().join("/")
}

impl FalClient {
    /// `POST {queue}/{endpoint_id}[?fal_webhook=…]` with the model input as the body.
    pub async fn submit(
        &self,
        key: &FalKey,
        endpoint_id: &str,
        input: &Value,
        webhook: Option<&Url>,
        keep_outputs_secs: u64,
    ) -> Result<Submitted, FalError> {
        #[derive(Deserialize)]
        struct Response {
            request_id: String,
            queue_position: Option<u64>,
        }
        let mut url = join(&self.config().queue_url, endpoint_id);
        if let Some(webhook) = webhook {
            url.query_pairs_mut().append_pair("fal_webhook", webhook.as_str());
        }
        let lifecycle = serde_json::json!({ "expiration_duration_seconds": keep_outputs_secs }).to_string();
        let response = self
            .http()
            .post(url)
            .header(reqwest::header::AUTHORIZATION, authorization(key))
            .header("x-fal-object-lifecycle-preference", lifecycle)
            .json(input)
            .send()
            .await
            .map_err(transport)?;
        let body: Response = read_json(response, false).await?;
        Ok(Submitted { request_id: body.request_id, queue_position: body.queue_position })
    }

    pub async fn status(&self, key: &FalKey, endpoint_id: &str, request_id: &str) -> Result<QueueStatus, FalError> {
        let mut url = self.request_url(endpoint_id, request_id, "/status");
        url.query_pairs_mut().append_pair("logs", "1");
        let response = self.send(reqwest::Method::GET, url, key).await?;
        let body: Value = read_json(response, false).await?;
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        match body.get("status").and_then(Value::as_str) {
            Some("IN_QUEUE") => {
                Ok(QueueStatus::InQueue { position: body.get("queue_position").and_then(Value::as_u64) })
            }
            Some("IN_PROGRESS") => Ok(QueueStatus::InProgress { logs: log_lines(&body) }),
            Some("COMPLETED") => Ok(QueueStatus::Completed { error: text("error"), error_type: text("error_type") }),
            other => Err(FalError::Decode(format!("unknown queue status {other:?}"))),
        }
    }

    /// The model's output JSON, or the error a failed request ended with.
    pub async fn result(&self, key: &FalKey, endpoint_id: &str, request_id: &str) -> Result<Value, FalError> {
        let url = self.request_url(endpoint_id, request_id, "");
        let response = self.send(reqwest::Method::GET, url, key).await?;
        read_json(response, false).await
    }

    pub async fn cancel(&self, key: &FalKey, endpoint_id: &str, request_id: &str) -> Result<CancelOutcome, FalError> {
        let url = self.request_url(endpoint_id, request_id, "/cancel");
        let response = self.send(reqwest::Method::PUT, url, key).await?;
        match response.status().as_u16() {
            200..=299 => Ok(CancelOutcome::Requested),
            400 => Ok(CancelOutcome::AlreadyCompleted),
            404 => Ok(CancelOutcome::NotFound),
            _ => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.map_err(transport)?;
                Err(FalError::from_response(status, &headers, &body, false))
            }
        }
    }
}

impl FalClient {
    /// `{queue}/{owner/alias}/requests/{id}{suffix}`.
    fn request_url(&self, endpoint_id: &str, request_id: &str, suffix: &str) -> Url {
        join(&self.config().queue_url, &format!("{}/requests/{request_id}{suffix}", app_path(endpoint_id)))
    }

    async fn send(&self, method: reqwest::Method, url: Url, key: &FalKey) -> Result<reqwest::Response, FalError> {
        self.http()
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, authorization(key))
            .send()
            .await
            .map_err(transport)
    }
}

/// Largest answer read from the queue: outputs come as URLs, so a result is small; an endless
/// body must not grow memory without bound.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
    platform: bool,
) -> Result<T, FalError> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(FalError::Decode(format!("the answer is larger than {MAX_ANSWER_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(FalError::from_response(status.as_u16(), &headers, &body, platform));
    }
    serde_json::from_slice(&body).map_err(|e| FalError::Decode(e.to_string()))
}

fn log_lines(status: &Value) -> Vec<String> {
    status
        .get("logs")
        .and_then(Value::as_array)
        .map(|logs| logs.iter().filter_map(|l| l.get("message").and_then(Value::as_str)).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::app_path;

    #[test]
    fn status_paths_drop_the_sub_path() {
        assert_eq!(app_path("fal-ai/nano-banana/edit"), "fal-ai/nano-banana");
        assert_eq!(app_path("fal-ai/kling-video/v2.1/standard/image-to-video"), "fal-ai/kling-video");
        assert_eq!(app_path("fal-ai/flux/dev"), "fal-ai/flux");
        assert_eq!(app_path("workflows/acme/pipeline/run"), "workflows/acme/pipeline");
    }
}
