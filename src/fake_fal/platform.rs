//! `api.fal.ai/v1`: pricing (any valid key) and billing (ADMIN keys only), README, "fal's API": platform

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::FakeState;
use super::auth::{Account, account, platform_error, platform_refusal};

pub fn routes() -> Router<Arc<FakeState>> {
    Router::new().route("/models/pricing", get(pricing)).route("/account/billing", get(billing))
}

/// Placeholder prices (the protocol notes say they are not verified fal prices).
fn price_of(endpoint_id: &str) -> Option<(f64, &'static str)> {
    match endpoint_id {
        "fal-ai/nano-banana/edit" | "fal-ai/nano-banana" => Some((0.039, "image")),
        "fal-ai/flux/dev" => Some((0.025, "megapixel")),
        id if id.contains("image-to-video") => Some((0.28, "second")),
        _ => None,
    }
}

async fn pricing(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(refusal) = account(&headers) {
        return platform_refusal(refusal);
    }
    let ids: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "endpoint_id")
        .map(|(_, v)| v.into_owned())
        .collect();
    if ids.is_empty() || ids.len() > 50 {
        return platform_error(StatusCode::BAD_REQUEST, "validation_error", "endpoint_id: between 1 and 50 values");
    }
    let prices: Vec<_> = ids
        .iter()
        .filter_map(|id| {
            price_of(id).map(|(unit_price, unit)| json!({ "endpoint_id": id, "unit_price": unit_price, "unit": unit, "currency": "USD" }))
        })
        .collect();
    Json(json!({ "prices": prices, "next_cursor": null, "has_more": false })).into_response()
}

async fn billing(State(state): State<Arc<FakeState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match account(&headers) {
        Err(refusal) => platform_refusal(refusal),
        Ok(Account::Admin) => {
            let expand_credits = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .any(|(k, v)| k == "expand" && v.split(',').any(|x| x == "credits"));
            let mut body = json!({ "username": "fake-user" });
            if expand_credits {
                let balance = *state.balance.lock().expect("balance lock");
                body["credits"] = json!({ "current_balance": balance, "currency": "USD" });
            }
            Json(body).into_response()
        }
        Ok(Account::Api | Account::Locked) => platform_error(
            StatusCode::FORBIDDEN,
            "authorization_error",
            "This endpoint requires an API key with ADMIN scope",
        ),
    }
}
