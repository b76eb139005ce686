//! Admin: every account with its usage, and each account's page (disable, role, spending caps).

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{AdminNav, next_href};
use crate::api::admin::{ChangeUser, UserDetail, UserRow, admin_user, admin_users};
use crate::api::quotas::{AdminSetQuotas, QuotaView};
use crate::api::spending::AdminSetCaps;
use crate::components::{AppFrame, FieldHint, Notice, NoticeBanner, action_field_error};
use crate::format::{timestamp, usd, usd_exact};
use crate::messages::{Locale, t, tf, use_locale};
use crate::upload_queue::human_size;

fn when(l: Locale, at: &Option<String>) -> String {
    at.as_deref().map_or_else(|| t(l, "admin.never").to_owned(), timestamp)
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.with(|q| q.get("q")).filter(|q| !q.is_empty());
    let after = move || query.with(|q| q.get("after"));
    let users = Resource::new(move || (q(), after()), |(q, after)| admin_users(q, after));
    let l = use_locale();
    view! {
        <AppFrame>
            <h1>{t(l, "frame.admin")}</h1>
            <AdminNav />
            <section class="card">
                <h2>{t(l, "admin.users")}</h2>
                <form method="get" action="/admin" class="row admin-search">
                    <label for="user-search" class="visually-hidden">{t(l, "admin.find_by_email")}</label>
                    <input id="user-search" name="q" type="search" placeholder=t(l, "admin.find_by_email") maxlength="254"
                        value=move || q().unwrap_or_default() />
                    <button type="submit">{t(l, "admin.find")}</button>
                </form>
                <Suspense fallback=move || view! { <p>{t(l, "common.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match users.await {
                            Ok(page) => {
                                let next = page.next.map(|cursor| {
                                    let href = next_href("/admin", &cursor, &[("q", q())]);
                                    view! { <a class="button" data-testid="next-page" href=href>{t(l, "admin.next_page")}</a> }
                                });
                                view! {
                                    <div class="table-scroll">
                                        <table class="users" data-testid="users">
                                            <thead>
                                                <tr>
                                                    <th scope="col">{t(l, "auth.email")}</th><th scope="col">{t(l, "admin.role")}</th><th scope="col">{t(l, "admin.signed_up")}</th>
                                                    <th scope="col">{t(l, "admin.last_sign_in")}</th><th scope="col">{t(l, "gallery.images")}</th><th scope="col">{t(l, "admin.results")}</th>
                                                    <th scope="col">{t(l, "admin.jobs_this_month")}</th><th scope="col">{t(l, "admin.spent_this_month")}</th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {page.users.into_iter().map(|u| view! { <UserLine user=u /> }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                    {next}
                                }
                                .into_any()
                            }
                            Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </AppFrame>
    }
}

#[component]
fn UserLine(user: UserRow) -> impl IntoView {
    let l = use_locale();
    let status = match (user.role.as_str(), user.disabled) {
        (role, true) => tf(l, "admin.role_disabled", &[("role", role)]),
        (role, false) => role.to_owned(),
    };
    view! {
        <tr data-testid="user-row" data-email=user.email.clone()>
            <td><a href=format!("/admin/users/{}", user.id)>{user.email.clone()}</a></td>
            <td>{status}</td>
            <td><time datetime=user.created_at.clone()>{timestamp(&user.created_at)}</time></td>
            <td>{when(l, &user.last_login_at)}</td>
            <td>{format!("{} · {}", user.uploads, human_size(user.upload_bytes.max(0) as u64))}</td>
            <td>{format!("{} · {}", user.results, human_size(user.result_bytes.max(0) as u64))}</td>
            <td>{user.jobs_this_month}</td>
            <td>{format!("≈ {}", usd(user.spend_this_month))}</td>
        </tr>
    }
}

/// One account: its figures, disable or re-enable, promote or demote, and its spending caps.
#[component]
pub fn AdminUserPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id")).unwrap_or_default();
    let change = ServerAction::<ChangeUser>::new();
    let caps = ServerAction::<AdminSetCaps>::new();
    let quotas = ServerAction::<AdminSetQuotas>::new();
    let detail = Resource::new(
        move || (id(), change.version().get(), caps.version().get(), quotas.version().get()),
        |(id, ..)| admin_user(id),
    );
    let l = use_locale();
    let notice = Signal::derive(move || {
        let changed = change.value().get().map(|r| {
            r.map(|u| {
                let key = if u.disabled { "admin.saved_disabled" } else { "admin.saved" };
                tf(l, key, &[("email", &u.email), ("role", &u.role)])
            })
        });
        let capped = caps.value().get().map(|r| r.map(|_| t(l, "spending.saved").to_owned()));
        let quota = quotas.value().get().map(|r| r.map(|_| t(l, "admin.quotas_saved").to_owned()));
        match changed.or(capped).or(quota) {
            Some(Ok(text)) => Some(Notice::Success(text)),
            Some(Err(e)) if e.field.is_some() => None,
            Some(Err(e)) => Some(Notice::from(&e)),
            None => None,
        }
    });
    let cap_error = move |field: &'static str| action_field_error(caps.value(), field);
    view! {
        <AppFrame>
            <h1>{t(l, "frame.admin")}</h1>
            <AdminNav />
            <NoticeBanner notice />
            <Suspense fallback=move || view! { <p>{t(l, "common.loading")}</p> }>
                {move || Suspend::new(async move {
                    let UserDetail { user, spending, quotas: quota_view } = match detail.await {
                        Ok(d) => d,
                        Err(e) => return view! { <p class="banner error">{e.message}</p> }.into_any(),
                    };
                    let (role_change, role_label) =
                        if user.role == "admin" { ("demote", t(l, "admin.make_user")) } else { ("promote", t(l, "admin.make_admin")) };
                    let (status_change, status_label) = if user.disabled {
                        ("enable", t(l, "admin.enable"))
                    } else {
                        ("disable", t(l, "admin.disable"))
                    };
                    let (for_status, for_role, for_caps) = (user.id.clone(), user.id.clone(), user.id.clone());
                    let for_quotas = user.id.clone();
                    view! {
                        <section class="card" data-testid="admin-user">
                            <h2>{user.email.clone()}</h2>
                            <dl class="facts">
                                <dt>{t(l, "admin.role")}</dt><dd data-testid="user-role">{user.role.clone()}</dd>
                                <dt>{t(l, "admin.status")}</dt><dd data-testid="user-status">{if user.disabled { t(l, "admin.disabled") } else { t(l, "admin.active") }}</dd>
                                <dt>{t(l, "admin.signed_up")}</dt><dd>{timestamp(&user.created_at)}</dd>
                                <dt>{t(l, "admin.last_sign_in")}</dt><dd>{when(l, &user.last_login_at)}</dd>
                                <dt>{t(l, "gallery.images")}</dt><dd>{format!("{} · {}", user.uploads, human_size(user.upload_bytes.max(0) as u64))}</dd>
                                <dt>{t(l, "admin.results")}</dt><dd>{format!("{} · {}", user.results, human_size(user.result_bytes.max(0) as u64))}</dd>
                                <dt>{t(l, "admin.jobs_this_month")}</dt><dd>{user.jobs_this_month}</dd>
                                <dt>{t(l, "admin.spent_today")}</dt><dd>{format!("≈ {}", usd(spending.spent_day))}</dd>
                                <dt>{t(l, "admin.spent_this_month")}</dt><dd>{format!("≈ {}", usd(spending.spent_month))}</dd>
                            </dl>
                            <p class="muted small">{t(l, "admin.disable_note")}</p>
                            <div class="actions">
                                <a class="button secondary" data-testid="open-gallery"
                                    href=format!("/admin/users/{}/gallery", user.id)>{t(l, "admin.look_at_gallery")}</a>
                                <ActionForm action=change>
                                    <input type="hidden" name="id" value=for_status />
                                    <input type="hidden" name="change" value=status_change />
                                    <button type="submit" class=if user.disabled { "" } else { "danger" } data-testid="toggle-disabled"
                                        disabled=move || change.pending().get()>{status_label}</button>
                                </ActionForm>
                                <ActionForm action=change>
                                    <input type="hidden" name="id" value=for_role />
                                    <input type="hidden" name="change" value=role_change />
                                    <button type="submit" data-testid="toggle-role" disabled=move || change.pending().get()>{role_label}</button>
                                </ActionForm>
                            </div>
                        </section>
                        <section class="card">
                            <h2>{t(l, "admin.caps_heading")}</h2>
                            <p class="muted">{t(l, "admin.caps_intro")}</p>
                            <p class="muted small" data-testid="caps-apply">
                                {tf(l, "admin.caps_apply", &[
                                    ("day", &spending.cap_day.map_or_else(|| t(l, "admin.no_cap").to_owned(), usd)),
                                    ("month", &spending.cap_month.map_or_else(|| t(l, "admin.no_cap").to_owned(), usd)),
                                ])}
                            </p>
                            <ActionForm action=caps attr:class="stack narrow">
                                <input type="hidden" name="user_id" value=for_caps />
                                <label for="cap-day">{t(l, "admin.daily_cap")}</label>
                                <input id="cap-day" name="day" inputmode="decimal" placeholder=t(l, "admin.default") aria-describedby="cap-day-hint"
                                    value=spending.set_day.map(usd_exact).unwrap_or_default() />
                                <FieldHint id="cap-day-hint" hint=Signal::derive(|| None::<String>) server=cap_error("day") />
                                <label for="cap-month">{t(l, "admin.monthly_cap")}</label>
                                <input id="cap-month" name="month" inputmode="decimal" placeholder=t(l, "admin.default") aria-describedby="cap-month-hint"
                                    value=spending.set_month.map(usd_exact).unwrap_or_default() />
                                <FieldHint id="cap-month-hint" hint=Signal::derive(|| None::<String>) server=cap_error("month") />
                                <button type="submit" class="primary" disabled=move || caps.pending().get()>{t(l, "spending.save")}</button>
                            </ActionForm>
                        </section>
                        <QuotaCard user_id=for_quotas view=quota_view action=quotas />
                    }
                    .into_any()
                })}
            </Suspense>
        </AppFrame>
    }
}

/// The account's upload and storage quotas: what applies, what it keeps, and the admin's own.
#[component]
fn QuotaCard(user_id: String, view: QuotaView, action: ServerAction<AdminSetQuotas>) -> impl IntoView {
    let error = move |field: &'static str| action_field_error(action.value(), field);
    let mib = |bytes: Option<u64>| bytes.map(|b| (b >> 20).to_string()).unwrap_or_default();
    let l = use_locale();
    let storage = match view.storage_bytes {
        Some(limit) => tf(l, "admin.kept_of", &[("kept", &human_size(view.kept_bytes)), ("limit", &human_size(limit))]),
        None => tf(l, "admin.kept_no_limit", &[("kept", &human_size(view.kept_bytes))]),
    };
    view! {
        <section class="card">
            <h2>{t(l, "admin.quotas_heading")}</h2>
            <p class="muted">{t(l, "admin.quotas_intro")}</p>
            <p class="muted small" data-testid="quotas-apply">
                {tf(l, "admin.quotas_apply", &[
                    ("uploads", &view.uploads_day.to_string()),
                    ("bytes", &human_size(view.upload_bytes_day)),
                    ("storage", &storage),
                ])}
            </p>
            <ActionForm action attr:class="stack narrow">
                <input type="hidden" name="user_id" value=user_id />
                <label for="quota-uploads">{t(l, "admin.uploads_day")}</label>
                <input id="quota-uploads" name="uploads_day" inputmode="numeric" placeholder=t(l, "admin.default")
                    aria-describedby="quota-uploads-hint" value=view.set_uploads_day.map(|n| n.to_string()).unwrap_or_default() />
                <FieldHint id="quota-uploads-hint" hint=Signal::derive(|| None::<String>) server=error("uploads_day") />
                <label for="quota-upload-mib">{t(l, "admin.mib_day")}</label>
                <input id="quota-upload-mib" name="upload_mib_day" inputmode="numeric" placeholder=t(l, "admin.default")
                    aria-describedby="quota-upload-mib-hint" value=mib(view.set_upload_bytes_day) />
                <FieldHint id="quota-upload-mib-hint" hint=Signal::derive(|| None::<String>) server=error("upload_mib_day") />
                <label for="quota-storage">{t(l, "admin.mib_kept")}</label>
                <input id="quota-storage" name="storage_mib" inputmode="numeric" placeholder=t(l, "admin.default")
                    aria-describedby="quota-storage-hint" value=mib(view.set_storage_bytes) />
                <FieldHint id="quota-storage-hint" hint=Signal::derive(|| None::<String>) server=error("storage_mib") />
                <button type="submit" class="primary" disabled=move || action.pending().get()>{t(l, "admin.save_quotas")}</button>
            </ActionForm>
        </section>
    }
}
