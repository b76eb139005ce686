//! Parsed credentials: an `Email` or `NewPassword` that exists is a valid one.

use std::fmt;

use super::AuthError;

/// A normalised email address: trimmed, lowercased, one `@`, a dotted domain.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let invalid = || AuthError::InvalidEmail;
        // Bounded before any work is done with it.
        if raw.len() > 320 {
            return Err(invalid());
        }
        if raw.chars().any(is_invisible) {
            return Err(AuthError::InvisibleCharacters);
        }
        let value = raw.trim().to_lowercase();
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(invalid());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(invalid());
        }
        if local.chars().any(|c| matches!(c, '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '\\' | '"')) {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that are not seen but change what is: format controls (zero-width marks, the
/// bidirectional embeddings, overrides and isolates, the byte-order mark, tag characters) and the
/// soft hyphen. Ordinary controls are refused separately.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

pub use crate::validate::MIN_PASSWORD_CHARS;
/// Long enough for any passphrase, short enough that hashing it is not a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password chosen at signup: long enough, confirmed, never printed.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(password: &str, confirmation: &str) -> Result<Self, AuthError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(AuthError::WeakPassword(format!("Use at least {MIN_PASSWORD_CHARS} characters.")));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::WeakPassword(format!("Use at most {MAX_PASSWORD_BYTES} bytes.")));
        }
        if password.trim().is_empty() {
            return Err(AuthError::WeakPassword("A password cannot be only spaces.".into()));
        }
        if password != confirmation {
            return Err(AuthError::PasswordMismatch);
        }
        Ok(Self(password.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(Email::parse("  Ada.Lovelace@Example.COM ").unwrap().as_str(), "ada.lovelace@example.com");
        assert_eq!(Email::parse("a+tag@sub.example.org").unwrap().as_str(), "a+tag@sub.example.org");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
            ".a@b.com",
            "a..b@c.com",
            "a@b\n.com",
            "<a>@b.com",
            "a@b_c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(Email::parse(&"a".repeat(3000)).is_err());
        assert!(Email::parse("ada@exa\0mple.com").is_err());
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for spoof in [
            "admin\u{202E}moc.elpmaxe@evil.com",
            "ad\u{200B}min@example.com",
            "ada@example.com\u{2066}",
            "\u{FEFF}ada@example.com",
        ] {
            assert!(matches!(Email::parse(spoof), Err(AuthError::InvisibleCharacters)), "{spoof:?}");
        }
        assert!(Email::parse("zoë@example.com").is_ok(), "accented letters are fine");
    }

    #[test]
    fn passwords_need_length_and_confirmation() {
        assert!(matches!(NewPassword::parse("short", "short"), Err(AuthError::WeakPassword(_))));
        assert!(matches!(NewPassword::parse("          ", "          "), Err(AuthError::WeakPassword(_))));
        assert!(matches!(NewPassword::parse("long enough pass", "long enough pasS"), Err(AuthError::PasswordMismatch)));
        assert!(NewPassword::parse("ünïcödé-pw", "ünïcödé-pw").is_ok(), "10 characters, more bytes");
        assert!(NewPassword::parse(&"x".repeat(2000), &"x".repeat(2000)).is_err());
        assert_eq!(
            format!("{:?}", NewPassword::parse("secret-password", "secret-password").unwrap()),
            "NewPassword(<redacted>)"
        );
    }

    proptest! {
        #[test]
        fn parsed_emails_are_stable_and_well_formed(raw in "\\PC{0,80}") {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), email.as_str());
                prop_assert_eq!(email.as_str().matches('@').count(), 1);
                prop_assert!(!email.as_str().chars().any(char::is_whitespace));
            }
        }
    }
}
