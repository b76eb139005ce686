use leptos::prelude::*;
use leptos_router::components::A;

use crate::Auth;

/// The signed-in layout: brand, Create / Gallery / Account tabs (and Admin for admins), the
/// account's email and a logout button.
///
/// The account is read in one suspense boundary, by awaiting it: one resource shared by two
/// boundaries is a pattern Leptos has had lost-wakeup bugs with.
#[component]
pub fn AppFrame(children: Children) -> impl IntoView {
    let auth = expect_context::<Auth>();
    view! {
        <header class="topbar">
            <a class="brand" href="/create">"Darkroom"</a>
            <Transition fallback=|| view! { <nav class="tabs" aria-label="Main"></nav> }>
                {move || Suspend::new(async move {
                    let me = auth.me.await.ok().flatten();
                    let is_admin = me.as_ref().is_some_and(|m| m.is_admin);
                    view! {
                        <nav class="tabs" aria-label="Main">
                            <A href="/create">"Create"</A>
                            <A href="/gallery">"Gallery"</A>
                            <A href="/account">"Account"</A>
                            {is_admin.then(|| view! { <A href="/admin">"Admin"</A> })}
                        </nav>
                        <div class="who">
                            {me.map(|m| view! { <span class="email" data-testid="who">{m.email}</span> })}
                            <ActionForm action=auth.logout>
                                <button type="submit" class="link">"Log out"</button>
                            </ActionForm>
                        </div>
                    }
                })}
            </Transition>
        </header>
        <main class="content">{children()}</main>
    }
}
