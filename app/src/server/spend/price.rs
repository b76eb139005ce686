//! A job's estimated cost, from fal's pricing API with its owner's key: the model's billing
//! unit and unit price (`GET /v1/models/pricing`), how many units the job's inputs ask for
//! (images, megapixels, seconds of video), and the total by fal's own arithmetic (`POST
//! /v1/models/pricing/estimate`, which knows its rounding and minimums), or unit price × units
//! where fal will not estimate. Answers are kept an hour per server; when fal cannot be asked,
//! an older answer is used rather than none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::catalog::Model;
use crate::format::MAX_USD_MICROS;
use crate::server::db::Db;
use crate::server::fal::{FalClient, FalKey};
use crate::server::keys::Vault;

/// How long a price is used before fal is asked again.
const FRESH: Duration = Duration::from_secs(3600);
/// Entries kept at most (models × distinct quantities stays far below it).
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct Prices {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    units: HashMap<String, Entry<Unit>>,
    totals: HashMap<(String, u64), Entry<i64>>,
}

struct Entry<T> {
    value: T,
    at: Instant,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub name: String,
    pub price: f64,
}

/// The owner's key, read (and decrypted) only if fal has to be asked.
pub struct OwnersKey<'a> {
    db: &'a Db,
    vault: &'a Vault,
    user_id: &'a str,
    loaded: Option<Option<FalKey>>,
}

impl<'a> OwnersKey<'a> {
    pub fn new(db: &'a Db, vault: &'a Vault, user_id: &'a str) -> Self {
        Self { db, vault, user_id, loaded: None }
    }

    async fn get(&mut self) -> Option<&FalKey> {
        if self.loaded.is_none() {
            let key = crate::server::keys::load(self.db, self.vault, self.user_id).await.unwrap_or_else(|err| {
                tracing::warn!(%err, "could not read the key to ask fal for prices");
                None
            });
            self.loaded = Some(key);
        }
        self.loaded.as_ref().and_then(Option::as_ref)
    }
}

impl Prices {
    /// What a job of `model` with `params` (validated, defaults filled in) is estimated to cost,
    /// in millionths of a dollar; `None` when fal has no price for it and none was ever known.
    pub async fn estimate(
        &self,
        fal: &FalClient,
        key: &mut OwnersKey<'_>,
        model: &Model,
        params: &Map<String, Value>,
    ) -> Option<i64> {
        let unit = self.unit(fal, key, model.endpoint).await?;
        let quantity = quantity(params, &unit.name);
        let slot = (model.endpoint.to_owned(), quantity.to_bits());
        if let Some(total) = self.cached(|c| c.totals.get(&slot).filter(|e| e.at.elapsed() < FRESH).map(|e| e.value)) {
            return Some(total);
        }
        let asked = match key.get().await {
            Some(key) => fal.estimate(key, model.endpoint, quantity).await,
            None => return self.cached(|c| c.totals.get(&slot).map(|e| e.value)),
        };
        let dollars = match asked {
            Ok(Some(dollars)) => Some(dollars),
            // fal prices it in another currency: caps are in dollars, so no estimate.
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(%err, endpoint = model.endpoint, "fal did not estimate; using the unit price");
                if let Some(stale) = self.cached(|c| c.totals.get(&slot).map(|e| e.value)) {
                    return Some(stale);
                }
                Some(unit.price * quantity)
            }
        };
        let total = micros(dollars?)?;
        self.remember(|c| &mut c.totals, slot, total);
        Some(total)
    }

    /// The endpoint's billing unit and price, from the cache while fresh.
    async fn unit(&self, fal: &FalClient, key: &mut OwnersKey<'_>, endpoint: &str) -> Option<Unit> {
        if let Some(unit) =
            self.cached(|c| c.units.get(endpoint).filter(|e| e.at.elapsed() < FRESH).map(|e| e.value.clone()))
        {
            return Some(unit);
        }
        let stale = || self.cached(|c| c.units.get(endpoint).map(|e| e.value.clone()));
        let Some(owner) = key.get().await else { return stale() };
        match fal.pricing(owner, &[endpoint]).await {
            Ok(prices) => {
                let price =
                    prices.into_iter().find(|p| p.endpoint_id == endpoint && p.currency.eq_ignore_ascii_case("USD"));
                let unit = price
                    .filter(|p| p.unit_price.is_finite() && p.unit_price >= 0.0)
                    .map(|p| Unit { name: p.unit, price: p.unit_price })?;
                self.remember(|c| &mut c.units, endpoint.to_owned(), unit.clone());
                Some(unit)
            }
            Err(err) => {
                tracing::warn!(%err, endpoint, "fal's prices could not be read");
                stale()
            }
        }
    }

    fn cached<T>(&self, read: impl FnOnce(&Cache) -> Option<T>) -> Option<T> {
        read(&self.cache.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn remember<K: std::hash::Hash + Eq, T>(
        &self,
        map: impl FnOnce(&mut Cache) -> &mut HashMap<K, Entry<T>>,
        key: K,
        value: T,
    ) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let map = map(&mut cache);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, Entry { value, at: Instant::now() });
    }
}

fn micros(dollars: f64) -> Option<i64> {
    let micros = (dollars * 1e6).round();
    (micros.is_finite() && (0.0..=MAX_USD_MICROS as f64).contains(&micros)).then_some(micros as i64)
}

/// How many of fal's billing `unit` a job with `params` uses: images, megapixels (fal rounds each
/// image up to a whole one), or seconds of video; a unit we do not know is priced per call.
pub fn quantity(params: &Map<String, Value>, unit: &str) -> f64 {
    let number = |name: &str| {
        match params.get(name) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite() && *n > 0.0)
    };
    let images = number("num_images").unwrap_or(1.0).floor().max(1.0);
    match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "image" => images,
        "megapixel" => {
            let size = params.get("image_size").and_then(Value::as_str).unwrap_or("landscape_4_3");
            images * megapixels(size).ceil()
        }
        "second" => number("duration").unwrap_or(5.0).ceil(),
        _ => 1.0,
    }
}

/// fal's named image sizes, in megapixels.
fn megapixels(size: &str) -> f64 {
    let (w, h) = match size {
        "square_hd" => (1024, 1024),
        "square" => (512, 512),
        "portrait_4_3" => (768, 1024),
        "portrait_16_9" => (576, 1024),
        "landscape_16_9" => (1024, 576),
        _ => (1024, 768),
    };
    f64::from(w * h) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn units_are_counted_from_the_inputs() {
        assert_eq!(quantity(&params(json!({"num_images": 3})), "image"), 3.0);
        assert_eq!(quantity(&params(json!({})), "images"), 1.0);
        assert_eq!(quantity(&params(json!({"num_images": 2, "image_size": "square_hd"})), "megapixels"), 4.0);
        assert_eq!(quantity(&params(json!({"image_size": "landscape_4_3"})), "megapixel"), 1.0);
        assert_eq!(quantity(&params(json!({"duration": "10"})), "second"), 10.0);
        assert_eq!(quantity(&params(json!({"duration": "5"})), "Seconds"), 5.0);
        assert_eq!(quantity(&params(json!({"num_images": 4})), "request"), 1.0);
        assert_eq!(quantity(&params(json!({"num_images": "-3"})), "image"), 1.0);
    }

    #[test]
    fn dollars_become_whole_millionths_within_bounds() {
        assert_eq!(micros(0.039), Some(39_000));
        assert_eq!(micros(0.039 * 3.0), Some(117_000));
        assert_eq!(micros(-0.01), None);
        assert_eq!(micros(f64::NAN), None);
        assert_eq!(micros(2e6), None);
    }
}
