//! The message catalogs, in English and in Spanish.
//!
//! Errors: one message per error code, read from `app/locales/{en,es}.txt` (`code = message`
//! lines). Errors are answered in the language the request asks for (decided per request, from
//! its `locale`, the language cookie or `Accept-Language`, never from global state): the server's
//! own English message, which says more (sizes, limits, times), or the catalog's message in the
//! other language. The API and the web app's server functions use the same catalog.
//!
//! The web app's own words: `app/locales/ui.{en,es}.txt` (`key = text`), looked up with [`t`]
//! in the page's language, which the server decides once per page (the `darkroom_lang` cookie the
//! language switch sets, else `Accept-Language`) and writes into `<html lang>` for the browser
//! to read back when it hydrates.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Es,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Es];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    /// A language tag (`es`, `es-MX`, `EN_us`) to the locale it names, when it is one we speak.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Self::En),
            "es" => Some(Self::Es),
            _ => None,
        }
    }

    /// The best locale an `Accept-Language` header allows (by its q-values, the first of equals
    /// winning); English when it names none of ours. Only the first 20 entries are read.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(Self, u16)> = None;
        for entry in header.split(',').take(20) {
            let mut parts = entry.split(';');
            let Some(locale) = parts.next().and_then(Self::parse) else { continue };
            let weight = parts.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1000), |q| {
                q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).map(|q| (q * 1000.0) as u16)
            });
            let Some(weight) = weight.filter(|w| *w > 0) else { continue };
            if best.is_none_or(|(_, w)| weight > w) {
                best = Some((locale, weight));
            }
        }
        best.map_or(Self::En, |(locale, _)| locale)
    }
}

static EN: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| catalog(include_str!("../locales/en.txt")));
static ES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| catalog(include_str!("../locales/es.txt")));

fn catalog(text: &'static str) -> HashMap<&'static str, &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(" = "))
        .map(|(code, message)| (code.trim(), message.trim()))
        .collect()
}

static UI_EN: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| catalog(include_str!("../locales/ui.en.txt")));
static UI_ES: LazyLock<HashMap<&'static str, &'static str>> =
    LazyLock::new(|| catalog(include_str!("../locales/ui.es.txt")));

/// The cookie holding the language a person chose with the switch.
pub const LANGUAGE_COOKIE: &str = "darkroom_lang";

/// The web app's text `key` in `locale` (English when the key has no translation; the key
/// itself, which a test rules out, when it has no text at all).
pub fn t(locale: Locale, key: &'static str) -> &'static str {
    let table = match locale {
        Locale::En => &*UI_EN,
        Locale::Es => &*UI_ES,
    };
    table.get(key).or_else(|| UI_EN.get(key)).copied().unwrap_or(key)
}

/// [`t`] with `{name}` placeholders filled in.
pub fn tf(locale: Locale, key: &'static str, values: &[(&str, &str)]) -> String {
    values.iter().fold(t(locale, key).to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
}

/// The page's language, as the app root provided it.
pub fn use_locale() -> Locale {
    leptos::prelude::use_context::<Locale>().unwrap_or_default()
}

/// The catalog's message for `code` in `locale`.
pub fn message(code: &str, locale: Locale) -> Option<&'static str> {
    match locale {
        Locale::En => EN.get(code).copied(),
        Locale::Es => ES.get(code).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn every_error_code_has_a_message_in_every_language_and_nothing_else_does() {
        for locale in Locale::ALL {
            for c in code::ALL {
                let text = message(c.name, locale);
                assert!(text.is_some_and(|t| !t.is_empty()), "{} has no {} message", c.name, locale.as_str());
            }
            let table = if locale == Locale::En { &*EN } else { &*ES };
            let known: Vec<&str> = code::ALL.iter().map(|c| c.name).collect();
            let stray: Vec<&&str> = table.keys().filter(|k| !known.contains(k)).collect();
            assert!(stray.is_empty(), "{} messages for no code: {stray:?}", locale.as_str());
        }
        assert_ne!(message("upload.too_large", Locale::Es), message("upload.too_large", Locale::En));
    }

    #[test]
    fn the_web_app_has_every_text_in_both_languages_and_uses_only_texts_it_has() {
        let (en, es): (Vec<_>, Vec<_>) = (UI_EN.keys().copied().collect(), UI_ES.keys().copied().collect());
        let missing_es: Vec<_> = en.iter().filter(|k| !UI_ES.contains_key(*k)).collect();
        let missing_en: Vec<_> = es.iter().filter(|k| !UI_EN.contains_key(*k)).collect();
        assert!(missing_es.is_empty(), "no Spanish for {missing_es:?}");
        assert!(missing_en.is_empty(), "no English for {missing_en:?}");
        for (key, text) in UI_EN.iter() {
            let placeholders = |s: &str| {
                s.match_indices('{').map(|(i, _)| s[i..].split('}').next().unwrap_or("").to_owned()).collect::<Vec<_>>()
            };
            let (mut a, mut b) = (placeholders(text), placeholders(UI_ES[key]));
            a.sort();
            b.sort();
            assert_eq!(a, b, "{key}: the two languages fill in different values");
        }
        // Every key the code looks up exists.
        let mut used = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let source = std::fs::read_to_string(&path).unwrap();
                    used.extend(lookups(&source).into_iter().map(|key| (path.display().to_string(), key)));
                }
            }
        }
        assert!(used.len() > 20, "the scan found the lookups");
        let unknown: Vec<_> = used.iter().filter(|(_, k)| !UI_EN.contains_key(k.as_str())).collect();
        assert!(unknown.is_empty(), "texts the catalogs lack: {unknown:?}");
    }

    /// The literal keys that `t` and `tf` calls name (their second argument), over line breaks.
    fn lookups(source: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for call in ["t(", "tf("] {
            for (at, _) in source.match_indices(call) {
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '.') {
                    continue;
                }
                let rest = &source[at + call.len()..];
                let Some((locale, rest)) = rest.split_once(',') else { continue };
                if locale.trim().is_empty() || !locale.trim().chars().all(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                if let Some(rest) = rest.trim_start().strip_prefix('"') {
                    keys.push(rest.split('"').next().unwrap_or_default().to_owned());
                }
            }
        }
        keys
    }

    #[test]
    fn lookups_are_found_however_they_are_written() {
        let source = "t(l, \"a.b\") tf(\n  other,\n  \"c.d\", &[]) fmt(l, \"x\") at(l, \"y\")";
        assert_eq!(lookups(source), ["a.b", "c.d"]);
    }

    #[test]
    fn the_header_picks_the_best_language_we_speak() {
        for (header, expected) in [
            ("", Locale::En),
            ("es", Locale::Es),
            ("es-MX,es;q=0.9,en;q=0.8", Locale::Es),
            ("en-US,en;q=0.9,es;q=0.8", Locale::En),
            ("fr-FR,fr;q=0.9,es;q=0.5", Locale::Es),
            ("de, fr", Locale::En),
            ("en;q=0.2, es;q=0.7", Locale::Es),
            ("es;q=0, en;q=0.1", Locale::En),
            ("es;q=abc", Locale::En),
            ("*", Locale::En),
        ] {
            assert_eq!(Locale::from_accept_language(header), expected, "{header:?}");
        }
    }

    proptest::proptest! {
        /// Any header is read without a panic, to one of our locales.
        #[test]
        fn any_header_is_read_safely(header in "\\PC{0,200}") {
            let locale = Locale::from_accept_language(&header);
            proptest::prop_assert!(Locale::ALL.contains(&locale));
        }
    }
}
