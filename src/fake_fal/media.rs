//! The CDN of the fake (`v3.fal.media` in real life): generated output files, streamed, plus a
//! redirect for testing that downloads never follow one off the allow-list.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde::Deserialize;

use super::FakeState;

#[derive(Deserialize)]
pub struct Params {
    w: Option<u32>,
    h: Option<u32>,
    bytes: Option<u64>,
    clip: Option<u8>,
    to: Option<String>,
}

pub async fn file(
    State(state): State<Arc<FakeState>>,
    Path((request, name)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if state.media_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "media host down").into_response();
    }
    if request == "redirect" {
        return Redirect::to(params.to.as_deref().unwrap_or("/")).into_response();
    }
    if name.ends_with(".png") {
        let (w, h) = (params.w.unwrap_or(64).min(4096), params.h.unwrap_or(64).min(4096));
        let image = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut png = Vec::new();
        if image::DynamicImage::ImageRgb8(image)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .is_err()
        {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        return ([(header::CONTENT_TYPE, "image/png")], png).into_response();
    }
    if name.ends_with(".mp4") && params.clip.is_some() {
        return ([(header::CONTENT_TYPE, "video/mp4")], CLIP).into_response();
    }
    if name.ends_with(".mp4") {
        let total = params.bytes.unwrap_or(1 << 20);
        let throttle =
            state.requests.lock().expect("request lock").get(&request).and_then(|r| match r.scenario.outcome {
                super::Outcome::Video { bytes_per_sec, .. } => bytes_per_sec,
                _ => None,
            });
        let sent = Arc::new(AtomicU64::new(0));
        state.video_downloads.lock().expect("download lock").push(sent.clone());
        return (
            [(header::CONTENT_TYPE, "video/mp4"), (header::CONTENT_LENGTH, &total.to_string())],
            Body::from_stream(video(total, throttle, sent)),
        )
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// A real 1.5 s H.264 MP4 of 160×90 (its `moov` after its `mdat`, as ffmpeg writes by
/// default): the first half second is [`CLIP_FIRST_COLOR`], the rest blue. Made with
/// `ffmpeg -f lavfi -i "color=c=0xE03020:size=160x90:rate=10:duration=0.5[a];
/// color=c=0x2040E0:size=160x90:rate=10:duration=1[b];[a][b]concat=n=2:v=1" -c:v libx264
/// -pix_fmt yuv420p -preset veryslow -crf 35 -an clip.mp4`.
pub const CLIP: &[u8] = include_bytes!("../../app/src/server/jobs/testdata/clip.mp4");
pub const CLIP_SIZE: (u32, u32) = (160, 90);
pub const CLIP_MS: i64 = 1_500;
pub const CLIP_FIRST_COLOR: [u8; 3] = [0xE0, 0x30, 0x20];

/// The duration and picture size every fake video declares in its `moov`.
pub const VIDEO_MS: u32 = 5_000;
pub const VIDEO_SIZE: (u32, u32) = (1280, 720);

/// `total` bytes of a pretend MP4 (real `ftyp`, `moov` and `mdat` headers, then filler), generated as it is sent so a
/// gigabyte costs no memory; optionally at `bytes_per_sec`. `sent` counts what has gone out.
fn video(
    total: u64,
    bytes_per_sec: Option<u64>,
    sent_so_far: Arc<AtomicU64>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    const CHUNK: u64 = 256 * 1024;
    let boxes = app::server::jobs::mp4::sample_header(VIDEO_MS, VIDEO_SIZE.0, VIDEO_SIZE.1, 0).len() as u64;
    let header =
        app::server::jobs::mp4::sample_header(VIDEO_MS, VIDEO_SIZE.0, VIDEO_SIZE.1, total.saturating_sub(boxes));
    futures::stream::unfold(0u64, move |sent| {
        let header = header.clone();
        let sent_so_far = sent_so_far.clone();
        async move {
            if sent >= total {
                return None;
            }
            let size = CHUNK.min(total - sent) as usize;
            let mut chunk = vec![0u8; size];
            if sent == 0 {
                let n = header.len().min(size);
                chunk[..n].copy_from_slice(&header[..n]);
            }
            if let Some(rate) = bytes_per_sec {
                tokio::time::sleep(Duration::from_secs_f64(size as f64 / rate as f64)).await;
            }
            sent_so_far.fetch_add(size as u64, Ordering::SeqCst);
            Some((Ok(Bytes::from(chunk)), sent + size as u64))
        }
    })
}
