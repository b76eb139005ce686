//! The gallery: keyset pages that neither skip nor repeat while results arrive, filters,
//! links the browser can cache, bulk curation that reports per item and is safe to retry,
//! deleting for good (storage first, nothing left behind), and someone else's results answering
//! exactly like missing ones.

use std::collections::HashSet;

use app::gallery::{AssetDetail, BulkReport, GalleryItem, GalleryPage, GalleryQuery, Outcome};
use app::states::{AssetKind, JobState};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

use crate::helpers::{Backend, Client, Reply, TestApp, backend, eventually};
use crate::jobs::{EDIT, TEXT, selfie, start, user_with_key, wait_for};

const DAY: i64 = 86_400_000;
/// 2026-03-01T00:00:00Z.
const MARCH_1: i64 = 1_772_323_200_000;

async fn page(client: &Client, query: &GalleryQuery, after: Option<&str>) -> Result<GalleryPage, Reply> {
    let body = json!({ "query": query, "after": after });
    let request =
        client.http.post(format!("{}/api/gallery/list", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    if reply.status == StatusCode::OK { Ok(reply.json()) } else { Err(reply) }
}

/// Every item of `query`, page by page.
async fn all(client: &Client, query: &GalleryQuery) -> Vec<GalleryItem> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let got = page(client, query, after.as_deref()).await.unwrap_or_else(|r| panic!("{}", r.body));
        items.extend(got.items);
        match got.next {
            Some(next) => after = Some(next),
            None => return items,
        }
    }
}

async fn curate(client: &Client, action: &str, ids: &[String]) -> Result<BulkReport, Reply> {
    let body = json!({ "action": action, "ids": ids });
    let request = client
        .http
        .post(format!("{}/api/gallery/curate", client.base))
        .header("accept", "application/json")
        .json(&body);
    let reply = client.send(request).await;
    if reply.status == StatusCode::OK { Ok(reply.json()) } else { Err(reply) }
}

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&app.db().pool).await.unwrap().get("id")
}

/// A result as the seeding below stores it.
#[derive(Clone)]
struct Seed {
    model: &'static str,
    prompt: String,
    kind: AssetKind,
    created_at: i64,
}

impl Seed {
    fn image(prompt: &str, created_at: i64) -> Self {
        Self { model: TEXT, prompt: prompt.to_owned(), kind: AssetKind::Image, created_at }
    }
}

/// Stores finished jobs with one result each straight into the database (thousands in a
/// second, where generating them would take minutes); returns the result ids in the order given.
/// With `objects`, each result's file is stored too.
async fn seed(app: &TestApp, user_id: &str, seeds: &[Seed], objects: bool) -> Vec<String> {
    let mut ids = Vec::with_capacity(seeds.len());
    let mut files = Vec::new();
    let mut tx = app.db().begin_write().await.unwrap();
    for seed in seeds {
        let job_id = uuid::Uuid::now_v7().to_string();
        let asset_id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, next_attempt_at, \
             queued_at, created_at, updated_at, prompt_search) VALUES ($1, $2, $3, $4, '[]', $5, 5, $6, $6, $6, $6, $7)",
        )
        .bind(&job_id)
        .bind(user_id)
        .bind(seed.model)
        .bind(json!({ "prompt": seed.prompt }).to_string())
        .bind(JobState::Succeeded.as_str())
        .bind(seed.created_at)
        .bind(app::server::gallery::search::fold(&seed.prompt))
        .execute(&mut *tx)
        .await
        .unwrap();
        let key = format!("results/{user_id}/{job_id}/0.png");
        let content_type = if seed.kind == AssetKind::Video { "video/mp4" } else { "image/png" };
        sqlx::query(
            "INSERT INTO assets (id, user_id, job_id, position, object_key, kind, content_type, byte_size, sha256, \
             width, height, expires_at, created_at) VALUES ($1, $2, $3, 0, $4, $5, $6, 68, 'x', 8, 8, $7, $8)",
        )
        .bind(&asset_id)
        .bind(user_id)
        .bind(&job_id)
        .bind(&key)
        .bind(seed.kind.as_str())
        .bind(content_type)
        // Kept as a result made now would be, whenever it claims to have been made.
        .bind(app::server::db::now_ms() + 7 * DAY)
        .bind(seed.created_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        files.push(key);
        ids.push(asset_id);
    }
    tx.commit().await.unwrap();
    if objects {
        let storage = app.storage();
        let bytes = crate::testdata::png(8, 8);
        let sha = sha_base64(&bytes);
        for key in &files {
            storage.put_bytes(&storage.results_bucket, key, bytes.clone(), "image/png", &sha).await.unwrap();
        }
    }
    ids
}

/// The checksum storage is told to expect for `bytes`.
fn sha_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

fn ids_of(items: &[GalleryItem]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}

#[tokio::test]
async fn a_generated_result_is_in_the_gallery_with_links_that_serve_it_and_name_its_download() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let job = start(&ada, TEXT, json!({ "prompt": "a lighthouse at dusk" }), &[]).await;
    wait_for(&app, &job, JobState::Succeeded).await;

    let first = page(&ada, &GalleryQuery::default(), None).await.unwrap();
    assert_eq!(first.next, None, "one result is one page");
    let [item] = &first.items[..] else { panic!("one result: {:?}", first.items) };
    assert_eq!((item.job_id.as_str(), item.model.as_str()), (job.as_str(), TEXT));
    assert_eq!(item.prompt.as_deref(), Some("a lighthouse at dusk"));
    assert!(!item.favorite && item.trashed_at.is_none() && item.expires_at.is_some(), "{item:?}");

    // The links serve the stored bytes, privately cacheable, the download under its gallery name.
    let key: String = sqlx::query("SELECT object_key FROM assets WHERE id = $1")
        .bind(&item.id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap()
        .get("object_key");
    let storage = app.storage();
    let stored = match storage.get_bytes(&storage.results_bucket, &key, u64::MAX).await.unwrap() {
        Some(app::server::storage::Fetched::Bytes(bytes)) => bytes,
        other => panic!("the result is stored: {other:?}"),
    };
    let viewed = reqwest::get(&item.url).await.unwrap();
    assert_eq!(viewed.status(), StatusCode::OK);
    let cache = viewed.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cache.starts_with("private, max-age="), "{cache:?}");
    assert_eq!(viewed.bytes().await.unwrap().as_ref(), stored.as_slice());
    let downloaded = reqwest::get(&item.download_url).await.unwrap();
    let disposition =
        downloaded.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let day = &item.created_at[..10];
    let name = format!("darkroom-nano-banana-{day}-1.png");
    assert_eq!(item.file_name, name);
    assert_eq!(disposition, format!("attachment; filename=\"{name}\""));
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), stored.as_slice());

    // Within the link window the same file has the same links: the browser's copy is reused.
    let again = page(&ada, &GalleryQuery::default(), None).await.unwrap();
    let window = |url: &str| url.split("X-Amz-Date=").nth(1).map(|d| d[..15].to_owned());
    if window(&item.url) == window(&again.items[0].url) {
        assert_eq!(again.items[0].url, item.url);
        assert_eq!(again.items[0].download_url, item.download_url);
    }
    assert!(window(&item.url).is_some(), "a presigned link: {}", item.url);

    // Found by a word of its prompt, and by the beginning of one being typed.
    for q in ["Lighthouse", "lightho", "DUSK light"] {
        let found = page(&ada, &GalleryQuery { q: Some(q.into()), ..Default::default() }, None).await.unwrap();
        assert_eq!(ids_of(&found.items), [item.id.clone()], "{q}");
    }

    let detail = ada.call("gallery/get", &[("id", &item.id)]).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let detail: AssetDetail = detail.json();
    assert_eq!(detail.item.id, item.id);
    assert!(detail.params.contains(&("prompt".to_owned(), "a lighthouse at dusk".to_owned())), "{:?}", detail.params);
    assert_eq!(detail.input_count, 0);
}

#[tokio::test]
async fn links_stay_the_same_within_a_window_and_change_with_the_next() {
    let app = TestApp::spawn_with(&[("DARKROOM_LINK_WINDOW_SECS", "1")]).await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    seed(&app, &ada_id, &[Seed::image("a", MARCH_1)], false).await;
    let first = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);
    // The next window starts within a second: the link moves on with it.
    let moved = eventually("the link of the next window", || async {
        let now = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);
        (now.url != first.url).then_some(now)
    })
    .await;
    let date = |url: &str| url.split("X-Amz-Date=").nth(1).unwrap()[..16].to_owned();
    assert!(date(&moved.url) > date(&first.url), "signed as of a later moment");
    // And stays put for the rest of its window (the window is one second; both reads land in
    // it unless the clock turns between them, which the date shows).
    let same = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);
    if date(&same.url) == date(&moved.url) {
        assert_eq!(same.url, moved.url);
    }
}

#[tokio::test]
async fn keyset_pages_neither_skip_nor_repeat_while_results_arrive_and_leave() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    // 150 results, several in the same millisecond (ties are broken by id).
    let seeds: Vec<Seed> = (0..150).map(|n| Seed::image(&format!("old {n}"), MARCH_1 + (n / 3) * 1000)).collect();
    let ids = seed(&app, &ada_id, &seeds, false).await;
    let first = page(&ada, &GalleryQuery::default(), None).await.unwrap();
    assert_eq!(first.items.len(), 60);

    // New results arrive and the last one shown is trashed before the next page loads.
    let newer: Vec<Seed> = (0..10).map(|n| Seed::image(&format!("new {n}"), MARCH_1 + 10 * DAY + n)).collect();
    seed(&app, &ada_id, &newer, false).await;
    let last_shown = first.items.last().unwrap().id.clone();
    assert_eq!(curate(&ada, "trash", std::slice::from_ref(&last_shown)).await.unwrap().count(Outcome::Changed), 1);

    let mut seen = ids_of(&first.items);
    let mut after = first.next.clone();
    while let Some(cursor) = after {
        let next = page(&ada, &GalleryQuery::default(), Some(&cursor)).await.unwrap();
        seen.extend(ids_of(&next.items));
        after = next.next;
    }
    // Newest first; results of the same millisecond by id, as the index orders them.
    let mut expected: Vec<(i64, String)> = seeds.iter().map(|s| s.created_at).zip(ids.iter().cloned()).collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(seen.len(), 150, "every old result once, the trashed one included as it was shown");
    assert_eq!(seen, expected);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no repeats");

    // A cursor that is not one of ours is refused, not read as "from the start".
    for bad in ["nonsense", "12_not-a-uuid", "1' OR 1=1 --"] {
        let refused = page(&ada, &GalleryQuery::default(), Some(bad)).await.unwrap_err();
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "request.invalid_cursor"));
    }
}

#[tokio::test]
async fn filters_by_view_kind_model_and_day_combine_and_bad_ones_are_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let seeds = vec![
        Seed::image("march first", MARCH_1 + 1000),
        Seed { model: EDIT, ..Seed::image("edited", MARCH_1 + DAY + 1000) },
        Seed { kind: AssetKind::Video, ..Seed::image("a video", MARCH_1 + 2 * DAY + 1000) },
        Seed::image("march fourth", MARCH_1 + 3 * DAY + 1000),
    ];
    let ids = seed(&app, &ada_id, &seeds, false).await;
    curate(&ada, "favorite", &[ids[0].clone(), ids[2].clone()]).await.unwrap();
    curate(&ada, "trash", &[ids[3].clone()]).await.unwrap();

    let shown = |q: GalleryQuery| {
        let ada = ada.clone();
        async move { ids_of(&all(&ada, &q).await) }
    };
    assert_eq!(shown(GalleryQuery::default()).await, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(shown(GalleryQuery { favorites: true, ..Default::default() }).await, [ids[2].clone(), ids[0].clone()]);
    assert_eq!(shown(GalleryQuery { trash: true, ..Default::default() }).await, [ids[3].clone()]);
    assert_eq!(shown(GalleryQuery { kind: Some(AssetKind::Video), ..Default::default() }).await, [ids[2].clone()]);
    assert_eq!(shown(GalleryQuery { model: Some(EDIT.into()), ..Default::default() }).await, [ids[1].clone()]);
    let days =
        |from: &str, to: &str| GalleryQuery { from: Some(from.into()), to: Some(to.into()), ..Default::default() };
    assert_eq!(shown(days("2026-03-02", "2026-03-02")).await, [ids[1].clone()], "one whole day");
    assert_eq!(shown(days("2026-03-01", "2026-03-03")).await, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let combined = GalleryQuery { favorites: true, kind: Some(AssetKind::Image), ..days("2026-03-01", "2026-03-31") };
    assert_eq!(shown(combined).await, [ids[0].clone()]);
    let trashed = page(&ada, &GalleryQuery { trash: true, ..Default::default() }, None).await.unwrap();
    assert!(trashed.items[0].expires_at.is_some(), "the trash says when it empties itself");
    let favorite = &page(&ada, &GalleryQuery { favorites: true, ..Default::default() }, None).await.unwrap().items[0];
    assert_eq!(favorite.expires_at, None, "a favorite does not expire");

    for (query, field) in [
        (GalleryQuery { model: Some("'; DROP TABLE assets; --".into()), ..Default::default() }, "model"),
        (GalleryQuery { from: Some("March 1".into()), ..Default::default() }, "from"),
        (days("2026-03-05", "2026-03-01"), "to"),
    ] {
        let refused = page(&ada, &query, None).await.unwrap_err();
        assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "gallery.invalid_filter"));
        assert_eq!(refused.json::<serde_json::Value>()["field"], field);
    }
}

#[tokio::test]
async fn prompt_search_ignores_case_and_accents_matches_a_word_being_typed_and_combines_with_filters() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    app.user("bob@example.com").await;
    let bob_id = user_id(&app, "bob@example.com").await;
    let prompts = ["A Lighthouse at Dusk", "Crème brûlée on a plate", "the lighthouse keeper's cat", "fox in snow"];
    let seeds: Vec<Seed> = prompts.iter().enumerate().map(|(n, p)| Seed::image(p, MARCH_1 + n as i64)).collect();
    let ids = seed(&app, &ada_id, &seeds, false).await;
    seed(&app, &bob_id, &[Seed::image("bob's lighthouse", MARCH_1)], false).await;
    curate(&ada, "favorite", &[ids[0].clone()]).await.unwrap();

    let search = |q: &str, favorites: bool| {
        let ada = ada.clone();
        let query = GalleryQuery { q: Some(q.to_owned()), favorites, ..Default::default() };
        async move { ids_of(&all(&ada, &query).await) }
    };
    assert_eq!(search("lighthouse", false).await, [ids[2].clone(), ids[0].clone()], "only ada's, newest first");
    assert_eq!(search("LIGHTHOUSE dusk", false).await, [ids[0].clone()], "every word must match");
    assert_eq!(search("cat lighthouse", false).await, [ids[2].clone()], "in any order");
    assert_eq!(search("creme brulee", false).await, [ids[1].clone()], "accents do not matter");
    assert_eq!(search("Brûl", false).await, [ids[1].clone()], "the word being typed matches its beginning");
    assert_eq!(search("lightho", false).await.len(), 2);
    assert_eq!(search("lightho ", false).await.len(), 0, "a finished word matches whole words only");
    assert_eq!(search("lighthouse", true).await, [ids[0].clone()], "with the favorites filter");
    assert!(search("\" OR 1=1 --", false).await.is_empty(), "quotes and operators are only text");
    assert!(search("zebra", false).await.is_empty());
    let too_long = GalleryQuery { q: Some("a b c d e f g h i".into()), ..Default::default() };
    let refused = page(&ada, &too_long, None).await.unwrap_err();
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "gallery.invalid_filter"));
    assert_eq!(refused.json::<serde_json::Value>()["field"], "q");
}

/// A word in most prompts fills a page from the newest results alone; a word in few needs the
/// index (on PostgreSQL these are two ways of reading a page): either way the pages hold every
/// match once, newest first, and only the searcher's, with filters applied.
#[tokio::test]
async fn search_pages_hold_every_match_once_whether_the_word_is_common_or_rare() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    app.user("bob@example.com").await;
    let bob_id = user_id(&app, "bob@example.com").await;
    // 300 results: every one a "harbor", one in ten also a "zeppelin", every third a video.
    let seeds: Vec<Seed> = (0..300)
        .map(|n| {
            let rare = if n % 10 == 4 { " zeppelin" } else { "" };
            let kind = if n % 3 == 0 { AssetKind::Video } else { AssetKind::Image };
            Seed { kind, ..Seed::image(&format!("harbor number {n}{rare}"), MARCH_1 + n as i64 * 1000) }
        })
        .collect();
    let ids = seed(&app, &ada_id, &seeds, false).await;
    // Bob's matching results are newer than all of ada's: a search must not count them.
    let bob_seeds: Vec<Seed> =
        (0..100).map(|n| Seed::image("harbor zeppelin", MARCH_1 + DAY + n as i64 * 1000)).collect();
    seed(&app, &bob_id, &bob_seeds, false).await;

    let newest_first = |wanted: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..300).rev().filter(|n| wanted(*n)).map(|n| ids[n].clone()).collect()
    };
    let search = |q: &str, kind: Option<AssetKind>| {
        let ada = ada.clone();
        let query = GalleryQuery { q: Some(q.to_owned()), kind, ..Default::default() };
        async move { ids_of(&all(&ada, &query).await) }
    };
    assert_eq!(search("harbor ", None).await, newest_first(&|_| true), "a word in every prompt");
    assert_eq!(search("harb", None).await, newest_first(&|_| true), "the same word being typed");
    assert_eq!(search("zeppelin", None).await, newest_first(&|n| n % 10 == 4), "a word in one prompt of ten");
    assert_eq!(search("harbor zeppel", None).await, newest_first(&|n| n % 10 == 4), "both words");
    assert_eq!(
        search("harbor", Some(AssetKind::Video)).await,
        newest_first(&|n| n % 3 == 0),
        "a common word among videos"
    );
    assert_eq!(search("number 123", None).await, [ids[123].clone()], "a word in one prompt of all");
    // A word that is only the start of the owner's term in the index matches nothing.
    assert!(search("owner", None).await.is_empty());
}

#[tokio::test]
async fn bulk_actions_over_a_thousand_ids_report_each_and_a_retry_changes_nothing_twice() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let bob_id = user_id(&app, "bob@example.com").await;
    let seeds: Vec<Seed> = (0..1100).map(|n| Seed::image(&format!("n{n}"), MARCH_1 + n)).collect();
    let ids = seed(&app, &ada_id, &seeds, false).await;
    let bobs = seed(&app, &bob_id, &seeds[..3], false).await;

    // 995 of ada's, 3 of bob's and 2 that are no one's: 1,000 ids.
    let mut asked: Vec<String> = ids[..995].to_vec();
    asked.extend(bobs.iter().cloned());
    asked.push(uuid::Uuid::now_v7().to_string());
    asked.push("not an id".into());
    let report = curate(&ada, "trash", &asked).await.unwrap();
    assert_eq!(report.items.len(), 1000);
    assert_eq!((report.count(Outcome::Changed), report.count(Outcome::NotFound)), (995, 5));
    assert_eq!(report.items[0], (ids[0].clone(), Outcome::Changed), "reported in the order given");
    // The answer was lost; the page sends the same request again: nothing changes twice.
    let retried = curate(&ada, "trash", &asked).await.unwrap();
    assert_eq!((retried.count(Outcome::Unchanged), retried.count(Outcome::NotFound)), (995, 5));
    // Restore half, twice over.
    let half = ids[..500].to_vec();
    assert_eq!(curate(&ada, "restore", &half).await.unwrap().count(Outcome::Changed), 500);
    assert_eq!(curate(&ada, "restore", &half).await.unwrap().count(Outcome::Unchanged), 500);

    let in_trash: HashSet<String> =
        ids_of(&all(&ada, &GalleryQuery { trash: true, ..Default::default() }).await).into_iter().collect();
    let expected: HashSet<String> = ids[500..995].iter().cloned().collect();
    assert_eq!(in_trash, expected, "exactly the trashed and not restored");
    assert_eq!(all(&ada, &GalleryQuery::default()).await.len(), 1100 - 495);
    assert_eq!(all(&bob, &GalleryQuery::default()).await.len(), 3, "bob's results were not touched");

    let favorites = curate(&ada, "favorite", &ids[990..1000].to_vec()).await.unwrap();
    assert_eq!(favorites.count(Outcome::Changed), 10);
    let shown = all(&ada, &GalleryQuery { favorites: true, ..Default::default() }).await;
    assert_eq!(shown.len(), 5, "favorites in the trash are not shown among favorites");

    let too_many: Vec<String> = ids[..1001].to_vec();
    let refused = curate(&ada, "trash", &too_many).await.unwrap_err();
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::BAD_REQUEST, "gallery.too_many"));
    let unknown = curate(&ada, "explode", &ids[..1].to_vec()).await.unwrap_err();
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
}

#[tokio::test]
async fn deleting_for_good_goes_through_the_trash_and_takes_the_files_with_it() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let seeds: Vec<Seed> = (0..6).map(|n| Seed::image(&format!("n{n}"), MARCH_1 + n)).collect();
    let ids = seed(&app, &ada_id, &seeds, true).await;
    let prefix = format!("results/{ada_id}/");
    let files = async |app: &TestApp| app.result_keys(&prefix).await.len();
    assert_eq!(files(&app).await, 6);

    let not_trashed = curate(&ada, "delete_forever", &ids[..2].to_vec()).await.unwrap();
    assert_eq!(not_trashed.count(Outcome::Unchanged), 2, "only the trash is deleted for good");
    assert_eq!(files(&app).await, 6);

    curate(&ada, "trash", &ids[..4].to_vec()).await.unwrap();
    let deleted = curate(&ada, "delete_forever", &ids[..2].to_vec()).await.unwrap();
    assert_eq!(deleted.count(Outcome::Changed), 2);
    assert_eq!(files(&app).await, 4, "their files went with them");
    let again = curate(&ada, "delete_forever", &ids[..2].to_vec()).await.unwrap();
    assert_eq!(again.count(Outcome::NotFound), 2, "a retry finds them gone");
    let restore_gone = curate(&ada, "restore", &ids[..1].to_vec()).await.unwrap();
    assert_eq!(restore_gone.count(Outcome::NotFound), 1);

    let emptied = ada.call("gallery/empty_trash", &[]).await;
    assert_eq!((emptied.status, emptied.body.as_str()), (StatusCode::OK, "2"));
    assert_eq!(files(&app).await, 2);
    assert_eq!(ids_of(&all(&ada, &GalleryQuery::default()).await), [ids[5].clone(), ids[4].clone()]);
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM object_deletions").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(queued, 0, "every queued file was deleted");

    // The sweeper empties trash that is older than the trash keeps it, and only that.
    curate(&ada, "trash", &ids[4..6].to_vec()).await.unwrap();
    sqlx::query("UPDATE assets SET trashed_at = trashed_at - $1 WHERE id = $2")
        .bind(31 * DAY)
        .bind(&ids[4])
        .execute(&app.db().pool)
        .await
        .unwrap();
    app::server::maintenance::run_once(&app.running.state).await.unwrap();
    assert_eq!(ids_of(&all(&ada, &GalleryQuery { trash: true, ..Default::default() }).await), [ids[5].clone()]);
    assert_eq!(files(&app).await, 1);
}

#[tokio::test]
async fn results_past_their_expiry_leave_storage_and_database_and_favorites_stay() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let seeds: Vec<Seed> = (0..5).map(|n| Seed::image(&format!("n{n}"), MARCH_1 + n)).collect();
    let ids = seed(&app, &ada_id, &seeds, true).await;
    let prefix = format!("results/{ada_id}/");
    let files = async |app: &TestApp| app.result_keys(&prefix).await.len();
    // ids[4] is in the trash, which keeps it its own time (30 days), as the viewer says.
    curate(&ada, "trash", &ids[4..5].to_vec()).await.unwrap();
    let trash = async || ids_of(&all(&ada, &GalleryQuery { trash: true, ..Default::default() }).await);
    let now = app::server::db::now_ms();
    // ids[3] was made later: it expires in 30 days, the others in 7.
    sqlx::query("UPDATE assets SET expires_at = $1 WHERE id = $2")
        .bind(now + 30 * DAY)
        .bind(&ids[3])
        .execute(&app.db().pool)
        .await
        .unwrap();
    curate(&ada, "favorite", &ids[1..2].to_vec()).await.unwrap();
    let sweep_at = async |at: i64| app::server::maintenance::run_once_at(&app.running.state, at).await.unwrap();
    let listed = async || {
        let mut shown = ids_of(&all(&ada, &GalleryQuery::default()).await);
        shown.sort();
        shown
    };

    // A day before anything is due, nothing goes.
    sweep_at(now + 6 * DAY).await;
    assert_eq!(listed().await.len(), 4);
    assert_eq!(files(&app).await, 5);

    // Eight days on: the two that are neither favorites nor newer go, files and rows.
    sweep_at(now + 8 * DAY).await;
    let mut kept = vec![ids[1].clone(), ids[3].clone()];
    kept.sort();
    assert_eq!(listed().await, kept);
    assert_eq!(trash().await, [ids[4].clone()], "the trash keeps its own time");
    assert_eq!(files(&app).await, 3, "their files went with them");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE user_id = $1")
        .bind(&ada_id)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(rows, 3, "two kept and one in the trash");
    // Again at the same moment: nothing more to do.
    sweep_at(now + 8 * DAY).await;
    assert_eq!(listed().await, kept);

    // No longer a favorite, and long past its expiry: the next pass takes it.
    curate(&ada, "unfavorite", &ids[1..2].to_vec()).await.unwrap();
    sweep_at(now + 8 * DAY).await;
    assert_eq!(listed().await, vec![ids[3].clone()]);
    sweep_at(now + 31 * DAY).await;
    assert!(listed().await.is_empty());
    assert!(trash().await.is_empty(), "and then empties itself");
    assert_eq!(files(&app).await, 0);
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM object_deletions").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(queued, 0, "every file was deleted");
}

#[tokio::test]
async fn with_results_kept_no_sweep_deletes_one_by_age() {
    let app = TestApp::spawn_with(&[("DARKROOM_RESULT_TTL_DAYS", "0")]).await;
    app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    // Made under an earlier setting: its expiry passes, but results are kept now.
    seed(&app, &ada_id, &[Seed::image("old", MARCH_1)], false).await;
    app::server::maintenance::run_once_at(&app.running.state, app::server::db::now_ms() + 400 * DAY).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn two_sweepers_at_once_delete_each_expired_result_once() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let seeds: Vec<Seed> = (0..1_100).map(|n| Seed::image(&format!("n{n}"), MARCH_1 + n)).collect();
    seed(&app, &ada_id, &seeds, false).await;
    let later = app::server::db::now_ms() + 8 * DAY;
    let sweeper = || {
        let state = app.running.state.clone();
        async move { app::server::gallery::curate::expire_due(&state.db, &state.storage, later).await.unwrap() }
    };
    let (first, second) = tokio::join!(tokio::spawn(sweeper()), tokio::spawn(sweeper()));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first + second, 1_100, "each result counted by exactly one sweeper ({first} + {second})");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets").fetch_one(&app.db().pool).await.unwrap();
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM object_deletions").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!((rows, queued), (0, 0));
}

#[tokio::test]
async fn a_result_made_a_favorite_while_the_sweeper_runs_is_kept() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let ada_id = user_id(&app, "ada@example.com").await;
    let seeds: Vec<Seed> = (0..40).map(|n| Seed::image(&format!("n{n}"), MARCH_1 + n)).collect();
    let ids = seed(&app, &ada_id, &seeds, false).await;
    let saved = &ids[17];
    // Someone marks a favorite; their change is not committed yet when the sweeper starts.
    let mut marking = app.db().begin_write().await.unwrap();
    sqlx::query("UPDATE assets SET favorite = 1 WHERE id = $1").bind(saved).execute(&mut *marking).await.unwrap();
    let state = app.running.state.clone();
    let later = app::server::db::now_ms() + 8 * DAY;
    let sweeper =
        tokio::spawn(async move { app::server::gallery::curate::expire_due(&state.db, &state.storage, later).await });
    if backend() == Backend::Postgres {
        // The sweeper has picked its rows (the favorite among them, as it was) and waits for the
        // marked one: the moment a favorite is toggled mid-sweep. (SQLite's sweeper cannot start
        // its write before the marking ends.)
        eventually("the sweeper waiting for the marked row", || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM assets%'",
            )
            .fetch_one(&app.db().pool)
            .await
            .unwrap();
            (waiting == 1).then_some(())
        })
        .await;
    }
    marking.commit().await.unwrap();
    assert_eq!(sweeper.await.unwrap().unwrap(), 39);
    let left: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, favorite FROM assets").fetch_all(&app.db().pool).await.unwrap();
    assert_eq!(left, vec![(saved.clone(), 1)], "the favorite is kept, and only it");
}

#[tokio::test]
async fn someone_elses_results_answer_exactly_like_missing_ones() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = app.user("bob@example.com").await;
    let photo = selfie(&ada).await;
    let job = start(&ada, EDIT, json!({ "prompt": "short bob" }), &[&photo]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let ada_item = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);
    let missing = uuid::Uuid::now_v7().to_string();

    // The owner sees the facts, the input image included.
    let detail: AssetDetail = ada.call("gallery/get", &[("id", &ada_item.id)]).await.json();
    assert_eq!((detail.input_count, detail.inputs.len()), (1, 1));
    assert_eq!(detail.inputs[0].upload_id, photo);

    let foreign = bob.call("gallery/get", &[("id", &ada_item.id)]).await;
    let absent = bob.call("gallery/get", &[("id", &missing)]).await;
    assert_eq!((foreign.status, foreign.body.as_str()), (absent.status, absent.body.as_str()));
    assert_eq!((foreign.status, foreign.code().as_str()), (StatusCode::NOT_FOUND, "gallery.not_found"));
    let garbage = bob.call("gallery/get", &[("id", "../../etc/passwd")]).await;
    assert_eq!(garbage.body, absent.body);

    let items =
        bob.send(bob.http.post(format!("{}/api/gallery/items", bob.base)).json(&json!({ "ids": [ada_item.id] }))).await;
    assert_eq!((items.status, items.body.as_str()), (StatusCode::OK, "[]"));
    for action in ["favorite", "trash", "restore", "delete_forever"] {
        let report = curate(&bob, action, std::slice::from_ref(&ada_item.id)).await.unwrap();
        assert_eq!(report.items, vec![(ada_item.id.clone(), Outcome::NotFound)], "{action}");
    }
    assert!(page(&bob, &GalleryQuery::default(), None).await.unwrap().items.is_empty());
    let empty = bob.call("gallery/empty_trash", &[]).await;
    assert_eq!(empty.body, "0");
    // Ada's result is as it was, and nothing bob was answered points at her files.
    let still = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);
    assert!(!still.favorite && still.trashed_at.is_none());
    assert!(!bob.everything_seen().contains(&ada_item.job_id), "no link to ada's files reached bob");

    // Without a session, nothing at all.
    let anonymous = app.client();
    for (endpoint, body) in [
        ("gallery/list", json!({ "query": {} })),
        ("gallery/items", json!({ "ids": [ada_item.id] })),
        ("gallery/curate", json!({ "action": "trash", "ids": [ada_item.id] })),
    ] {
        let reply = anonymous.send(anonymous.http.post(format!("{}/api/{endpoint}", app.base)).json(&body)).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::UNAUTHORIZED, "auth.unauthenticated"),
            "{endpoint}"
        );
    }
    for endpoint in ["gallery/get", "gallery/empty_trash"] {
        let reply = anonymous.call(endpoint, &[("id", &ada_item.id)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{endpoint}");
    }
}

#[tokio::test]
async fn a_deep_page_enters_the_index_where_the_last_one_ended() {
    use app::server::gallery::{Cursor, Filter, query};
    let app = TestApp::spawn().await;
    if app.db().backend != app::server::db::Backend::Sqlite {
        return; // PostgreSQL's planner picks by table statistics; the benchmark measures it.
    }
    let cursor = Cursor { created_at: MARCH_1, id: uuid::Uuid::now_v7().to_string() };
    for (filter, index) in [
        (Filter::default(), "assets_shown"),
        (Filter { favorites: true, ..Filter::default() }, "assets_favorites"),
        (Filter { trash: true, ..Filter::default() }, "assets_trashed"),
        (Filter { kind: Some(AssetKind::Video), model: Some(TEXT.into()), ..Filter::default() }, "assets_shown"),
    ] {
        let sql = query::page(app.db().backend, "u", &filter, Some(&cursor), 61);
        let explain = query::Sql { text: format!("EXPLAIN QUERY PLAN {}", sql.text), binds: sql.binds };
        let rows = explain.query().fetch_all(&app.db().pool).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>("detail")).collect();
        let plan = plan.join("\n");
        assert!(plan.contains(&format!("SEARCH a USING INDEX {index} (user_id=? AND created_at<?)")), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: the index gives the order\n{plan}");
    }
}

/// fal's input with the image links taken out: what must be the same on a re-run.
fn without_links(mut input: serde_json::Value) -> (String, usize) {
    let links = input.get("image_urls").and_then(|u| u.as_array()).map_or(0, Vec::len);
    input.as_object_mut().unwrap().remove("image_urls");
    (serde_json::to_string(&input).unwrap(), links)
}

#[tokio::test]
async fn running_a_result_again_sends_fal_the_same_inputs_and_stops_before_spending_when_one_is_gone() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = app.user("bob@example.com").await;
    let photo = selfie(&ada).await;
    let params = json!({ "prompt": "short curly bob", "num_images": 1, "output_format": "png" });
    let first = start(&ada, EDIT, params, &[&photo]).await;
    wait_for(&app, &first, JobState::Succeeded).await;
    let item = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);

    let again = ada.call("gallery/rerun", &[("id", &item.id)]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let again: app::views::JobView = again.json();
    assert_ne!(again.id, first);
    assert_eq!(again.model, EDIT);
    wait_for(&app, &again.id, JobState::Succeeded).await;
    let sent = app.fake.submitted();
    assert_eq!(sent.len(), 2);
    let (before, links_before) = without_links(sent[0].input.clone());
    let (after, links_after) = without_links(sent[1].input.clone());
    assert_eq!(after, before, "the same request, byte for byte, apart from the fresh image links");
    assert_eq!((links_before, links_after), (1, 1));
    assert_ne!(sent[0].input["image_urls"], sent[1].input["image_urls"], "links are signed afresh");

    // Someone else's result cannot be run again (and is not told apart from a missing one).
    let foreign = bob.call("gallery/rerun", &[("id", &item.id)]).await;
    assert_eq!((foreign.status, foreign.code().as_str()), (StatusCode::NOT_FOUND, "gallery.not_found"));

    // The selfie is deleted: running again is refused before anything reaches fal.
    assert_eq!(ada.call("uploads/delete", &[("upload", &photo)]).await.status, StatusCode::OK);
    let gone = ada.call("gallery/rerun", &[("id", &item.id)]).await;
    assert_eq!((gone.status, gone.code().as_str()), (StatusCode::GONE, "gallery.input_gone"), "{}", gone.body);
    // A model that left the catalog, likewise.
    sqlx::query("UPDATE jobs SET model = 'fal-ai/retired-model', upload_ids_json = '[]' WHERE id = $1")
        .bind(&first)
        .execute(&app.db().pool)
        .await
        .unwrap();
    let retired = ada.call("gallery/rerun", &[("id", &item.id)]).await;
    assert_eq!((retired.status, retired.code().as_str()), (StatusCode::CONFLICT, "gallery.model_gone"));
    assert_eq!(app.fake.submitted().len(), 2, "nothing more was sent to fal");
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&app.db().pool).await.unwrap();
    assert_eq!(jobs, 2, "and no job was queued");
}

#[tokio::test]
async fn a_result_becomes_an_input_by_a_copy_made_inside_storage() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    let bob = app.user("bob@example.com").await;
    let job = start(&ada, TEXT, json!({ "prompt": "a red door" }), &[]).await;
    wait_for(&app, &job, JobState::Succeeded).await;
    let item = page(&ada, &GalleryQuery::default(), None).await.unwrap().items.remove(0);

    let copied = ada.call("gallery/use_as_input", &[("id", &item.id)]).await;
    assert_eq!(copied.status, StatusCode::OK, "{}", copied.body);
    let upload_id: String = copied.json();
    let images: Vec<serde_json::Value> = ada.call("uploads/list", &[]).await.json();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["id"], upload_id.as_str());
    // The copy is the result's bytes, among the user's sources.
    let ada_id = user_id(&app, "ada@example.com").await;
    let source = app.object(&format!("sources/{ada_id}/{upload_id}")).await.expect("the copy is stored");
    let result = reqwest::get(&item.url).await.unwrap().bytes().await.unwrap();
    assert_eq!(source, result.as_ref());

    // It works as an input like any upload.
    let edit = start(&ada, EDIT, json!({ "prompt": "paint it blue" }), &[&upload_id]).await;
    wait_for(&app, &edit, JobState::Succeeded).await;
    assert_eq!(app.fake.submitted().last().unwrap().input["image_urls"].as_array().unwrap().len(), 1);

    let foreign = bob.call("gallery/use_as_input", &[("id", &item.id)]).await;
    assert_eq!((foreign.status, foreign.code().as_str()), (StatusCode::NOT_FOUND, "gallery.not_found"));
    let video = seed(&app, &ada_id, &[Seed { kind: AssetKind::Video, ..Seed::image("v", MARCH_1) }], false).await;
    let refused = ada.call("gallery/use_as_input", &[("id", &video[0])]).await;
    assert_eq!((refused.status, refused.code().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "gallery.not_an_image"));
    let images: Vec<serde_json::Value> = ada.call("uploads/list", &[]).await.json();
    assert_eq!(images.len(), 1, "a refused copy leaves no image behind");
}

/// `POST /gallery/download` with `ids` as a browser's form sends it.
async fn download(client: &Client, ids: &[&str], accept: &str) -> reqwest::Response {
    client
        .http
        .post(format!("{}/gallery/download", client.base))
        .header("accept", accept)
        .form(&[("ids", ids.join(","))])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_selection_downloads_as_one_streamed_zip_of_exactly_the_owned_results() {
    use std::io::Read;
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (ada_id, bob_id) = (user_id(&app, "ada@example.com").await, user_id(&app, "bob@example.com").await);
    // Three results of one model on one day: their single-download names would collide.
    let mine = seed(
        &app,
        &ada_id,
        &[Seed::image("one", MARCH_1), Seed::image("two", MARCH_1 + 1), Seed::image("three", MARCH_1 + 2)],
        true,
    )
    .await;
    let theirs = seed(&app, &bob_id, &[Seed::image("bob's", MARCH_1)], true).await.remove(0);
    let missing = uuid::Uuid::now_v7().to_string();
    // A second file of the first job, picked after other jobs' files.
    let second = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO assets (id, user_id, job_id, position, object_key, kind, content_type, byte_size, sha256, \
         width, height, expires_at, created_at) SELECT $1, user_id, job_id, 1, object_key || '.second', kind, \
         content_type, byte_size, sha256, width, height, expires_at, created_at FROM assets WHERE id = $2",
    )
    .bind(&second)
    .bind(&mine[0])
    .execute(&app.db().pool)
    .await
    .unwrap();
    let second_key: String = sqlx::query_scalar("SELECT object_key FROM assets WHERE id = $1")
        .bind(&second)
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    let stored = crate::testdata::png(8, 8);
    let storage = app.storage();
    storage
        .put_bytes(&storage.results_bucket, &second_key, stored.clone(), "image/png", &sha_base64(&stored))
        .await
        .unwrap();

    let picked = [
        mine[2].as_str(),
        mine[0].as_str(),
        theirs.as_str(),
        "../../etc/passwd",
        &missing,
        &mine[0],
        &mine[1],
        &second,
    ];
    let reply = download(&ada, &picked, "*/*").await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.headers()["content-type"], "application/zip");
    let disposition = reply.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"darkroom-") && disposition.ends_with("-4.zip\""),
        "{disposition}"
    );
    let bytes = reply.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a valid zip");
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    assert_eq!(
        names,
        [
            "darkroom-nano-banana-2026-03-01-1.png",
            "darkroom-nano-banana-2026-03-01-1-2.png",
            "darkroom-nano-banana-2026-03-01-1-3.png",
            "darkroom-nano-banana-2026-03-01-2.png",
            "manifest.json"
        ],
        "in the order picked, each name once"
    );
    for name in &names[..4] {
        let mut inside = Vec::new();
        archive.by_name(name).unwrap().read_to_end(&mut inside).unwrap();
        assert_eq!(inside, stored, "{name} holds the stored bytes");
    }
    let mut manifest = String::new();
    archive.by_name("manifest.json").unwrap().read_to_string(&mut manifest).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "each job once: {jobs:?}");
    let listed: Vec<&str> =
        jobs.iter().flat_map(|job| job["files"].as_array().unwrap()).map(|file| file["id"].as_str().unwrap()).collect();
    assert_eq!(
        listed,
        [mine[2].as_str(), mine[0].as_str(), second.as_str(), mine[1].as_str()],
        "a job's files together under it"
    );
    // Bob's result is reported exactly like one that never existed.
    assert_eq!(manifest["not_found"], json!(["../../etc/passwd", theirs, missing]));
    assert!(!manifest.to_string().contains(&bob_id), "nothing of bob's is named");

    // Only someone else's (or nothing real): the same refusal as for ids that never existed.
    let foreign = download(&ada, &[&theirs], "*/*").await;
    let foreign = (foreign.status(), foreign.text().await.unwrap());
    let absent = download(&ada, &[&missing], "*/*").await;
    assert_eq!(foreign, (absent.status(), absent.text().await.unwrap()));
    assert_eq!(foreign.0, StatusCode::NOT_FOUND);
    assert!(foreign.1.contains("gallery.not_found"), "{}", foreign.1);
    // A browser that navigated here gets a page it can read, not JSON.
    let page = download(&bob, &[&mine[0]], "text/html,application/xhtml+xml").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let page = page.text().await.unwrap();
    assert!(page.contains("None of those results exist.") && page.contains("href=\"/gallery\""), "{page}");

    let too_many: Vec<String> = (0..1001).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let refused = download(&ada, &too_many.iter().map(String::as_str).collect::<Vec<_>>(), "*/*").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("gallery.too_many"));
    let malformed =
        ada.http.post(format!("{}/gallery/download", app.base)).form(&[("other", "x")]).send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.text().await.unwrap().contains("request.malformed"));
    // Nothing that could be an id at all is a mistake in the request, not a missing result.
    for nothing in [&[][..], &[""], &["../../etc/passwd", "DROP TABLE assets"]] {
        let refused = download(&ada, nothing, "*/*").await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{nothing:?}");
        assert!(refused.text().await.unwrap().contains("request.malformed"));
    }
    let anonymous = download(&app.client(), &[&mine[0]], "*/*").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // A page on another site cannot make ada's browser download (and so read) her results.
    let forged = ada
        .http
        .post(format!("{}/gallery/download", app.base))
        .header("origin", "https://evil.example")
        .form(&[("ids", mine[0].as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'asset.downloaded' AND actor_id = $1")
            .bind(&ada_id)
            .fetch_one(&app.db().pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);

    // A form larger than any selection is refused while it arrives (last: the server closes
    // the connection without reading the rest).
    let huge = ada
        .http
        .post(format!("{}/gallery/download", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("ids={}", ",".repeat(app::server::export::MAX_SELECTION_FORM + 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(huge.text().await.unwrap().contains("request.too_large"));
}
