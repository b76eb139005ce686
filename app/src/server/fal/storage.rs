//! fal's own storage (README, "fal's API": storage): a copy of an input image for a fal that cannot
//! reach this server. `POST {rest}/storage/upload/initiate` with the user's key and a lifecycle
//! that deletes the copy, then a `PUT` of the bytes to the presigned URL it answers.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::FalKey;
use super::client::{FalClient, authorization, join, transport};
use super::error::FalError;
use super::queue::read_json;

/// Longest an upload of one input may take (the API timeout is for small JSON answers).
const PUT_TIMEOUT: Duration = Duration::from_secs(300);

impl FalClient {
    /// Copies `bytes` into fal's storage for `keep` and answers the URL a model input may name.
    pub async fn upload(
        &self,
        key: &FalKey,
        bytes: Vec<u8>,
        content_type: &str,
        file_name: &str,
        keep: Duration,
    ) -> Result<Url, FalError> {
        #[derive(Deserialize)]
        struct Initiated {
            upload_url: String,
            file_url: String,
        }
        let mut url = join(&self.config().rest_url, "storage/upload/initiate");
        url.query_pairs_mut().append_pair("storage_type", "fal-cdn-v3");
        let lifecycle = serde_json::json!({ "expiration_duration_seconds": keep.as_secs() }).to_string();
        let response = self
            .http()
            .post(url)
            .header(reqwest::header::AUTHORIZATION, authorization(key))
            .header("x-fal-object-lifecycle", lifecycle)
            .json(&serde_json::json!({ "content_type": content_type, "file_name": file_name }))
            .send()
            .await
            .map_err(transport)?;
        let initiated: Initiated = read_json(response, false).await?;
        let upload_url = self.storage_url(&initiated.upload_url)?;
        let file_url = self.storage_url(&initiated.file_url)?;
        // The presigned URL is the whole credential: fal's key must not travel with it.
        let stored = self
            .http()
            .put(upload_url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(PUT_TIMEOUT)
            .body(bytes)
            .send()
            .await
            .map_err(transport)?;
        let status = stored.status();
        if !status.is_success() {
            let headers = stored.headers().clone();
            let body = stored.bytes().await.unwrap_or_default();
            let err = FalError::from_response(status.as_u16(), &headers, &body, false);
            // Whatever it says, a refused PUT is storage trouble, not a verdict on the user's key.
            return Err(match err {
                FalError::KeyRejected { message } | FalError::AccountLocked { message } => {
                    FalError::Upstream { status: status.as_u16(), error_type: "storage_upload".into(), message }
                }
                other => other,
            });
        }
        Ok(file_url)
    }

    /// A URL from fal's storage answer: https, as fal's are (plain http only when fal itself is
    /// configured at an http address, which only a test's fake is).
    fn storage_url(&self, raw: &str) -> Result<Url, FalError> {
        let url = Url::parse(raw).map_err(|_| FalError::Decode("fal's storage answered an unusable URL".into()))?;
        let allowed = url.scheme() == "https" || (url.scheme() == "http" && self.config().rest_url.scheme() == "http");
        if !allowed || url.host_str().is_none() {
            return Err(FalError::Decode("fal's storage answered a URL that is not https".into()));
        }
        Ok(url)
    }
}
