//! Prompt search behind one interface: the app folds text the same way for indexing and for
//! searching (lowercase, accents removed), splits a search into words, and writes them as an
//! FTS5 match on SQLite or a `tsquery` on PostgreSQL. The last word matches as a prefix while
//! it is being typed ("lightho" finds "lighthouse"); every word must match.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::server::db::Backend;

/// Words one search may have, and letters one word may have.
const MAX_WORDS: usize = 8;
const MAX_WORD: usize = 40;

/// `Café ÉCLAIR` → `cafe eclair`: what is stored beside a prompt and what a search is made of.
pub fn fold(text: &str) -> String {
    text.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// A search, checked: folded words of letters and digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    words: Vec<String>,
    /// Whether the last word is still being typed (no space after it yet).
    prefix: bool,
}

impl Terms {
    /// `None` when there is nothing to search for; `Err` when the search is too long to be one.
    pub fn parse(raw: &str) -> Result<Option<Self>, &'static str> {
        if raw.chars().count() > 200 {
            return Err("A search is at most 200 characters.");
        }
        let folded = fold(raw);
        let words: Vec<String> =
            folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect();
        if words.len() > MAX_WORDS {
            return Err("A search is at most 8 words.");
        }
        if words.iter().any(|w| w.chars().count() > MAX_WORD) {
            return Err("A word in a search is at most 40 letters.");
        }
        let prefix = folded.chars().last().is_some_and(char::is_alphanumeric);
        Ok((!words.is_empty()).then_some(Self { words, prefix }))
    }

    /// The engine's query text. Words hold only letters and digits, so nothing in them is
    /// syntax to either engine.
    pub fn query(&self, backend: Backend) -> String {
        self.words_of_weight(backend, "")
    }

    /// [`Terms::query`], each word on PostgreSQL limited to the `weight` given (prompt words
    /// have weight D, the owner's term A).
    fn words_of_weight(&self, backend: Backend, weight: &str) -> String {
        let last = self.words.len() - 1;
        let each = self.words.iter().enumerate().map(|(n, word)| {
            let prefix = self.prefix && n == last;
            match backend {
                Backend::Sqlite => format!("\"{word}\"{}", if prefix { "*" } else { "" }),
                Backend::Postgres if prefix => format!("{word}:*{weight}"),
                Backend::Postgres if weight.is_empty() => word.clone(),
                Backend::Postgres => format!("{word}:{weight}"),
            }
        });
        let joiner = match backend {
            Backend::Sqlite => " ",
            Backend::Postgres => " & ",
        };
        each.collect::<Vec<_>>().join(joiner)
    }

    /// The engine's query text for the jobs of `owner` alone. On PostgreSQL the owner is a term
    /// of the indexed document (see [`owner_document`]), so the index finds this account's
    /// matches without collecting every account's.
    pub fn owned_query(&self, backend: Backend, owner: &str) -> String {
        match backend {
            Backend::Sqlite => self.query(backend),
            Backend::Postgres => format!("{}:A & {}", owner_term(owner), self.words_of_weight(backend, "D")),
        }
    }

    /// The condition on asset `a` whose job's prompt matches, with `q` for
    /// [`Terms::owned_query`] and `user` for the owner.
    pub fn condition(backend: Backend, q: &str, user: &str) -> String {
        match backend {
            Backend::Sqlite => {
                format!("a.job_id IN (SELECT job_id FROM job_search WHERE job_search MATCH {q} AND user_id = {user})")
            }
            Backend::Postgres => format!(
                "a.job_id IN (SELECT s.id FROM jobs s WHERE s.user_id = {user} \
                 AND {} @@ to_tsquery('simple', {q}))",
                owner_document("s")
            ),
        }
    }

    /// PostgreSQL only: the condition that job `j`'s prompt matches `q` (a [`Terms::query`]),
    /// worked out row by row; for walking a few thousand of one account's newest results.
    pub fn job_matches(q: &str) -> String {
        format!("to_tsvector('simple', coalesce(j.prompt_search, '')) @@ to_tsquery('simple', {q})")
    }
}

/// The document PostgreSQL indexes for job `alias` (the expression of the `jobs_prompt_search`
/// index, which a query must repeat exactly to use it): the owner's term at weight A, which no
/// prompt word has, then the prompt's words.
fn owner_document(alias: &str) -> String {
    format!(
        "(setweight(to_tsvector('simple', 'owner' || translate({alias}.user_id, '-', '')), 'A') \
         || to_tsvector('simple', coalesce({alias}.prompt_search, '')))"
    )
}

/// `owner` + the account id without its dashes, as [`owner_document`] spells it (account ids
/// are UUIDs: letters, digits and dashes; anything else is dropped so it can never be syntax).
fn owner_term(user_id: &str) -> String {
    let id: String = user_id.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    format!("owner{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_and_accents_fold_away() {
        assert_eq!(fold("Café ÉCLAIR, Ångström"), "cafe eclair, angstrom");
        assert_eq!(fold("ﬁne"), "fine", "compatibility forms too");
    }

    #[test]
    fn a_search_becomes_words_with_the_last_one_a_prefix_while_typed() {
        let terms = Terms::parse("Crème  light").unwrap().unwrap();
        assert_eq!(terms.query(Backend::Sqlite), "\"creme\" \"light\"*");
        assert_eq!(terms.query(Backend::Postgres), "creme & light:*");
        assert_eq!(
            terms.owned_query(Backend::Postgres, "0190A0B0-0000-7000-8000-00000000000f"),
            "owner0190a0b000007000800000000000000f:A & creme:D & light:*D"
        );
        assert_eq!(terms.owned_query(Backend::Sqlite, "0190a0b0-0000"), terms.query(Backend::Sqlite));
        let done = Terms::parse("lighthouse ").unwrap().unwrap();
        assert_eq!(done.query(Backend::Sqlite), "\"lighthouse\"");
        let hostile = Terms::parse("a\" OR body:* NEAR(x) & !b:* | 'c'").unwrap().unwrap();
        assert_eq!(hostile.query(Backend::Sqlite), "\"a\" \"or\" \"body\" \"near\" \"x\" \"b\" \"c\"");
        assert_eq!(Terms::parse("  -- ''  ").unwrap(), None);
        assert!(Terms::parse("a b c d e f g h i").is_err());
        assert!(Terms::parse(&"x".repeat(41)).is_err());
        assert!(Terms::parse(&"x ".repeat(101)).is_err());
    }

    proptest! {
        #[test]
        fn any_search_text_yields_only_letters_digits_and_the_engines_own_syntax(raw in "\\PC{0,120}") {
            if let Ok(Some(terms)) = Terms::parse(&raw) {
                for backend in [Backend::Sqlite, Backend::Postgres] {
                    let query = terms.query(backend);
                    let syntax_free = query.replace("\" \"", "").replace(" & ", "").replace(":*", "");
                    let syntax_free = syntax_free.trim_matches(|c| c == '"' || c == '*');
                    prop_assert!(syntax_free.chars().all(char::is_alphanumeric), "{} from {:?}", query, raw);
                }
            }
        }
    }
}
