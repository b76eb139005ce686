//! Personal access tokens as the Account tab and the JSON API describe them: the scopes a token
//! can hold and what the list shows. The secret itself is shown once, when it is made.

use serde::{Deserialize, Serialize};

/// What a token may do. Each API route names the one it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "uploads:write")]
    UploadsWrite,
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "assets:read")]
    AssetsRead,
    #[serde(rename = "assets:write")]
    AssetsWrite,
    #[serde(rename = "account:read")]
    AccountRead,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::UploadsWrite,
        Scope::JobsWrite,
        Scope::JobsRead,
        Scope::AssetsRead,
        Scope::AssetsWrite,
        Scope::AccountRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadsWrite => "uploads:write",
            Self::JobsWrite => "jobs:write",
            Self::JobsRead => "jobs:read",
            Self::AssetsRead => "assets:read",
            Self::AssetsWrite => "assets:write",
            Self::AccountRead => "account:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// What holding it allows, in the words of the Account tab.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UploadsWrite => "upload images",
            Self::JobsWrite => "start jobs (spends your fal credit)",
            Self::JobsRead => "see your jobs",
            Self::AssetsRead => "see and download your results",
            Self::AssetsWrite => "favorite and delete your results",
            Self::AccountRead => "see your address and fal credit",
        }
    }
}

/// How long a new token lasts unless its owner says otherwise, and at most.
pub const DEFAULT_DAYS: u32 = 90;
pub const MAX_DAYS: u32 = 365;
/// Tokens an account may hold at once (revoked and expired ones do not count).
pub const MAX_PER_ACCOUNT: usize = 50;
pub const NAME_MAX_CHARS: usize = 100;

/// A token as its owner's list shows it. Times are RFC 3339, UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The token's first characters (`drk_pat_AbCd`), to recognise it by.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub expires_at: String,
    /// Updated at most every few minutes.
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

/// A token just made: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub view: TokenView,
}
