//! Video results in the gallery: a poster frame made from the video's own first picture, its
//! duration and size read from its bytes, and a video ffmpeg cannot read still kept (without a
//! poster) rather than failing the job.

use app::gallery::{GalleryItem, GalleryPage, GalleryQuery};
use app::states::{AssetKind, JobState};
use darkroom::fake_fal::{CLIP_FIRST_COLOR, CLIP_MS, CLIP_SIZE, Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Client, TestApp};
use crate::jobs::{selfie, start, user_with_key, wait_for};

const VIDEO_MODEL: &str = "fal-ai/kling-video/v2.1/standard/image-to-video";

async fn only_item(client: &Client) -> GalleryItem {
    let body = json!({ "query": GalleryQuery::default() });
    let request =
        client.http.post(format!("{}/api/gallery/list", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mut page: GalleryPage = reply.json();
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    page.items.remove(0)
}

#[tokio::test]
async fn a_video_result_shows_its_first_frame_as_poster_with_its_duration() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    app.fake.script(Scenario { outcome: Outcome::Clip, ..Scenario::default() });
    let photo = selfie(&ada).await;
    let job = start(&ada, VIDEO_MODEL, json!({ "prompt": "waves" }), &[&photo]).await;
    wait_for(&app, &job, JobState::Succeeded).await;

    let item = only_item(&ada).await;
    assert_eq!(item.kind, AssetKind::Video);
    assert_eq!((item.width, item.height), (Some(CLIP_SIZE.0), Some(CLIP_SIZE.1)));
    assert_eq!(item.duration_ms, Some(CLIP_MS as u64));
    let poster = item.thumb_url.as_deref().expect("a poster frame");
    let served = reqwest::get(poster).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/webp");
    let picture = image::load_from_memory_with_format(&served.bytes().await.unwrap(), image::ImageFormat::WebP)
        .expect("a WebP poster")
        .to_rgb8();
    assert_eq!(picture.dimensions(), CLIP_SIZE, "small videos are not upscaled");
    let pixel = picture.get_pixel(CLIP_SIZE.0 / 2, CLIP_SIZE.1 / 2).0;
    let near = pixel.iter().zip(CLIP_FIRST_COLOR).all(|(got, want)| got.abs_diff(want) < 40);
    assert!(near, "the poster is the first frame's colour {CLIP_FIRST_COLOR:?}, not {pixel:?}");
}

#[tokio::test]
async fn a_video_without_a_readable_frame_is_kept_without_a_poster() {
    let app = TestApp::spawn().await;
    let ada = user_with_key(&app, "ada@example.com", "api").await;
    // Real MP4 boxes around filler: the duration and size are there, a picture is not.
    app.fake
        .script(Scenario { outcome: Outcome::Video { bytes: 300_000, bytes_per_sec: None }, ..Scenario::default() });
    let photo = selfie(&ada).await;
    let job = start(&ada, VIDEO_MODEL, json!({ "prompt": "waves" }), &[&photo]).await;
    wait_for(&app, &job, JobState::Succeeded).await;

    let item = only_item(&ada).await;
    assert_eq!((item.kind, item.thumb_url.as_deref()), (AssetKind::Video, None));
    assert_eq!(item.duration_ms, Some(5_000));
    assert_eq!(item.byte_size, 300_000);
    let thumbs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assets WHERE thumb_key IS NOT NULL")
        .fetch_one(&app.db().pool)
        .await
        .unwrap();
    assert_eq!(thumbs, 0);
}
