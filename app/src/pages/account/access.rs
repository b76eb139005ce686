//! "Access to your account": each time an admin looked into the user's gallery, who, why, for
//! how long, and which results they opened.

use leptos::prelude::*;

use crate::api::oversight::{AccessEntry, account_access};
use crate::format::timestamp;

#[component]
pub fn AccessCard() -> impl IntoView {
    let entries = Resource::new(|| (), |_| account_access());
    view! {
        <section class="card" aria-labelledby="access-heading">
            <h2 id="access-heading">"Access to your account"</h2>
            <p class="muted">
                "Administrators can look at your results only after giving a reason, for a limited time, without changing anything. Every time they do is listed here with what they opened."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p data-testid="access-none">"No administrator has looked at your results."</p> }.into_any()
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
    let pages = match access.pages_viewed {
        1 => "1 page of your gallery".to_owned(),
        n => format!("{n} pages of your gallery"),
    };
    let results = match opened.len() {
        1 => "1 result opened".to_owned(),
        n => format!("{n} results opened"),
    };
    view! {
        <li class="access-entry" data-testid="access-entry">
            <p>
                <strong data-testid="access-admin">{access.admin_email}</strong>
                {format!(" · {} to {}", timestamp(&access.started_at), timestamp(&access.expires_at))}
            </p>
            <p>"Reason: " <q data-testid="access-reason">{access.reason}</q></p>
            <p class="muted small" data-testid="access-counts">{format!("{pages}; {results}.")}</p>
            {(!opened.is_empty()).then(|| view! {
                <ul class="access-opened">
                    {opened
                        .into_iter()
                        .map(|o| view! {
                            <li>
                                <a href=format!("/gallery?open={}", o.id) data-testid="access-opened">"A result"</a>
                                {format!(" at {}", timestamp(&o.at))}
                            </li>
                        })
                        .collect_view()}
                </ul>
            })}
        </li>
    }
}
