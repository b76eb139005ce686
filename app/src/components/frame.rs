use leptos::prelude::*;
use leptos_router::components::A;

use crate::Auth;
use crate::messages::{Locale, t, use_locale};

/// Links to the page in each other language (`/language` sets the cookie and comes back here).
#[component]
pub fn LanguageSwitch() -> impl IntoView {
    let l = use_locale();
    let location = leptos_router::hooks::use_location();
    let back = move || {
        let (path, query) = (location.pathname.get(), location.search.get());
        let here = if query.is_empty() { path } else { format!("{path}?{}", query.trim_start_matches('?')) };
        crate::format::urlencoding(&here)
    };
    view! {
        <nav class="languages" aria-label=t(l, "frame.language")>
            {Locale::ALL
                .into_iter()
                .map(|other| {
                    let name = t(other, "frame.this_language");
                    if other == l {
                        view! { <span aria-current="true" lang=other.as_str()>{name}</span> }.into_any()
                    } else {
                        view! {
                            <a rel="external" lang=other.as_str() hreflang=other.as_str() data-testid="language"
                                href=move || format!("/language?to={}&back={}", other.as_str(), back())>{name}</a>
                        }
                        .into_any()
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// The signed-in layout: brand, Create / Gallery / Account tabs (and Admin for admins), the
/// account's email and a logout button.
///
/// The account is read in one suspense boundary, by awaiting it: one resource shared by two
/// boundaries is a pattern Leptos has had lost-wakeup bugs with.
#[component]
pub fn AppFrame(children: Children) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let l = use_locale();
    view! {
        <header class="topbar">
            <a class="brand" href="/create">"Darkroom"</a>
            <Transition fallback=move || view! { <nav class="tabs" aria-label=t(l, "frame.main")></nav> }>
                {move || Suspend::new(async move {
                    let me = auth.me.await.ok().flatten();
                    let is_admin = me.as_ref().is_some_and(|m| m.is_admin);
                    view! {
                        <nav class="tabs" aria-label=t(l, "frame.main")>
                            <A href="/create">{t(l, "frame.create")}</A>
                            <A href="/gallery">{t(l, "frame.gallery")}</A>
                            <A href="/account">{t(l, "frame.account")}</A>
                            {is_admin.then(|| view! { <A href="/admin">{t(l, "frame.admin")}</A> })}
                        </nav>
                        <div class="who">
                            {me.map(|m| view! { <span class="email" data-testid="who">{m.email}</span> })}
                            <ActionForm action=auth.logout>
                                <button type="submit" class="link">{t(l, "frame.log_out")}</button>
                            </ActionForm>
                            <LanguageSwitch />
                        </div>
                    }
                })}
            </Transition>
        </header>
        <main class="content">{children()}</main>
    }
}
