//! Login and signup screens. Both are plain forms that work before hydration; once hydrated
//! they validate inline as you type.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use crate::Auth;
use crate::components::{FieldHint, LanguageSwitch, Notice, NoticeBanner, field_error};
use crate::messages::{t, use_locale};
use crate::validate::{email_hint, password_hint};

#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <main class="auth-page">
            <div class="auth-card">
                <LanguageSwitch />
                <p class="brand">"Darkroom"</p>
                <h1>{title}</h1>
                {children()}
            </div>
        </main>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let error = move || auth.login.value().get().and_then(Result::err);
    let notice = Signal::derive(move || error().filter(|e| e.field.is_none()).map(|e| Notice::from(&e)));
    let email_problem = RwSignal::new(None::<String>);
    let l = use_locale();

    view! {
        <AuthCard title=t(l, "auth.log_in")>
            <NoticeBanner notice />
            <ActionForm action=auth.login attr:class="stack" attr:novalidate=true>
                <input type="hidden" name="next" value=next />
                <label for="email">{t(l, "auth.email")}</label>
                <input
                    id="email"
                    name="email"
                    type="email"
                    autocomplete="username"
                    required
                    aria-describedby="email-hint"
                    on:blur=move |ev| email_problem.set(email_hint(&event_target_value(&ev)).map(String::from))
                />
                <FieldHint id="email-hint" hint=email_problem server=Signal::derive(move || field_error(error(), "email")) />
                <label for="password">{t(l, "auth.password")}</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required />
                <button type="submit" class="primary" disabled=move || auth.login.pending().get()>
                    {move || if auth.login.pending().get() { t(l, "auth.logging_in") } else { t(l, "auth.log_in") }}
                </button>
            </ActionForm>
            <p class="switch">{t(l, "auth.new_here")} " " <A href="/signup">{t(l, "auth.create_account")}</A></p>
        </AuthCard>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let auth = expect_context::<Auth>();
    let error = move || auth.signup.value().get().and_then(Result::err);
    let query = use_query_map();
    let deleted = move || query.read().get("deleted").is_some();
    let l = use_locale();
    let notice = Signal::derive(move || {
        error()
            .filter(|e| e.field.is_none())
            .map(|e| Notice::from(&e))
            .or_else(|| deleted().then(|| Notice::Success(t(l, "auth.account_deleted").into())))
    });
    let email_problem = RwSignal::new(None::<String>);
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let touched_password = RwSignal::new(false);
    let password_problem =
        Signal::derive(move || touched_password.get().then(|| password_hint(&password.get())).flatten());
    let confirm_problem = Signal::derive(move || {
        let (p, c) = (password.get(), confirm.get());
        (!c.is_empty() && p != c).then(|| t(l, "auth.passwords_differ").to_owned())
    });

    view! {
        <AuthCard title=t(l, "auth.create_your_account")>
            <NoticeBanner notice />
            <ActionForm action=auth.signup attr:class="stack" attr:novalidate=true>
                <label for="email">{t(l, "auth.email")}</label>
                <input
                    id="email"
                    name="email"
                    type="email"
                    autocomplete="email"
                    required
                    aria-describedby="email-hint"
                    on:blur=move |ev| email_problem.set(email_hint(&event_target_value(&ev)).map(String::from))
                />
                <FieldHint id="email-hint" hint=email_problem server=Signal::derive(move || field_error(error(), "email")) />
                <label for="password">{t(l, "auth.password")}</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="new-password"
                    required
                    minlength="10"
                    aria-describedby="password-hint"
                    on:input=move |ev| {
                        touched_password.set(true);
                        password.set(event_target_value(&ev));
                    }
                />
                <FieldHint id="password-hint" hint=password_problem server=Signal::derive(move || field_error(error(), "password")) />
                <label for="confirm">{t(l, "auth.confirm_password")}</label>
                <input
                    id="confirm"
                    name="confirm"
                    type="password"
                    autocomplete="new-password"
                    required
                    aria-describedby="confirm-hint"
                    on:input=move |ev| confirm.set(event_target_value(&ev))
                />
                <FieldHint id="confirm-hint" hint=confirm_problem server=Signal::derive(move || field_error(error(), "confirm")) />
                <button type="submit" class="primary" disabled=move || auth.signup.pending().get()>
                    {move || if auth.signup.pending().get() { t(l, "auth.creating_account") } else { t(l, "auth.sign_up") }}
                </button>
            </ActionForm>
            <p class="switch">{t(l, "auth.have_account")} " " <A href="/login">{t(l, "auth.log_in")}</A></p>
        </AuthCard>
    }
}
