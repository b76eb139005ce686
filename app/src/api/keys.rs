use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::code;

/// The fal model whose price "Test key" looks up (the hairstyle try-on model).
pub const TEST_ENDPOINT: &str = "fal-ai/nano-banana/edit";

/// What the browser may know about a saved key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    pub last4: String,
    /// RFC 3339, UTC.
    pub saved_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyCheck {
    pub endpoint_id: String,
    pub unit_price: Option<f64>,
    pub unit: Option<String>,
    pub currency: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Credits {
    Balance {
        amount: f64,
        currency: String,
    },
    /// The key works for generation but may not read billing: that needs an ADMIN-scope key.
    NeedsAdminKey,
}

#[cfg(feature = "ssr")]
fn view(status: crate::server::keys::KeyStatus) -> KeyView {
    KeyView { last4: status.last4, saved_at: crate::server::db::rfc3339(status.saved_at) }
}

#[cfg(feature = "ssr")]
async fn saved_key(
    state: &crate::server::state::AppState,
    user_id: &str,
) -> Result<crate::server::fal::FalKey, AppError> {
    crate::server::keys::load(&state.db, &state.vault, user_id)
        .await?
        .ok_or_else(|| AppError::new(code::KEYS_MISSING, "Save a fal key first."))
}

#[server(endpoint = "keys/status")]
pub async fn key_status() -> Result<Option<KeyView>, AppError> {
    use crate::server::keys;
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        Ok(keys::status(&state()?.db, &user.id).await?.map(view))
    })
    .await
}

#[server(endpoint = "keys/save")]
pub async fn save_key(key: String) -> Result<KeyView, AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::fal::FalKey;
    use crate::server::keys::{self, Saved};
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let key =
            FalKey::parse(&key).map_err(|e| AppError::new(code::KEYS_MALFORMED, e.to_string()).on_field("key"))?;
        let (status, saved) = keys::save(&state.db, &state.vault, &user.id, &key).await?;
        let action = if saved == Saved::Created { Action::KeySaved } else { Action::KeyReplaced };
        let detail = serde_json::json!({ "last4": status.last4 });
        audit::record(
            &state.db,
            Event::new(action).actor(&user.id).subject("provider_key", &user.id).ip(&client_ip()).detail(detail),
        )
        .await;
        Ok(view(status))
    })
    .await
}

#[server(endpoint = "keys/delete")]
pub async fn delete_key() -> Result<(), AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::keys;
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        if keys::delete(&state.db, &user.id).await? {
            audit::record(
                &state.db,
                Event::new(Action::KeyDeleted).actor(&user.id).subject("provider_key", &user.id).ip(&client_ip()),
            )
            .await;
        }
        Ok(())
    })
    .await
}

/// Checks the saved key against fal's pricing endpoint (free; needs an API-scope key).
#[server(endpoint = "keys/test")]
pub async fn test_key() -> Result<KeyCheck, AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let key = saved_key(&state, &user.id).await?;
        let result = state.fal.pricing(&key, &[TEST_ENDPOINT]).await;
        let detail = serde_json::json!({ "ok": result.is_ok() });
        audit::record(&state.db, Event::new(Action::KeyTested).actor(&user.id).ip(&client_ip()).detail(detail)).await;
        let price = result?.into_iter().find(|p| p.endpoint_id == TEST_ENDPOINT);
        Ok(KeyCheck {
            endpoint_id: TEST_ENDPOINT.into(),
            unit_price: price.as_ref().map(|p| p.unit_price),
            unit: price.as_ref().map(|p| p.unit.clone()),
            currency: price.map(|p| p.currency),
        })
    })
    .await
}

/// The fal credit balance, or the news that this key cannot read it.
#[server(endpoint = "keys/credits")]
pub async fn key_credits() -> Result<Credits, AppError> {
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let key = saved_key(&state, &user.id).await?;
        match state.fal.credits(&key, TEST_ENDPOINT).await? {
            Some(balance) => Ok(Credits::Balance { amount: balance.amount, currency: balance.currency }),
            None => Ok(Credits::NeedsAdminKey),
        }
    })
    .await
}
