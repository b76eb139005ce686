//! The viewer: one result full size over the grid (so the grid keeps its place), with the facts
//! of the job that made it. ← and → move through the results shown, Esc closes; the open result
//! is in the URL, so the back button closes it and a link to it works.

use leptos::prelude::*;
use leptos_router::NavigateOptions;

use crate::api::gallery::{AssetDetail, BulkAction, GalleryQuery, curate_gallery, rerun, use_as_input};
use crate::components::Notice;
use crate::components::gallery::{Shelf, href};
use crate::components::uploader::human_size;
use crate::messages::{t, tf, use_locale};
use crate::states::AssetKind;

#[component]
pub fn Viewer(open: Memo<Option<String>>, shelf: Shelf, query: Memo<GalleryQuery>) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let place = shelf.place;
    let detail = Resource::new(
        move || open.get(),
        move |id| async move {
            match id {
                Some(id) => place.detail(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // Moving between results replaces the URL, so one back press returns to the grid.
    let show = Callback::new(move |id: Option<String>| {
        let options = NavigateOptions { scroll: false, replace: true, ..NavigateOptions::default() };
        navigate(&href(place, &query.get_untracked(), id.as_deref()), options);
    });
    let step = Callback::new(move |by: isize| {
        let Some(current) = open.get_untracked() else { return };
        let ids = shelf.shown_ids();
        let Some(at) = ids.iter().position(|id| *id == current) else { return };
        let to = at as isize + by;
        if to >= 0 && (to as usize) < ids.len() {
            show.run(Some(ids[to as usize].clone()));
        } else if to >= 0 {
            // Past the last result shown: bring the next page (a second press moves on).
            shelf.load_more(query);
        }
    });
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if open.get_untracked().is_none() {
            return;
        }
        match ev.key().as_str() {
            "ArrowLeft" => step.run(-1),
            "ArrowRight" => step.run(1),
            "Escape" => show.run(None),
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || keys.remove());

    // After a favorite the facts are read again; after a trash or restore the viewer moves on
    // to a neighbour (the result has left this view).
    let act = Callback::new(move |(action, id): (BulkAction, String)| {
        let ids = shelf.shown_ids();
        let neighbour = ids
            .iter()
            .position(|x| *x == id)
            .and_then(|at| ids.get(at + 1).or_else(|| at.checked_sub(1).and_then(|b| ids.get(b))).cloned());
        leptos::task::spawn_local(async move {
            match curate_gallery(action, vec![id]).await {
                Ok(report) => {
                    shelf.apply(action, &report, query.get_untracked().trash);
                    if matches!(action, BulkAction::Favorite | BulkAction::Unfavorite) {
                        detail.refetch();
                    } else {
                        show.run(neighbour);
                    }
                }
                Err(err) => shelf.notice.set(Some(Notice::from(&err))),
            }
        });
    });

    // Making something new from a result goes on on the Create tab, where the new job shows
    // live, or where the copied image is chosen as the input.
    let navigate_on = leptos_router::hooks::use_navigate();
    let make = Callback::new(move |(again, id): (bool, String)| {
        let navigate = navigate_on.clone();
        leptos::task::spawn_local(async move {
            let target = if again {
                rerun(id).await.map(|_| "/create".to_owned())
            } else {
                use_as_input(id).await.map(|upload| format!("/create?use={upload}"))
            };
            match target {
                Ok(target) => navigate(&target, NavigateOptions::default()),
                Err(err) => shelf.notice.set(Some(Notice::from(&err))),
            }
        });
    });

    view! {
        <Show when=move || open.with(Option::is_some)>
            <div class="viewer" role="dialog" aria-modal="true" aria-label="Result" data-testid="viewer">
                <div class="viewer-nav">
                    <button type="button" class="secondary" data-testid="viewer-prev" aria-label="Previous"
                        on:click=move |_| step.run(-1)>"←"</button>
                    <button type="button" class="secondary" data-testid="viewer-next" aria-label="Next"
                        on:click=move |_| step.run(1)>"→"</button>
                    <button type="button" class="secondary" data-testid="viewer-close" aria-label="Close"
                        on:click=move |_| show.run(None)>"✕"</button>
                </div>
                <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match detail.await {
                            Ok(Some(detail)) => view! { <Facts detail act make read_only=place.read_only() /> }.into_any(),
                            Ok(None) => ().into_any(),
                            Err(err) => view! { <p class="banner error" data-testid="viewer-error">{err.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </Show>
    }
}

#[component]
fn Facts(
    detail: AssetDetail,
    act: Callback<(BulkAction, String)>,
    /// `(true, id)` runs the result's job again; `(false, id)` uses the result as an input.
    make: Callback<(bool, String)>,
    /// An admin looking: the facts without the owner's actions.
    read_only: bool,
) -> impl IntoView {
    let item = detail.item;
    let media = match item.kind {
        AssetKind::Video => view! {
            <video src=item.url.clone() controls=true autoplay=true loop=true playsinline=true data-testid="viewer-media"></video>
        }
        .into_any(),
        _ => view! { <img src=item.url.clone() alt=item.prompt.clone().unwrap_or_default() data-testid="viewer-media" /> }
            .into_any(),
    };
    let size = match (item.width, item.height) {
        (Some(w), Some(h)) => format!("{w} × {h} · {}", human_size(item.byte_size)),
        _ => human_size(item.byte_size),
    };
    let duration = item.duration_ms.map(|ms| crate::format::elapsed(ms.div_ceil(1000)));
    let id = item.id.clone();
    let favorite = item.favorite;
    let in_trash = item.trashed_at.is_some();
    let l = use_locale();
    let expiry = expiry_text(l, &item);
    let toggle = {
        let id = id.clone();
        move |_| act.run((if favorite { BulkAction::Unfavorite } else { BulkAction::Favorite }, id.clone()))
    };
    let trash = {
        let id = id.clone();
        move |_| act.run((if in_trash { BulkAction::Restore } else { BulkAction::Trash }, id.clone()))
    };
    let missing_inputs = detail.input_count.saturating_sub(detail.inputs.len());
    view! {
        <div class="viewer-body">
            <figure class="viewer-media">{media}</figure>
            <aside class="viewer-facts" data-testid="viewer-facts" data-id=id.clone()>
                {(!read_only).then(|| {
                    let (download_url, file_name) = (item.download_url.clone(), item.file_name.clone());
                    view! {
                    <div class="viewer-actions">
                        <button type="button" data-testid="viewer-favorite" aria-pressed=favorite.to_string() on:click=toggle>
                            {if favorite { format!("★ {}", t(l, "gallery.favorite")) } else { format!("☆ {}", t(l, "gallery.favorite_one")) }}
                        </button>
                        <a class="button secondary" href=download_url download=file_name
                            data-testid="viewer-download">{t(l, "generate.download")}</a>
                        <button type="button" class="secondary" data-testid="viewer-rerun" on:click={
                            let id = id.clone();
                            move |_| make.run((true, id.clone()))
                        }>{t(l, "viewer.run_again")}</button>
                        {(item.kind == AssetKind::Image).then(|| {
                            let id = id.clone();
                            view! {
                                <button type="button" class="secondary" data-testid="viewer-use"
                                    on:click=move |_| make.run((false, id.clone()))>{t(l, "viewer.use_as_input")}</button>
                            }
                        })}
                        <button type="button" class="secondary" data-testid="viewer-trash" on:click=trash>
                            {if in_trash { t(l, "gallery.restore") } else { t(l, "gallery.move_to_trash") }}
                        </button>
                    </div>
                    }
                })}
                <dl>
                    {item.prompt.clone().map(|p| view! { <dt>{t(l, "viewer.prompt")}</dt><dd data-testid="viewer-prompt">{p}</dd> })}
                    <dt>{t(l, "generate.model")}</dt>
                    <dd data-testid="viewer-model">{item.model_name.clone()} " " <code>{item.model.clone()}</code></dd>
                    <dt>{t(l, "viewer.size")}</dt>
                    <dd>{size}</dd>
                    {duration.map(|d| view! { <dt>{t(l, "viewer.duration")}</dt><dd>{d}</dd> })}
                    <dt>{t(l, "viewer.created")}</dt>
                    <dd>{crate::format::timestamp(&item.created_at)}</dd>
                    {item.estimate_micros.map(|m| view! {
                        <dt>{t(l, "gallery.estimated_cost")}</dt><dd data-testid="viewer-cost">{format!("≈ {}", crate::format::usd(m))}</dd>
                    })}
                    <dt>{t(l, "viewer.kept")}</dt>
                    <dd data-testid="viewer-expiry">{expiry}</dd>
                    {item.nsfw.map(|flag| view! {
                        <dt>{t(l, "viewer.nsfw")}</dt><dd data-testid="viewer-nsfw">{if flag { t(l, "common.yes") } else { t(l, "common.no") }}</dd>
                    })}
                    {detail.description.map(|d| view! { <dt>{t(l, "viewer.note")}</dt><dd>{d}</dd> })}
                </dl>
                <details class="viewer-params">
                    <summary>{t(l, "viewer.every_input")}</summary>
                    <dl data-testid="viewer-params">
                        {detail.params.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
                    </dl>
                </details>
                {(detail.input_count > 0).then(|| view! {
                    <div class="viewer-inputs" data-testid="viewer-inputs">
                        <h3>{t(l, "viewer.started_from")}</h3>
                        {detail.inputs.into_iter().map(|input| view! { <img src=input.url alt=t(l, "viewer.input_image") loading="lazy" /> }).collect_view()}
                        {(missing_inputs > 0).then(|| view! {
                            <p class="muted small">{tf(l, "viewer.inputs_gone", &[("n", &missing_inputs.to_string())])}</p>
                        })}
                    </div>
                })}
            </aside>
        </div>
    }
}

/// "Kept as a favorite", "Deleted for good in 29 days" (in the trash), "Expires in 3 days".
fn expiry_text(l: crate::messages::Locale, item: &crate::api::gallery::GalleryItem) -> String {
    let now = crate::format::now_ms();
    let when = item.expires_at.as_deref().and_then(crate::format::epoch_ms);
    match (item.trashed_at.is_some(), item.favorite, when) {
        (true, _, Some(at)) => tf(l, "viewer.in_trash", &[("when", &crate::format::until_in(l, now, at))]),
        (false, true, _) => t(l, "viewer.kept_favorite").to_owned(),
        (_, _, Some(at)) => tf(l, "viewer.expires", &[("when", &crate::format::until_in(l, now, at))]),
        _ => t(l, "viewer.kept").to_owned(),
    }
}
