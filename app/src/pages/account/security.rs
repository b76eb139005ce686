//! Email and password changes, and the list of places the account is signed in.

use leptos::prelude::*;

use crate::Auth;
use crate::api::account::{ChangeEmail, ChangePassword, EndLogin, list_logins};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::timestamp;
use crate::messages::{t, tf, use_locale};

#[component]
pub fn PasswordCard(change: ServerAction<ChangePassword>) -> impl IntoView {
    let l = use_locale();
    let notice = Signal::derive(move || {
        change.value().get().and_then(|result| match result {
            Ok(0) => Some(Notice::Success(t(l, "security.password_changed").into())),
            Ok(1) => Some(Notice::Success(t(l, "security.password_changed_one").into())),
            Ok(n) => Some(Notice::Success(tf(l, "security.password_changed_n", &[("n", &n.to_string())]))),
            Err(e) if e.field.is_some() => None,
            Err(e) => Some(Notice::from(&e)),
        })
    });
    let error = move |field: &'static str| action_field_error(change.value(), field);
    view! {
        <section class="card" aria-labelledby="password-heading">
            <h2 id="password-heading">{t(l, "auth.password")}</h2>
            <p class="muted">{t(l, "security.password_intro")}</p>
            <NoticeBanner notice />
            <ActionForm action=change attr:class="stack narrow">
                <label for="current-password">{t(l, "security.current_password")}</label>
                <input id="current-password" name="current" type="password" autocomplete="current-password" aria-describedby="current-hint" required />
                <FieldHint id="current-hint" hint=Signal::derive(|| None::<String>) server=error("current") />
                <label for="new-password">{t(l, "security.new_password")}</label>
                <input id="new-password" name="password" type="password" autocomplete="new-password" aria-describedby="new-hint" required />
                <FieldHint id="new-hint" hint=Signal::derive(|| None::<String>) server=error("password") />
                <label for="confirm-password">{t(l, "security.new_password_again")}</label>
                <input id="confirm-password" name="confirm" type="password" autocomplete="new-password" aria-describedby="confirm-hint" required />
                <FieldHint id="confirm-hint" hint=Signal::derive(|| None::<String>) server=error("confirm") />
                <button type="submit" class="primary" disabled=move || change.pending().get()>{t(l, "security.change_password")}</button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn SessionsCard(change: ServerAction<ChangePassword>) -> impl IntoView {
    let end = ServerAction::<EndLogin>::new();
    let l = use_locale();
    let listed = Resource::new(move || (end.version().get(), change.version().get()), |_| list_logins());
    let notice = Signal::derive(move || match end.value().get() {
        Some(Ok(())) => Some(Notice::Success(t(l, "security.session_ended").into())),
        Some(Err(e)) => Some(Notice::from(&e)),
        None => None,
    });
    view! {
        <section class="card" aria-labelledby="sessions-heading">
            <h2 id="sessions-heading">{t(l, "security.sessions_heading")}</h2>
            <NoticeBanner notice />
            <Transition fallback=move || view! { <p class="muted">{t(l, "security.loading_sessions")}</p> }>
                {move || Suspend::new(async move {
                    match listed.await {
                        Ok(logins) => view! {
                            <ul class="sessions" data-testid="sessions">
                                {logins
                                    .into_iter()
                                    .map(|login| {
                                        let id = login.id.clone();
                                        view! {
                                            <li class="session" data-testid="session">
                                                <div>
                                                    <strong>{login.device}</strong>
                                                    {login.current.then(|| view! { <span class="badge">{t(l, "security.this_browser")}</span> })}
                                                    <p class="muted small">
                                                        {login.ip} " · " {t(l, "security.last_seen")} " "
                                                        <time datetime=login.last_seen_at.clone()>{timestamp(&login.last_seen_at)}</time>
                                                        " · " {t(l, "security.signed_in")} " "
                                                        <time datetime=login.signed_in_at.clone()>{timestamp(&login.signed_in_at)}</time>
                                                    </p>
                                                </div>
                                                {(!login.current).then(|| view! {
                                                    <ActionForm action=end>
                                                        <input type="hidden" name="id" value=id />
                                                        <button type="submit" disabled=move || end.pending().get()>{t(l, "security.end_session")}</button>
                                                    </ActionForm>
                                                })}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
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
pub fn EmailCard() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let change = ServerAction::<ChangeEmail>::new();
    let l = use_locale();
    // The header shows the address too: read it again once it changed.
    Effect::new(move |_| {
        if let Some(Ok(_)) = change.value().get() {
            auth.me.refetch();
        }
    });
    let notice = Signal::derive(move || {
        change.value().get().and_then(|result| match result {
            Ok(email) => Some(Notice::Success(tf(l, "security.email_now", &[("email", &email)]))),
            Err(e) if e.field.is_some() => None,
            Err(e) => Some(Notice::from(&e)),
        })
    });
    let error = move |field: &'static str| action_field_error(change.value(), field);
    view! {
        <section class="card" aria-labelledby="email-heading">
            <h2 id="email-heading">{t(l, "security.email_heading")}</h2>
            <p class="muted">{t(l, "security.email_intro")}</p>
            <NoticeBanner notice />
            <ActionForm action=change attr:class="stack narrow">
                <label for="new-email">{t(l, "security.new_email")}</label>
                <input id="new-email" name="email" type="email" autocomplete="email" aria-describedby="new-email-hint" required />
                <FieldHint id="new-email-hint" hint=Signal::derive(|| None::<String>) server=error("email") />
                <label for="email-password">{t(l, "security.your_password")}</label>
                <input id="email-password" name="current" type="password" autocomplete="current-password" aria-describedby="email-password-hint" required />
                <FieldHint id="email-password-hint" hint=Signal::derive(|| None::<String>) server=error("current") />
                <button type="submit" disabled=move || change.pending().get()>{t(l, "security.change_email")}</button>
            </ActionForm>
        </section>
    }
}
