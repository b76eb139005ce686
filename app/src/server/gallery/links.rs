//! Links to stored results that the browser can cache: each is signed as of the start of the
//! current window, so the same file has the same URL for the whole window (and the browser
//! serves it from its cache when the user scrolls back or reloads), and lives on for the
//! viewing time after the window ends. Downloads carry a file name a person can file away.

use std::time::{Duration, SystemTime};

use crate::server::storage::{Served, Validity};

/// The validity of a link signed now: from the start of the window `now` falls in, for the
/// window and then `view_ttl` more, so every link handed out lives at least `view_ttl`.
pub fn windowed(now: SystemTime, window: Duration, view_ttl: Duration) -> Validity {
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let window_ms = window.as_millis().max(1);
    let start_ms = since_epoch.as_millis() / window_ms * window_ms;
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(start_ms as u64);
    Validity { at, ttl: window + view_ttl }
}

/// What storage answers a viewing link with: the browser may keep the file as long as the
/// link lives (the bytes of a stored result never change), and no shared cache may.
pub fn for_viewing(validity: Validity) -> Served {
    Served {
        cache_control: Some(format!("private, max-age={}, immutable", validity.ttl.as_secs())),
        content_disposition: None,
    }
}

/// The same, saved under `file_name` when downloaded.
pub fn for_download(validity: Validity, file_name: &str) -> Served {
    Served { content_disposition: Some(format!("attachment; filename=\"{file_name}\"")), ..for_viewing(validity) }
}

/// `darkroom-<model>-<date>-<n>.<ext>`: the model's endpoint id without its owner
/// (`fal-ai/nano-banana/edit` → `nano-banana-edit`), the UTC creation day, the output's
/// number in its job, and the extension of its type. Only ASCII letters, digits, `-` and `.`,
/// so the name needs no quoting rules beyond the plain quoted string.
pub fn file_name(model: &str, created_at_ms: i64, position: i64, content_type: &str) -> String {
    let name = model.split_once('/').map_or(model, |(_, rest)| rest);
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "result" } else { &slug[..slug.len().min(60)] };
    let day = crate::server::db::rfc3339(created_at_ms).get(..10).unwrap_or("unknown").to_owned();
    format!("darkroom-{}-{day}-{}.{}", slug.trim_end_matches('-'), position + 1, extension(content_type))
}

fn extension(content_type: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or("").trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/avif" => "avif",
        "video/mp4" => "mp4",
        "video/webm" => "webm",
        "video/quicktime" => "mov",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" => "wav",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn links_signed_within_a_window_share_their_moment_and_the_next_window_moves_it() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let ttl = Duration::from_secs(600);
        let start = 1_767_225_600; // a whole hour
        let first = windowed(at(start + 1), HOUR, ttl);
        let later = windowed(at(start + 3599), HOUR, ttl);
        let next = windowed(at(start + 3600), HOUR, ttl);
        assert_eq!(first.at, at(start));
        assert_eq!(later.at, first.at);
        assert_eq!(next.at, at(start + 3600));
        // Signed at the window's start, a link handed out at its very end still lives `ttl`.
        assert_eq!(first.ttl, HOUR + ttl);
        assert!(first.at + first.ttl >= at(start + 3599) + ttl);
    }

    #[test]
    fn downloads_are_named_for_the_model_day_and_number() {
        let day = 1_772_323_200_000 + 3_600_000; // 2026-03-01, 01:00 UTC
        assert_eq!(
            file_name("fal-ai/nano-banana/edit", day, 0, "image/png"),
            "darkroom-nano-banana-edit-2026-03-01-1.png"
        );
        assert_eq!(
            file_name("fal-ai/kling-video/v2.1/standard/image-to-video", day, 2, "video/mp4"),
            "darkroom-kling-video-v2-1-standard-image-to-video-2026-03-01-3.mp4"
        );
        assert_eq!(file_name("weird", day, 0, "application/x-thing"), "darkroom-weird-2026-03-01-1.bin");
        let hostile = file_name("a/\"; filename=x.exe\r\n", day, 0, "image/jpeg");
        assert!(hostile.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), "{hostile}");
        let served = for_download(windowed(SystemTime::now(), HOUR, Duration::from_secs(600)), "a.png");
        assert_eq!(served.content_disposition.as_deref(), Some("attachment; filename=\"a.png\""));
        assert_eq!(served.cache_control.as_deref(), Some("private, max-age=4200, immutable"));
    }
}
