//! Object storage through aws-sdk-s3, whether the endpoint is the embedded one or a real S3
//! service. Buckets are private: every browser access goes through a short-lived presigned URL.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;

use super::config::ExternalS3;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage request failed: {0}")]
    Request(String),
    #[error("presigning failed: {0}")]
    Presign(String),
    #[error("bucket {bucket} is missing and could not be created: {cause}")]
    Bucket { bucket: String, cause: String },
}

fn request_error<E: std::error::Error>(err: E) -> StorageError {
    StorageError::Request(DisplayErrorContext(err).to_string())
}

#[derive(Clone, Debug)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    pub uploads_bucket: String,
    pub results_bucket: String,
    /// `scheme://host[:port]` the browser talks to for presigned URLs, when known (for CSP).
    origin: Option<String>,
}

/// A presigned PUT and the exact headers its signature covers.
#[derive(Clone, Debug)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: SystemTime,
}

impl Storage {
    pub async fn connect(endpoint: &ExternalS3, uploads_bucket: String, results_bucket: String) -> Self {
        let mut builder = match &endpoint.credentials {
            Some((id, secret)) => aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(id, secret, None, None, "darkroom-config")),
            // IAM roles, instance profiles, AWS_* variables: whatever the SDK's default chain finds.
            None => {
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(endpoint.region.clone()))
                    .load()
                    .await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .region(Region::new(endpoint.region.clone()))
            .force_path_style(endpoint.force_path_style)
            // S3-compatible servers differ in checksum support; add checksums only where required.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &endpoint.endpoint {
            builder = builder.endpoint_url(url.as_str().trim_end_matches('/'));
        }
        let origin = endpoint.endpoint.as_ref().map(|u| u.origin().ascii_serialization());
        Self { client: aws_sdk_s3::Client::from_conf(builder.build()), uploads_bucket, results_bucket, origin }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Makes sure both buckets exist, creating them when the credentials allow it.
    pub async fn ensure_buckets(&self) -> Result<(), StorageError> {
        for bucket in [&self.uploads_bucket, &self.results_bucket] {
            if self.client.head_bucket().bucket(bucket).send().await.is_ok() {
                continue;
            }
            if let Err(err) = self.client.create_bucket().bucket(bucket).send().await {
                let already = matches!(err.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists"));
                if !already {
                    return Err(StorageError::Bucket {
                        bucket: bucket.clone(),
                        cause: DisplayErrorContext(err).to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A PUT URL that stores exactly the declared bytes: length, type and SHA-256 (base64) are
    /// signed headers, so the storage service refuses any other body.
    pub async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: i64,
        sha256_base64: &str,
        ttl: Duration,
    ) -> Result<PresignedPut, StorageError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Presign(e.to_string()))?;
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length)
            .checksum_sha256(sha256_base64)
            .presigned(config)
            .await
            .map_err(|e| StorageError::Presign(DisplayErrorContext(e).to_string()))?;
        Ok(PresignedPut {
            url: request.uri().to_owned(),
            headers: request.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            expires_at: SystemTime::now() + ttl,
        })
    }

    /// A GET URL valid for `ttl`.
    pub async fn presign_get(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Presign(e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StorageError::Presign(DisplayErrorContext(e).to_string()))?;
        Ok(request.uri().to_owned())
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        self.client.delete_object().bucket(bucket).key(key).send().await.map_err(request_error)?;
        Ok(())
    }
}
