//! Errors as RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`,
//! the stable `code` and the message as `detail`. Built from the same [`AppError`] the pages
//! get, which never carries a signed URL, a key or a trace.

use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::AppError;
use crate::messages::Locale;

tokio::task_local! {
    /// The language of the request being answered, set by [`in_locale`] around each request.
    static LOCALE: Locale;
}

/// Runs `answer` with its errors in `locale`.
pub async fn in_locale<F: std::future::Future>(locale: Locale, answer: F) -> F::Output {
    LOCALE.scope(locale, answer).await
}

/// An API error answer.
#[derive(Debug)]
pub struct Problem(pub AppError);

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        Self(error)
    }
}

/// An error as RFC 9457 problem details.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDetails<'a> {
    /// `urn:darkroom:error:<code>`.
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = String)]
    title: &'a str,
    status: u16,
    /// The stable error code (every one is listed in this document's `x-error-codes`).
    #[schema(value_type = String)]
    code: &'a str,
    /// What went wrong, for the user, in `locale`.
    #[schema(value_type = String)]
    detail: &'a str,
    /// `en` or `es`.
    #[schema(value_type = String)]
    locale: &'a str,
    /// The request field it is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    field: Option<&'a str>,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let locale = LOCALE.try_with(|l| *l).unwrap_or_default();
        let error = self.0.localized(locale);
        let status = http::StatusCode::from_u16(error.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = ProblemDetails {
            kind: format!("urn:darkroom:error:{}", error.code),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: &error.code,
            detail: &error.message,
            locale: locale.as_str(),
            field: error.field.as_deref(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = error.retry_after_secs {
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON request body whose rejection (not JSON, wrong fields, too large) answers as a problem
/// (400 `request.malformed`), like every other API error.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(Problem(AppError::new(
                crate::error::code::REQUEST_MALFORMED,
                format!("The request body is not what this route takes: {}", rejection.body_text()),
            ))),
        }
    }
}
