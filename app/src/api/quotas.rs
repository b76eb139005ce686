//! An account's upload and storage quotas: what applies, what it keeps, and an admin setting
//! the account's own in place of the server's defaults.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Sizes in bytes; `set_*` are the admin's own values for the account (`None`: the default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    pub uploads_day: u64,
    pub upload_bytes_day: u64,
    /// `None`: no limit.
    pub storage_bytes: Option<u64>,
    pub set_uploads_day: Option<u64>,
    pub set_upload_bytes_day: Option<u64>,
    pub set_storage_bytes: Option<u64>,
    /// What the account keeps now (images and results).
    pub kept_bytes: u64,
}

/// Most uploads a day an admin may allow one account.
pub const MAX_UPLOADS_DAY: u64 = 1_000_000;
/// Largest size quota an admin may type, in MiB (a pebibyte).
pub const MAX_MIB: u64 = 1 << 30;
#[cfg(feature = "ssr")]
const MIB: u64 = 1 << 20;

/// An admin sets `user_id`'s quotas: uploads a day, MiB uploaded a day, MiB kept (`""`: the
/// server's default applies).
#[server(endpoint = "admin/quotas")]
pub async fn admin_set_quotas(
    user_id: String,
    uploads_day: String,
    upload_mib_day: String,
    storage_mib: String,
) -> Result<QuotaView, AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::quota::{self, Overrides};
    use crate::server::request::{client_ip, require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let invalid = |field: &str, what: &str| {
            AppError::new(
                crate::error::code::QUOTA_INVALID,
                format!("Write {what}, or leave it empty for the default."),
            )
            .on_field(field)
        };
        let overrides = Overrides {
            uploads_day: quota::parse(&uploads_day, 1, MAX_UPLOADS_DAY)
                .map_err(|()| invalid("uploads_day", "a whole number of uploads (at most 1000000)"))?,
            upload_bytes_day: quota::parse(&upload_mib_day, MIB, MAX_MIB)
                .map_err(|()| invalid("upload_mib_day", "a whole number of MiB"))?,
            storage_bytes: quota::parse(&storage_mib, MIB, MAX_MIB)
                .map_err(|()| invalid("storage_mib", "a whole number of MiB"))?,
        };
        let found = match crate::server::db::parse_id(&user_id) {
            Some(id) => crate::server::auth::users::find(&state.db, &id).await?,
            None => None,
        };
        let user =
            found.ok_or_else(|| AppError::new(crate::error::code::ADMIN_USER_NOT_FOUND, "There is no such user."))?;
        quota::set(&state.db, &user.id, overrides, crate::format::now_ms()).await.map_err(internal)?;
        let detail = serde_json::json!({
            "uploads_day": overrides.uploads_day,
            "upload_bytes_day": overrides.upload_bytes_day,
            "storage_bytes": overrides.storage_bytes,
        });
        let ip = client_ip();
        let event = Event::new(Action::QuotasSet).actor(&admin.id).subject("user", &user.id).ip(&ip);
        audit::record(&state.db, event.detail(detail)).await;
        view(&state, &user.id).await
    })
    .await
}

/// The caller's own quotas and what they keep, for the Account tab.
#[server(endpoint = "account/quotas")]
pub async fn my_quotas() -> Result<QuotaView, AppError> {
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        view(&state, &user.id).await
    })
    .await
}

/// `user_id`'s quotas, what applies and what the admin set, with what the account keeps.
#[cfg(feature = "ssr")]
pub(crate) async fn view(services: &crate::server::state::Services, user_id: &str) -> Result<QuotaView, AppError> {
    use crate::server::quota::{self, Quotas};
    let set = quota::overrides(&services.db, user_id).await.map_err(internal)?;
    let applying = Quotas::defaults(&services.config.uploads).with(set);
    let kept_bytes = quota::stored_bytes(&services.db, user_id).await.map_err(internal)?;
    Ok(QuotaView {
        uploads_day: applying.uploads_day,
        upload_bytes_day: applying.upload_bytes_day,
        storage_bytes: applying.storage_bytes,
        set_uploads_day: set.uploads_day,
        set_upload_bytes_day: set.upload_bytes_day,
        set_storage_bytes: set.storage_bytes,
        kept_bytes,
    })
}

#[cfg(feature = "ssr")]
fn internal(err: sqlx::Error) -> AppError {
    tracing::error!(%err, "quotas: database");
    AppError::internal()
}
