//! Fetching and reading a model's output files: the download client that reaches only the
//! allow-listed media hosts (redirects included, so a provider answer cannot make the server
//! reach internal addresses), the type the bytes themselves show, and image thumbnails.

use std::io::Cursor;

use url::Url;

use crate::states::AssetKind;

const THUMB_EDGE: u32 = 384;
/// Lossy WebP quality of thumbnails: a 384 px tile in a few tens of KB, with no visible loss at
/// grid size.
const THUMB_QUALITY: f32 = 75.0;
/// The HTTP client for media downloads: it follows a redirect only to another allowed host.
pub fn media_client(hosts: &[String]) -> reqwest::Client {
    let allowed = hosts.to_vec();
    reqwest::Client::builder()
        .user_agent(concat!("darkroom/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error(Disallowed("too many redirects".into()))
            } else if host_allowed(&allowed, attempt.url()) {
                attempt.follow()
            } else {
                let host = attempt.url().host_str().unwrap_or_default().to_owned();
                attempt.error(Disallowed(host))
            }
        }))
        .build()
        .expect("static reqwest configuration is valid")
}

#[derive(Debug, thiserror::Error)]
#[error("redirect to a host that is not allowed: {0}")]
struct Disallowed(String);

/// Whether `url` is on an allowed media host: an exact name, or `*.suffix` for subdomains.
pub fn host_allowed(hosts: &[String], url: &Url) -> bool {
    if !matches!(url.scheme(), "https" | "http") {
        return false;
    }
    let Some(host) = url.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase()) else { return false };
    hosts.iter().any(|allowed| match allowed.strip_prefix("*.") {
        Some(suffix) => host.ends_with(&format!(".{suffix}")),
        None => host == *allowed,
    })
}

pub(super) fn redirect_refusal(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Disallowed>() {
            return Some(refused.0.clone());
        }
        source = e.source();
    }
    err.is_redirect().then(|| "a redirect target".to_owned())
}

/// The kind, content type and extension the bytes themselves show (never the provider's label).
pub(super) fn sniff(head: &[u8]) -> (AssetKind, &'static str, &'static str) {
    let mime = infer::get(head).map(|t| t.mime_type()).unwrap_or("application/octet-stream");
    match mime {
        "image/png" => (AssetKind::Image, "image/png", "png"),
        "image/jpeg" => (AssetKind::Image, "image/jpeg", "jpg"),
        "image/webp" => (AssetKind::Image, "image/webp", "webp"),
        "image/gif" => (AssetKind::Image, "image/gif", "gif"),
        "image/avif" => (AssetKind::Image, "image/avif", "avif"),
        "video/mp4" => (AssetKind::Video, "video/mp4", "mp4"),
        "video/quicktime" => (AssetKind::Video, "video/quicktime", "mov"),
        "video/webm" => (AssetKind::Video, "video/webm", "webm"),
        "audio/mpeg" => (AssetKind::Audio, "audio/mpeg", "mp3"),
        "audio/x-wav" => (AssetKind::Audio, "audio/wav", "wav"),
        "audio/ogg" => (AssetKind::Audio, "audio/ogg", "ogg"),
        "audio/m4a" | "audio/x-m4a" => (AssetKind::Audio, "audio/mp4", "m4a"),
        "audio/x-flac" => (AssetKind::Audio, "audio/flac", "flac"),
        _ => (AssetKind::File, "application/octet-stream", "bin"),
    }
}

/// Width, height and a lossy WebP thumbnail (longest edge at most 384 px; a smaller image keeps
/// its size, never upscaled), or `None` when the image cannot be decoded here (the original is
/// still kept).
pub(super) fn thumbnail(bytes: &[u8], max_pixels: u64) -> Option<(u32, u32, Vec<u8>)> {
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?;
    let (w, h) = reader.into_dimensions().ok()?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return None;
    }
    let decoded = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?.decode().ok()?;
    let small = if w > THUMB_EDGE || h > THUMB_EDGE { decoded.thumbnail(THUMB_EDGE, THUMB_EDGE) } else { decoded };
    Some((w, h, encode_thumbnail(&small)?))
}

fn encode_thumbnail(picture: &image::DynamicImage) -> Option<Vec<u8>> {
    let (width, height) = (picture.width(), picture.height());
    let encoded = if picture.color().has_alpha() {
        let rgba = picture.to_rgba8();
        webp::Encoder::from_rgba(rgba.as_raw(), width, height).encode_simple(false, THUMB_QUALITY).ok()?.to_vec()
    } else {
        let rgb = picture.to_rgb8();
        webp::Encoder::from_rgb(rgb.as_raw(), width, height).encode_simple(false, THUMB_QUALITY).ok()?.to_vec()
    };
    Some(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_hosts_are_fetched() {
        let hosts = vec!["v3.fal.media".to_owned(), "*.fal.media".to_owned()];
        let ok = |u: &str| host_allowed(&hosts, &Url::parse(u).unwrap());
        assert!(ok("https://v3.fal.media/files/x.png"));
        assert!(ok("https://v3b.fal.media/files/x.png"));
        assert!(ok("https://V3.FAL.MEDIA./x"));
        assert!(!ok("https://fal.media.evil.example/x"));
        assert!(!ok("https://v3.fal.media@169.254.169.254/latest/meta-data"));
        assert!(!ok("http://169.254.169.254/latest/meta-data"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("https://evilfal.media/x"));
    }

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), (AssetKind::Image, "image/png", "png"));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), (AssetKind::Video, "video/mp4", "mp4"));
        assert_eq!(
            sniff(b"<svg xmlns='http://www.w3.org/2000/svg'>"),
            (AssetKind::File, "application/octet-stream", "bin")
        );
    }

    #[test]
    fn thumbnails_are_lossy_webp_and_never_upscaled() {
        let png = |w: u32, h: u32| {
            let picture =
                image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8]));
            let mut out = Vec::new();
            image::DynamicImage::ImageRgb8(picture)
                .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        let webp_size = |thumb: &[u8]| {
            let decoded = image::load_from_memory_with_format(thumb, image::ImageFormat::WebP).unwrap();
            (decoded.width(), decoded.height())
        };
        let lossy = |thumb: &[u8]| thumb.windows(4).any(|w| w == b"VP8 ");

        let (w, h, thumb) = thumbnail(&png(64, 64), u64::MAX).unwrap();
        assert_eq!((w, h), (64, 64));
        assert_eq!(webp_size(&thumb), (64, 64), "a small image is not upscaled");
        assert!(lossy(&thumb), "lossy VP8, not lossless VP8L");

        let big = png(1600, 1200);
        let (_, _, thumb) = thumbnail(&big, u64::MAX).unwrap();
        assert_eq!(webp_size(&thumb), (384, 288));
        assert!(lossy(&thumb));
        eprintln!("thumbnail of a {}-byte 1600×1200 PNG: 384×288, {} bytes", big.len(), thumb.len());
        assert!(thumb.len() < 40 * 1024, "a typical thumbnail is a few tens of KB, not {} bytes", thumb.len());
    }
}
