//! Admin: everyone's jobs with their failures, filtered, with retry and cancel, and the queue.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{AdminNav, next_href};
use crate::api::admin::{AdminCancelJob, AdminJobRow, AdminRetryJob, admin_jobs};
use crate::catalog::MODELS;
use crate::components::{AppFrame, Notice, NoticeBanner};
use crate::format::{timestamp, usd};
use crate::messages::{t, tf, use_locale};
use crate::states::JobState;

const FILTERS: [&str; 5] = ["state", "model", "user", "from", "to"];

#[component]
pub fn AdminJobsPage() -> impl IntoView {
    let query = use_query_map();
    let get = move |name: &str| query.with(|q| q.get(name)).filter(|v| !v.is_empty());
    let retry = ServerAction::<AdminRetryJob>::new();
    let cancel = ServerAction::<AdminCancelJob>::new();
    let page = Resource::new(
        move || (FILTERS.map(|f| get(f)), get("after"), retry.version().get(), cancel.version().get()),
        |([state, model, user, from, to], after, _, _)| admin_jobs(state, model, user, from, to, after),
    );
    let l = use_locale();
    let notice = Signal::derive(move || {
        let done = |verb: &'static str| {
            move |r: Result<AdminJobRow, crate::error::AppError>| {
                r.map(|j| tf(l, "admin.job_now", &[("verb", verb), ("state", j.state.as_str())]))
            }
        };
        let (retried, canceled) = (t(l, "admin.retried"), t(l, "admin.canceled"));
        match retry.value().get().map(done(retried)).or_else(|| cancel.value().get().map(done(canceled))) {
            Some(Ok(text)) => Some(Notice::Success(text)),
            Some(Err(e)) => Some(Notice::from(&e)),
            None => None,
        }
    });
    let value = move |name: &'static str| move || get(name).unwrap_or_default();
    view! {
        <AppFrame>
            <h1>{t(l, "frame.admin")}</h1>
            <AdminNav />
            <NoticeBanner notice />
            <section class="card">
                <h2>{t(l, "create.jobs")}</h2>
                <form method="get" action="/admin/jobs" class="filters" data-testid="job-filters">
                    <label>{t(l, "admin.state")}
                        <select name="state">
                            <option value="">{t(l, "admin.any")}</option>
                            {JobState::ALL.iter().map(|s| {
                                let word = s.as_str();
                                view! { <option value=word selected=move || get("state").as_deref() == Some(word)>{word}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{t(l, "generate.model")}
                        <select name="model">
                            <option value="">{t(l, "admin.any")}</option>
                            {MODELS.iter().map(|m| {
                                let id = m.endpoint;
                                view! { <option value=id selected=move || get("model").as_deref() == Some(id)>{m.name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{t(l, "frame.account")} " " <input name="user" type="search" placeholder=t(l, "admin.email_or_id") maxlength="254" value=value("user") /></label>
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
                        let depth = page
                            .depth
                            .iter()
                            .map(|(state, n)| format!("{state}: {n}"))
                            .collect::<Vec<_>>()
                            .join(" · ");
                        let next = page.next.map(|cursor| {
                            let href = next_href("/admin/jobs", &cursor, &FILTERS.map(|f| (f, get(f))));
                            view! { <a class="button" data-testid="next-page" href=href>{t(l, "admin.next_page")}</a> }
                        });
                        view! {
                            <p class="muted" data-testid="queue-depth">{t(l, "admin.unfinished_now")} " " {depth}</p>
                            <div class="table-scroll">
                                <table class="admin-jobs" data-testid="admin-jobs">
                                    <thead>
                                        <tr>
                                            <th scope="col">{t(l, "viewer.created")}</th><th scope="col">{t(l, "frame.account")}</th><th scope="col">{t(l, "generate.model")}</th>
                                            <th scope="col">{t(l, "admin.state")}</th><th scope="col">{t(l, "admin.failure")}</th><th scope="col">{t(l, "admin.attempts")}</th>
                                            <th scope="col">{t(l, "admin.at_fal")}</th><th scope="col">{t(l, "admin.estimate")}</th><th scope="col"></th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.jobs.into_iter().map(|job| view! { <JobLine job retry cancel /> }).collect_view()}
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
fn JobLine(
    job: AdminJobRow,
    retry: ServerAction<AdminRetryJob>,
    cancel: ServerAction<AdminCancelJob>,
) -> impl IntoView {
    let l = use_locale();
    let at_fal = match (&job.submitted_at, &job.completed_at) {
        (Some(start), Some(end)) => match (crate::format::epoch_ms(start), crate::format::epoch_ms(end)) {
            (Some(s), Some(e)) => crate::format::elapsed(((e - s).max(0) / 1000) as u64),
            _ => String::new(),
        },
        (Some(start), None) => tf(l, "admin.since", &[("when", &timestamp(start))]),
        _ => String::new(),
    };
    let failure = job.error_code.clone().map(|code| {
        view! { <code>{code}</code> " " <span class="small">{job.error_message.clone().unwrap_or_default()}</span> }
    });
    let (retry_id, cancel_id) = (job.id.clone(), job.id.clone());
    view! {
        <tr data-testid="admin-job" data-id=job.id.clone() data-state=job.state.as_str()>
            <td>{timestamp(&job.created_at)}</td>
            <td>{job.email.clone()}</td>
            <td><code>{job.model.clone()}</code></td>
            <td data-testid="admin-job-state">{job.state.as_str()}</td>
            <td>{failure}</td>
            <td>{format!("{}/{}", job.attempts, job.max_attempts)}</td>
            <td>{at_fal}</td>
            <td>{job.estimate_micros.map(|m| format!("≈ {}", usd(m)))}</td>
            <td>
                {job.can_retry.then(|| view! {
                    <ActionForm action=retry>
                        <input type="hidden" name="id" value=retry_id />
                        <button type="submit" data-testid="admin-retry">{t(l, "generate.retry")}</button>
                    </ActionForm>
                })}
                {job.can_cancel.then(|| view! {
                    <ActionForm action=cancel>
                        <input type="hidden" name="id" value=cancel_id />
                        <button type="submit" data-testid="admin-cancel">{t(l, "common.cancel")}</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
