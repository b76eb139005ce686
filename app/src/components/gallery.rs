//! The Gallery tab's pieces: the filter bar, the grid of results with its multi-select, and the
//! bar of actions on the selection. Their state lives in one [`Shelf`] the page owns. The same
//! grid shows an admin, read-only, the account they are looking into (see [`Place`]).

use std::collections::HashSet;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::gallery::{
    AssetDetail, BulkAction, BulkReport, GalleryItem, GalleryPage, GalleryQuery, Outcome, curate_gallery, get_asset,
    list_gallery,
};
use crate::api::oversight::{admin_gallery_get, admin_gallery_list};
use crate::catalog::MODELS;
use crate::components::Notice;
use crate::error::AppError;
use crate::gallery::{MAX_BULK_IDS, Selection, Span};
use crate::messages::{t, tf, use_locale};
use crate::states::AssetKind;

/// Whose results are shown: the user's own, or an account an admin is looking into (read-only,
/// every page and result recorded for its owner to see).
#[derive(Clone, Copy)]
pub enum Place {
    Own,
    Overseen(StoredValue<String>),
}

impl Place {
    pub fn read_only(self) -> bool {
        matches!(self, Self::Overseen(_))
    }

    /// The page the grid lives on.
    pub fn path(self) -> String {
        match self {
            Self::Own => "/gallery".to_owned(),
            Self::Overseen(owner) => format!("/admin/users/{}/gallery", owner.get_value()),
        }
    }

    pub async fn page(self, query: GalleryQuery, after: Option<String>) -> Result<GalleryPage, AppError> {
        match self {
            Self::Own => list_gallery(query, after).await,
            Self::Overseen(owner) => admin_gallery_list(owner.get_value(), query, after).await,
        }
    }

    pub async fn detail(self, id: String) -> Result<AssetDetail, AppError> {
        match self {
            Self::Own => get_asset(id).await,
            Self::Overseen(owner) => admin_gallery_get(owner.get_value(), id).await,
        }
    }
}

/// What the grid shows and the user has chosen, shared by the page's parts.
#[derive(Clone, Copy)]
pub struct Shelf {
    pub place: Place,
    pub items: RwSignal<Vec<GalleryItem>>,
    /// The cursor of the next page; `None` once the last is shown.
    pub next: RwSignal<Option<String>>,
    pub loading: RwSignal<bool>,
    pub selection: RwSignal<Selection>,
    pub notice: RwSignal<Option<Notice>>,
}

impl Shelf {
    pub fn new() -> Self {
        Self::at(Place::Own)
    }

    /// The shelf of an account an admin looks into.
    pub fn overseeing(owner: String) -> Self {
        Self::at(Place::Overseen(StoredValue::new(owner)))
    }

    fn at(place: Place) -> Self {
        Self {
            place,
            items: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            loading: RwSignal::new(false),
            selection: RwSignal::new(Selection::default()),
            notice: RwSignal::new(None),
        }
    }

    /// Starts over with a first page.
    pub fn reset(&self, page: GalleryPage) {
        self.items.set(page.items);
        self.next.set(page.next);
        self.selection.update(Selection::clear);
    }

    pub fn shown_ids(&self) -> Vec<String> {
        self.items.with_untracked(|items| items.iter().map(|i| i.id.clone()).collect())
    }

    /// Loads the page after the last one shown, once (a second call while one loads does
    /// nothing). A page for a query the user has left since is dropped.
    pub fn load_more(&self, query: Memo<GalleryQuery>) {
        let Some(after) = self.next.get_untracked() else { return };
        if self.loading.get_untracked() {
            return;
        }
        self.loading.set(true);
        let asked = query.get_untracked();
        let shelf = *self;
        leptos::task::spawn_local(async move {
            let page = shelf.place.page(asked.clone(), Some(after.clone())).await;
            shelf.loading.set(false);
            if query.get_untracked() != asked || shelf.next.get_untracked().as_deref() != Some(after.as_str()) {
                return;
            }
            match page {
                Ok(page) => {
                    shelf.items.update(|items| {
                        // One pass over what is loaded, however long it has grown.
                        let arriving: HashSet<&str> = page.items.iter().map(|i| i.id.as_str()).collect();
                        let shown: HashSet<String> =
                            items.iter().filter(|i| arriving.contains(i.id.as_str())).map(|i| i.id.clone()).collect();
                        items.extend(page.items.into_iter().filter(|i| !shown.contains(&i.id)));
                    });
                    shelf.next.set(page.next);
                }
                Err(err) => shelf.notice.set(Some(Notice::from(&err))),
            }
        });
    }

    /// Puts new results at the top (a live event announced them), skipping any already shown.
    pub fn prepend(&self, fresh: Vec<GalleryItem>) {
        self.items.update(|items| {
            let new: Vec<GalleryItem> = fresh.into_iter().filter(|f| !items.iter().any(|i| i.id == f.id)).collect();
            items.splice(0..0, new);
        });
    }

    /// Applies what a bulk action reported to what is shown: items that left this view go,
    /// favorites flip.
    pub fn apply(&self, action: BulkAction, report: &BulkReport, in_trash: bool) {
        let touched = |wanted: &[Outcome]| -> Vec<String> {
            report.items.iter().filter(|(_, o)| wanted.contains(o)).map(|(id, _)| id.clone()).collect()
        };
        match action {
            BulkAction::Favorite | BulkAction::Unfavorite => {
                let now = action == BulkAction::Favorite;
                let ids = touched(&[Outcome::Changed, Outcome::Unchanged]);
                self.items.update(|items| {
                    for item in items.iter_mut().filter(|i| ids.contains(&i.id)) {
                        item.favorite = now;
                    }
                });
            }
            BulkAction::Trash | BulkAction::Restore | BulkAction::DeleteForever => {
                // Gone from this view: what changed, and what is no longer there at all.
                let leaves_view = match action {
                    BulkAction::Trash => !in_trash,
                    _ => in_trash,
                };
                if leaves_view {
                    let gone = touched(&[Outcome::Changed, Outcome::NotFound]);
                    self.items.update(|items| items.retain(|i| !gone.contains(&i.id)));
                }
            }
        }
        let shown = self.shown_ids();
        self.selection.update(|s| s.keep_only(&shown));
    }
}

impl Default for Shelf {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `action` on `ids` in batches the server accepts, and merges the reports.
pub async fn curate_all(action: BulkAction, ids: Vec<String>) -> Result<BulkReport, crate::error::AppError> {
    let mut report = BulkReport::default();
    for batch in ids.chunks(MAX_BULK_IDS) {
        report.items.extend(curate_gallery(action, batch.to_vec()).await?.items);
    }
    Ok(report)
}

/// The words for what an action did and for what it found already done.
pub fn words(l: crate::messages::Locale, action: BulkAction) -> (&'static str, &'static str) {
    match action {
        BulkAction::Favorite => (t(l, "curate.favorited"), t(l, "curate.already_favorites")),
        BulkAction::Unfavorite => (t(l, "curate.unfavorited"), t(l, "curate.not_favorites")),
        BulkAction::Trash => (t(l, "curate.trashed"), t(l, "curate.already_trashed")),
        BulkAction::Restore => (t(l, "curate.restored"), t(l, "curate.not_trashed")),
        BulkAction::DeleteForever => (t(l, "curate.deleted"), t(l, "curate.not_deletable")),
    }
}

/// `/gallery?…` (or the overseen account's), with the viewer open on `open` when given.
pub fn href(place: Place, query: &GalleryQuery, open: Option<&str>) -> String {
    let mut url = format!("{}{}", place.path(), query.to_search());
    if let Some(id) = open {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("open=");
        url.push_str(id);
    }
    url
}

/// The view tabs (all, favorites, trash) and the filters; each change is a new URL, so the
/// back button and bookmarks work.
#[component]
pub fn FilterBar(shelf: Shelf, query: Memo<GalleryQuery>) -> impl IntoView {
    let place = shelf.place;
    let l = use_locale();
    let navigate = leptos_router::hooks::use_navigate();
    let go = {
        let navigate = navigate.clone();
        move |change: &dyn Fn(&mut GalleryQuery)| {
            let mut next = query.get_untracked();
            change(&mut next);
            navigate(&href(place, &next, None), Default::default());
        }
    };
    let tab = move |label: &'static str, trash: bool, favorites: bool| {
        let target = move || {
            let q = query.get();
            href(place, &GalleryQuery { trash, favorites, ..q }, None)
        };
        let current = move || {
            let q = query.get();
            q.trash == trash && q.favorites == favorites
        };
        view! {
            <A href=target attr:class=move || if current() { "view-tab current" } else { "view-tab" }
                attr:aria-current=move || current().then_some("page")>{label}</A>
        }
    };
    // Typing a search replaces the URL instead of adding a history entry per letter.
    let search = {
        let navigate = navigate.clone();
        move |value: String| {
            let next = GalleryQuery { q: Some(value).filter(|v| !v.trim().is_empty()), ..query.get_untracked() };
            let options = leptos_router::NavigateOptions { replace: true, scroll: false, ..Default::default() };
            navigate(&href(place, &next, None), options);
        }
    };
    let go_kind = go.clone();
    let go_model = go.clone();
    let go_from = go.clone();
    let go_to = go;
    view! {
        <div class="gallery-bar" data-testid="gallery-filters">
            <nav class="view-tabs" aria-label=t(l, "gallery.views")>
                {tab(t(l, "gallery.all"), false, false)}
                {tab(t(l, "gallery.favorites"), false, true)}
                {tab(t(l, "gallery.trash"), true, false)}
            </nav>
            <label class="filter search">
                <span>{t(l, "gallery.search")}</span>
                <input type="search" data-testid="gallery-search" placeholder=t(l, "gallery.search_example") autocomplete="off"
                    prop:value=move || query.get().q.unwrap_or_default()
                    on:input=move |ev| search(event_target_value(&ev)) />
            </label>
            <label class="filter">
                <span>{t(l, "gallery.kind")}</span>
                <select data-testid="filter-kind" on:change=move |ev| {
                    let value = event_target_value(&ev);
                    go_kind(&|q| q.kind = AssetKind::parse(&value));
                }>
                    <option value="" selected=move || query.get().kind.is_none()>{t(l, "gallery.any")}</option>
                    <option value="image" selected=move || query.get().kind == Some(AssetKind::Image)>{t(l, "gallery.images")}</option>
                    <option value="video" selected=move || query.get().kind == Some(AssetKind::Video)>{t(l, "gallery.videos")}</option>
                </select>
            </label>
            <label class="filter">
                <span>{t(l, "generate.model")}</span>
                <select data-testid="filter-model" on:change=move |ev| {
                    let value = event_target_value(&ev);
                    go_model(&|q| q.model = Some(value.clone()).filter(|v| !v.is_empty()));
                }>
                    <option value="" selected=move || query.get().model.is_none()>{t(l, "gallery.any")}</option>
                    {MODELS
                        .iter()
                        .map(|m| {
                            let endpoint = m.endpoint;
                            view! {
                                <option value=endpoint selected=move || query.get().model.as_deref() == Some(endpoint)>
                                    {m.name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="filter">
                <span>{t(l, "gallery.from")}</span>
                <input type="date" data-testid="filter-from" prop:value=move || query.get().from.unwrap_or_default()
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        go_from(&|q| q.from = Some(value.clone()).filter(|v| !v.is_empty()));
                    } />
            </label>
            <label class="filter">
                <span>{t(l, "gallery.to")}</span>
                <input type="date" data-testid="filter-to" prop:value=move || query.get().to.unwrap_or_default()
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        go_to(&|q| q.to = Some(value.clone()).filter(|v| !v.is_empty()));
                    } />
            </label>
        </div>
    }
}

/// The grid: fixed-size tiles, each with its select box and favorite star; a click opens the
/// viewer. A long grid draws only the rows near the screen (see [`Span`]), so scrolling through
/// 100,000 loaded results keeps a few hundred tiles in the page.
#[component]
pub fn Grid(shelf: Shelf, query: Memo<GalleryQuery>) -> impl IntoView {
    let l = use_locale();
    let empty = move || {
        let q = query.get();
        let filtered =
            q.favorites || q.kind.is_some() || q.model.is_some() || q.from.is_some() || q.to.is_some() || q.q.is_some();
        if q.trash {
            t(l, "gallery.trash_empty")
        } else if filtered {
            t(l, "gallery.no_match")
        } else if shelf.place.read_only() {
            t(l, "gallery.account_empty")
        } else {
            t(l, "gallery.empty")
        }
    };
    // `None` draws every tile: the server's page, and the browser's until it has measured.
    // The page resets the shelf while this grid is being replaced, so everything below reads
    // the grid's own signals with `try_`: a grid already disposed draws nothing.
    let span = RwSignal::new(None::<Span>);
    let grid = NodeRef::<leptos::html::Ul>::new();
    #[cfg(feature = "hydrate")]
    {
        let fit = move || {
            let Some(grid) = grid.try_get_untracked().flatten() else { return };
            let Some(at) = crate::browser::measure_grid(&grid) else { return };
            let Some(count) = shelf.items.try_with_untracked(Vec::len) else { return };
            let Some(now) = span.try_get_untracked() else { return };
            if !now.unwrap_or(Span::all(count)).covers(count, &at) {
                span.try_set(Some(Span::around(count, &at)));
            }
        };
        // After the results change, once the browser has laid them out.
        Effect::new(move |_| {
            shelf.items.with(Vec::len);
            request_animation_frame(fit);
        });
        let scrolling = window_event_listener(leptos::ev::scroll, move |_| fit());
        let resizing = window_event_listener(leptos::ev::resize, move |_| fit());
        on_cleanup(move || {
            scrolling.remove();
            resizing.remove();
        });
    }
    let drawn = move || {
        let Some(span) = span.try_get() else { return Vec::new() };
        shelf.items.with(|items| match span {
            Some(span) => items[span.start.min(items.len())..span.end.min(items.len())].to_vec(),
            None => items.clone(),
        })
    };
    let spacer = move |px: fn(&Span) -> f64| {
        move || {
            span.try_get().flatten().map(|s| px(&s)).filter(|px| *px > 0.0).map(|px| {
                view! { <li class="gallery-spacer" aria-hidden="true" style:height=format!("{px}px")></li> }
            })
        }
    };
    view! {
        <Show when=move || shelf.items.with(|i| !i.is_empty())
            fallback=move || view! { <p class="card empty" data-testid="gallery-empty">{empty}</p> }>
            <ul class="gallery-grid" data-testid="gallery-grid" node_ref=grid
                data-count=move || shelf.items.with(Vec::len)>
                {spacer(|s| s.above_px)}
                <For each=drawn key=|item| (item.id.clone(), item.favorite) let:item>
                    <Tile item shelf query />
                </For>
                {spacer(|s| s.below_px)}
            </ul>
        </Show>
        <div class="gallery-more">
            <Show when=move || shelf.next.with(Option::is_some)>
                <button type="button" class="secondary" data-testid="load-more"
                    disabled=move || shelf.loading.get()
                    on:click=move |_| shelf.load_more(query)>
                    {move || if shelf.loading.get() { t(l, "common.loading") } else { t(l, "gallery.load_more") }}
                </button>
            </Show>
        </div>
    }
}

#[component]
fn Tile(item: GalleryItem, shelf: Shelf, query: Memo<GalleryQuery>) -> impl IntoView {
    let l = use_locale();
    let id = item.id.clone();
    let selected = {
        let id = id.clone();
        move || shelf.selection.with(|s| s.contains(&id))
    };
    let selected_class = selected.clone();
    let select = {
        let id = id.clone();
        move |ev: leptos::ev::MouseEvent| {
            let shift = ev.shift_key();
            let shown = shelf.shown_ids();
            shelf.selection.update(|s| s.click(&shown, &id, shift));
        }
    };
    let favorite = {
        let id = id.clone();
        let now = item.favorite;
        move |_| {
            let id = id.clone();
            let action = if now { BulkAction::Unfavorite } else { BulkAction::Favorite };
            leptos::task::spawn_local(async move {
                match curate_gallery(action, vec![id]).await {
                    Ok(report) => shelf.apply(action, &report, query.get_untracked().trash),
                    Err(err) => shelf.notice.set(Some(Notice::from(&err))),
                }
            });
        }
    };
    let open = href(shelf.place, &query.get_untracked(), Some(&id));
    let read_only = shelf.place.read_only();
    let label = item.prompt.clone().unwrap_or_else(|| item.model_name.clone());
    let picture = match (&item.thumb_url, item.kind) {
        (Some(thumb), _) => view! { <img src=thumb.clone() alt=label.clone() loading="lazy" decoding="async" /> }.into_any(),
        (None, AssetKind::Video) => {
            view! { <video src=item.url.clone() preload="metadata" muted=true playsinline=true aria-label=label.clone()></video> }
                .into_any()
        }
        (None, _) => view! { <img src=item.url.clone() alt=label.clone() loading="lazy" decoding="async" /> }.into_any(),
    };
    let star = if item.favorite { "★" } else { "☆" };
    view! {
        <li class="gallery-tile" class:selected=selected_class data-testid="gallery-tile" data-id=id.clone()
            data-favorite=item.favorite.to_string()>
            <A href=open attr:class="tile-open" attr:title=label.clone() scroll=false>
                {picture}
                {(item.kind == AssetKind::Video).then(|| {
                    let length = item.duration_ms.map(|ms| format!(" {}", crate::format::elapsed(ms.div_ceil(1000))));
                    view! { <span class="tile-badge" data-testid="tile-duration" aria-hidden="true">"▶"{length}</span> }
                })}
                {item.estimate_micros.map(|m| view! {
                    <span class="tile-cost" data-testid="tile-cost" title=t(l, "gallery.estimated_cost")>{format!("≈ {}", crate::format::usd(m))}</span>
                })}
            </A>
            {(!read_only).then(|| view! {
                <input type="checkbox" class="tile-select" data-testid="select" aria-label=t(l, "gallery.select")
                    prop:checked=selected on:click=select />
                <button type="button" class="tile-star" data-testid="favorite" aria-pressed=item.favorite.to_string()
                    aria-label=if item.favorite { t(l, "gallery.unfavorite_one") } else { t(l, "gallery.favorite_one") }
                    on:click=favorite>{star}</button>
            })}
        </li>
    }
}

/// What can be done with the selection, shown while something is selected; in the trash also
/// "Empty trash".
#[component]
pub fn SelectionBar(shelf: Shelf, query: Memo<GalleryQuery>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let l = use_locale();
    let run = move |action: BulkAction| {
        let ids = shelf.selection.with_untracked(|s| s.ids.clone());
        if ids.is_empty() || busy.get_untracked() {
            return;
        }
        if action == BulkAction::DeleteForever
            && !confirmed(&tf(l, "gallery.confirm_delete", &[("n", &ids.len().to_string())]))
        {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = curate_all(action, ids).await;
            busy.set(false);
            match result {
                Ok(report) => {
                    shelf.apply(action, &report, query.get_untracked().trash);
                    let (changed, unchanged) = words(l, action);
                    shelf.notice.set(Some(Notice::Success(report.summary(l, changed, unchanged))));
                }
                Err(err) => shelf.notice.set(Some(Notice::from(&err))),
            }
        });
    };
    let empty = move |_| {
        if busy.get_untracked() || !confirmed(t(l, "gallery.confirm_empty")) {
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = crate::api::gallery::empty_trash().await;
            busy.set(false);
            match result {
                Ok(n) => {
                    shelf.reset(GalleryPage::default());
                    shelf.notice.set(Some(Notice::Success(tf(l, "gallery.emptied", &[("n", &n.to_string())]))));
                }
                Err(err) => shelf.notice.set(Some(Notice::from(&err))),
            }
        });
    };
    let count = move || shelf.selection.with(|s| s.ids.len());
    let in_trash = move || query.get().trash;
    let any = move || count() != 0;
    view! {
        <div class="selection-bar" data-testid="selection-bar">
            <span class="muted" data-testid="selected-count">
                {move || match count() { 0 => t(l, "gallery.none_selected").to_owned(), n => tf(l, "gallery.n_selected", &[("n", &n.to_string())]) }}
            </span>
            <button type="button" class="link" data-testid="select-page"
                on:click=move |_| { let shown = shelf.shown_ids(); shelf.selection.update(|s| s.add_all(&shown)); }>
                {t(l, "gallery.select_shown")}
            </button>
            <Show when=any>
                <button type="button" class="link" on:click=move |_| shelf.selection.update(Selection::clear)>{t(l, "gallery.clear")}</button>
                // A plain form post: the browser saves the archive as it streams in.
                <form method="post" action="/gallery/download" class="inline-form">
                    <input type="hidden" name="ids" prop:value=move || shelf.selection.with(|s| s.ids.join(","))/>
                    <button type="submit" class="secondary" data-testid="bulk-download"
                        // Braces: a bare `>` in an attribute would end the tag.
                        disabled={move || count() > MAX_BULK_IDS}
                        title={move || (count() > MAX_BULK_IDS).then(|| tf(l, "gallery.at_most", &[("n", &MAX_BULK_IDS.to_string())]))}>
                        {t(l, "generate.download")}
                    </button>
                </form>
                <Show when=move || !in_trash() fallback=move || view! {
                    <button type="button" data-testid="bulk-restore" disabled=busy on:click=move |_| run(BulkAction::Restore)>{t(l, "gallery.restore")}</button>
                    <button type="button" class="danger" data-testid="bulk-delete" disabled=busy
                        on:click=move |_| run(BulkAction::DeleteForever)>{t(l, "gallery.delete_for_good")}</button>
                }>
                    <button type="button" data-testid="bulk-favorite" disabled=busy on:click=move |_| run(BulkAction::Favorite)>"★ "{t(l, "gallery.favorite")}</button>
                    <button type="button" class="secondary" data-testid="bulk-unfavorite" disabled=busy
                        on:click=move |_| run(BulkAction::Unfavorite)>{t(l, "gallery.unfavorite")}</button>
                    <button type="button" class="danger" data-testid="bulk-trash" disabled=busy on:click=move |_| run(BulkAction::Trash)>{t(l, "gallery.move_to_trash")}</button>
                </Show>
            </Show>
            <Show when=in_trash>
                <button type="button" class="danger" data-testid="empty-trash" disabled=busy on:click=empty>{t(l, "gallery.empty_trash")}</button>
            </Show>
        </div>
    }
}

/// Asks the user to confirm (always yes while rendering on the server, where nothing runs).
fn confirmed(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        window().confirm_with_message(question).unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        true
    }
}
