//! Rules shared by the browser's inline hints and the server's parsers. The server stays the
//! authority (`server::auth::credentials`); these only let the form speak up before submitting.

pub const MIN_PASSWORD_CHARS: usize = 10;

/// A hint for an email field, or `None` when it looks plausible.
pub fn email_hint(value: &str) -> Option<&'static str> {
    let value = value.trim();
    if value.is_empty() {
        return Some("Enter your email address.");
    }
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.ends_with('.') => None,
        _ => Some("That does not look like an email address (name@example.com)."),
    }
}

/// A hint for a new password, or `None` when it is long enough.
pub fn password_hint(value: &str) -> Option<String> {
    let count = value.chars().count();
    (count < MIN_PASSWORD_CHARS).then(|| {
        let missing = MIN_PASSWORD_CHARS - count;
        format!(
            "{missing} more character{} needed (at least {MIN_PASSWORD_CHARS}).",
            if missing == 1 { "" } else { "s" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        assert!(email_hint("").is_some());
        assert!(email_hint("ada@example").is_some());
        assert!(email_hint("ada@example.com").is_none());
        assert_eq!(password_hint("123456789").unwrap(), "1 more character needed (at least 10).");
        assert!(password_hint("1234567890").is_none());
    }
}
