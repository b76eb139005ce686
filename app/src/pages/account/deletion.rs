//! Deleting the account: what goes is said before the person confirms.

use leptos::prelude::*;

use crate::api::account::{DELETE_WORD, DeleteAccount, account_contents};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};
use crate::messages::{Locale, t, tf, use_locale};

/// `one` when `n` is 1, else `many` with `{n}` filled in.
fn count(l: Locale, n: i64, one: &'static str, many: &'static str) -> String {
    if n == 1 { t(l, one).to_owned() } else { tf(l, many, &[("n", &n.to_string())]) }
}

/// `changed` moves whenever something counted here may have changed on this page (the key).
#[component]
pub fn DeleteAccountCard(#[prop(into)] changed: Signal<usize>) -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    let l = use_locale();
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
            <h2 id="delete-heading">{t(l, "deletion.heading")}</h2>
            <Transition fallback=move || view! { <p class="muted">{t(l, "deletion.counting")}</p> }>
                {move || Suspend::new(async move {
                    contents.await.ok().map(|c| view! {
                        <p data-testid="deletion-contents">
                            {t(l, "deletion.deleting")} " " <strong>{c.email}</strong> " "
                            {tf(l, "deletion.removes", &[
                                ("uploads", &count(l, c.uploads, "deletion.one_upload", "deletion.n_uploads")),
                                ("jobs", &count(l, c.jobs, "deletion.one_job", "deletion.n_jobs")),
                                ("results", &count(l, c.results, "deletion.one_result", "deletion.n_results")),
                                ("key", if c.has_key { t(l, "deletion.your_key") } else { t(l, "deletion.no_key") }),
                            ])}
                        </p>
                    })
                })}
            </Transition>
            <NoticeBanner notice />
            <ActionForm action=delete attr:class="stack narrow">
                <label for="delete-password">{t(l, "security.your_password")}</label>
                <input id="delete-password" name="password" type="password" autocomplete="current-password" aria-describedby="delete-password-hint" required />
                <FieldHint id="delete-password-hint" hint=Signal::derive(|| None::<String>) server=error("password") />
                <label for="delete-confirm">{t(l, "deletion.type")} " " <code>{DELETE_WORD}</code> " " {t(l, "deletion.to_confirm")}</label>
                <input id="delete-confirm" name="confirm" type="text" autocomplete="off" spellcheck="false" aria-describedby="delete-confirm-hint" required />
                <FieldHint id="delete-confirm-hint" hint=Signal::derive(|| None::<String>) server=error("confirm") />
                <button type="submit" class="danger" disabled=move || delete.pending().get()>{t(l, "deletion.delete")}</button>
            </ActionForm>
        </section>
    }
}
