//! Admin: everyone's accounts. (Galleries, jobs and the audit log join it later.)

use leptos::prelude::*;

use crate::api::admin::admin_users;
use crate::components::AppFrame;
use crate::format::timestamp;

#[component]
pub fn AdminPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| admin_users());
    view! {
        <AppFrame>
            <h1>"Admin"</h1>
            <section class="card">
                <h2>"Users"</h2>
                <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Ok(rows) => view! {
                                <table class="users">
                                    <thead>
                                        <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Signed up"</th></tr>
                                    </thead>
                                    <tbody>
                                        {rows
                                            .into_iter()
                                            .map(|u| view! {
                                                <tr>
                                                    <td>{u.email}</td>
                                                    <td>{u.role}{u.disabled.then_some(" (disabled)")}</td>
                                                    <td><time datetime=u.created_at.clone()>{timestamp(&u.created_at)}</time></td>
                                                </tr>
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            }
                            .into_any(),
                            Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </AppFrame>
    }
}
