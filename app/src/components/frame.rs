use leptos::prelude::*;
use leptos_router::components::A;

use crate::Auth;

/// The signed-in layout: brand, Create / Gallery / Account tabs (and Admin for admins), the
/// account's email and a logout button.
#[component]
pub fn AppFrame(children: Children) -> impl IntoView {
    let auth = expect_context::<Auth>();
    let me = move || auth.me.get().and_then(Result::ok).flatten();
    view! {
        <header class="topbar">
            <a class="brand" href="/create">"Darkroom"</a>
            <nav class="tabs" aria-label="Main">
                <A href="/create">"Create"</A>
                <A href="/gallery">"Gallery"</A>
                <A href="/account">"Account"</A>
                <Transition fallback=|| ()>
                    {move || me().filter(|m| m.is_admin).map(|_| view! { <A href="/admin">"Admin"</A> })}
                </Transition>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || me().map(|m| view! { <span class="email" data-testid="who">{m.email}</span> })}
                </Transition>
                <ActionForm action=auth.logout>
                    <button type="submit" class="link">"Log out"</button>
                </ActionForm>
            </div>
        </header>
        <main class="content">{children()}</main>
    }
}
