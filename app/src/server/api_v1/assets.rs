//! The caller's results: keyset pages with the gallery's filters and search, one with its
//! short-lived link, favoriting, deleting.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{Caller, JsonBody, Problem};
use crate::error::{AppError, code};
use crate::gallery::{GalleryItem, GalleryQuery, Outcome};
use crate::server::gallery::curate::{self, Change};
use crate::server::gallery::{self, Gallery};
use crate::server::state::AppState;
use crate::states::AssetKind;
use crate::tokens::Scope;

/// A result as the API shows it. Links are short-lived.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiAsset {
    id: String,
    job_id: String,
    /// `image`, `video`, `audio` or `file`.
    #[schema(value_type = String)]
    kind: AssetKind,
    model: String,
    prompt: Option<String>,
    content_type: String,
    byte_size: u64,
    width: Option<u32>,
    height: Option<u32>,
    duration_ms: Option<u64>,
    favorite: bool,
    created_at: String,
    /// When it will be deleted unless favorited (or, in the trash, when the trash is emptied).
    expires_at: Option<String>,
    trashed_at: Option<String>,
    url: String,
    thumb_url: Option<String>,
}

impl From<GalleryItem> for ApiAsset {
    fn from(item: GalleryItem) -> Self {
        Self {
            id: item.id,
            job_id: item.job_id,
            kind: item.kind,
            model: item.model,
            prompt: item.prompt,
            content_type: item.content_type,
            byte_size: item.byte_size,
            width: item.width,
            height: item.height,
            duration_ms: item.duration_ms,
            favorite: item.favorite,
            created_at: item.created_at,
            expires_at: item.expires_at,
            trashed_at: item.trashed_at,
            url: item.url,
            thumb_url: item.thumb_url,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AssetsPage {
    items: Vec<ApiAsset>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// The caller's results, newest first, 60 a page, with the gallery's filters and search.
#[utoipa::path(get, path = "/api/v1/assets", operation_id = "listAssets", tag = "assets",
    params(
        ("q" = Option<String>, Query, description = "Words of the prompt"),
        ("kind" = Option<String>, Query, description = "image or video"),
        ("model" = Option<String>, Query, description = "A model's endpoint id"),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD, UTC"),
        ("to" = Option<String>, Query, description = "YYYY-MM-DD, UTC, included"),
        ("view" = Option<String>, Query, description = "favorites or trash"),
        ("after" = Option<String>, Query, description = "The previous page's next"),
    ),
    responses((status = 200, body = AssetsPage), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["assets:read"])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<AssetsPage>, Problem> {
    caller.needs(Scope::AssetsRead)?;
    if params.len() > 16 || params.iter().any(|(k, v)| k.len() > 16 || v.len() > 1000) {
        return Err(AppError::new(code::REQUEST_MALFORMED, "Too many or too long query parameters.").into());
    }
    let get = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let query = GalleryQuery::from_params(get);
    let after = get("after");
    let ctx = Gallery::from(&*state).linked_at(caller.origin.as_deref());
    let page = gallery::page(ctx, &caller.user.id, &query, after.as_deref()).await.map_err(AppError::from)?;
    Ok(Json(AssetsPage { items: page.items.into_iter().map(ApiAsset::from).collect(), next: page.next }))
}

/// One of the caller's results, with a short-lived link.
#[utoipa::path(get, path = "/api/v1/assets/{id}", operation_id = "getAsset", tag = "assets", params(("id" = String, Path)),
    responses((status = 200, body = ApiAsset), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["assets:read"])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiAsset>, Problem> {
    caller.needs(Scope::AssetsRead)?;
    let ctx = Gallery::from(&*state).linked_at(caller.origin.as_deref());
    let detail = gallery::detail(ctx, &caller.user.id, &id).await.map_err(AppError::from)?;
    Ok(Json(ApiAsset::from(detail.item)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FavoriteRequest {
    #[serde(default = "yes")]
    favorite: bool,
}

fn yes() -> bool {
    true
}

/// Favorites (`{"favorite": true}`, also `{}`) or unfavorites a result.
#[utoipa::path(post, path = "/api/v1/assets/{id}/favorite", operation_id = "favoriteAsset", tag = "assets", params(("id" = String, Path)),
    request_body = FavoriteRequest,
    responses((status = 200, body = ApiAsset), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["assets:write"])))]
pub async fn favorite(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FavoriteRequest>,
) -> Result<Json<ApiAsset>, Problem> {
    caller.needs(Scope::AssetsWrite)?;
    let ids = [id];
    change(&state, &caller, &ids, Change::Favorite(body.favorite)).await?;
    let ctx = Gallery::from(&*state).linked_at(caller.origin.as_deref());
    let detail = gallery::detail(ctx, &caller.user.id, &ids[0]).await.map_err(AppError::from)?;
    Ok(Json(ApiAsset::from(detail.item)))
}

/// Deletes a result and its files for good.
#[utoipa::path(delete, path = "/api/v1/assets/{id}", operation_id = "deleteAsset", tag = "assets", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = super::problem::ProblemDetails, content_type = "application/problem+json")),
    security(("token" = ["assets:write"])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.needs(Scope::AssetsWrite)?;
    let ids = [id];
    change(&state, &caller, &ids, Change::Trash).await?;
    curate::delete_forever(Gallery::from(&*state), &caller.user.id, &ids, &caller.ip).await.map_err(AppError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change(state: &AppState, caller: &Caller, ids: &[String], change: Change) -> Result<(), AppError> {
    let report = curate::apply(Gallery::from(&**state), &caller.user.id, ids, change, &caller.ip).await?;
    if report.items.iter().any(|(_, o)| *o == Outcome::NotFound) {
        return Err(AppError::new(code::GALLERY_NOT_FOUND, "You have no result with that id."));
    }
    Ok(())
}
