//! The grid of a user's uploaded images.

use leptos::prelude::*;

use crate::api::uploads::{DeleteUpload, UploadedImage};
use crate::components::uploader::human_size;
use crate::messages::{t, tf, use_locale};

#[component]
pub fn ImageGrid(
    images: Vec<UploadedImage>,
    delete: ServerAction<DeleteUpload>,
    /// The images chosen as model inputs, when the grid offers a choice.
    #[prop(optional)]
    selected: Option<RwSignal<Vec<String>>>,
) -> impl IntoView {
    let l = use_locale();
    if images.is_empty() {
        return view! { <p class="muted" data-testid="no-images">{t(l, "images.none_yet")}</p> }.into_any();
    }
    view! {
        <ul class="image-grid" data-testid="my-images">
            {images
                .into_iter()
                .map(|image| {
                    let alt = image.filename.clone().unwrap_or_else(|| t(l, "images.uploaded_image").into());
                    let pick = selected.map(|selected| {
                        let id = image.id.clone();
                        let checked = {
                            let id = id.clone();
                            move || selected.with(|s| s.contains(&id))
                        };
                        view! {
                            <label class="use-image">
                                <input
                                    type="checkbox"
                                    data-testid="use-image"
                                    prop:checked=checked
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        selected.update(|s| {
                                            s.retain(|x| *x != id);
                                            if on {
                                                s.push(id.clone());
                                            }
                                        });
                                    }
                                />
                                {t(l, "images.use")}
                            </label>
                        }
                    });
                    view! {
                        <li class="image-tile" data-testid="image-tile">
                            <img src=image.url alt=alt.clone() loading="lazy" />
                            <div class="image-meta">
                                <span class="name" title=alt.clone()>{alt.clone()}</span>
                                <span class="muted small" data-testid="image-size">
                                    {format!("{} × {} · {}", image.width, image.height, human_size(image.byte_size))}
                                </span>
                                {kept_text(l, image.kept_until.as_deref())
                                    .map(|text| view! { <span class="muted small" data-testid="image-kept">{text}</span> })}
                            </div>
                            {pick}
                            <ActionForm action=delete>
                                <input type="hidden" name="upload" value=image.id />
                                <button type="submit" class="link danger" aria-label=tf(l, "images.delete_named", &[("name", &alt)])>{t(l, "images.delete")}</button>
                            </ActionForm>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// "Deleted in 23 hours unless a job uses it": each use keeps an image longer.
fn kept_text(l: crate::messages::Locale, kept_until: Option<&str>) -> Option<String> {
    let at = crate::format::epoch_ms(kept_until?)?;
    let when = crate::format::until_in(l, crate::format::now_ms(), at);
    Some(tf(l, "images.kept", &[("when", &when)]))
}
