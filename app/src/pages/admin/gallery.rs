//! Admin: another account's gallery, read-only, after a reason. The page first asks why; with a
//! running access it shows the gallery's own grid and viewer, saying whose it is, why, until when,
//! and that the owner sees every page and result opened. When the time is up the reason is
//! asked again.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::AdminNav;
use crate::api::gallery::{GalleryPage, GalleryQuery};
use crate::api::oversight::{AccessView, EndAccess, OpenAccess, Oversight, admin_gallery_access};
use crate::components::gallery::{FilterBar, Grid, Shelf};
use crate::components::viewer::Viewer;
use crate::components::{AppFrame, FieldHint, Notice, NoticeBanner, action_field_error};
use crate::error::code;
use crate::format::timestamp;
use crate::messages::{t, tf, use_locale};

#[component]
pub fn AdminGalleryPage() -> impl IntoView {
    let params = use_params_map();
    let owner = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let l = use_locale();
    view! {
        <AppFrame>
            <h1>{t(l, "frame.admin")}</h1>
            <AdminNav />
            {move || view! { <Oversee owner=owner.get() /> }}
        </AppFrame>
    }
}

/// One account's gallery as an admin sees it. Every resource is made here, once, and not inside
/// a `Suspend` (which makes its contents again when what it awaited changes): each fetch of a
/// grid page or a result is a recorded view the owner is shown, so none may happen twice.
#[component]
fn Oversee(owner: String) -> impl IntoView {
    let open = ServerAction::<OpenAccess>::new();
    let end = ServerAction::<EndAccess>::new();
    let l = use_locale();
    let versions = move || (open.version().get(), end.version().get());
    let head = {
        let owner = owner.clone();
        Resource::new(versions, move |_| admin_gallery_access(owner.clone()))
    };
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(|p| GalleryQuery::from_params(|name| p.get(name))));
    let viewing = Memo::new(move |_| params.with(|p| p.get("open")));
    let shelf = Shelf::overseeing(owner);
    // Asked for only under an access: a refused call would make the page itself a 403. Right
    // after "Open the gallery" the access is the action's answer, whether or not `head` has
    // started loading again yet.
    let first = Resource::new(
        move || (query.get(), versions()),
        move |(query, _)| async move {
            let just_opened = open.value().get_untracked().is_some_and(|r| r.is_ok());
            if just_opened || matches!(head.await, Ok(Oversight { access: Some(_), .. })) {
                shelf.place.page(query, None).await
            } else {
                Ok(GalleryPage::default())
            }
        },
    );
    #[cfg(feature = "hydrate")]
    {
        let scrolling = window_event_listener(leptos::ev::scroll, move |_| {
            if crate::browser::near_bottom(1200.0) {
                shelf.load_more(query);
            }
        });
        on_cleanup(move || scrolling.remove());
    }
    let notice = Signal::derive(move || match open.value().get() {
        Some(Err(e)) if e.field.is_none() => Some(Notice::from(&e)),
        _ => None,
    });
    // The grid is drawn inside the access's branch, from the resource made above.
    let grid = move || {
        view! {
            <div class="gallery-head">
                <FilterBar shelf query />
            </div>
            <NoticeBanner notice=shelf.notice />
            <Transition fallback=move || view! { <p class="card empty muted">{t(l, "gallery.loading")}</p> }>
                {move || Suspend::new(async move {
                    match first.await {
                        Ok(page) => {
                            shelf.reset(page);
                            view! { <Grid shelf query /> }.into_any()
                        }
                        Err(e) if e.code == code::ADMIN_ACCESS_REQUIRED.name => view! {
                            <p class="banner" data-testid="access-expired">
                                {t(l, "oversee.ended")}
                            </p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="banner error" data-testid="gallery-error">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        }
    };
    view! {
        <NoticeBanner notice />
        <Suspense fallback=move || view! { <p>{t(l, "common.loading")}</p> }>
            {move || Suspend::new(async move {
                match head.await {
                    Ok(Oversight { owner_id, owner_email, access: Some(access), .. }) => view! {
                        <AccessBanner owner_id owner_email access end />
                        {grid()}
                    }
                    .into_any(),
                    Ok(Oversight { owner_id, owner_email, access: None, minutes }) => {
                        view! { <ReasonForm owner_id owner_email minutes open /> }.into_any()
                    }
                    Err(e) => view! { <p class="banner error" data-testid="oversight-error">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
        // Outside the branches, so it is made once; without an access it only shows the refusal.
        <Viewer open=viewing shelf query />
    }
}

/// Whose gallery this is, the reason given, until when, and the way out.
#[component]
fn AccessBanner(
    owner_id: String,
    owner_email: String,
    access: AccessView,
    end: ServerAction<EndAccess>,
) -> impl IntoView {
    let l = use_locale();
    view! {
        <section class="card oversight" data-testid="oversight">
            <h2>{tf(l, "oversee.whose", &[("email", &owner_email)])}</h2>
            <p>{t(l, "oversee.read_only")} " " <q data-testid="access-reason-shown">{access.reason.clone()}</q></p>
            <p class="muted small" data-testid="access-until">
                {tf(l, "oversee.until", &[("when", &timestamp(&access.expires_at)), ("email", &owner_email)])}
            </p>
            <ActionForm action=end>
                <input type="hidden" name="owner" value=owner_id />
                <button type="submit" class="secondary" data-testid="access-end">{t(l, "oversee.done")}</button>
            </ActionForm>
        </section>
    }
}

/// Why the admin needs to look; nothing of the account is shown before it is given.
#[component]
fn ReasonForm(owner_id: String, owner_email: String, minutes: u64, open: ServerAction<OpenAccess>) -> impl IntoView {
    let error = move || action_field_error(open.value(), "reason");
    let l = use_locale();
    view! {
        <section class="card" data-testid="reason-form">
            <h2>{tf(l, "oversee.whose", &[("email", &owner_email)])}</h2>
            <p class="muted">
                {tf(l, "oversee.why", &[("minutes", &minutes.to_string()), ("email", &owner_email)])}
            </p>
            <ActionForm action=open attr:class="stack">
                <input type="hidden" name="owner" value=owner_id />
                <label for="access-reason">{t(l, "oversee.reason")}</label>
                <textarea id="access-reason" name="reason" rows="3" required=true minlength="10" maxlength="500"
                    data-testid="access-reason" aria-describedby="access-reason-hint"
                    placeholder=t(l, "oversee.reason_example")></textarea>
                <FieldHint id="access-reason-hint" hint=Signal::derive(|| None::<String>) server=error() />
                <button type="submit" class="primary" data-testid="access-open" disabled=move || open.pending().get()>
                    {t(l, "oversee.open")}
                </button>
            </ActionForm>
        </section>
    }
}
