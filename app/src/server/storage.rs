//! Object storage through aws-sdk-s3, whether the endpoint is the embedded one or a real S3
//! service. Buckets are private: every browser access goes through a short-lived presigned URL.

use std::time::Duration;

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;

use url::Url;

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
    StorageError::Request(super::redact::urls(&DisplayErrorContext(err).to_string()))
}

pub mod multipart;
mod presign;

#[derive(Clone, Debug)]
pub struct Storage {
    client: aws_sdk_s3::Client,
    pub uploads_bucket: String,
    pub results_bucket: String,
    signing: Signing,
    /// Signs links without the SDK where the address and keys are fixed (see `presign`).
    presigner: Option<presign::Presigner>,
    /// `scheme://host[:port]` of every URL a presigned link may point at, for the CSP; empty
    /// when links point at the page's own origin.
    origins: Vec<String>,
}

/// Where presigned URLs point: the address browsers and fal use, which need not be the one the
/// server itself connects to (a container name, a private network, its own loopback).
#[derive(Clone, Debug)]
pub enum Signing {
    /// The address the server connects to, which everyone reaches the same way.
    AsConnected,
    /// A fixed public base: `S3_PUBLIC_ENDPOINT`, or `PUBLIC_URL` for the embedded endpoint.
    At(Url),
    /// The embedded endpoint without a public URL: the origin the caller names (the one the
    /// browser used for the request being answered), else the server's own address.
    CallerOrigin,
}

/// How long a presigned URL lives, counted from when it is signed: now (a `Duration` alone), or
/// a given moment (a signing time rounded down to a window gives the same URL for a while, so
/// browsers can cache what it points to; one in the past gives a URL that has already expired).
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub ttl: Duration,
    pub at: std::time::SystemTime,
}

impl From<Duration> for Validity {
    fn from(ttl: Duration) -> Self {
        Self { ttl, at: std::time::SystemTime::now() }
    }
}

impl Validity {
    fn config(self) -> Result<PresigningConfig, StorageError> {
        PresigningConfig::builder()
            .start_time(self.at)
            .expires_in(self.ttl)
            .build()
            .map_err(|e| StorageError::Presign(e.to_string()))
    }
}

/// Response headers a presigned GET asks storage to answer with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
}

/// A presigned PUT and the exact headers its signature covers.
#[derive(Clone, Debug)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Storage {
    pub async fn connect(
        endpoint: &ExternalS3,
        uploads_bucket: String,
        results_bucket: String,
        signing: Signing,
    ) -> Self {
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
        let mut storage = Self {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            uploads_bucket,
            results_bucket,
            signing,
            presigner: presign::Presigner::new(endpoint),
            origins: Vec::new(),
        };
        storage.origins = storage.link_origins().await;
        storage
    }

    /// The origins presigned links point at, read off a sample link per bucket (so AWS's
    /// virtual-hosted names and any endpoint count, whatever the addressing style).
    async fn link_origins(&self) -> Vec<String> {
        if matches!(self.signing, Signing::CallerOrigin) {
            return Vec::new();
        }
        let mut origins = Vec::new();
        for bucket in [&self.uploads_bucket, &self.results_bucket] {
            if let Ok(link) = self.presign_get(bucket, "probe", Duration::from_secs(60), None).await
                && let Ok(url) = Url::parse(&link)
            {
                let origin = url.origin().ascii_serialization();
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The origins presigned links point at (for the CSP); empty when they are the page's own.
    pub fn link_origins_for_csp(&self) -> &[String] {
        &self.origins
    }

    /// The base a presigned link is signed for: `origin` is the caller's (the request's origin),
    /// used when links follow the address the browser used.
    fn link_base<'a>(&'a self, origin: Option<&'a str>) -> Option<&'a str> {
        match &self.signing {
            Signing::AsConnected => None,
            Signing::At(base) => Some(base.as_str().trim_end_matches('/')),
            Signing::CallerOrigin => origin,
        }
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
    #[allow(clippy::too_many_arguments)]
    pub async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: i64,
        sha256_base64: &str,
        validity: impl Into<Validity>,
        origin: Option<&str>,
    ) -> Result<PresignedPut, StorageError> {
        let validity = validity.into();
        match &self.presigner {
            Some(presigner) => {
                let base = self.link_base(origin);
                presigner.put(base, bucket, key, content_type, content_length, sha256_base64, validity)
            }
            None => self.sdk_put(bucket, key, content_type, content_length, sha256_base64, validity, origin).await,
        }
    }

    /// [`Storage::presign_put`] through the SDK.
    #[allow(clippy::too_many_arguments)]
    async fn sdk_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: i64,
        sha256_base64: &str,
        validity: Validity,
        origin: Option<&str>,
    ) -> Result<PresignedPut, StorageError> {
        let config = validity.config()?;
        let put = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length)
            .checksum_sha256(sha256_base64);
        let signed = match self.link_base(origin) {
            Some(base) => {
                put.customize()
                    .config_override(aws_sdk_s3::config::Builder::new().endpoint_url(base))
                    .presigned(config)
                    .await
            }
            None => put.presigned(config).await,
        };
        let request = signed.map_err(|e| StorageError::Presign(DisplayErrorContext(e).to_string()))?;
        Ok(PresignedPut {
            url: request.uri().to_owned(),
            headers: request.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        })
    }

    /// A GET URL valid for `ttl`, for the public address (`origin`: the caller's, when links
    /// follow the address the browser used).
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        validity: impl Into<Validity>,
        origin: Option<&str>,
    ) -> Result<String, StorageError> {
        self.presign_get_as(bucket, key, validity, origin, &Served::default()).await
    }

    /// The same, with the headers storage answers with chosen by the link (they are part of
    /// what is signed, so no one can change them).
    pub async fn presign_get_as(
        &self,
        bucket: &str,
        key: &str,
        validity: impl Into<Validity>,
        origin: Option<&str>,
        served: &Served,
    ) -> Result<String, StorageError> {
        let validity = validity.into();
        match &self.presigner {
            Some(presigner) => presigner.get(self.link_base(origin), bucket, key, validity, served),
            None => self.sdk_get(bucket, key, validity, origin, served).await,
        }
    }

    /// [`Storage::presign_get_as`] through the SDK.
    async fn sdk_get(
        &self,
        bucket: &str,
        key: &str,
        validity: Validity,
        origin: Option<&str>,
        served: &Served,
    ) -> Result<String, StorageError> {
        let config = validity.config()?;
        let get = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_response_cache_control(served.cache_control.clone())
            .set_response_content_disposition(served.content_disposition.clone());
        let signed = match self.link_base(origin) {
            Some(base) => {
                get.customize()
                    .config_override(aws_sdk_s3::config::Builder::new().endpoint_url(base))
                    .presigned(config)
                    .await
            }
            None => get.presigned(config).await,
        };
        Ok(signed.map_err(|e| StorageError::Presign(DisplayErrorContext(e).to_string()))?.uri().to_owned())
    }

    /// Whether both buckets answer.
    pub async fn reachable(&self) -> Result<(), StorageError> {
        for bucket in [&self.uploads_bucket, &self.results_bucket] {
            self.client.head_bucket().bucket(bucket).send().await.map_err(request_error)?;
        }
        Ok(())
    }

    /// Deletes `key`; deleting what does not exist succeeds (whatever the backend answers).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(err) => {
                let code = err.as_service_error().and_then(|e| e.meta().code());
                let not_found = err.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if code == Some("NoSuchKey") || (not_found && code != Some("NoSuchBucket")) {
                    Ok(())
                } else {
                    Err(request_error(err))
                }
            }
        }
    }

    /// An object's bytes as they arrive, for copying it on without holding it whole. `Ok(None)`
    /// when it does not exist.
    pub async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::primitives::ByteStream>, StorageError> {
        match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(response) => Ok(Some(response.body)),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(err) => Err(request_error(err)),
        }
    }

    /// Reads a whole object of at most `limit` bytes. `Ok(None)` when it does not exist;
    /// `Fetched::TooLarge` (without downloading) when storage says it is bigger than `limit`.
    pub async fn get_bytes(&self, bucket: &str, key: &str, limit: u64) -> Result<Option<Fetched>, StorageError> {
        let response = match self.client.get_object().bucket(bucket).key(key).send().await {
            Ok(response) => response,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(None),
            Err(err) => return Err(request_error(err)),
        };
        let length = response.content_length().and_then(|l| u64::try_from(l).ok());
        if let Some(length) = length.filter(|l| *l > limit) {
            return Ok(Some(Fetched::TooLarge(length)));
        }
        let bytes = response.body.collect().await.map_err(|e| StorageError::Request(e.to_string()))?.into_bytes();
        if bytes.len() as u64 > limit {
            return Ok(Some(Fetched::TooLarge(bytes.len() as u64)));
        }
        Ok(Some(Fetched::Bytes(bytes.to_vec())))
    }

    /// Copies an object inside storage: the bytes never pass through this server.
    pub async fn copy(
        &self,
        from_bucket: &str,
        from_key: &str,
        to_bucket: &str,
        to_key: &str,
    ) -> Result<(), StorageError> {
        let mut source = format!("{from_bucket}/");
        for byte in from_key.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
                source.push(byte as char);
            } else {
                source.push_str(&format!("%{byte:02X}"));
            }
        }
        self.client
            .copy_object()
            .copy_source(source)
            .bucket(to_bucket)
            .key(to_key)
            .send()
            .await
            .map_err(request_error)?;
        Ok(())
    }

    /// Stores `bytes` with their SHA-256 (base64), which the storage service verifies.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        sha256_base64: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .checksum_sha256(sha256_base64)
            .body(bytes.into())
            .send()
            .await
            .map_err(request_error)?;
        Ok(())
    }

    /// One page of the objects under `prefix` whose keys sort after `after`, with their sizes,
    /// and whether more follow.
    pub async fn list_sized(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<(Vec<Listed>, bool), StorageError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .send()
            .await
            .map_err(request_error)?;
        let objects = page
            .contents()
            .iter()
            .filter_map(|o| {
                let modified = o.last_modified()?.to_millis().ok()?;
                Some(Listed { key: o.key()?.to_owned(), modified, size: o.size().unwrap_or(0) })
            })
            .collect();
        Ok((objects, page.is_truncated().unwrap_or(false)))
    }

    /// One page of the objects under `prefix` whose keys sort after `after`: (key, last
    /// modified as epoch milliseconds), and whether more follow.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
    ) -> Result<(Vec<(String, i64)>, bool), StorageError> {
        let (objects, more) = self.list_sized(bucket, prefix, after).await?;
        Ok((objects.into_iter().map(|o| (o.key, o.modified)).collect(), more))
    }
}

impl Storage {
    /// The browser rules (CORS) and lifecycle rules production buckets need; returns what was
    /// applied, one line each. Lifecycle is a second line of defence behind the sweeper, so a
    /// backend without it is reported, not fatal.
    pub async fn apply_rules(&self, origins: &[String]) -> Result<Vec<String>, StorageError> {
        use aws_sdk_s3::types::{
            AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, CorsConfiguration, CorsRule,
            ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        };
        let invalid = |e: aws_sdk_s3::error::BuildError| StorageError::Request(e.to_string());
        let mut applied = Vec::new();
        for (bucket, methods) in
            [(&self.uploads_bucket, &["PUT", "GET", "HEAD"][..]), (&self.results_bucket, &["GET", "HEAD"][..])]
        {
            let mut rule = CorsRule::builder()
                .set_allowed_origins(Some(origins.to_vec()))
                .set_allowed_methods(Some(methods.iter().map(|m| m.to_string()).collect()))
                .expose_headers("ETag")
                .max_age_seconds(600);
            for header in ["content-type", "x-amz-checksum-sha256", "x-amz-content-sha256"] {
                rule = rule.allowed_headers(header);
            }
            let cors =
                CorsConfiguration::builder().cors_rules(rule.build().map_err(invalid)?).build().map_err(invalid)?;
            self.client
                .put_bucket_cors()
                .bucket(bucket)
                .cors_configuration(cors)
                .send()
                .await
                .map_err(request_error)?;
            applied.push(format!("{bucket}: CORS allows {} from {}", methods.join(", "), origins.join(", ")));
        }

        let abort = |days| AbortIncompleteMultipartUpload::builder().days_after_initiation(days).build();
        let rules = vec![
            LifecycleRule::builder()
                .id("expire-unconfirmed-uploads")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("uploads/").build())
                .expiration(LifecycleExpiration::builder().days(1).build())
                .abort_incomplete_multipart_upload(abort(1))
                .build()
                .map_err(invalid)?,
        ];
        let uploads = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(invalid)?;
        let results = BucketLifecycleConfiguration::builder()
            .rules(
                LifecycleRule::builder()
                    .id("abort-incomplete-multipart")
                    .status(ExpirationStatus::Enabled)
                    .filter(LifecycleRuleFilter::builder().prefix("").build())
                    .abort_incomplete_multipart_upload(abort(1))
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        for (bucket, config, what) in [
            (
                &self.uploads_bucket,
                uploads,
                "objects under uploads/ expire after 1 day; incomplete multipart uploads after 1 day",
            ),
            (&self.results_bucket, results, "incomplete multipart uploads expire after 1 day"),
        ] {
            let result = self
                .client
                .put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(config)
                .send()
                .await;
            match result {
                Ok(_) => applied.push(format!("{bucket}: lifecycle: {what}")),
                Err(err) if matches!(err.code(), Some("NotImplemented" | "MalformedXML")) => {
                    applied.push(format!(
                        "{bucket}: lifecycle rules not supported by this storage; the sweeper covers it"
                    ));
                }
                Err(err) => return Err(request_error(err)),
            }
        }
        Ok(applied)
    }
}

/// An object as a listing shows it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub key: String,
    /// Epoch milliseconds.
    pub modified: i64,
    pub size: i64,
}

/// What `get_bytes` found.
#[derive(Debug)]
pub enum Fetched {
    Bytes(Vec<u8>),
    TooLarge(u64),
}
