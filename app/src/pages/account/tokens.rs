//! "Access tokens" for the JSON API: make one (name, what it may do, how long it lasts), see its
//! secret once, list them with when each was last used, revoke one.

use leptos::prelude::*;

use crate::api::tokens::{CreateToken, RevokeToken, Scope, list_tokens};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::timestamp;
use crate::messages::{t, tf, use_locale};
use crate::tokens::{DEFAULT_DAYS, MAX_DAYS};

#[component]
pub fn TokensCard() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    let name = RwSignal::new(String::new());
    let days = RwSignal::new(DEFAULT_DAYS.to_string());
    let chosen = RwSignal::new(Vec::<Scope>::new());
    let l = use_locale();
    let notice = Signal::derive(move || match (create.value().get(), revoke.value().get()) {
        (Some(Err(e)), _) if e.field.is_none() => Some(Notice::from(&e)),
        (_, Some(Err(e))) => Some(Notice::from(&e)),
        _ => None,
    });
    let created = move || create.value().get().and_then(Result::ok);
    let error = move |field: &'static str| action_field_error(create.value(), field);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scopes = chosen.get_untracked().into_iter().map(|s| s.as_str().to_owned()).collect();
        // A number the server checks; what is not one asks for the out-of-range answer.
        let days = days.get_untracked().trim().parse().unwrap_or(0);
        create.dispatch(CreateToken { name: name.get_untracked(), scopes, days });
    };
    view! {
        <section class="card" aria-labelledby="tokens-heading">
            <h2 id="tokens-heading">{t(l, "tokens.heading")}</h2>
            <p class="muted">{t(l, "tokens.intro")}</p>
            <NoticeBanner notice />
            {move || created().map(|made| view! {
                <div class="banner success" data-testid="token-created">
                    <p>{t(l, "tokens.copy_now")}</p>
                    <code class="secret" data-testid="token-secret">{made.token}</code>
                </div>
            })}
            <form class="stack narrow" on:submit=submit data-testid="token-form">
                <label for="token-name">{t(l, "tokens.name")}</label>
                <input id="token-name" maxlength="100" placeholder=t(l, "tokens.name_example") aria-describedby="token-name-hint"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldHint id="token-name-hint" hint=Signal::derive(|| None::<String>) server=error("name") />
                <fieldset class="scopes" aria-describedby="token-scopes-hint">
                    <legend>{t(l, "tokens.it_may")}</legend>
                    {Scope::ALL
                        .into_iter()
                        .map(|scope| view! {
                            <label class="check">
                                <input type="checkbox" data-scope=scope.as_str()
                                    prop:checked=move || chosen.with(|c| c.contains(&scope))
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        chosen.update(|c| {
                                            c.retain(|s| *s != scope);
                                            if on {
                                                c.push(scope);
                                            }
                                        });
                                    } />
                                {scope.describe()} " " <code>{scope.as_str()}</code>
                            </label>
                        })
                        .collect_view()}
                </fieldset>
                <FieldHint id="token-scopes-hint" hint=Signal::derive(|| None::<String>) server=error("scopes") />
                <label for="token-days">{tf(l, "tokens.days", &[("max", &MAX_DAYS.to_string())])}</label>
                <input id="token-days" inputmode="numeric" aria-describedby="token-days-hint"
                    prop:value=days on:input=move |ev| days.set(event_target_value(&ev)) />
                <FieldHint id="token-days-hint" hint=Signal::derive(|| None::<String>) server=error("days") />
                <button type="submit" class="primary" data-testid="token-create" disabled=move || create.pending().get()>
                    {t(l, "tokens.create")}
                </button>
            </form>
            <Transition fallback=move || view! { <p class="muted">{t(l, "common.loading")}</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">{t(l, "tokens.none")}</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="sessions" data-testid="tokens">
                                {list
                                    .into_iter()
                                    .map(|token| {
                                        let id = token.id.clone();
                                        let scopes = token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                                        let used = token.last_used_at.as_deref().map_or_else(
                                            || t(l, "tokens.never_used").to_owned(),
                                            |at| tf(l, "tokens.last_used", &[("when", &timestamp(at))]),
                                        );
                                        view! {
                                            <li class="session" data-testid="token" data-revoked=token.revoked.to_string()>
                                                <div>
                                                    <strong>{token.name}</strong> " " <code>{format!("{}…", token.prefix)}</code>
                                                    <p class="muted small">
                                                        {scopes} " · " {used} " · "
                                                        {if token.revoked {
                                                            t(l, "tokens.revoked").to_owned()
                                                        } else {
                                                            tf(l, "tokens.expires", &[("when", &timestamp(&token.expires_at))])
                                                        }}
                                                    </p>
                                                </div>
                                                {(!token.revoked).then(|| view! {
                                                    <ActionForm action=revoke>
                                                        <input type="hidden" name="id" value=id />
                                                        <button type="submit" data-testid="token-revoke" disabled=move || revoke.pending().get()>{t(l, "tokens.revoke")}</button>
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
