use leptos::prelude::*;

use crate::error::AppError;

/// A success or error message shown above a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Success(String),
    Error(String),
}

impl From<&AppError> for Notice {
    fn from(err: &AppError) -> Self {
        Self::Error(err.message.clone())
    }
}

/// Renders the current notice in a live region so screen readers announce it.
#[component]
pub fn NoticeBanner(#[prop(into)] notice: Signal<Option<Notice>>) -> impl IntoView {
    view! {
        <div class="notice-slot" role="status" aria-live="polite">
            {move || {
                notice
                    .get()
                    .map(|n| match n {
                        Notice::Success(text) => view! { <p class="banner success" data-testid="notice">{text}</p> },
                        Notice::Error(text) => view! { <p class="banner error" data-testid="notice">{text}</p> },
                    })
            }}
        </div>
    }
}
