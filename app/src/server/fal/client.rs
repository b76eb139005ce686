//! reqwest client for fal's HTTP APIs. Every base URL comes from configuration, so the same code
//! talks to fal in production and to the fake fal server in tests.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::FalKey;
use super::error::FalError;
use crate::server::config::FalConfig;

#[derive(Clone)]
pub struct FalClient {
    http: reqwest::Client,
    config: std::sync::Arc<FalConfig>,
}

/// One row of `GET /v1/models/pricing`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Price {
    pub endpoint_id: String,
    pub unit_price: f64,
    pub unit: String,
    pub currency: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    pub amount: f64,
    pub currency: String,
}

impl FalClient {
    pub fn new(config: &FalConfig) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("darkroom/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(std::time::Duration::from_secs(10))
            // API answers never redirect; following one could carry the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("static reqwest configuration is valid");
        Self { http, config: std::sync::Arc::new(config.clone()) }
    }

    pub fn config(&self) -> &FalConfig {
        &self.config
    }

    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET {api}/models/pricing?endpoint_id=…`: free, needs an API-scope key, so it doubles as
    /// the "Test key" check (README, "fal's API": platform).
    pub async fn pricing(&self, key: &FalKey, endpoint_ids: &[&str]) -> Result<Vec<Price>, FalError> {
        #[derive(Deserialize)]
        struct Prices {
            prices: Vec<Price>,
        }
        let mut url = join(&self.config.api_url, "models/pricing");
        {
            let mut query = url.query_pairs_mut();
            for id in endpoint_ids {
                query.append_pair("endpoint_id", id);
            }
        }
        let prices: Prices = self.get_json(url, key, true).await?;
        Ok(prices.prices)
    }

    /// `GET {api}/account/billing?expand=credits`: needs an ADMIN-scope key.
    pub async fn balance(&self, key: &FalKey) -> Result<Balance, FalError> {
        let mut url = join(&self.config.api_url, "account/billing");
        url.query_pairs_mut().append_pair("expand", "credits");
        let body: serde_json::Value = self.get_json(url, key, true).await?;
        parse_balance(&body).ok_or_else(|| FalError::Decode("billing answer has no credits balance".into()))
    }

    /// The balance, or `None` when this key may not read it (reading billing needs ADMIN
    /// scope). The billing endpoint refuses an unknown key and a key without the scope alike, so
    /// a refusal is checked against the pricing endpoint, which any valid key may read: refused
    /// there too, the key itself is rejected.
    pub async fn credits(&self, key: &FalKey, probe_endpoint: &str) -> Result<Option<Balance>, FalError> {
        match self.balance(key).await {
            Ok(balance) => Ok(Some(balance)),
            Err(FalError::NotPermitted { .. }) => match self.pricing(key, &[probe_endpoint]).await {
                Ok(_) => Ok(None),
                Err(FalError::NotPermitted { message }) => Err(FalError::KeyRejected { message }),
                Err(other) => Err(other),
            },
            Err(other) => Err(other),
        }
    }

    /// `POST {api}/models/pricing/estimate` with the `unit_price` estimate: what `quantity` of
    /// the endpoint's billing unit (images, megapixels, seconds) costs, in US dollars, by fal's
    /// own arithmetic (its rounding and minimums). `None` when fal prices it in another currency.
    pub async fn estimate(&self, key: &FalKey, endpoint_id: &str, quantity: f64) -> Result<Option<f64>, FalError> {
        #[derive(Deserialize)]
        struct Estimate {
            total_cost: f64,
            #[serde(default)]
            currency: Option<String>,
        }
        let body = serde_json::json!({
            "estimate_type": "unit_price",
            "endpoints": { endpoint_id: { "unit_quantity": quantity } },
        });
        let request = self.http.post(join(&self.config.api_url, "models/pricing/estimate")).json(&body);
        let answer: Estimate = self.send_json(request, key, true).await?;
        let in_dollars = answer.currency.as_deref().is_none_or(|c| c.eq_ignore_ascii_case("USD"));
        if !answer.total_cost.is_finite() || answer.total_cost < 0.0 {
            return Err(FalError::Decode("the estimate is not a cost".into()));
        }
        Ok(in_dollars.then_some(answer.total_cost))
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url, key: &FalKey, platform: bool) -> Result<T, FalError> {
        self.send_json(self.http.get(url), key, platform).await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        key: &FalKey,
        platform: bool,
    ) -> Result<T, FalError> {
        let response = request
            .header(reqwest::header::AUTHORIZATION, authorization(key))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(FalError::from_response(status.as_u16(), &headers, &body, platform));
        }
        serde_json::from_slice(&body).map_err(|e| FalError::Decode(e.to_string()))
    }
}

pub(super) fn authorization(key: &FalKey) -> reqwest::header::HeaderValue {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Key {}", key.expose()))
        .expect("FalKey::parse admits only visible ASCII");
    value.set_sensitive(true);
    value
}

/// Transport errors are described without their URL: a later signed URL must never reach a log.
pub(super) fn transport(err: reqwest::Error) -> FalError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    FalError::Transport(what.into())
}

/// Appends `path` to a base URL whether or not the base ends with a slash.
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path.trim_start_matches('/'));
    url.set_path(&joined);
    url
}

/// Tolerant reading of the billing body: `credits.current_balance` is the documented field;
/// `balance` and a `billing` wrapper have been seen in integrations.
fn parse_balance(body: &serde_json::Value) -> Option<Balance> {
    let credits = body.get("credits").or_else(|| body.get("billing").and_then(|b| b.get("credits")))?;
    let amount = credits.get("current_balance").or_else(|| credits.get("balance"))?.as_f64()?;
    let currency = credits.get("currency").and_then(|c| c.as_str()).unwrap_or("USD").to_owned();
    Some(Balance { amount, currency })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn joins_with_or_without_trailing_slash() {
        let a = Url::parse("https://api.fal.ai/v1").unwrap();
        let b = Url::parse("http://127.0.0.1:9/fal/v1/").unwrap();
        assert_eq!(join(&a, "models/pricing").as_str(), "https://api.fal.ai/v1/models/pricing");
        assert_eq!(join(&b, "/account/billing").as_str(), "http://127.0.0.1:9/fal/v1/account/billing");
    }

    #[test]
    fn reads_every_known_balance_shape() {
        let expected = Some(Balance { amount: 12.34, currency: "USD".into() });
        assert_eq!(parse_balance(&json!({"credits":{"current_balance":12.34,"currency":"USD"}})), expected);
        assert_eq!(parse_balance(&json!({"credits":{"balance":12.34}})), expected);
        assert_eq!(parse_balance(&json!({"billing":{"credits":{"current_balance":12.34}}})), expected);
        assert_eq!(parse_balance(&json!({"username":"x"})), None);
    }
}
