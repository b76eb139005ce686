//! The caller's personal access tokens: list, create (the secret is answered once), revoke.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
pub use crate::tokens::{CreatedToken, Scope, TokenView};

/// The caller's tokens, newest first.
#[server(endpoint = "tokens/list")]
pub async fn list_tokens() -> Result<Vec<TokenView>, AppError> {
    use crate::server::request::{require_user, respond, state};
    use crate::server::tokens;
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        Ok(tokens::list(&state.db, &user.id).await?.into_iter().map(view).collect())
    })
    .await
}

/// Makes a token named `name` that may do `scopes` (`jobs:read` …) for `days` days.
#[server(endpoint = "tokens/create", input = Json)]
pub async fn create_token(name: String, scopes: Vec<String>, days: u32) -> Result<CreatedToken, AppError> {
    use crate::server::request::{client_ip, require_user, respond, state};
    use crate::server::tokens::{self, NewToken};
    respond(async move {
        let user = require_user().await?;
        if scopes.len() > 20 {
            return Err(AppError::new(crate::error::code::TOKEN_INVALID, "Too many scopes.").on_field("scopes"));
        }
        let new = NewToken::parse(&name, &scopes, days)?;
        let state = state()?;
        let (token, row) = tokens::create(&state.db, &user, new, &client_ip(), crate::format::now_ms()).await?;
        Ok(CreatedToken { token, view: view(row) })
    })
    .await
}

/// Revokes the caller's token `id` at once.
#[server(endpoint = "tokens/revoke")]
pub async fn revoke_token(id: String) -> Result<(), AppError> {
    use crate::server::request::{client_ip, require_user, respond, state};
    use crate::server::tokens;
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        Ok(tokens::revoke(&state.db, &user.id, &id, &client_ip(), crate::format::now_ms()).await?)
    })
    .await
}

#[cfg(feature = "ssr")]
pub(crate) fn view(row: crate::server::tokens::TokenRow) -> TokenView {
    use crate::server::db::rfc3339;
    TokenView {
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        scopes: row.scopes,
        created_at: rfc3339(row.created_at),
        expires_at: rfc3339(row.expires_at),
        last_used_at: row.last_used_at.map(rfc3339),
        revoked: row.revoked_at.is_some(),
    }
}
