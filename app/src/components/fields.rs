use leptos::prelude::*;

use crate::error::AppError;

/// The server's message for `field`, when the last error was about it.
pub fn field_error(error: Option<AppError>, field: &str) -> Option<String> {
    error.filter(|e| e.field.as_deref() == Some(field)).map(|e| e.message)
}

/// What the server said about `field` in the last answer of an action whose value is `value`.
pub fn action_field_error<T, S>(value: S, field: &'static str) -> Signal<Option<String>>
where
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    Signal::derive(move || field_error(value.get().and_then(Result::err), field))
}

/// The line under a form field: the client's inline hint, else the server's complaint.
#[component]
pub fn FieldHint(
    id: &'static str,
    #[prop(into)] hint: Signal<Option<String>>,
    #[prop(into)] server: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <p class="field-hint" id=id>
            {move || hint.get().or_else(|| server.get())}
        </p>
    }
}
