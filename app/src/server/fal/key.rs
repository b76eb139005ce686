//! A user's fal API key: parsed once, never printed.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FalKeyError {
    #[error("Paste the whole fal key; it looks like key_id:key_secret.")]
    Malformed,
}

#[derive(Clone, PartialEq, Eq)]
pub struct FalKey(String);

impl FalKey {
    /// Accepts `key_id:key_secret` (README, "fal's API": keys and errors): printable ASCII, no whitespace inside.
    pub fn parse(raw: &str) -> Result<Self, FalKeyError> {
        let value = raw.trim();
        let printable = value.bytes().all(|b| b.is_ascii_graphic());
        let well_formed = matches!(value.split_once(':'), Some((id, secret)) if !id.is_empty() && secret.len() >= 4);
        if !printable || !well_formed || value.len() > 512 {
            return Err(FalKeyError::Malformed);
        }
        Ok(Self(value.to_owned()))
    }

    /// The last four characters: all the browser is ever told about the key.
    pub fn last4(&self) -> String {
        let start = self.0.len().saturating_sub(4);
        self.0[start..].to_owned()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FalKey(…{})", self.last4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_and_secret_and_redacts() {
        let key = FalKey::parse("  abc-123:s3cr3tvalue9 \n").unwrap();
        assert_eq!(key.expose(), "abc-123:s3cr3tvalue9");
        assert_eq!(key.last4(), "lue9");
        assert_eq!(format!("{key:?}"), "FalKey(…lue9)");
    }

    #[test]
    fn refuses_what_cannot_be_a_key() {
        for bad in ["", "no-colon-here", ":secretonly", "id:", "id:abc", "id: spaced secret", "id:sécret1234"] {
            assert_eq!(FalKey::parse(bad), Err(FalKeyError::Malformed), "{bad:?}");
        }
        assert!(FalKey::parse(&format!("id:{}", "x".repeat(600))).is_err());
    }
}
