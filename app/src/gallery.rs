//! What the Gallery tab and the server say to each other: which results to show (a filter that
//! also lives in the page's URL, so a search can be bookmarked), the results themselves, the
//! facts behind one, and what a bulk action did to each item it was given.

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
    pub fn summary(&self, changed: &str, unchanged: &str) -> String {
        let mut parts = Vec::new();
        for (outcome, words) in
            [(Outcome::Changed, changed), (Outcome::Unchanged, unchanged), (Outcome::NotFound, "not found")]
        {
            let n = self.count(outcome);
            if n > 0 {
                parts.push(format!("{n} {words}"));
            }
        }
        if parts.is_empty() { "Nothing was selected.".to_owned() } else { parts.join(", ") }
    }
}

/// Ids one bulk call may name; the page sends larger selections in several calls.
pub const MAX_BULK_IDS: usize = 1000;

/// The grid's multi-select: a click toggles one item and becomes the anchor; a shift-click
/// selects everything from the anchor to the clicked item, as file managers do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub ids: Vec<String>,
    anchor: Option<String>,
}

impl Selection {
    pub fn contains(&self, id: &str) -> bool {
        self.ids.iter().any(|s| s == id)
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A click on `id` among `shown` (the grid's order), with or without shift held.
    pub fn click(&mut self, shown: &[String], id: &str, shift: bool) {
        let anchor = self.anchor.as_deref().and_then(|a| shown.iter().position(|s| s == a));
        match (shift, anchor, shown.iter().position(|s| s == id)) {
            (true, Some(from), Some(to)) => {
                let (low, high) = if from <= to { (from, to) } else { (to, from) };
                for id in &shown[low..=high] {
                    if !self.contains(id) {
                        self.ids.push(id.clone());
                    }
                }
            }
            _ => {
                if self.contains(id) {
                    self.ids.retain(|s| s != id);
                } else {
                    self.ids.push(id.to_owned());
                }
            }
        }
        self.anchor = Some(id.to_owned());
    }

    /// Selects everything shown (keeping what was selected before).
    pub fn add_all(&mut self, shown: &[String]) {
        for id in shown {
            if !self.contains(id) {
                self.ids.push(id.clone());
            }
        }
    }

    /// Forgets ids no longer shown (trashed, restored, deleted).
    pub fn keep_only(&mut self, shown: &[String]) {
        self.ids.retain(|id| shown.contains(id));
        if self.anchor.as_ref().is_some_and(|a| !shown.contains(a)) {
            self.anchor = None;
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
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
            report.summary("moved to the trash", "already there"),
            "2 moved to the trash, 1 already there, 1 not found"
        );
        assert_eq!(BulkReport::default().summary("x", "y"), "Nothing was selected.");
    }
}
