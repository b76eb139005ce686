//! An admin looking into another account's gallery: read-only, only after giving a reason, for
//! a limited time, every page and result audited with the reason; and the owner's list of those
//! accesses. The grid and the viewer are the gallery's own; only who may ask differs.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::gallery::{AssetDetail, GalleryPage, GalleryQuery};

/// One access as the admin and the owner see it. Times are RFC 3339, UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessView {
    pub id: String,
    pub admin_email: String,
    pub reason: String,
    pub started_at: String,
    pub expires_at: String,
    /// Grid pages and results shown under it.
    pub pages_viewed: i64,
    pub assets_viewed: i64,
}

/// The account an admin is about to look into, and their access to it if one is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Oversight {
    pub owner_id: String,
    pub owner_email: String,
    pub access: Option<AccessView>,
    /// How long an access lasts.
    pub minutes: u64,
}

/// A result an admin opened, as its owner's list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedResult {
    pub id: String,
    pub at: String,
}

/// An access to the caller's account: who, why, when, and which results it opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub access: AccessView,
    pub opened: Vec<OpenedResult>,
}

/// The account `owner` and the caller's current access to its gallery.
#[server(endpoint = "admin/gallery/access")]
pub async fn admin_gallery_access(owner: String) -> Result<Oversight, AppError> {
    use crate::server::admin::access;
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let owner = access::owner(&state.db, &admin, &owner).await?;
        let now = crate::format::now_ms();
        let current = access::current(&state.db, &admin.id, &owner.id, now).await?;
        Ok(Oversight {
            owner_id: owner.id,
            owner_email: owner.email,
            access: current.map(view),
            minutes: state.config.gallery.admin_access.as_secs() / 60,
        })
    })
    .await
}

/// Opens `owner`'s gallery to the caller for the configured time, for `reason` (which the
/// owner will read).
#[server(endpoint = "admin/gallery/open")]
pub async fn open_access(owner: String, reason: String) -> Result<AccessView, AppError> {
    use crate::server::admin::access;
    use crate::server::request::{client_ip, require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let reason = access::reason(&reason)?;
        let owner = access::owner(&state.db, &admin, &owner).await?;
        let window = state.config.gallery.admin_access;
        let grant =
            access::open(&state.db, &admin, &owner, &reason, window, &client_ip(), crate::format::now_ms()).await?;
        Ok(view(grant))
    })
    .await
}

/// Ends the caller's access to `owner`'s gallery now.
#[server(endpoint = "admin/gallery/end")]
pub async fn end_access(owner: String) -> Result<(), AppError> {
    use crate::server::admin::access;
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let owner = access::owner(&state.db, &admin, &owner).await?;
        Ok(access::end(&state.db, &admin.id, &owner.id, crate::format::now_ms()).await?)
    })
    .await
}

/// A page of `owner`'s results, as [`crate::api::gallery::list_gallery`] gives the owner theirs,
/// under the caller's current access; recorded before it is answered.
#[server(endpoint = "admin/gallery/list", input = Json)]
pub async fn admin_gallery_list(
    owner: String,
    query: GalleryQuery,
    after: Option<String>,
) -> Result<GalleryPage, AppError> {
    use crate::server::admin::access::Viewed;
    use crate::server::gallery;
    crate::server::request::respond(async move {
        let looking = Looking::at(&owner).await?;
        let page = gallery::page(looking.gallery(), &looking.owner, &query, after.as_deref()).await?;
        let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
        looking.record(Viewed::Page(&ids)).await?;
        Ok(page)
    })
    .await
}

/// One of `owner`'s results for the viewer, under the caller's current access; recorded
/// before it is answered.
#[server(endpoint = "admin/gallery/get")]
pub async fn admin_gallery_get(owner: String, id: String) -> Result<AssetDetail, AppError> {
    use crate::server::admin::access::Viewed;
    use crate::server::gallery;
    crate::server::request::respond(async move {
        let looking = Looking::at(&owner).await?;
        let detail = gallery::detail(looking.gallery(), &looking.owner, &id).await?;
        looking.record(Viewed::Asset(&detail.item.id)).await?;
        Ok(detail)
    })
    .await
}

/// The caller, an admin, looking at `owner`'s gallery under a running access.
#[cfg(feature = "ssr")]
struct Looking {
    state: crate::server::state::AppState,
    owner: String,
    grant: crate::server::admin::access::Grant,
    origin: Option<String>,
    now: i64,
}

#[cfg(feature = "ssr")]
impl Looking {
    async fn at(owner: &str) -> Result<Self, AppError> {
        use crate::server::admin::access;
        use crate::server::request::{origin, require_admin, state};
        let admin = require_admin().await?;
        let state = state()?;
        let owner = access::owner(&state.db, &admin, owner).await?;
        let now = crate::format::now_ms();
        let grant = access::require(&state.db, &admin.id, &owner.id, now).await?;
        Ok(Self { state, owner: owner.id, grant, origin: origin(), now })
    }

    /// The owner's gallery, linked for the origin the admin's browser used.
    fn gallery(&self) -> crate::server::gallery::Gallery<'_> {
        crate::server::gallery::Gallery::from(&*self.state).linked_at(self.origin.as_deref())
    }

    async fn record(&self, viewed: crate::server::admin::access::Viewed<'_>) -> Result<(), AppError> {
        let ip = crate::server::request::client_ip();
        Ok(crate::server::admin::access::record_view(&self.state.db, &self.grant, viewed, &ip, self.now).await?)
    }
}

/// The latest admin accesses to the caller's gallery, newest first, with what each opened.
#[server(endpoint = "account/access")]
pub async fn account_access() -> Result<Vec<AccessEntry>, AppError> {
    use crate::server::admin::access;
    use crate::server::db::rfc3339;
    use crate::server::request::{require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let seen = access::of_owner(&state.db, &user.id).await?;
        Ok(seen
            .into_iter()
            .map(|s| AccessEntry {
                opened: s.opened.into_iter().map(|(id, at)| OpenedResult { id, at: rfc3339(at) }).collect(),
                access: view(s.grant),
            })
            .collect())
    })
    .await
}

#[cfg(feature = "ssr")]
fn view(grant: crate::server::admin::access::Grant) -> AccessView {
    use crate::server::db::rfc3339;
    AccessView {
        id: grant.id,
        admin_email: grant.admin_email,
        reason: grant.reason,
        started_at: rfc3339(grant.started_at),
        expires_at: rfc3339(grant.expires_at),
        pages_viewed: grant.pages_viewed,
        assets_viewed: grant.assets_viewed,
    }
}
