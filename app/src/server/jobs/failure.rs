//! Why a job stopped: a stable code and a sentence for the person who ran it.

use crate::server::fal::FalError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    /// A failure whose message is shown to the user and stored: any link in it loses its query.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: crate::server::redact::urls(&message.into()) }
    }
}

/// How a failed fal call is handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again after a backoff; the reason is shown while retrying.
    Retry(String),
    Fail(Failure),
}

pub fn classify(err: &FalError) -> Verdict {
    // Every image input is a link to our own storage or a copy we just put in fal's: fal failing
    // to download one means that storage was unreachable (down, or restarting), never that the
    // user's input was wrong. Submitting again hands the input over afresh.
    if let FalError::Invalid { fields, .. } = err
        && fields.iter().any(|f| f.kind == "file_download_error")
    {
        return Verdict::Retry("fal could not download an input image from our storage".into());
    }
    if err.is_retriable() {
        let reason = match err {
            FalError::RateLimited { .. } => "fal is rate-limiting this key".to_owned(),
            FalError::Transport(what) => format!("fal could not be reached ({what})"),
            FalError::Upstream { status, error_type, .. } => format!("fal answered {status} ({error_type})"),
            other => other.to_string(),
        };
        return Verdict::Retry(reason);
    }
    Verdict::Fail(final_failure(err))
}

/// The `code` label of `fal_request_failure_total`: the failure's code, or for passing trouble
/// what kind it was.
pub fn metric_code(err: &FalError) -> &'static str {
    match (classify(err), err) {
        (Verdict::Fail(failure), _) => failure.code,
        (Verdict::Retry(_), FalError::RateLimited { .. }) => "fal.rate_limited",
        (Verdict::Retry(_), FalError::Transport(_)) => "fal.unreachable",
        (Verdict::Retry(_), _) => "fal.unavailable",
    }
}

/// The failure a retriable error becomes once the attempts are used up.
pub fn exhausted(err_reason: &str, attempts: i64) -> Failure {
    Failure::new("job.retries_exhausted", format!("Gave up after {attempts} attempts: {err_reason}."))
}

fn final_failure(err: &FalError) -> Failure {
    match err {
        FalError::Invalid { fields, .. } if err.is_content_policy() => {
            let why = fields
                .iter()
                .find(|f| f.kind == "content_policy_violation")
                .map(|f| f.message.clone())
                .unwrap_or_default();
            Failure::new("fal.content_policy", format!("Blocked by the provider's content policy: {why}"))
        }
        FalError::Invalid { fields, .. } => {
            let what = fields
                .iter()
                .map(|f| if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) })
                .collect::<Vec<_>>()
                .join("; ");
            Failure::new("fal.invalid_input", format!("The model refused the input ({what})."))
        }
        FalError::KeyRejected { .. } | FalError::NotPermitted { .. } => {
            Failure::new("fal.key_rejected", "Your fal key was rejected (401). Check or replace it on the Account tab.")
        }
        FalError::AccountLocked { message } => {
            Failure::new("fal.account_locked", format!("Your fal account is locked or out of balance (403): {message}"))
        }
        FalError::Upstream { error_type, .. } if error_type.contains("timeout") => {
            Failure::new("fal.timeout", "The model timed out before it finished.")
        }
        FalError::Upstream { status, message, .. } => {
            Failure::new("fal.upstream", format!("fal failed the request ({status}): {message}"))
        }
        FalError::Decode(what) => Failure::new("fal.upstream", format!("fal's answer could not be read: {what}")),
        FalError::RateLimited { .. } | FalError::Transport(_) => {
            Failure::new("fal.unreachable", "fal could not be reached.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::fal::FieldError;

    #[test]
    fn content_policy_and_validation_name_their_reason() {
        let policy = FalError::Invalid {
            status: 422,
            fields: vec![FieldError {
                field: "prompt".into(),
                message: "flagged".into(),
                kind: "content_policy_violation".into(),
            }],
        };
        assert_eq!(
            classify(&policy),
            Verdict::Fail(Failure::new("fal.content_policy", "Blocked by the provider's content policy: flagged"))
        );
        let invalid = FalError::Invalid {
            status: 422,
            fields: vec![FieldError {
                field: "image_urls.0".into(),
                message: "could not load".into(),
                kind: "image_load_error".into(),
            }],
        };
        let Verdict::Fail(f) = classify(&invalid) else { panic!() };
        assert_eq!(f.code, "fal.invalid_input");
        assert!(f.message.contains("image_urls.0: could not load"));
    }

    #[test]
    fn an_input_fal_could_not_download_is_retried_not_blamed_on_the_user() {
        let download = FalError::Invalid {
            status: 422,
            fields: vec![FieldError {
                field: "image_urls.0".into(),
                message: "Failed to download the file.".into(),
                kind: "file_download_error".into(),
            }],
        };
        assert!(matches!(classify(&download), Verdict::Retry(r) if r.contains("our storage")));
    }

    #[test]
    fn keys_locks_and_outages() {
        let Verdict::Fail(f) = classify(&FalError::KeyRejected { message: "x".into() }) else { panic!() };
        assert_eq!(f.code, "fal.key_rejected");
        let Verdict::Fail(f) = classify(&FalError::AccountLocked { message: "Exhausted balance".into() }) else {
            panic!()
        };
        assert_eq!(f.code, "fal.account_locked");
        assert!(f.message.contains("Exhausted balance"));
        let outage =
            FalError::Upstream { status: 503, error_type: "runner_scheduling_failure".into(), message: "".into() };
        assert!(matches!(classify(&outage), Verdict::Retry(r) if r.contains("503")));
        let user_timeout =
            FalError::Upstream { status: 504, error_type: "request_timeout_user".into(), message: "".into() };
        assert!(matches!(classify(&user_timeout), Verdict::Fail(f) if f.code == "fal.timeout"));
    }
}
