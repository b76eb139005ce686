//! What the Gallery tab and the server say to each other: which results to show (a filter that
//! also lives in the page's URL, so a search can be bookmarked), the results themselves, the
//! facts behind one, and what a bulk action did to each item it was given.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::states::AssetKind;

/// Which results a gallery page shows. Every field is optional; the default is everything not
/// in the trash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GalleryQuery {
    /// The trash instead of the gallery.
    #[serde(default)]
    pub trash: bool,
    #[serde(default)]
    pub favorites: bool,
    #[serde(default)]
    pub kind: Option<AssetKind>,
    /// A model's endpoint id (`fal-ai/flux/schnell`).
    #[serde(default)]
    pub model: Option<String>,
    /// First and last day shown, `YYYY-MM-DD` in UTC, both included.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Words of the prompt (any case, accents or not); the last may be a word's beginning.
    #[serde(default)]
    pub q: Option<String>,
}

impl GalleryQuery {
    /// The query as URL parameters (only those set), in a fixed order.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if self.trash {
            params.push(("view", "trash".to_owned()));
        }
        if self.favorites {
            params.push(("favorites", "1".to_owned()));
        }
        if let Some(kind) = self.kind {
            params.push(("kind", kind.as_str().to_owned()));
        }
        for (name, value) in [("q", &self.q), ("model", &self.model), ("from", &self.from), ("to", &self.to)] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                params.push((name, value.to_owned()));
            }
        }
        params
    }

    /// The query from URL parameters: `get` reads one by name. Unknown or empty values are
    /// ignored (a stale bookmark still opens the gallery); the server validates what is left.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self {
            trash: get("view").as_deref() == Some("trash"),
            favorites: matches!(get("favorites").as_deref(), Some("1" | "true")),
            kind: get("kind").as_deref().and_then(AssetKind::parse),
            model: text("model"),
            from: text("from"),
            to: text("to"),
            // A search keeps its spaces: a trailing one says the last word is complete.
            q: get("q").filter(|q| !q.trim().is_empty()),
        }
    }

    /// `?view=trash&kind=image`, or an empty string.
    pub fn to_search(&self) -> String {
        let params = self.to_params();
        if params.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> =
            params.iter().map(|(name, value)| format!("{name}={}", encode_component(value))).collect();
        format!("?{}", pairs.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One stored result as its owner sees it in the grid and the viewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalleryItem {
    pub id: String,
    pub job_id: String,
    pub kind: AssetKind,
    pub model: String,
    pub model_name: String,
    pub prompt: Option<String>,
    pub content_type: String,
    pub byte_size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    /// The file itself, for viewing.
    pub url: String,
    /// The same file, downloaded under its gallery name.
    pub download_url: String,
    pub file_name: String,
    pub thumb_url: Option<String>,
    pub favorite: bool,
    pub nsfw: Option<bool>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When it will be deleted: a result that is not a favorite expires; one in the trash goes
    /// when the trash is emptied.
    pub expires_at: Option<String>,
    pub trashed_at: Option<String>,
    /// Its share of the estimated cost of the job that made it, in millionths of a dollar.
    #[serde(default)]
    pub estimate_micros: Option<i64>,
}

/// A page of results and the cursor of the next one (`None`: this was the last).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GalleryPage {
    pub items: Vec<GalleryItem>,
    pub next: Option<String>,
}

/// Everything known about one result, for the viewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetDetail {
    pub item: GalleryItem,
    /// Every input the model was given, by name, as sent (text as it was, other values as JSON).
    pub params: Vec<(String, String)>,
    /// The images the job started from, while they are still kept.
    pub inputs: Vec<InputImage>,
    /// How many input images the job had (some may no longer be kept).
    pub input_count: usize,
    /// What the provider said about the result, when it said anything.
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputImage {
    pub upload_id: String,
    pub url: String,
}

/// What a bulk action did to one item it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changed as asked.
    Changed,
    /// Already as asked (or, for deleting forever, not in the trash): nothing changed.
    Unchanged,
    /// No such result of yours.
    NotFound,
}

/// Per item, in the order given (repeats removed), what happened.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkReport {
    pub items: Vec<(String, Outcome)>,
}

impl BulkReport {
    pub fn count(&self, outcome: Outcome) -> usize {
        self.items.iter().filter(|(_, o)| *o == outcome).count()
    }

    /// "3 moved to the trash, 1 already there, 1 not found", from the words for each outcome.
    pub fn summary(&self, l: crate::messages::Locale, changed: &str, unchanged: &str) -> String {
        let mut parts = Vec::new();
        let not_found = crate::messages::t(l, "curate.not_found");
        for (outcome, words) in
            [(Outcome::Changed, changed), (Outcome::Unchanged, unchanged), (Outcome::NotFound, not_found)]
        {
            let n = self.count(outcome);
            if n > 0 {
                parts.push(format!("{n} {words}"));
            }
        }
        if parts.is_empty() { crate::messages::t(l, "curate.nothing").to_owned() } else { parts.join(", ") }
    }
}

/// Ids one bulk call may name; the page sends larger selections in several calls.
pub const MAX_BULK_IDS: usize = 1000;

/// The grid's multi-select: a click toggles one item and becomes the anchor; a shift-click
/// selects everything from the anchor to the clicked item, as file managers do. Membership is
/// a set lookup, so selecting every one of 100,000 loaded results stays linear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// In the order chosen (downloads list them so).
    pub ids: Vec<String>,
    chosen: HashSet<String>,
    anchor: Option<String>,
}

impl Selection {
    pub fn contains(&self, id: &str) -> bool {
        self.chosen.contains(id)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn add(&mut self, id: &str) {
        if self.chosen.insert(id.to_owned()) {
            self.ids.push(id.to_owned());
        }
    }

    /// A click on `id` among `shown` (the grid's order), with or without shift held.
    pub fn click(&mut self, shown: &[String], id: &str, shift: bool) {
        let anchor = self.anchor.as_deref().and_then(|a| shown.iter().position(|s| s == a));
        match (shift, anchor, shown.iter().position(|s| s == id)) {
            (true, Some(from), Some(to)) => {
                let (low, high) = if from <= to { (from, to) } else { (to, from) };
                for id in &shown[low..=high] {
                    self.add(id);
                }
            }
            _ => {
                if self.chosen.remove(id) {
                    self.ids.retain(|s| s != id);
                } else {
                    self.add(id);
                }
            }
        }
        self.anchor = Some(id.to_owned());
    }

    /// Selects everything shown (keeping what was selected before).
    pub fn add_all(&mut self, shown: &[String]) {
        for id in shown {
            self.add(id);
        }
    }

    /// Forgets ids no longer shown (trashed, restored, deleted).
    pub fn keep_only(&mut self, shown: &[String]) {
        let shown: HashSet<&str> = shown.iter().map(String::as_str).collect();
        self.ids.retain(|id| shown.contains(id.as_str()));
        self.chosen.retain(|id| shown.contains(id.as_str()));
        if self.anchor.as_deref().is_some_and(|a| !shown.contains(a)) {
            self.anchor = None;
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Grids with more results than this draw only the rows near the screen, with spacers standing
/// in for the rest: 100,000 loaded results cost the page what a few hundred do. Shorter ones
/// draw everything (and the server's first page is always drawn whole).
pub const WINDOW_AFTER: usize = 240;

/// Where the grid is, as the browser measured it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridGeometry {
    pub columns: usize,
    /// A tile's height.
    pub tile: f64,
    /// The space between rows.
    pub gap: f64,
    /// The grid's top edge relative to the top of the viewport (negative once scrolled past).
    pub top: f64,
    /// The viewport's height.
    pub viewport: f64,
}

impl GridGeometry {
    fn pitch(&self) -> f64 {
        self.tile + self.gap
    }

    fn usable(&self) -> bool {
        self.columns > 0 && self.pitch().is_finite() && self.pitch() > 0.0 && self.viewport.is_finite()
    }

    /// The rows on screen now, `first..last`.
    fn visible_rows(&self, rows: usize) -> (usize, usize) {
        let first = ((-self.top).max(0.0) / self.pitch()).floor() as usize;
        let last = ((self.viewport - self.top).max(0.0) / self.pitch()).ceil() as usize;
        (first.min(rows), last.min(rows))
    }
}

/// The tiles a grid draws: `start..end` of its results, after a spacer as tall as the rows
/// above and before one as tall as the rows below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub above_px: f64,
    pub below_px: f64,
    first_row: usize,
    last_row: usize,
    columns: usize,
    count: usize,
}

impl Span {
    /// Every tile of `count`, no spacers.
    pub fn all(count: usize) -> Self {
        Self { start: 0, end: count, above_px: 0.0, below_px: 0.0, first_row: 0, last_row: 0, columns: 0, count }
    }

    /// The rows on screen and one screen's worth above and below them.
    pub fn around(count: usize, at: &GridGeometry) -> Self {
        if count <= WINDOW_AFTER || !at.usable() {
            return Self::all(count);
        }
        let rows = count.div_ceil(at.columns);
        let (first, last) = at.visible_rows(rows);
        let spare = (at.viewport / at.pitch()).ceil() as usize;
        let (first_row, last_row) = (first.saturating_sub(spare), (last + spare).min(rows));
        // A spacer is one grid row of its own: its height plus one gap stand for its rows.
        let spacer = |rows: usize| if rows == 0 { 0.0 } else { rows as f64 * at.pitch() - at.gap };
        Self {
            start: first_row * at.columns,
            end: (last_row * at.columns).min(count),
            above_px: spacer(first_row),
            below_px: spacer(rows - last_row),
            first_row,
            last_row,
            columns: at.columns,
            count,
        }
    }

    /// Whether this span still draws everything on screen for `count` results laid out `at`,
    /// so the grid need not change while the user scrolls within it.
    pub fn covers(&self, count: usize, at: &GridGeometry) -> bool {
        if count <= WINDOW_AFTER || !at.usable() {
            return *self == Self::all(count);
        }
        if self.columns != at.columns || self.count != count {
            return false;
        }
        let (first, last) = at.visible_rows(count.div_ceil(at.columns));
        self.first_row <= first && last <= self.last_row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_survives_the_url_and_ignores_what_it_does_not_know() {
        let query = GalleryQuery {
            trash: true,
            favorites: true,
            kind: Some(AssetKind::Video),
            model: Some("fal-ai/flux/schnell".into()),
            from: Some("2026-01-02".into()),
            to: None,
            q: Some("café au".into()),
        };
        let search = query.to_search();
        assert_eq!(
            search,
            "?view=trash&favorites=1&kind=video&q=caf%C3%A9%20au&model=fal-ai%2Fflux%2Fschnell&from=2026-01-02"
        );
        let params: Vec<(String, String)> = query.to_params().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(GalleryQuery::from_params(get), query);
        let odd = |name: &str| match name {
            "kind" => Some("spreadsheet".to_owned()),
            "view" => Some("everything".to_owned()),
            "model" => Some("  ".to_owned()),
            _ => None,
        };
        assert_eq!(GalleryQuery::from_params(odd), GalleryQuery::default());
        assert_eq!(GalleryQuery::default().to_search(), "");
    }

    #[test]
    fn shift_click_selects_the_range_from_the_last_click() {
        let shown: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let mut selection = Selection::default();
        selection.click(&shown, "b", false);
        selection.click(&shown, "d", true);
        assert_eq!(selection.ids, ["b", "c", "d"]);
        // Backwards from the new anchor, keeping what is selected.
        selection.click(&shown, "a", true);
        assert_eq!(selection.ids, ["b", "c", "d", "a"]);
        // A plain click toggles one.
        selection.click(&shown, "c", false);
        assert_eq!(selection.ids, ["b", "d", "a"]);
        // Shift without an anchor that is still shown is a plain click.
        selection.keep_only(&["a".to_string(), "e".to_string()]);
        assert_eq!(selection.ids, ["a"]);
        selection.click(&shown, "e", true);
        assert_eq!(selection.ids, ["a", "e"]);
        selection.add_all(&shown);
        assert_eq!(selection.ids.len(), 5);
        selection.clear();
        assert!(selection.is_empty());
    }

    fn geometry(top: f64) -> GridGeometry {
        // Five columns of 100 px tiles 10 px apart, on an 800 px screen.
        GridGeometry { columns: 5, tile: 100.0, gap: 10.0, top, viewport: 800.0 }
    }

    #[test]
    fn a_long_grid_draws_the_rows_near_the_screen_and_spacers_of_the_exact_height() {
        let count = 100_000;
        let rows = count / 5;
        // At the top: 8 rows on screen (800 / 110 rounded up) and 8 more below.
        let top = Span::around(count, &geometry(0.0));
        assert_eq!((top.start, top.end), (0, 16 * 5));
        assert_eq!(top.above_px, 0.0);
        assert_eq!(top.below_px, (rows - 16) as f64 * 110.0 - 10.0);
        // 2,000 rows down: rows 2000..2008 on screen, a screen's worth on each side.
        let deep = Span::around(count, &geometry(-2000.0 * 110.0));
        assert_eq!((deep.start, deep.end), (1992 * 5, 2016 * 5));
        assert_eq!(deep.above_px, 1992.0 * 110.0 - 10.0);
        // What is drawn plus the spacers is as tall as the whole grid would be.
        let drawn_rows = (deep.end - deep.start) / 5;
        let whole = rows as f64 * 110.0 - 10.0;
        assert_eq!(deep.above_px + 10.0 + drawn_rows as f64 * 110.0 + deep.below_px, whole);
        // At the very end the last row may be short; nothing is drawn past the results.
        let end = Span::around(count + 3, &geometry(-(rows as f64) * 110.0 + 400.0));
        assert_eq!(end.end, count + 3);
        assert_eq!(end.below_px, 0.0);
        // Scrolling within the drawn rows keeps the span; leaving them does not.
        assert!(deep.covers(count, &geometry(-1995.0 * 110.0)));
        assert!(!deep.covers(count, &geometry(-2010.0 * 110.0)));
        assert!(!deep.covers(count, &GridGeometry { columns: 4, ..geometry(-1995.0 * 110.0) }));
        assert!(!deep.covers(count + 60, &geometry(-1995.0 * 110.0)));
    }

    #[test]
    fn a_short_grid_or_one_not_yet_measured_draws_everything() {
        assert_eq!(Span::around(WINDOW_AFTER, &geometry(-5000.0)), Span::all(WINDOW_AFTER));
        let unmeasured = GridGeometry { tile: 0.0, gap: 0.0, ..geometry(0.0) };
        assert_eq!(Span::around(5000, &unmeasured), Span::all(5000));
        assert!(Span::all(100).covers(100, &geometry(-3000.0)));
        assert!(!Span::all(100).covers(101, &geometry(0.0)));
    }

    #[test]
    fn selecting_a_hundred_thousand_keeps_order_and_each_once() {
        let shown: Vec<String> = (0..100_000).map(|i| format!("id-{i}")).collect();
        let mut selection = Selection::default();
        selection.click(&shown, "id-5", false);
        selection.add_all(&shown);
        assert_eq!(selection.ids.len(), 100_000);
        assert_eq!(selection.ids[0], "id-5");
        selection.keep_only(&shown[50_000..]);
        assert_eq!(selection.ids.len(), 50_000);
        assert!(!selection.contains("id-5") && selection.contains("id-99999"));
    }

    #[test]
    fn a_report_counts_each_outcome_in_words() {
        let report = BulkReport {
            items: vec![
                ("a".into(), Outcome::Changed),
                ("b".into(), Outcome::Changed),
                ("c".into(), Outcome::Unchanged),
                ("d".into(), Outcome::NotFound),
            ],
        };
        assert_eq!(
            report.summary(crate::messages::Locale::En, "moved to the trash", "already there"),
            "2 moved to the trash, 1 already there, 1 not found"
        );
        assert_eq!(BulkReport::default().summary(crate::messages::Locale::En, "x", "y"), "Nothing was selected.");
        assert_eq!(BulkReport::default().summary(crate::messages::Locale::Es, "x", "y"), "No había nada seleccionado.");
    }
}
