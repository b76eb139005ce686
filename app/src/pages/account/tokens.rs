//! "Access tokens" for the JSON API: make one (name, what it may do, how long it lasts), see its
//! secret once, list them with when each was last used, revoke one.

use leptos::prelude::*;

use crate::api::tokens::{CreateToken, RevokeToken, Scope, list_tokens};
use crate::components::{FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::timestamp;
use crate::tokens::{DEFAULT_DAYS, MAX_DAYS};

#[component]
pub fn TokensCard() -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_tokens());
    let name = RwSignal::new(String::new());
    let days = RwSignal::new(DEFAULT_DAYS.to_string());
    let chosen = RwSignal::new(Vec::<Scope>::new());
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
            <h2 id="tokens-heading">"Access tokens"</h2>
            <p class="muted">
                "For apps and scripts that use Darkroom's API (/api/v1) in your name. A token works until it expires or you revoke it, and only for what you allow it."
            </p>
            <NoticeBanner notice />
            {move || created().map(|made| view! {
                <div class="banner success" data-testid="token-created">
                    <p>"Copy your new token now; it will not be shown again."</p>
                    <code class="secret" data-testid="token-secret">{made.token}</code>
                </div>
            })}
            <form class="stack narrow" on:submit=submit data-testid="token-form">
                <label for="token-name">"Name"</label>
                <input id="token-name" maxlength="100" placeholder="My phone" aria-describedby="token-name-hint"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                <FieldHint id="token-name-hint" hint=Signal::derive(|| None::<String>) server=error("name") />
                <fieldset class="scopes" aria-describedby="token-scopes-hint">
                    <legend>"It may"</legend>
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
                <label for="token-days">{format!("Expires after (days, at most {MAX_DAYS})")}</label>
                <input id="token-days" inputmode="numeric" aria-describedby="token-days-hint"
                    prop:value=days on:input=move |ev| days.set(event_target_value(&ev)) />
                <FieldHint id="token-days-hint" hint=Signal::derive(|| None::<String>) server=error("days") />
                <button type="submit" class="primary" data-testid="token-create" disabled=move || create.pending().get()>
                    "Create token"
                </button>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No tokens yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="sessions" data-testid="tokens">
                                {list
                                    .into_iter()
                                    .map(|t| {
                                        let id = t.id.clone();
                                        let scopes = t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                                        let used = t.last_used_at.as_deref().map_or_else(|| "never used".to_owned(), |at| format!("last used {}", timestamp(at)));
                                        view! {
                                            <li class="session" data-testid="token" data-revoked=t.revoked.to_string()>
                                                <div>
                                                    <strong>{t.name}</strong> " " <code>{format!("{}…", t.prefix)}</code>
                                                    <p class="muted small">
                                                        {scopes} " · " {used} " · "
                                                        {if t.revoked { "revoked".to_owned() } else { format!("expires {}", timestamp(&t.expires_at)) }}
                                                    </p>
                                                </div>
                                                {(!t.revoked).then(|| view! {
                                                    <ActionForm action=revoke>
                                                        <input type="hidden" name="id" value=id />
                                                        <button type="submit" data-testid="token-revoke" disabled=move || revoke.pending().get()>"Revoke"</button>
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
