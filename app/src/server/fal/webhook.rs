//! Verifying fal's webhook deliveries (README, "fal's API": webhooks): four headers, a timestamp within
//! ±300 s, and an Ed25519 signature over `request_id \n user_id \n timestamp \n sha256(body)`
//! by any key in fal's JWKS. Keys are cached for 12 hours; when none verifies, the set is
//! fetched again at most every 5 minutes (key rotation).

use std::time::{Duration, Instant};

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use url::Url;

pub const MAX_SKEW_SECS: i64 = 300;
const CACHE_FOR: Duration = Duration::from_secs(12 * 3600);
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed timestamp")]
    BadTimestamp,
    #[error("timestamp outside the ±{MAX_SKEW_SECS} s window")]
    Stale,
    #[error("malformed signature")]
    MalformedSignature,
    #[error("no key in fal's JWKS verifies the signature")]
    BadSignature,
    #[error("fal's JWKS could not be fetched: {0}")]
    Jwks(String),
}

/// A delivery whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub request_id: String,
    pub user_id: String,
}

struct Cache {
    keys: Vec<VerifyingKey>,
    fetched: Option<Instant>,
    /// The last fetch attempt, successful or not: fetches are rate-limited either way.
    attempted: Option<Instant>,
}

pub struct Jwks {
    http: reqwest::Client,
    url: Url,
    cache: Mutex<Cache>,
}

/// What a delivery's headers claim, checked for presence, shape and freshness: everything that
/// can be judged before the body is read.
#[derive(Clone, Debug)]
pub struct Claim {
    request_id: String,
    user_id: String,
    timestamp: String,
    signature: Signature,
}

impl Claim {
    pub fn read(headers: &http::HeaderMap, now_secs: i64) -> Result<Self, WebhookError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingHeader(name))
        };
        let request_id = header("x-fal-webhook-request-id")?;
        let user_id = header("x-fal-webhook-user-id")?;
        let timestamp = header("x-fal-webhook-timestamp")?;
        let signature = header("x-fal-webhook-signature")?;
        let sent: i64 = timestamp.parse().map_err(|_| WebhookError::BadTimestamp)?;
        if (now_secs - sent).abs() > MAX_SKEW_SECS {
            return Err(WebhookError::Stale);
        }
        let signature = hex::decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or(WebhookError::MalformedSignature)?;
        Ok(Self {
            request_id: request_id.to_owned(),
            user_id: user_id.to_owned(),
            timestamp: timestamp.to_owned(),
            signature: Signature::from_bytes(&signature),
        })
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Seconds between fal signing the delivery and `now_secs`.
    pub fn age_secs(&self, now_secs: i64) -> i64 {
        now_secs - self.timestamp.parse::<i64>().unwrap_or(now_secs)
    }
}

/// The exact bytes fal signs.
pub fn message(request_id: &str, user_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    format!("{request_id}\n{user_id}\n{timestamp}\n{}", hex::encode(Sha256::digest(body))).into_bytes()
}

impl Jwks {
    pub fn new(url: Url) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("static reqwest configuration is valid");
        Self { http, url, cache: Mutex::new(Cache { keys: Vec::new(), fetched: None, attempted: None }) }
    }

    /// Checks the headers, then the signature over `body`.
    pub async fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now_secs: i64,
    ) -> Result<Verified, WebhookError> {
        self.verify_claim(&Claim::read(headers, now_secs)?, body).await
    }

    /// Checks that a key in fal's JWKS signed `body` as `claim` says.
    pub async fn verify_claim(&self, claim: &Claim, body: &[u8]) -> Result<Verified, WebhookError> {
        let message = message(&claim.request_id, &claim.user_id, &claim.timestamp, body);
        let signature = claim.signature;
        let verified = Verified { request_id: claim.request_id.clone(), user_id: claim.user_id.clone() };

        let mut cache = self.cache.lock().await;
        let stale = cache.fetched.is_none_or(|at| at.elapsed() > CACHE_FOR);
        if stale && may_fetch(&cache) {
            if let Err(err) = self.refresh(&mut cache).await {
                if cache.keys.is_empty() {
                    return Err(err);
                }
                // fal's key endpoint is down: the keys we have are still the best we know.
                tracing::warn!(%err, "could not refresh fal's webhook keys; using the cached ones");
            }
        } else if cache.keys.is_empty() {
            return Err(WebhookError::Jwks("fetched moments ago without success".into()));
        }
        if cache.keys.iter().any(|k| k.verify_strict(&message, &signature).is_ok()) {
            return Ok(verified);
        }
        // Perhaps fal rotated its keys: look again, but not more often than every few minutes
        // (forged deliveries must not make us hammer fal).
        if may_fetch(&cache) && self.refresh(&mut cache).await.is_ok() {
            if cache.keys.iter().any(|k| k.verify_strict(&message, &signature).is_ok()) {
                return Ok(verified);
            }
        }
        Err(WebhookError::BadSignature)
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), WebhookError> {
        cache.attempted = Some(Instant::now());
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Jwk>,
        }
        #[derive(Deserialize)]
        struct Jwk {
            kty: Option<String>,
            crv: Option<String>,
            x: Option<String>,
        }
        let fetch = async {
            let response = self.http.get(self.url.clone()).send().await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("status {}", response.status()));
            }
            response.json::<Set>().await.map_err(|e| e.to_string())
        };
        let set = fetch.await.map_err(WebhookError::Jwks)?;
        let keys: Vec<VerifyingKey> = set
            .keys
            .into_iter()
            .filter(|k| k.kty.as_deref().is_none_or(|t| t == "OKP") && k.crv.as_deref().is_none_or(|c| c == "Ed25519"))
            .filter_map(|k| decode_key(&k.x?))
            .collect();
        if keys.is_empty() {
            return Err(WebhookError::Jwks("no Ed25519 keys in the set".into()));
        }
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }
}

/// Whether another fetch of the key set is allowed now: at most one every few minutes once keys
/// are known, every few seconds while there are none.
fn may_fetch(cache: &Cache) -> bool {
    let wait = if cache.keys.is_empty() { Duration::from_secs(5) } else { REFRESH_AT_MOST_EVERY };
    cache.attempted.is_none_or(|at| at.elapsed() > wait)
}

/// A JWK `x`: base64url, with or without padding (sources disagree).
fn decode_key(x: &str) -> Option<VerifyingKey> {
    let trimmed = x.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).ok()?;
    VerifyingKey::from_bytes(&bytes.try_into().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn keys_decode_with_or_without_padding() {
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes());
        let padded = base64::engine::general_purpose::URL_SAFE.encode(key.as_bytes());
        assert_eq!(decode_key(&unpadded), Some(key));
        assert_eq!(decode_key(&padded), Some(key));
        assert_eq!(decode_key("not a key"), None);
    }

    #[test]
    fn the_signed_message_is_exactly_the_documented_one() {
        let m = message("req", "user", "1700000000", b"{\"a\":1}");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            format!("req\nuser\n1700000000\n{}", hex::encode(Sha256::digest(b"{\"a\":1}")))
        );
        let signer = SigningKey::from_bytes(&[3; 32]);
        let signature = signer.sign(&message("r", "u", "1", b"x"));
        assert!(signer.verifying_key().verify_strict(&message("r", "u", "1", b"x"), &signature).is_ok());
        assert!(signer.verifying_key().verify_strict(&message("r", "u", "1", b"y"), &signature).is_err());
    }
}
