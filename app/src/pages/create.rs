//! The Create tab: the user's images (upload, choose, delete), the model form, and the jobs,
//! which update live as they run.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::jobs::{input_policy, list_jobs};
use crate::api::keys::key_status;
use crate::api::uploads::{DeleteUpload, list_uploads};
use crate::components::generate::{GenerateForm, JobList};
use crate::components::uploader::{Queue, Uploader};
use crate::components::{AppFrame, ImageGrid};
use crate::messages::{t, use_locale};

#[component]
pub fn CreatePage() -> impl IntoView {
    let status = Resource::new(|| (), |_| key_status());
    let policy = Resource::new(|| (), |_| input_policy());
    let queue = Queue::new();
    let delete = ServerAction::<DeleteUpload>::new();
    let images = Resource::new(move || (queue.completed.get(), delete.version().get()), |_| list_uploads(None));
    let selected = RwSignal::new(Vec::<String>::new());
    // `?use=<id>`: an image just copied from the gallery, to be chosen as the input.
    let use_image = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("use"));
    let jobs = RwSignal::new(Vec::new());
    let reload = RwSignal::new(0u32);
    let listed = Resource::new(move || reload.get(), |_| list_jobs(None));
    // One image and nothing chosen: that image is the one to use. Choices of deleted images go.
    // An upload that now shows in the grid leaves the queue: each image is shown once.
    Effect::new(move |_| {
        if let Some(Ok(list)) = images.get() {
            queue.items.update(|items| {
                items.retain(|item| {
                    let shown = item
                        .upload_id
                        .with_untracked(|id| id.as_ref().is_some_and(|id| list.iter().any(|image| &image.id == id)));
                    #[cfg(feature = "hydrate")]
                    if shown {
                        crate::browser::upload::revoke_preview(item);
                    }
                    !shown
                })
            });
            selected.update(|chosen| chosen.retain(|id| list.iter().any(|image| &image.id == id)));
            if let Some(wanted) = use_image.as_ref().filter(|w| list.iter().any(|image| &image.id == *w))
                && selected.with_untracked(Vec::is_empty)
            {
                selected.set(vec![wanted.clone()]);
            }
            if list.len() == 1 && selected.with_untracked(Vec::is_empty) {
                selected.set(vec![list[0].id.clone()]);
            }
        }
    });

    #[cfg(feature = "hydrate")]
    {
        let stream = crate::browser::live::open(
            move |job| crate::components::generate::upsert(jobs, job),
            move || reload.update(|n| *n += 1),
        );
        on_cleanup(move || crate::browser::live::close(stream));
    }

    let l = use_locale();
    view! {
        <AppFrame>
            <h1>{t(l, "frame.create")}</h1>
            <div class="studio">
            <div class="studio-inputs">
            <section class="card" aria-labelledby="images-heading">
                <h2 id="images-heading">{t(l, "create.your_images")}</h2>
                <Uploader queue />
                <Transition fallback=move || view! { <p class="muted">{t(l, "create.loading_images")}</p> }>
                    {move || Suspend::new(async move {
                        match images.await {
                            Ok(list) => view! { <ImageGrid images=list delete selected /> }.into_any(),
                            Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            <section class="card" aria-labelledby="generate-heading">
                <h2 id="generate-heading">{t(l, "create.generate")}</h2>
                <Transition fallback=move || view! { <p class="muted">{t(l, "common.loading")}</p> }>
                    {move || Suspend::new(async move {
                        let has_key = matches!(status.await, Ok(Some(_)));
                        view! {
                            {(!has_key)
                                .then(|| {
                                    view! {
                                        <p class="banner info" data-testid="needs-key">
                                            {t(l, "create.needs_key_before")} " " <A href="/account">{t(l, "frame.account")}</A> " "
                                            {t(l, "create.needs_key_after")}
                                        </p>
                                    }
                                })}
                            <GenerateForm has_key selected jobs />
                            {policy
                                .await
                                .ok()
                                .map(|text| view! { <p class="muted small" data-testid="input-policy">{text}</p> })}
                        }
                    })}
                </Transition>
            </section>
            </div>
            <div class="studio-jobs">
            <section class="card" aria-labelledby="jobs-heading">
                <h2 id="jobs-heading">{t(l, "create.jobs")}</h2>
                <Transition fallback=move || view! { <p class="muted">{t(l, "create.loading_jobs")}</p> }>
                    {move || Suspend::new(async move {
                        match listed.await {
                            Ok(list) => {
                                jobs.set(list);
                                view! { <JobList jobs /> }.into_any()
                            }
                            Err(e) => view! { <p class="banner error">{e.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            </div>
            </div>
        </AppFrame>
    }
}
