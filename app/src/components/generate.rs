//! The model form (rendered from the catalog) and the live list of the user's jobs.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::{Map, Value};

use crate::api::jobs::{AssetView, CancelJob, CreateJob, JobEstimate, JobView, RetryJob, estimate_job};
use crate::catalog::{self, Field, Kind, MODELS};
use crate::messages::{t, tf, use_locale};
use crate::states::{AssetKind, JobState};

/// Puts `job` in the list (replacing its older self), newest first.
/// A view older than the one shown (a slow answer overtaken by a live event) is ignored.
pub fn upsert(jobs: RwSignal<Vec<JobView>>, job: JobView) {
    jobs.update(|list| match list.iter_mut().find(|j| j.id == job.id) {
        Some(existing) if existing.version <= job.version => *existing = job,
        Some(_) => {}
        None => list.insert(0, job),
    });
}

#[component]
pub fn GenerateForm(has_key: bool, selected: RwSignal<Vec<String>>, jobs: RwSignal<Vec<JobView>>) -> impl IntoView {
    let model_id = RwSignal::new(catalog::HAIRSTYLE_TRY_ON.to_owned());
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let create = ServerAction::<CreateJob>::new();
    let model = move || catalog::find(&model_id.get()).unwrap_or(&MODELS[0]);
    let l = use_locale();

    Effect::new(move |_| {
        if let Some(Ok(job)) = create.value().get() {
            #[cfg(feature = "hydrate")]
            let id = job.id.clone();
            upsert(jobs, job);
            #[cfg(feature = "hydrate")]
            crate::browser::reveal_job(&id);
        }
    });
    let error = move || create.value().get().and_then(Result::err);
    // Only the inputs a price depends on: typing a prompt asks for nothing.
    let priced = Memo::new(move |_| {
        let params: Map<String, Value> = values.with(|v| {
            v.iter()
                .filter(|(name, _)| catalog::PRICED.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect()
        });
        (model_id.get(), params)
    });
    // Asked again after each job is started: what the caps leave has changed.
    let estimate = Resource::new(
        move || (priced.get(), create.version().get()),
        |((model, params), _)| estimate_job(model, params),
    );

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let params: Map<String, Value> =
            values.get_untracked().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let images = if model().image_field().is_some() { selected.get_untracked() } else { Vec::new() };
        create.dispatch(CreateJob { model: model_id.get_untracked(), params, images });
    };

    view! {
        <form class="generate" on:submit=submit data-testid="generate-form">
            <label class="field">
                <span>{t(l, "generate.model")}</span>
                <select
                    name="model"
                    data-testid="model"
                    on:change=move |ev| {
                        model_id.set(event_target_value(&ev));
                        values.set(BTreeMap::new());
                    }
                >
                    {MODELS
                        .iter()
                        .map(|m| {
                            view! {
                                <option value=m.endpoint selected=m.endpoint == catalog::HAIRSTYLE_TRY_ON>
                                    {m.name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <p class="muted small">{move || model().summary}</p>
            {move || {
                let m = model();
                (!m.presets.is_empty())
                    .then(|| {
                        view! {
                            <div class="presets" role="group" aria-label=t(l, "generate.hairstyles") data-testid="presets">
                                {m
                                    .presets
                                    .iter()
                                    .map(|preset| {
                                        let chosen = move || {
                                            values.with(|v| v.get("prompt").map(String::as_str) == Some(preset.prompt))
                                        };
                                        view! {
                                            <button
                                                type="button"
                                                class="chip"
                                                class:active=chosen
                                                aria-pressed=move || chosen().to_string()
                                                data-testid="preset"
                                                on:click=move |_| {
                                                    values.update(|v| {
                                                        v.insert("prompt".into(), preset.prompt.into());
                                                    })
                                                }
                                            >
                                                {preset.label}
                                            </button>
                                        }
                                    })
                                    .collect_view()}
                            </div>
                        }
                    })
            }}
            {move || {
                let m = model();
                m.fields.iter().map(|field| view! { <ModelField field values selected /> }).collect_view()
            }}
            {move || {
                error()
                    .map(|e| view! { <p class="banner error" role="alert" data-testid="generate-error">{e.message}</p> })
            }}
            {has_key.then(|| view! {
                <Transition fallback=|| ()>
                    {move || estimate.get().and_then(Result::ok).map(|JobEstimate { micros, room }| {
                        let room = room.map(|left| format!(" · {}", tf(l, "generate.room", &[("amount", &crate::format::usd(left))])));
                        match micros {
                            Some(m) => view! {
                                <p class="estimate" data-testid="estimate" title=t(l, "generate.estimate_title")>
                                    {format!("≈ {}", crate::format::usd(m))}{room}
                                </p>
                            }.into_any(),
                            None => view! {
                                <p class="estimate muted small" data-testid="estimate">{t(l, "generate.price_unknown")}{room}</p>
                            }.into_any(),
                        }
                    })}
                </Transition>
            })}
            <button type="submit" class="primary" data-testid="generate" disabled=move || !has_key || create.pending().get()>
                {move || if create.pending().get() { t(l, "generate.starting") } else { t(l, "create.generate") }}
            </button>
        </form>
    }
    .into_any()
}

#[component]
fn ModelField(
    field: &'static Field,
    values: RwSignal<BTreeMap<String, String>>,
    selected: RwSignal<Vec<String>>,
) -> impl IntoView {
    let name = field.name;
    let value = move || values.with(|v| v.get(name).cloned().unwrap_or_default());
    let set = move |ev: leptos::ev::Event| {
        let new = event_target_value(&ev);
        values.update(|v| {
            v.insert(name.to_owned(), new);
        });
    };
    let label = if field.required { format!("{} *", field.label) } else { field.label.to_owned() };
    let l = use_locale();
    match &field.kind {
        Kind::Images { max, .. } => {
            let max = *max;
            view! {
                <p class="field" data-testid="chosen-images">
                    <span>{label}</span>
                    <span class="muted small">
                        {move || match selected.with(Vec::len) {
                            0 => tf(l, "generate.tick_up_to", &[("max", &max.to_string())]),
                            1 => t(l, "generate.one_chosen").to_owned(),
                            n => tf(l, "generate.n_chosen", &[("n", &n.to_string())]),
                        }}
                    </span>
                </p>
            }
            .into_any()
        }
        Kind::Image => view! {
            <p class="field" data-testid="chosen-images">
                <span>{label}</span>
                <span class="muted small">
                    {move || match selected.with(Vec::len) {
                        0 => t(l, "generate.tick_one").to_owned(),
                        1 => t(l, "generate.one_chosen").to_owned(),
                        _ => t(l, "generate.only_one").to_owned(),
                    }}
                </span>
            </p>
        }
        .into_any(),
        Kind::Text { max_chars, multiline: true } => view! {
            <label class="field">
                <span>{label}</span>
                <textarea
                    name=name
                    rows="3"
                    maxlength=max_chars.to_string()
                    data-testid=name
                    prop:value=value
                    on:input=set
                ></textarea>
            </label>
        }
        .into_any(),
        Kind::Text { max_chars, multiline: false } => view! {
            <label class="field">
                <span>{label}</span>
                <input type="text" name=name maxlength=max_chars.to_string() data-testid=name prop:value=value on:input=set />
            </label>
        }
        .into_any(),
        Kind::Choice { options, default } => {
            let default = *default;
            view! {
                <label class="field">
                    <span>{label}</span>
                    <select name=name data-testid=name on:change=set>
                        {options
                            .iter()
                            .map(|o| view! { <option value=*o selected=*o == default>{*o}</option> })
                            .collect_view()}
                    </select>
                </label>
            }
            .into_any()
        }
        Kind::Integer { min, max, default } => {
            let placeholder = default.map(|d| d.to_string()).unwrap_or_else(|| t(l, "generate.random").into());
            let limits = (min.to_string(), max.to_string(), "1".to_owned(), placeholder);
            number_input(label, name, limits, value, set)
        }
        Kind::Number { min, max, step, default } => {
            let limits = (min.to_string(), max.to_string(), step.to_string(), default.to_string());
            number_input(label, name, limits, value, set)
        }
        Kind::Toggle { default } => {
            let default = *default;
            view! {
                <label class="field toggle">
                    <input
                        type="checkbox"
                        name=name
                        checked=default
                        data-testid=name
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            values.update(|v| {
                                v.insert(name.to_owned(), on.to_string());
                            });
                        }
                    />
                    <span>{label}</span>
                </label>
            }
            .into_any()
        }
    }
}

/// A number field: `limits` are (min, max, step, placeholder) as the browser wants them.
fn number_input(
    label: String,
    name: &'static str,
    (min, max, step, placeholder): (String, String, String, String),
    value: impl Fn() -> String + Send + Sync + 'static,
    set: impl Fn(leptos::ev::Event) + 'static,
) -> AnyView {
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                type="number"
                name=name
                min=min
                max=max
                step=step
                placeholder=placeholder
                data-testid=name
                prop:value=value
                on:input=set
            />
        </label>
    }
    .into_any()
}

#[component]
pub fn JobList(jobs: RwSignal<Vec<JobView>>) -> impl IntoView {
    let l = use_locale();
    let cancel = ServerAction::<CancelJob>::new();
    let retry = ServerAction::<RetryJob>::new();
    // One effect per action: re-running one must not re-apply the other's old answer.
    Effect::new(move |_| {
        if let Some(Ok(job)) = cancel.value().get() {
            upsert(jobs, job);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(job)) = retry.value().get() {
            upsert(jobs, job);
        }
    });
    // The time now, once a second, for the seconds fal has been working (server renders and the
    // first hydrated frame show none, so both agree).
    let clock = RwSignal::new(None::<i64>);
    #[cfg(feature = "hydrate")]
    if let Ok(tick) =
        set_interval_with_handle(move || clock.set(Some(js_sys::Date::now() as i64)), std::time::Duration::from_secs(1))
    {
        on_cleanup(move || tick.clear());
    }
    view! {
        {move || {
            jobs.with(Vec::is_empty)
                .then(|| view! { <p class="muted" data-testid="no-jobs">{t(l, "generate.nothing_yet")}</p> })
        }}
        <ul class="jobs" aria-live="polite" data-testid="jobs">
            <For
                each=move || jobs.get()
                key=|job| (job.id.clone(), job.state, job.status.clone(), job.progress.clone(), job.assets.len())
                let:job
            >
                <JobCard job cancel retry clock />
            </For>
        </ul>
    }
}

#[component]
fn JobCard(
    job: JobView,
    cancel: ServerAction<CancelJob>,
    retry: ServerAction<RetryJob>,
    clock: RwSignal<Option<i64>>,
) -> impl IntoView {
    let id = job.id.clone();
    let retry_id = job.id.clone();
    let failed = job.state == JobState::Failed;
    let started = job.started_at.as_deref().and_then(crate::format::epoch_ms);
    let state = job.state;
    let l = use_locale();
    let status = crate::views::status_text(l, job.state, job.retry, job.queue_position);
    let status_now = move || {
        let secs = clock.get().zip(started).map(|(now, at)| crate::format::elapsed(((now - at).max(0) / 1000) as u64));
        match (state, secs) {
            (JobState::Running, Some(secs)) => tf(l, "generate.generating_for", &[("time", &secs)]),
            (JobState::Submitted, Some(secs)) => format!("{status} · {secs}"),
            _ => status.clone(),
        }
    };
    view! {
        <li class="job" data-testid="job" data-state=job.state.as_str() data-id=job.id.clone()>
            <div class="job-head">
                <span class="job-model">{job.model_name.clone()}</span>
                <span class="pill" class:error=failed data-testid="job-status">{status_now}</span>
            </div>
            {job.estimate_micros.map(|m| {
                view! { <p class="muted small" data-testid="job-estimate">{tf(l, "generate.estimated", &[("amount", &crate::format::usd(m))])}</p> }
            })}
            {job.prompt.clone().map(|p| view! { <p class="job-prompt">{p}</p> })}
            {job.progress.clone().map(|p| view! { <p class="muted small">{p}</p> })}
            {job.error_message.clone().map(|m| {
                view! { <p class=if failed { "banner error" } else { "muted small" } data-testid="job-error">{m}</p> }
            })}
            {job.description.clone().map(|d| view! { <p class="muted small">{d}</p> })}
            {(!job.assets.is_empty())
                .then(|| {
                    view! {
                        <ul class="results" data-testid="results">
                            {job.assets.iter().cloned().map(|a| view! { <ResultTile asset=a /> }).collect_view()}
                        </ul>
                    }
                })}
            <div class="job-actions">
                {job.can_cancel
                    .then(|| {
                        let id = id.clone();
                        view! {
                            <button type="button" class="link" data-testid="cancel-job" on:click=move |_| {
                                cancel.dispatch(CancelJob { id: id.clone() });
                            }>{t(l, "common.cancel")}</button>
                        }
                    })}
                {job.can_retry
                    .then(|| {
                        let id = retry_id.clone();
                        view! {
                            <button type="button" class="link" data-testid="retry-job" on:click=move |_| {
                                retry.dispatch(RetryJob { id: id.clone() });
                            }>{t(l, "generate.retry")}</button>
                        }
                    })}
            </div>
        </li>
    }
}

#[component]
fn ResultTile(asset: AssetView) -> impl IntoView {
    let l = use_locale();
    let label = match (asset.width, asset.height) {
        (Some(w), Some(h)) => format!("{w} × {h}"),
        _ => asset.content_type.clone(),
    };
    let media = if asset.kind == AssetKind::Video {
        view! { <video controls preload="metadata" src=asset.url.clone() data-testid="result-video"></video> }
            .into_any()
    } else if asset.kind == AssetKind::Image {
        let src = asset.thumb_url.clone().unwrap_or_else(|| asset.url.clone());
        view! {
            <a href=asset.url.clone() target="_blank" rel="noopener">
                <img src=src alt=t(l, "generate.result_alt") loading="lazy" data-testid="result-image" />
            </a>
        }
        .into_any()
    } else {
        view! { <a href=asset.url.clone() download="">{t(l, "generate.download")}</a> }.into_any()
    };
    view! {
        <li class="result">
            {media}
            <span class="muted small">{label}</span>
        </li>
    }
}
