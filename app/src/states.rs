//! The states and kinds that the database stores, the server decides on and the browser shows:
//! one enum each, serialized as the same lowercase word everywhere (SQL, JSON, the page), so no
//! state is ever spelled as a string literal anywhere else.

use serde::{Deserialize, Serialize};

/// Declares a wire enum: its variants and their stored word, `as_str`, `parse` and `ALL`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `queued → submitted → running → persisting → succeeded | failed | canceled`; a failed or
    /// canceled job can be queued again.
    JobState {
        Queued = "queued",
        Submitted = "submitted",
        Running = "running",
        Persisting = "persisting",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

impl JobState {
    /// Waiting for fal: the states a completion may arrive in.
    pub const AT_FAL: [JobState; 2] = [JobState::Submitted, JobState::Running];
    /// Not finished: the worker still has something to do.
    pub const ACTIVE: [JobState; 4] = [JobState::Queued, JobState::Submitted, JobState::Running, JobState::Persisting];
    /// What a user may still cancel (saving the results is not interrupted).
    pub const CANCELABLE: [JobState; 3] = [JobState::Queued, JobState::Submitted, JobState::Running];
    /// What fal may still bill: a job's estimated cost counts against its owner's spending caps
    /// in these states (fal bills successful outputs; a failed or canceled job gives its back).
    pub const BILLABLE: [JobState; 5] =
        [JobState::Queued, JobState::Submitted, JobState::Running, JobState::Persisting, JobState::Succeeded];
    /// What a user may queue again.
    pub const RETRIABLE: [JobState; 2] = [JobState::Failed, JobState::Canceled];

    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

wire_enum! {
    /// A ticket's life: `issued → confirming → ready | rejected`; `issued → expired | canceled`;
    /// `ready → deleted`.
    UploadState {
        Issued = "issued",
        Confirming = "confirming",
        Ready = "ready",
        Rejected = "rejected",
        Expired = "expired",
        Canceled = "canceled",
        Deleted = "deleted",
    }
}

impl UploadState {
    /// Uploads whose bytes count against the owner's storage: kept, or on their way to it (an
    /// issued ticket counts its declared size at once).
    pub const HOLDING: [UploadState; 3] = [UploadState::Issued, UploadState::Confirming, UploadState::Ready];
}

wire_enum! {
    /// What a stored result is, decided from its bytes.
    AssetKind {
        Image = "image",
        Video = "video",
        Audio = "audio",
        File = "file",
    }
}

/// `'a', 'b'`: states for a SQL `IN (…)` list. The words come from the enums above, never
/// from input, so they may be written into the statement.
pub fn sql_list<T: Copy>(states: &[T], word: fn(T) -> &'static str) -> String {
    states.iter().map(|s| format!("'{}'", word(*s))).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_text_and_json() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.as_str().into()));
        }
        for s in UploadState::ALL {
            assert_eq!(UploadState::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::from_value::<UploadState>(s.as_str().into()).unwrap(), *s);
        }
        for k in AssetKind::ALL {
            assert_eq!(AssetKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(JobState::parse("Queued"), None);
        assert!(JobState::Failed.is_final() && !JobState::Persisting.is_final());
    }

    #[test]
    fn sql_lists_quote_each_word() {
        assert_eq!(sql_list(&JobState::AT_FAL, JobState::as_str), "'submitted', 'running'");
    }
}
