//! Presigned URLs signed in place with SigV4 (`aws-sigv4`), for storage reached path-style at a
//! configured endpoint with configured keys: the embedded endpoint, Garage, MinIO, AWS with
//! `S3_ENDPOINT` set. A presigned link through the SDK builds a whole operation (runtime plugins,
//! interceptors, config layers, endpoint rules; a config override per call when the link follows
//! the caller's address) to compute one HMAC chain; a gallery page signs a link per card and an
//! upload ticket one per request. Anything else (virtual-hosted addressing, credentials from the
//! SDK's default chain, which may rotate) is signed by the SDK.
//!
//! The links are the ones the SDK makes: same path, query and signed headers (a test compares
//! both for every kind of link we sign).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::{PresignedPut, Served, StorageError, Validity};
use crate::server::config::ExternalS3;

/// The longest validity SigV4 allows a presigned URL (the SDK refuses more, too).
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct Presigner {
    identity: Identity,
    region: String,
    /// The endpoint the server connects to, without a trailing `/`: links' base when they are
    /// not signed for another address.
    connected: String,
}

impl Presigner {
    /// A signer for `endpoint`, when its links can be signed here (see the module's comment).
    pub fn new(endpoint: &ExternalS3) -> Option<Self> {
        let (id, secret) = endpoint.credentials.as_ref()?;
        let url = endpoint.endpoint.as_ref().filter(|_| endpoint.force_path_style)?;
        Some(Self {
            identity: Credentials::new(id, secret, None, None, "darkroom-config").into(),
            region: endpoint.region.clone(),
            connected: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// A PUT of exactly `content_length` bytes of `content_type` whose SHA-256 is
    /// `sha256_base64`: all three are signed headers the uploader must send.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        base: Option<&str>,
        bucket: &str,
        key: &str,
        content_type: &str,
        content_length: i64,
        sha256_base64: &str,
        validity: Validity,
    ) -> Result<PresignedPut, StorageError> {
        let length = content_length.to_string();
        let headers = [
            ("content-type", content_type),
            ("content-length", length.as_str()),
            ("x-amz-checksum-sha256", sha256_base64),
        ];
        let url = self.sign("PUT", base, bucket, key, vec![("x-id", "PutObject")], &headers, validity)?;
        Ok(PresignedPut {
            url,
            headers: headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect(),
        })
    }

    /// A GET whose answer carries the headers `served` names.
    pub fn get(
        &self,
        base: Option<&str>,
        bucket: &str,
        key: &str,
        validity: Validity,
        served: &Served,
    ) -> Result<String, StorageError> {
        let mut query = vec![("x-id", "GetObject")];
        if let Some(value) = &served.cache_control {
            query.push(("response-cache-control", value));
        }
        if let Some(value) = &served.content_disposition {
            query.push(("response-content-disposition", value));
        }
        self.sign("GET", base, bucket, key, query, &[], validity)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        method: &str,
        base: Option<&str>,
        bucket: &str,
        key: &str,
        query: Vec<(&str, &str)>,
        headers: &[(&str, &str)],
        validity: Validity,
    ) -> Result<String, StorageError> {
        if validity.ttl > LONGEST {
            return Err(StorageError::Presign(format!("a link may live at most {} s", LONGEST.as_secs())));
        }
        let mut url = String::with_capacity(256);
        url.push_str(base.unwrap_or(&self.connected).trim_end_matches('/'));
        url.push('/');
        encode_into(&mut url, bucket, false);
        url.push('/');
        encode_into(&mut url, key, true);
        for (n, (name, value)) in query.iter().enumerate() {
            url.push(if n == 0 { '?' } else { '&' });
            url.push_str(name);
            url.push('=');
            encode_into(&mut url, value, false);
        }

        let mut settings = SigningSettings::default();
        // S3's own rules: the path is encoded once and never normalised (keys may hold `..`).
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.session_token_mode = SessionTokenMode::Include;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(validity.ttl);
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(validity.at.max(SystemTime::UNIX_EPOCH))
            .settings(settings)
            .build()
            .map_err(|e| StorageError::Presign(e.to_string()))?
            .into();
        let request =
            SignableRequest::new(method, url.as_str(), headers.iter().copied(), SignableBody::UnsignedPayload)
                .map_err(|e| StorageError::Presign(e.to_string()))?;
        let (instructions, _) = sign(request, &params).map_err(|e| StorageError::Presign(e.to_string()))?.into_parts();
        for (name, value) in instructions.params() {
            url.push('&');
            url.push_str(name);
            url.push('=');
            encode_into(&mut url, value, false);
        }
        Ok(url)
    }
}

/// Appends `text` percent-encoded as the SDK encodes labels and query values: every byte but
/// ASCII letters, digits and `-._~` (and `/` in a key, whose segments are a path).
fn encode_into(out: &mut String, text: &str, keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Signing, Storage};
    use super::*;

    async fn storage(signing: Signing, credentials: bool) -> Storage {
        let endpoint = ExternalS3 {
            endpoint: Some("http://10.1.2.3:3900/".parse().unwrap()),
            region: "garage".into(),
            credentials: credentials.then(|| ("GK0123456789abcdef".into(), "s3cr3t/with+chars=".into())),
            force_path_style: true,
        };
        Storage::connect(&endpoint, "uploads".into(), "results".into(), signing).await
    }

    /// The SDK's links and ours agree byte for byte: same path, query, order and signature.
    #[tokio::test]
    async fn links_signed_here_are_the_sdks_links() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_212_345);
        let validity = Validity { ttl: Duration::from_secs(900), at };
        let keys = ["uploads/u1/0190abcd", "sources/u 1/ä ö/ü+&=?#%.jpg", "a/../b//c~d"];
        let served = [
            Served::default(),
            Served {
                cache_control: Some("private, max-age=3600, immutable".into()),
                content_disposition: Some("attachment; filename=\"a b.png\"; filename*=UTF-8''%C3%A4.png".into()),
            },
        ];
        let signings = [
            (Signing::AsConnected, None),
            (Signing::At("https://photos.example.org/".parse().unwrap()), None),
            (Signing::CallerOrigin, Some("http://192.168.1.20:3000")),
        ];
        let mut compared = 0;
        for (signing, origin) in signings {
            let storage = storage(signing, true).await;
            assert!(storage.presigner.is_some(), "fixed keys and a path-style endpoint sign here");
            for key in keys {
                let ours = storage.presign_put("uploads", key, "image/png", 1234, "q83vEjRWeJA=", validity, origin);
                let sdks = storage.sdk_put("uploads", key, "image/png", 1234, "q83vEjRWeJA=", validity, origin);
                let (ours, sdks) = (ours.await.unwrap(), sdks.await.unwrap());
                assert_eq!(ours.url, sdks.url);
                let sorted = |mut headers: Vec<(String, String)>| {
                    headers.sort();
                    headers
                };
                assert_eq!(sorted(ours.headers), sorted(sdks.headers));
                for served in &served {
                    let ours = storage.presign_get_as("results", key, validity, origin, served).await.unwrap();
                    let sdks = storage.sdk_get("results", key, validity, origin, served).await.unwrap();
                    assert_eq!(ours, sdks);
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, 18);
    }

    /// A public endpoint under a path (`S3_PUBLIC_ENDPOINT=https://host/s3`) keeps the slash
    /// before the bucket (the SDK's resolver drops it: `…/s3uploads/…`).
    #[tokio::test]
    async fn a_base_with_a_path_keeps_it_as_a_segment() {
        let storage = storage(Signing::At("https://photos.example.org/s3/".parse().unwrap()), true).await;
        let link = storage.presign_get("results", "a/b.png", Duration::from_secs(60), None).await.unwrap();
        assert!(link.starts_with("https://photos.example.org/s3/results/a/b.png?x-id=GetObject&"), "{link}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever a key or a served header holds, both sign the same link.
        #[test]
        fn any_key_and_header_sign_as_the_sdk_signs(key in "\\PC{1,40}", disposition in "\\PC{0,40}") {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let storage = storage(Signing::CallerOrigin, true).await;
                let validity = Validity { ttl: Duration::from_secs(60), at: SystemTime::now() };
                let served = Served { cache_control: None, content_disposition: Some(disposition) };
                let origin = Some("http://[fd00::7]:3000");
                let ours = storage.presign_get_as("results", &key, validity, origin, &served).await.unwrap();
                // Some keys the SDK refuses to sign at all (it calls a key of blank space
                // missing); ours never are, and wherever it signs, the links agree.
                if let Ok(sdks) = storage.sdk_get("results", &key, validity, origin, &served).await {
                    assert_eq!(ours, sdks);
                }
            });
        }
    }

    #[tokio::test]
    async fn credentials_from_the_default_chain_are_signed_by_the_sdk() {
        assert!(storage(Signing::AsConnected, false).await.presigner.is_none());
    }

    #[tokio::test]
    async fn a_link_longer_than_a_week_is_refused() {
        let storage = storage(Signing::AsConnected, true).await;
        let validity = Validity { ttl: LONGEST + Duration::from_secs(1), at: SystemTime::now() };
        let refused = storage.presign_get_as("results", "k", validity, None, &Served::default()).await;
        assert!(matches!(refused, Err(StorageError::Presign(_))), "{refused:?}");
    }
}
