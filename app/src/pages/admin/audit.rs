//! Admin: the audit log, filtered by who, what, which and when.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, next_href};
use crate::api::admin::{AuditRow, admin_audit};
use crate::components::AppFrame;
use crate::format::timestamp;
use crate::messages::{t, use_locale};

const FILTERS: [&str; 5] = ["actor", "action", "subject", "from", "to"];

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |name: &str| query.with(|q| q.get(name)).filter(|v| !v.is_empty());
    let page = Resource::new(
        move || (FILTERS.map(|f| get(f)), get("after")),
        |([actor, action, subject, from, to], after)| admin_audit(actor, action, subject, from, to, after),
    );
    let value = move |name: &'static str| move || get(name).unwrap_or_default();
    let l = use_locale();
    view! {
        <AppFrame>
            <h1>{t(l, "frame.admin")}</h1>
            <AdminNav />
            <section class="card">
                <h2>{t(l, "admin.audit_log")}</h2>
                <form method="get" action="/admin/audit" class="filters" data-testid="audit-filters">
                    <label>{t(l, "audit.who")} " " <input name="actor" type="search" placeholder=t(l, "admin.email_or_id") maxlength="254" value=value("actor") /></label>
                    <label>{t(l, "audit.action")} " " <input name="action" type="search" placeholder=t(l, "audit.action_example") maxlength="64" value=value("action") /></label>
                    <label>{t(l, "audit.subject")} " " <input name="subject" type="search" placeholder=t(l, "audit.an_id") maxlength="64" value=value("subject") /></label>
                    <label>{t(l, "gallery.from")} " " <input name="from" type="date" value=value("from") /></label>
                    <label>{t(l, "gallery.to")} " " <input name="to" type="date" value=value("to") /></label>
                    <button type="submit">{t(l, "admin.filter")}</button>
                </form>
                <Suspense fallback=move || view! { <p>{t(l, "common.loading")}</p> }>
                    {move || Suspend::new(async move {
                        let page = match page.await {
                            Ok(page) => page,
                            Err(e) => return view! { <p class="banner error" data-testid="filter-error">{e.message}</p> }.into_any(),
                        };
                        let next = page.next.map(|cursor| {
                            let href = next_href("/admin/audit", &cursor, &FILTERS.map(|f| (f, get(f))));
                            view! { <a class="button" data-testid="next-page" href=href>{t(l, "admin.next_page")}</a> }
                        });
                        view! {
                            <div class="table-scroll">
                                <table class="audit" data-testid="audit">
                                    <thead>
                                        <tr>
                                            <th scope="col">{t(l, "audit.when")}</th><th scope="col">{t(l, "audit.who")}</th><th scope="col">{t(l, "audit.action")}</th>
                                            <th scope="col">{t(l, "audit.subject")}</th><th scope="col">{t(l, "audit.address")}</th><th scope="col">{t(l, "audit.detail")}</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.entries.into_iter().map(|entry| view! { <AuditLine entry /> }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            {next}
                        }
                        .into_any()
                    })}
                </Suspense>
            </section>
        </AppFrame>
    }
}

#[component]
fn AuditLine(entry: AuditRow) -> impl IntoView {
    let who = entry.actor_email.clone().or_else(|| entry.actor_id.clone()).unwrap_or_else(|| "—".into());
    let subject = match (&entry.subject_type, &entry.subject_id) {
        (Some(kind), Some(id)) => format!("{kind} {id}"),
        _ => String::new(),
    };
    view! {
        <tr data-testid="audit-entry" data-action=entry.action.clone()>
            <td>{timestamp(&entry.at)}</td>
            <td>{who}</td>
            <td><code>{entry.action.clone()}</code></td>
            <td class="small">{subject}</td>
            <td class="small">{entry.ip.clone().unwrap_or_default()}</td>
            <td class="small"><code class="detail">{entry.detail.clone()}</code></td>
        </tr>
    }
}
