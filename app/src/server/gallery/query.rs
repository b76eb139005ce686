//! A gallery query turned into SQL: the filters checked, then one statement that enters the
//! user's index at the cursor and reads one page. The cursor carries the last item's
//! `(created_at, id)` itself, so a page after an item that has since been trashed or deleted
//! still starts in the right place.

use super::search::Terms;
use crate::gallery::GalleryQuery;
use crate::server::db::Backend;
use crate::server::jobs::AssetRow;
use crate::states::AssetKind;

/// Where a page starts: after the item with this creation time and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn of(row: &AssetRow) -> Self {
        Self { created_at: row.created_at, id: row.id.clone() }
    }

    /// `1767225600000_0190…`: opaque to the browser, checked strictly when it comes back.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at, self.id)
    }

    pub fn decode(raw: &str) -> Option<Self> {
        if raw.len() > 80 {
            return None;
        }
        let (at, id) = raw.split_once('_')?;
        if at.is_empty() || at.len() > 16 || !at.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self { created_at: at.parse().ok()?, id: crate::server::db::parse_id(id)? })
    }
}

/// A filter the server can run: dates as epoch milliseconds, the model checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub trash: bool,
    pub favorites: bool,
    pub kind: Option<AssetKind>,
    pub model: Option<String>,
    /// From the start of the `from` day (inclusive) to the end of the `to` day.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub search: Option<Terms>,
}

/// Which part of a query is wrong, and why, in words for the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: &'static str,
}

const DAY_MS: i64 = 86_400_000;

impl Filter {
    pub fn parse(query: &GalleryQuery) -> Result<Self, Invalid> {
        let model = match query.model.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => None,
            Some(m) if is_model_id(m) => Some(m.to_owned()),
            Some(_) => return Err(Invalid { field: "model", message: "That is not a model name." }),
        };
        let day = |raw: &Option<String>, field: &'static str| -> Result<Option<i64>, Invalid> {
            match raw.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                None => Ok(None),
                Some(d) => day_start(d).map(Some).ok_or(Invalid { field, message: "Dates are written as YYYY-MM-DD." }),
            }
        };
        let since = day(&query.from, "from")?;
        let until = day(&query.to, "to")?.map(|start| start + DAY_MS);
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(Invalid { field: "to", message: "The last day comes before the first." });
        }
        let search =
            Terms::parse(query.q.as_deref().unwrap_or_default()).map_err(|message| Invalid { field: "q", message })?;
        Ok(Self { trash: query.trash, favorites: query.favorites, kind: query.kind, model, since, until, search })
    }
}

/// Endpoint ids as fal writes them: `owner/name[/path]` in lowercase letters, digits, `-`,
/// `_` and `.`; anything else cannot name a model whose results we stored.
fn is_model_id(raw: &str) -> bool {
    raw.len() <= 120
        && raw.contains('/')
        && raw.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// Epoch milliseconds at the start of a `YYYY-MM-DD` day (UTC), for years 1970 to 9999.
pub(crate) fn day_start(raw: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw, &format).ok()?;
    let ms = date.midnight().assume_utc().unix_timestamp() * 1000;
    (ms >= 0).then_some(ms)
}

/// A value bound into a statement.
pub enum Bind {
    Text(String),
    Int(i64),
}

/// A statement under construction: text and the values its `$n` placeholders stand for.
#[derive(Default)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    /// Adds a value and returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(n) => query.bind(*n),
            };
        }
        query
    }
}

/// The page of `user_id`'s results matching `filter` after `after`, newest first, with the model
/// and inputs of the job that made each.
pub fn page(backend: Backend, user_id: &str, filter: &Filter, after: Option<&Cursor>, limit: i64) -> Sql {
    let mut sql = Sql::default();
    let (user, mut wheres) = asset_conditions(&mut sql, user_id, filter, after);
    if let Some(model) = &filter.model {
        wheres.push(format!("j.model = {}", sql.bind(Bind::Text(model.clone()))));
    }
    if let Some(terms) = &filter.search {
        let q = sql.bind(Bind::Text(terms.owned_query(backend, user_id)));
        wheres.push(Terms::condition(backend, &q, &user));
    }
    let limit = sql.bind(Bind::Int(limit));
    sql.text = format!(
        "SELECT {columns}, j.model AS job_model, j.params_json AS job_params, j.estimate_micros AS job_estimate FROM assets a \
         JOIN jobs j ON j.id = a.job_id WHERE {wheres} ORDER BY a.created_at DESC, a.id DESC LIMIT {limit}",
        columns = AssetRow::columns("a."),
        wheres = wheres.join(" AND "),
    );
    sql
}

/// PostgreSQL, for a search: the same page read by walking the account's newest `window`
/// results after the cursor and testing each one's prompt. It answers only when it fills the
/// page (`limit` rows), since the first matches in a run of the newest results are the newest
/// matches; a common word fills it within a few hundred rows, where [`page`] would gather and
/// sort every one of the account's matches. A rarer word leaves it short, and [`page`] finds it
/// through the index instead.
pub fn walk(user_id: &str, filter: &Filter, after: Option<&Cursor>, limit: i64, window: i64) -> Option<Sql> {
    let terms = filter.search.as_ref()?;
    let mut sql = Sql::default();
    let (_, newest) = asset_conditions(&mut sql, user_id, filter, after);
    let window = sql.bind(Bind::Int(window));
    let q = sql.bind(Bind::Text(terms.query(Backend::Postgres)));
    let mut wheres = vec![Terms::job_matches(&q)];
    if let Some(model) = &filter.model {
        wheres.push(format!("j.model = {}", sql.bind(Bind::Text(model.clone()))));
    }
    let limit = sql.bind(Bind::Int(limit));
    sql.text = format!(
        "SELECT {columns}, j.model AS job_model, j.params_json AS job_params, j.estimate_micros AS job_estimate FROM \
         (SELECT * FROM assets a WHERE {newest} ORDER BY a.created_at DESC, a.id DESC LIMIT {window}) a \
         JOIN jobs j ON j.id = a.job_id WHERE {wheres} ORDER BY a.created_at DESC, a.id DESC LIMIT {limit}",
        columns = AssetRow::columns("a."),
        newest = newest.join(" AND "),
        wheres = wheres.join(" AND "),
    );
    Some(sql)
}

/// What the page asks of the asset itself (its owner, view, flags, days and the cursor), with
/// the placeholder of the owner's id.
fn asset_conditions(sql: &mut Sql, user_id: &str, filter: &Filter, after: Option<&Cursor>) -> (String, Vec<String>) {
    let user = sql.bind(Bind::Text(user_id.to_owned()));
    let mut wheres = vec![format!("a.user_id = {user}")];
    // Written out, not bound, so each engine matches the partial index the page reads.
    wheres.push(if filter.trash { "a.trashed_at IS NOT NULL".into() } else { "a.trashed_at IS NULL".into() });
    if filter.favorites {
        wheres.push("a.favorite = 1".into());
    }
    if let Some(kind) = filter.kind {
        wheres.push(format!("a.kind = {}", sql.bind(Bind::Text(kind.as_str().to_owned()))));
    }
    if let Some(since) = filter.since {
        wheres.push(format!("a.created_at >= {}", sql.bind(Bind::Int(since))));
    }
    if let Some(until) = filter.until {
        wheres.push(format!("a.created_at < {}", sql.bind(Bind::Int(until))));
    }
    if let Some(cursor) = after {
        // A range the index can seek to, then the few items of the same millisecond.
        let at = sql.bind(Bind::Int(cursor.created_at));
        let id = sql.bind(Bind::Text(cursor.id.clone()));
        wheres.push(format!("a.created_at <= {at} AND (a.created_at < {at} OR a.id < {id})"));
    }
    (user, wheres)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_cursor_comes_back_as_it_went_out_and_nothing_else_passes() {
        let cursor = Cursor { created_at: 1_767_225_600_123, id: "0190a0b0-0000-7000-8000-000000000001".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "_",
            "12_",
            "_0190a0b0-0000-7000-8000-000000000001",
            "-5_0190a0b0-0000-7000-8000-000000000001",
            "1e3_0190a0b0-0000-7000-8000-000000000001",
            "12_../../etc",
            "99999999999999999_0190a0b0-0000-7000-8000-000000000001",
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_cursor_text_decodes_or_is_refused_without_panicking(raw in "\\PC{0,120}") {
            if let Some(cursor) = Cursor::decode(&raw) {
                prop_assert!(cursor.created_at >= 0);
                prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
            }
        }
    }

    #[test]
    fn filters_are_checked_before_any_query() {
        let query = |f: fn(&mut GalleryQuery)| {
            let mut q = GalleryQuery::default();
            f(&mut q);
            Filter::parse(&q)
        };
        let days = query(|q| {
            q.from = Some("2026-03-01".into());
            q.to = Some("2026-03-01".into());
        })
        .unwrap();
        assert_eq!(days.until.unwrap() - days.since.unwrap(), DAY_MS, "one whole day, both ends included");
        assert_eq!(days.since, Some(1_772_323_200_000));
        assert_eq!(
            query(|q| q.model = Some("fal-ai/nano-banana/edit".into())).unwrap().model.as_deref(),
            Some("fal-ai/nano-banana/edit")
        );
        for (field, bad) in [
            ("model", query(|q| q.model = Some("x' OR 1=1 --".into()))),
            ("model", query(|q| q.model = Some("fal-ai/../x".into()))),
            ("from", query(|q| q.from = Some("2026-13-01".into()))),
            ("from", query(|q| q.from = Some("01/02/2026".into()))),
            ("from", query(|q| q.from = Some("1969-12-31".into()))),
            (
                "to",
                query(|q| {
                    q.from = Some("2026-03-02".into());
                    q.to = Some("2026-03-01".into());
                }),
            ),
        ] {
            assert_eq!(bad.unwrap_err().field, field);
        }
    }

    #[test]
    fn a_page_reads_the_index_of_what_it_shows() {
        let plain = page(Backend::Sqlite, "u", &Filter::default(), None, 60);
        assert!(plain.text.contains("a.trashed_at IS NULL") && !plain.text.contains("a.favorite = 1"));
        let trash = page(Backend::Sqlite, "u", &Filter { trash: true, ..Filter::default() }, None, 60);
        assert!(trash.text.contains("a.trashed_at IS NOT NULL"));
        let cursor = Cursor { created_at: 5, id: "i".into() };
        let deep = page(Backend::Sqlite, "u", &Filter { favorites: true, ..Filter::default() }, Some(&cursor), 60);
        assert!(deep.text.contains("a.favorite = 1") && deep.text.contains("a.created_at <= $2"));
        assert_eq!(deep.binds.len(), 4);
    }
}
