//! Account self-service: password, email address, where the account is signed in, and deletion.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::error::code;

/// One place the account is signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginView {
    pub id: String,
    /// "Firefox on Linux": named from the browser's User-Agent, never the header itself.
    pub device: String,
    pub ip: String,
    /// RFC 3339, UTC.
    pub signed_in_at: String,
    /// RFC 3339, UTC; updated at most once a minute.
    pub last_seen_at: String,
    /// The session this request came from.
    pub current: bool,
}

/// What deleting the account removes, counted for the confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInventory {
    pub email: String,
    pub uploads: i64,
    pub jobs: i64,
    pub results: i64,
    pub has_key: bool,
}

/// The word a person types to confirm deleting their account.
pub const DELETE_WORD: &str = "DELETE";

#[cfg(feature = "ssr")]
async fn signed_in() -> Result<(crate::server::auth::User, String), AppError> {
    use crate::server::request::{require_user, session};
    let user = require_user().await?;
    let login =
        crate::server::auth::session::login_id(&session().await?).await?.ok_or_else(AppError::unauthenticated)?;
    Ok((user, login))
}

/// Changes the password (the current one is required) and ends every other session; answers
/// how many ended.
#[server(endpoint = "account/password")]
pub async fn change_password(current: String, password: String, confirm: String) -> Result<u64, AppError> {
    use crate::server::auth::account::{self, PasswordChange};
    use crate::server::request::{client_ip, respond, state};
    respond(async move {
        let (user, login) = signed_in().await?;
        let state = state()?;
        let change = PasswordChange { current: &current, password: &password, confirm: &confirm };
        Ok(account::change_password(&state.db, &state.config.auth, &user, &login, &client_ip(), change).await?)
    })
    .await
}

/// Changes the account's email address (the password is required); answers the new address.
#[server(endpoint = "account/email")]
pub async fn change_email(email: String, current: String) -> Result<String, AppError> {
    use crate::server::auth::account;
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let changed = account::change_email(&state.db, &state.config.auth, &user, &client_ip(), &email, &current)
            .await
            .map_err(|e| {
                let mut e = AppError::from(e);
                if e.code == "auth.email_taken" {
                    e.message = "Another account already uses this address.".into();
                }
                e
            })?;
        Ok(changed.as_str().to_owned())
    })
    .await
}

#[server(endpoint = "account/logins")]
pub async fn list_logins() -> Result<Vec<LoginView>, AppError> {
    use crate::server::auth::logins;
    use crate::server::db::rfc3339;
    use crate::server::request::{respond, state};
    respond(async move {
        let (user, current) = signed_in().await?;
        let listed = logins::list(&state()?.db, &user.id).await?;
        Ok(listed
            .into_iter()
            .map(|l| LoginView {
                current: l.id == current,
                id: l.id,
                device: l.device,
                ip: l.ip,
                signed_in_at: rfc3339(l.created_at),
                last_seen_at: rfc3339(l.last_seen_at),
            })
            .collect())
    })
    .await
}

/// Ends another of the account's sessions at once (its next request finds itself logged out).
#[server(endpoint = "account/logins/end")]
pub async fn end_login(id: String) -> Result<(), AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::auth::logins;
    use crate::server::request::{client_ip, respond, state};
    respond(async move {
        let (user, current) = signed_in().await?;
        if id == current {
            return Err(AppError::new(
                code::ACCOUNT_CURRENT_SESSION,
                "This is the session you are using: log out instead.",
            ));
        }
        let state = state()?;
        // Ids are ours (uuids); anything longer is not one of them and costs no query.
        if id.len() > 64 || !logins::end(&state.db, &user.id, &id).await? {
            return Err(AppError::new(code::SESSION_NOT_FOUND, "That session has already ended."));
        }
        audit::record(
            &state.db,
            Event::new(Action::SessionEnded).actor(&user.id).subject("login", &id).ip(&client_ip()),
        )
        .await;
        Ok(())
    })
    .await
}

/// What deleting the account would remove.
#[server(endpoint = "account/contents")]
pub async fn account_contents() -> Result<AccountInventory, AppError> {
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let counted = crate::server::erase::contents(&state()?.db, &user.id).await.map_err(|err| {
            tracing::error!(%err, "counting the account's contents failed");
            AppError::internal()
        })?;
        Ok(AccountInventory {
            email: user.email,
            uploads: counted.uploads,
            jobs: counted.jobs,
            results: counted.results,
            has_key: counted.has_key,
        })
    })
    .await
}

/// Deletes the account and everything of it, after the password and the word [`DELETE_WORD`].
#[server(endpoint = "account/delete")]
pub async fn delete_account(password: String, confirm: String) -> Result<(), AppError> {
    use crate::server::auth::account;
    use crate::server::erase::{self, EraseError};
    use crate::server::request::{respond, session, state};
    respond(async move {
        let (user, _) = signed_in().await?;
        if confirm.trim() != DELETE_WORD {
            return Err(AppError::new(code::ACCOUNT_NOT_CONFIRMED, format!("Type {DELETE_WORD} to confirm."))
                .on_field("confirm"));
        }
        let state = state()?;
        // The server must keep someone who can administer it.
        if user.is_admin() && crate::server::auth::users::other_admins(&state.db, &user.id).await? == 0 {
            return Err(AppError::new(
                code::ACCOUNT_LAST_ADMIN,
                "You are the only admin of this server: make someone else an admin first.",
            ));
        }
        account::confirm_password(&state.db, &state.config.auth, &user, &password).await.map_err(|e| {
            // The form's password field is "password", not "current".
            let mut e = AppError::from(e);
            if e.field.is_some() {
                e.field = Some("password".into());
            }
            e
        })?;
        erase::delete_account(&state.db, &state.storage, &user).await.map_err(|err| match err {
            EraseError::Storage(err) => {
                tracing::warn!(%err, "deleting an account's objects failed; the sweeper will finish it");
                AppError::new(
                    code::STORAGE_UNAVAILABLE,
                    "Storage did not answer. Your account is closed and will be deleted completely as soon as it does.",
                )
            }
            EraseError::Database(err) => {
                tracing::error!(%err, "deleting an account failed");
                AppError::internal()
            }
        })?;
        session().await?.flush().await.map_err(|err| {
            tracing::warn!(%err, "clearing the deleted account's session failed");
            AppError::internal()
        })?;
        leptos_axum::redirect("/signup?deleted=1");
        Ok(())
    })
    .await
}
