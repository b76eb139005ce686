//! Spending caps: what a user's jobs have spent (estimated) and may spend, per UTC day and month.
//! Users set their own caps, which can only lower what applies; admins set a user's caps in
//! place of the server's default.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Amounts are millionths of a dollar; a missing cap is no cap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendingView {
    pub spent_day: i64,
    pub spent_month: i64,
    /// The caps that apply: the user's own where lower than the admin's (or the default).
    pub cap_day: Option<i64>,
    pub cap_month: Option<i64>,
    pub own_day: Option<i64>,
    pub own_month: Option<i64>,
    /// What an admin set for this user in place of the server's default.
    pub set_day: Option<i64>,
    pub set_month: Option<i64>,
    /// When today's and this month's spend start again from nothing (RFC 3339, UTC).
    pub day_resets_at: String,
    pub month_resets_at: String,
}

/// The caller's spend and caps.
#[server(endpoint = "spending/get")]
pub async fn spending() -> Result<SpendingView, AppError> {
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        Ok(view(&*state()?, &user.id).await?)
    })
    .await
}

/// Sets the caller's own caps (`""`: none of their own), in dollars as typed.
#[server(endpoint = "spending/set_own")]
pub async fn set_own_caps(day: String, month: String) -> Result<SpendingView, AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::request::{client_ip, require_user, respond, state};
    use crate::server::spend;
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let caps = spend::Caps { day: cap(&day, "day")?, month: cap(&month, "month")? };
        spend::set_own_caps(&state.db, &user.id, caps, crate::format::now_ms()).await.map_err(internal)?;
        let detail = serde_json::json!({ "by": "user", "day_micros": caps.day, "month_micros": caps.month });
        let ip = client_ip();
        let event = Event::new(Action::SpendCapsSet).actor(&user.id).subject("user", &user.id).ip(&ip);
        audit::record(&state.db, event.detail(detail)).await;
        Ok(view(&state, &user.id).await?)
    })
    .await
}

/// An admin sets `user_id`'s caps (`""`: the server's default applies).
#[server(endpoint = "admin/spend_caps")]
pub async fn admin_set_caps(user_id: String, day: String, month: String) -> Result<SpendingView, AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::request::{client_ip, require_admin, respond, state};
    use crate::server::spend;
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let caps = spend::Caps { day: cap(&day, "day")?, month: cap(&month, "month")? };
        let found = match crate::server::db::parse_id(&user_id) {
            Some(id) => crate::server::auth::users::find(&state.db, &id).await?,
            None => None,
        };
        let user =
            found.ok_or_else(|| AppError::new(crate::error::code::ADMIN_USER_NOT_FOUND, "There is no such user."))?;
        spend::set_admin_caps(&state.db, &user.id, caps, crate::format::now_ms()).await.map_err(internal)?;
        let detail = serde_json::json!({ "by": "admin", "day_micros": caps.day, "month_micros": caps.month });
        let ip = client_ip();
        let event = Event::new(Action::SpendCapsSet).actor(&admin.id).subject("user", &user.id).ip(&ip);
        audit::record(&state.db, event.detail(detail)).await;
        Ok(view(&state, &user.id).await?)
    })
    .await
}

/// A cap as typed: blank is none; otherwise dollars, at most a million.
#[cfg(feature = "ssr")]
fn cap(text: &str, field: &str) -> Result<Option<i64>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::format::parse_usd(text).map(Some).ok_or_else(|| {
        AppError::new(
            crate::error::code::SPEND_INVALID_CAP,
            "Write the cap in dollars, such as 5 or 0.50 (at most 1000000), or leave it empty for none.",
        )
        .on_field(field)
    })
}

#[cfg(feature = "ssr")]
fn internal(err: sqlx::Error) -> AppError {
    tracing::error!(%err, "spending caps: database");
    AppError::internal()
}

#[cfg(feature = "ssr")]
pub(crate) async fn view(state: &crate::server::state::Services, user_id: &str) -> Result<SpendingView, AppError> {
    use crate::server::db::rfc3339;
    use crate::server::spend::{self, Period};
    let now = crate::format::now_ms();
    let caps = spend::caps_of(&state.db, state.config.jobs.spend_caps, user_id).await.map_err(internal)?;
    let spent = spend::spent(&state.db, user_id, now).await.map_err(internal)?;
    Ok(SpendingView {
        spent_day: spent.day,
        spent_month: spent.month,
        cap_day: caps.effective.day,
        cap_month: caps.effective.month,
        own_day: caps.own.day,
        own_month: caps.own.month,
        set_day: caps.admin.day,
        set_month: caps.admin.month,
        day_resets_at: rfc3339(Period::Day.bounds(now).1),
        month_resets_at: rfc3339(Period::Month.bounds(now).1),
    })
}
