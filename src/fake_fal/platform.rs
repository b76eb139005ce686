//! `api.fal.ai/v1`: pricing and cost estimates (any valid key) and billing (ADMIN keys only),
//! README, "fal's API": platform

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::FakeState;
use super::auth::{Account, account, platform_error, platform_refusal};

pub fn routes() -> Router<Arc<FakeState>> {
    Router::new()
        .route("/models/pricing", get(pricing))
        .route("/models/pricing/estimate", post(estimate))
        .route("/account/billing", get(billing))
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

fn pricing_down(state: &FakeState) -> Option<Response> {
    state
        .pricing_down
        .load(std::sync::atomic::Ordering::SeqCst)
        .then(|| platform_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", "pricing is unavailable right now"))
}

async fn pricing(State(state): State<Arc<FakeState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(refusal) = account(&headers) {
        return platform_refusal(refusal);
    }
    if let Some(down) = pricing_down(&state) {
        return down;
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

/// `{"estimate_type": "unit_price", "endpoints": {id: {"unit_quantity": n}}}` costs each
/// endpoint's unit price times its quantity; `historical_api_price` with `call_quantity` prices a
/// call as one unit. Totals are rounded to a millionth of a dollar, as fal's answers are.
async fn estimate(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(refusal) = account(&headers) {
        return platform_refusal(refusal);
    }
    if let Some(down) = pricing_down(&state) {
        return down;
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return platform_error(StatusCode::BAD_REQUEST, "validation_error", "the body is not JSON");
    };
    let quantity_field = match request.get("estimate_type").and_then(|t| t.as_str()) {
        Some("unit_price") => "unit_quantity",
        Some("historical_api_price") => "call_quantity",
        _ => {
            return platform_error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "estimate_type: unit_price or historical_api_price",
            );
        }
    };
    let Some(endpoints) = request.get("endpoints").and_then(|e| e.as_object()).filter(|e| !e.is_empty()) else {
        return platform_error(StatusCode::BAD_REQUEST, "validation_error", "endpoints: at least one");
    };
    let mut total = 0.0;
    for (id, wanted) in endpoints {
        let Some(quantity) = wanted.get(quantity_field).and_then(|q| q.as_f64()).filter(|q| q.is_finite() && *q >= 0.0)
        else {
            return platform_error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                &format!("{quantity_field}: a number ≥ 0"),
            );
        };
        let Some((unit_price, _)) = price_of(id) else {
            return platform_error(StatusCode::NOT_FOUND, "not_found", &format!("no pricing for {id}"));
        };
        total += unit_price * quantity;
    }
    let total = (total * 1e6).round() / 1e6;
    Json(json!({ "estimate_type": request["estimate_type"], "total_cost": total, "currency": "USD" })).into_response()
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
