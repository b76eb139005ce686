//! Deleting the account: what goes is said before the person confirms.

use leptos::prelude::*;

use crate::api::account::{DELETE_WORD, DeleteAccount, account_contents};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};

fn count(n: i64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// `changed` moves whenever something counted here may have changed on this page (the key).
#[component]
pub fn DeleteAccountCard(#[prop(into)] changed: Signal<usize>) -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    let contents = Resource::new(move || changed.get(), |_| account_contents());
    let notice = Signal::derive(move || match delete.value().get() {
        Some(Err(e)) if e.field.is_none() => Some(Notice::from(&e)),
        _ => None,
    });
    // The server answers with a redirect to the signup page; a hydrated page follows it here.
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            let _ = window().location().set_href("/signup?deleted=1");
        }
    });
    let error = move |field: &'static str| action_field_error(delete.value(), field);
    view! {
        <section class="card danger-zone" aria-labelledby="delete-heading">
            <h2 id="delete-heading">"Delete your account"</h2>
            <Transition fallback=|| view! { <p class="muted">"Counting what you have…"</p> }>
                {move || Suspend::new(async move {
                    contents.await.ok().map(|c| view! {
                        <p data-testid="deletion-contents">
                            "Deleting " <strong>{c.email}</strong> " removes, at once and for good: "
                            {count(c.uploads, "uploaded image", "uploaded images")} ", "
                            {count(c.jobs, "job", "jobs")} " with "
                            {count(c.results, "result", "results")} ", "
                            {if c.has_key { "your saved fal key" } else { "no saved fal key" }}
                            ", and every session. Only a record that an account was deleted stays."
                        </p>
                    })
                })}
            </Transition>
            <NoticeBanner notice />
            <ActionForm action=delete attr:class="stack narrow">
                <label for="delete-password">"Your password"</label>
                <input id="delete-password" name="password" type="password" autocomplete="current-password" aria-describedby="delete-password-hint" required />
                <FieldHint id="delete-password-hint" hint=Signal::derive(|| None::<String>) server=error("password") />
                <label for="delete-confirm">"Type " <code>{DELETE_WORD}</code> " to confirm"</label>
                <input id="delete-confirm" name="confirm" type="text" autocomplete="off" spellcheck="false" aria-describedby="delete-confirm-hint" required />
                <FieldHint id="delete-confirm-hint" hint=Signal::derive(|| None::<String>) server=error("confirm") />
                <button type="submit" class="danger" disabled=move || delete.pending().get()>"Delete my account"</button>
            </ActionForm>
        </section>
    }
}
