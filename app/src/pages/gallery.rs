//! The Gallery tab: the user's results newest first, filtered by what the URL says, loading
//! further pages as the user scrolls, with new results arriving live at the top.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::gallery::{GalleryQuery, list_gallery};
use crate::components::gallery::{FilterBar, Grid, SelectionBar, Shelf};
use crate::components::viewer::Viewer;
use crate::components::{AppFrame, NoticeBanner};
use crate::messages::{t, use_locale};

#[component]
pub fn GalleryPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| GalleryQuery::from_params(|name| p.get(name))));
    let open = Memo::new(move |_| params.with(|p| p.get("open")));
    let shelf = Shelf::new();
    let first = Resource::new(move || query.get(), |query| list_gallery(query, None));

    #[cfg(feature = "hydrate")]
    {
        // A finished job's results go to the top, if this view shows them: the first page is
        // read again and what is new in it is added (filters apply as to any page).
        let refresh = move || {
            let asked = query.get_untracked();
            leptos::task::spawn_local(async move {
                if let Ok(page) = list_gallery(asked.clone(), None).await
                    && query.get_untracked() == asked
                {
                    shelf.prepend(page.items);
                }
            });
        };
        let stream = crate::browser::live::open(
            move |job| {
                if job.state == crate::states::JobState::Succeeded && !job.assets.is_empty() {
                    refresh();
                }
            },
            move || {},
        );
        on_cleanup(move || crate::browser::live::close(stream));
        // Infinite scroll: the next page loads before the user reaches the end.
        let scrolling = window_event_listener(leptos::ev::scroll, move |_| {
            if crate::browser::near_bottom(1200.0) {
                shelf.load_more(query);
            }
        });
        on_cleanup(move || scrolling.remove());
    }

    let l = use_locale();
    view! {
        <AppFrame>
            <div class="gallery-head">
                <h1>{move || if query.get().trash { t(l, "gallery.trash") } else { t(l, "gallery.title") }}</h1>
                <FilterBar shelf query />
            </div>
            <NoticeBanner notice=shelf.notice />
            <SelectionBar shelf query />
            <Transition fallback=move || view! { <p class="card empty muted" data-testid="gallery-loading">{t(l, "gallery.loading")}</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Ok(page) => {
                            shelf.reset(page);
                            view! { <Grid shelf query /> }.into_any()
                        }
                        Err(err) => view! { <p class="banner error" data-testid="gallery-error">{err.message}</p> }.into_any(),
                    }
                })}
            </Transition>
            <Viewer open shelf query />
        </AppFrame>
    }
}
