//! The gallery: pages of the caller's results, the facts behind one, and curating them. Each
//! function signs in the caller and calls the gallery service with their id, so someone else's
//! result answers exactly like a missing one.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
pub use crate::gallery::{AssetDetail, BulkReport, GalleryItem, GalleryPage, GalleryQuery, Outcome};

/// A page of the caller's results matching `query`; `after` is the previous page's `next`.
#[server(endpoint = "gallery/list", input = Json)]
pub async fn list_gallery(query: GalleryQuery, after: Option<String>) -> Result<GalleryPage, AppError> {
    use crate::server::gallery::{self, Gallery};
    use crate::server::request::{origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let origin = origin();
        let ctx = Gallery::from(&*state).linked_at(origin.as_deref());
        Ok(gallery::page(ctx, &user.id, &query, after.as_deref()).await?)
    })
    .await
}

/// The caller's results among `ids` (at most 100), newest first: what a live event announced.
#[server(endpoint = "gallery/items", input = Json)]
pub async fn gallery_items(ids: Vec<String>) -> Result<Vec<GalleryItem>, AppError> {
    use crate::server::gallery::{self, Gallery};
    use crate::server::request::{origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let origin = origin();
        let ctx = Gallery::from(&*state).linked_at(origin.as_deref());
        Ok(gallery::items(ctx, &user.id, &ids).await?)
    })
    .await
}

/// Everything about one of the caller's results, for the viewer.
#[server(endpoint = "gallery/get")]
pub async fn get_asset(id: String) -> Result<AssetDetail, AppError> {
    use crate::server::gallery::{self, Gallery};
    use crate::server::request::{origin, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let origin = origin();
        let ctx = Gallery::from(&*state).linked_at(origin.as_deref());
        Ok(gallery::detail(ctx, &user.id, &id).await?)
    })
    .await
}

/// What a bulk action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Favorite,
    Unfavorite,
    Trash,
    Restore,
    DeleteForever,
}

/// Applies `action` to the caller's results among `ids` (at most 1,000) and reports per id.
#[server(endpoint = "gallery/curate", input = Json)]
pub async fn curate_gallery(action: BulkAction, ids: Vec<String>) -> Result<BulkReport, AppError> {
    use crate::server::gallery::Gallery;
    use crate::server::gallery::curate::{self, Change};
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let ctx = Gallery::from(&*state);
        let ip = client_ip();
        let change = match action {
            BulkAction::Favorite => Change::Favorite(true),
            BulkAction::Unfavorite => Change::Favorite(false),
            BulkAction::Trash => Change::Trash,
            BulkAction::Restore => Change::Restore,
            BulkAction::DeleteForever => return Ok(curate::delete_forever(ctx, &user.id, &ids, &ip).await?),
        };
        Ok(curate::apply(ctx, &user.id, &ids, change, &ip).await?)
    })
    .await
}

/// Deletes everything in the caller's trash for good; answers how many results went.
#[server(endpoint = "gallery/empty_trash")]
pub async fn empty_trash() -> Result<u64, AppError> {
    use crate::server::gallery::{Gallery, curate};
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        Ok(curate::empty_trash(Gallery::from(&*state), &user.id, &client_ip()).await?)
    })
    .await
}

/// Runs the job that made the caller's result `id` again, with exactly its inputs.
#[server(endpoint = "gallery/rerun")]
pub async fn rerun(id: String) -> Result<crate::views::JobView, AppError> {
    use crate::server::gallery::{Gallery, reuse};
    use crate::server::jobs;
    use crate::server::request::{client_ip, origin, request_id, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        let job =
            reuse::rerun(Gallery::from(&*state), (&state).into(), &user.id, &id, &client_ip(), request_id()).await?;
        jobs::views::one((&state).into(), job, origin().as_deref()).await
    })
    .await
}

/// Copies the caller's result `id` into their images, to be an input on the Create tab;
/// answers the new image's id.
#[server(endpoint = "gallery/use_as_input")]
pub async fn use_as_input(id: String) -> Result<String, AppError> {
    use crate::server::gallery::{Gallery, reuse};
    use crate::server::request::{client_ip, require_user, respond, state};
    respond(async move {
        let user = require_user().await?;
        let state = state()?;
        Ok(reuse::use_as_input(Gallery::from(&*state), &user.id, &id, &client_ip()).await?.id)
    })
    .await
}
