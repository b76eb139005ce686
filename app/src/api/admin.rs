//! Admin: every account with its usage; disabling, re-enabling, promoting and demoting.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::spending::SpendingView;
use crate::error::AppError;

/// An account as the admin's list shows it. Bytes are what the rows record; spend is the
/// estimates of this month's jobs (millionths of a dollar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub results: i64,
    pub result_bytes: i64,
    pub jobs_this_month: i64,
    pub spend_this_month: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// One account with its spending caps, for its admin page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user: UserRow,
    pub spending: SpendingView,
}

/// Accounts, newest first, 50 a page; `q`: part of the address.
#[server(endpoint = "admin/users")]
pub async fn admin_users(q: Option<String>, after: Option<String>) -> Result<UsersPage, AppError> {
    use crate::server::admin::users;
    use crate::server::request::{cursor, require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        if q.as_deref().is_some_and(|q| q.chars().count() > 254) {
            return Err(AppError::new(crate::error::code::REQUEST_MALFORMED, "Search for at most 254 characters."));
        }
        let state = state()?;
        let now = crate::format::now_ms();
        let (rows, next) =
            users::page(&state.db, q.as_deref(), cursor(after)?.as_deref(), 50, now).await.map_err(internal)?;
        Ok(UsersPage { users: rows.into_iter().map(row).collect(), next })
    })
    .await
}

#[server(endpoint = "admin/user")]
pub async fn admin_user(id: String) -> Result<UserDetail, AppError> {
    use crate::server::admin::users;
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        let state = state()?;
        let listed = users::one(&state.db, &id, crate::format::now_ms()).await.map_err(internal)?;
        let listed =
            listed.ok_or_else(|| AppError::new(crate::error::code::ADMIN_USER_NOT_FOUND, "There is no such user."))?;
        let spending = crate::api::spending::view(&state, &listed.user.id).await?;
        Ok(UserDetail { user: row(listed), spending })
    })
    .await
}

/// `change`: `disable`, `enable`, `promote` or `demote`. Disabling ends the account's sessions
/// and live streams at once and holds its queued jobs; a role change ends its sessions, so the
/// next sign-in starts a new session with the new role.
#[server(endpoint = "admin/users/change")]
pub async fn change_user(id: String, change: String) -> Result<UserRow, AppError> {
    use crate::server::admin::users::{self, Change};
    use crate::server::auth::users::Role;
    use crate::server::request::{client_ip, require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let change = match change.as_str() {
            "disable" => Change::Disable,
            "enable" => Change::Enable,
            "promote" => Change::Role(Role::Admin),
            "demote" => Change::Role(Role::User),
            _ => {
                return Err(AppError::new(
                    crate::error::code::ADMIN_INVALID_CHANGE,
                    "The change must be disable, enable, promote or demote.",
                ));
            }
        };
        let state = state()?;
        let user = users::change(&state, &admin, &id, change, &client_ip()).await?;
        let listed = users::one(&state.db, &user.id, crate::format::now_ms()).await.map_err(internal)?;
        Ok(row(listed.ok_or_else(AppError::internal)?))
    })
    .await
}

#[cfg(feature = "ssr")]
fn row(listed: crate::server::admin::users::Listed) -> UserRow {
    use crate::server::db::rfc3339;
    UserRow {
        role: listed.user.role.as_str().into(),
        disabled: listed.user.disabled,
        created_at: rfc3339(listed.user.created_at),
        last_login_at: listed.last_login_at.map(rfc3339),
        id: listed.user.id,
        email: listed.user.email,
        uploads: listed.uploads,
        upload_bytes: listed.upload_bytes,
        results: listed.results,
        result_bytes: listed.result_bytes,
        jobs_this_month: listed.jobs_this_month,
        spend_this_month: listed.spend_this_month,
    }
}

#[cfg(feature = "ssr")]
fn internal(err: sqlx::Error) -> AppError {
    tracing::error!(%err, "admin: database");
    AppError::internal()
}
