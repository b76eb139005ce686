//! The Account tab: the fal key and credit balance, spending, the password, sessions, and deletion.

mod access;
mod deletion;
mod security;
mod spending;
mod storage;
mod tokens;

use leptos::html;
use leptos::prelude::*;

use crate::api::account::ChangePassword;
use crate::api::keys::{Credits, DeleteKey, KeyCheck, KeyCredits, SaveKey, TestKey, key_status};
use crate::components::{AppFrame, FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::{money, timestamp};
use crate::messages::{Locale, t, tf, use_locale};

fn tested(l: Locale, check: &KeyCheck) -> String {
    match (check.unit_price, &check.unit, &check.currency) {
        (Some(price), Some(unit), Some(currency)) => tf(
            l,
            "account.key_works_price",
            &[("model", &check.endpoint_id), ("price", &money(price, currency)), ("unit", unit)],
        ),
        _ => tf(l, "account.key_works", &[("model", &check.endpoint_id)]),
    }
}

fn credits(l: Locale, credits: &Credits) -> Notice {
    match credits {
        Credits::Balance { amount, currency } => {
            Notice::Success(tf(l, "account.credits_are", &[("amount", &money(*amount, currency))]))
        }
        Credits::NeedsAdminKey => Notice::Error(t(l, "account.credits_need_admin").into()),
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let save = ServerAction::<SaveKey>::new();
    let delete = ServerAction::<DeleteKey>::new();
    let test = ServerAction::<TestKey>::new();
    let balance = ServerAction::<KeyCredits>::new();
    let change_password = ServerAction::<ChangePassword>::new();
    let status = Resource::new(move || (save.version().get(), delete.version().get()), |_| key_status());

    let notice = RwSignal::new(None::<Notice>);
    let l = use_locale();
    let key_input = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if let Some(result) = save.value().get() {
            notice.set(match result {
                Ok(key) => {
                    // Re-rendering keeps the input element and its value; the secret must not linger.
                    if let Some(input) = key_input.get() {
                        input.set_value("");
                    }
                    Some(Notice::Success(tf(l, "account.key_saved", &[("last4", &key.last4)])))
                }
                // A field error shows under the field instead.
                Err(e) if e.field.is_some() => None,
                Err(e) => Some(Notice::from(&e)),
            });
        }
    });
    Effect::new(move |_| {
        if let Some(result) = delete.value().get() {
            notice.set(Some(
                result.map_or_else(|e| Notice::from(&e), |()| Notice::Success(t(l, "account.key_deleted").into())),
            ));
        }
    });
    Effect::new(move |_| {
        if let Some(result) = test.value().get() {
            notice.set(Some(result.map_or_else(|e| Notice::from(&e), |c| Notice::Success(tested(l, &c)))));
        }
    });
    Effect::new(move |_| {
        if let Some(result) = balance.value().get() {
            notice.set(Some(result.map_or_else(|e| Notice::from(&e), |c| credits(l, &c))));
        }
    });
    let key_error = action_field_error(save.value(), "key");

    view! {
        <AppFrame>
            <h1>{t(l, "frame.account")}</h1>
            <section class="card" aria-labelledby="fal-key-heading">
                <h2 id="fal-key-heading">{t(l, "account.key_heading")}</h2>
                <p class="muted">{t(l, "account.key_intro")}</p>
                <NoticeBanner notice />
                // Everything that depends on whether a key is saved renders from the resource, so
                // server and browser agree.
                <Transition fallback=move || view! { <p class="key-status">{t(l, "account.checking_key")}</p> }>
                    {move || Suspend::new(async move {
                        let key = match status.await {
                            Ok(key) => key,
                            Err(e) => return view! { <p class="banner error">{e.message}</p> }.into_any(),
                        };
                        let has_key = key.is_some();
                        view! {
                            {match key {
                                Some(key) => view! {
                                    <p class="key-status" data-testid="key-status">
                                        {t(l, "account.saved_key")} " " <code>"…" {key.last4}</code> " · " {t(l, "account.saved")} " "
                                        <time datetime=key.saved_at.clone()>{timestamp(&key.saved_at)}</time>
                                    </p>
                                }
                                .into_any(),
                                None => view! { <p class="key-status" data-testid="key-status">{t(l, "account.no_key")}</p> }.into_any(),
                            }}
                            <ActionForm action=save attr:class="key-form">
                                <label for="fal-key">{if has_key { t(l, "account.replace_with") } else { t(l, "account.your_key") }}</label>
                                <div class="row">
                                    <input
                                        id="fal-key"
                                        node_ref=key_input
                                        name="key"
                                        type="password"
                                        autocomplete="off"
                                        spellcheck="false"
                                        placeholder="key_id:key_secret"
                                        aria-describedby="fal-key-hint"
                                        required
                                    />
                                    <button type="submit" class="primary" disabled=move || save.pending().get()>
                                        {if has_key { t(l, "account.replace_key") } else { t(l, "account.save_key") }}
                                    </button>
                                </div>
                                <FieldHint id="fal-key-hint" hint=Signal::derive(|| None::<String>) server=key_error />
                            </ActionForm>
                            <div class="actions">
                                <ActionForm action=test>
                                    <button type="submit" disabled=move || !has_key || test.pending().get()>
                                        {move || if test.pending().get() { t(l, "account.testing") } else { t(l, "account.test_key") }}
                                    </button>
                                </ActionForm>
                                <ActionForm action=balance>
                                    <button type="submit" disabled=move || !has_key || balance.pending().get()>
                                        {t(l, "account.credits")}
                                    </button>
                                </ActionForm>
                                <ActionForm action=delete>
                                    <button type="submit" class="danger" disabled=move || !has_key || delete.pending().get()>
                                        {t(l, "account.delete_key")}
                                    </button>
                                </ActionForm>
                            </div>
                        }
                        .into_any()
                    })}
                </Transition>
            </section>
            <section class="card" aria-labelledby="export-heading">
                <h2 id="export-heading">{t(l, "account.results_heading")}</h2>
                <p class="muted">{t(l, "account.export_intro")}</p>
                <a class="button" href="/account/export" download data-testid="export">{t(l, "account.download_all")}</a>
            </section>
            <spending::SpendingCard />
            <storage::StorageCard />
            <access::AccessCard />
            <tokens::TokensCard />
            <security::EmailCard />
            <security::PasswordCard change=change_password />
            <security::SessionsCard change=change_password />
            <deletion::DeleteAccountCard changed=Signal::derive(move || save.version().get() + delete.version().get()) />
        </AppFrame>
    }
}
