//! "Access to your account": each time an admin looked into the user's gallery, who, why, for
//! how long, and which results they opened.

use leptos::prelude::*;

use crate::api::oversight::{AccessEntry, account_access};
use crate::format::timestamp;
use crate::messages::{t, tf, use_locale};

#[component]
pub fn AccessCard() -> impl IntoView {
    let entries = Resource::new(|| (), |_| account_access());
    let l = use_locale();
    view! {
        <section class="card" aria-labelledby="access-heading">
            <h2 id="access-heading">{t(l, "access.heading")}</h2>
            <p class="muted">{t(l, "access.intro")}</p>
            <Transition fallback=move || view! { <p class="muted">{t(l, "common.loading")}</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p data-testid="access-none">{t(l, "access.none")}</p> }.into_any()
                        }
                        Ok(list) => view! {
                            <ul class="access-list" data-testid="access-list">
                                {list.into_iter().map(|entry| view! { <Entry entry /> }).collect_view()}
                            </ul>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Entry(entry: AccessEntry) -> impl IntoView {
    let AccessEntry { access, opened } = entry;
    let l = use_locale();
    let pages = match access.pages_viewed {
        1 => t(l, "access.one_page").to_owned(),
        n => tf(l, "access.n_pages", &[("n", &n.to_string())]),
    };
    let results = match opened.len() {
        1 => t(l, "access.one_result").to_owned(),
        n => tf(l, "access.n_results", &[("n", &n.to_string())]),
    };
    view! {
        <li class="access-entry" data-testid="access-entry">
            <p>
                <strong data-testid="access-admin">{access.admin_email}</strong>
                {format!(" · {}", tf(l, "access.span", &[("from", &timestamp(&access.started_at)), ("to", &timestamp(&access.expires_at))]))}
            </p>
            <p>{t(l, "access.reason")} " " <q data-testid="access-reason">{access.reason}</q></p>
            <p class="muted small" data-testid="access-counts">{format!("{pages}; {results}.")}</p>
            {(!opened.is_empty()).then(|| view! {
                <ul class="access-opened">
                    {opened
                        .into_iter()
                        .map(|o| view! {
                            <li>
                                <a href=format!("/gallery?open={}", o.id) data-testid="access-opened">{t(l, "access.a_result")}</a>
                                " " {tf(l, "access.at", &[("when", &timestamp(&o.at))])}
                            </li>
                        })
                        .collect_view()}
                </ul>
            })}
        </li>
    }
}
