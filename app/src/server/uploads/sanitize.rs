//! Turning uploaded bytes into an image we are willing to keep and hand to a provider.
//!
//! The declared type is never trusted: the bytes decide. Anything that is not one of the
//! accepted image formats, carries markup (a polyglot), is truncated, undecodable or too large
//! in pixels is refused. JPEG, PNG and WebP are decoded, turned upright (EXIF orientation) and
//! re-encoded, which drops every piece of metadata (GPS above all) except the colour profile.
//! HEIF and AVIF cannot be decoded here, so their containers are checked and their Exif and XMP
//! items blanked in place (`heif`).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};

use super::UploadError;
use super::heif;
use super::policy::ImageType;

/// A validated image, metadata removed, ready to be stored where no presigned URL reaches.
#[derive(Debug)]
pub struct Sanitized {
    pub bytes: Vec<u8>,
    pub kind: ImageType,
    pub width: u32,
    pub height: u32,
}

/// JPEG quality of re-encoded photos: visually lossless for the models we feed.
const JPEG_QUALITY: u8 = 92;

pub fn sanitize(bytes: &[u8], declared: ImageType, max_pixels: u64) -> Result<Sanitized, UploadError> {
    let actual = sniff(bytes)?;
    if actual != declared {
        return Err(UploadError::TypeMismatch { declared: declared.mime(), actual: actual.mime().into() });
    }
    match actual {
        ImageType::Jpeg | ImageType::Png | ImageType::Webp => reencode(bytes, actual, max_pixels),
        ImageType::Heif | ImageType::Avif => heif::strip_metadata(bytes, actual, max_pixels),
    }
}

/// The real format, from magic bytes. Text, markup and other formats are named in the error.
pub fn sniff(bytes: &[u8]) -> Result<ImageType, UploadError> {
    if let Some(kind) = heif::sniff(bytes) {
        return Ok(kind);
    }
    match infer::get(bytes).map(|k| k.mime_type()) {
        Some("image/jpeg") => Ok(ImageType::Jpeg),
        Some("image/png") => Ok(ImageType::Png),
        Some("image/webp") => Ok(ImageType::Webp),
        Some(other) => Err(UploadError::NotAnImage(other.to_owned())),
        None if looks_like_text(bytes) => Err(UploadError::NotAnImage("text".into())),
        None => Err(UploadError::NotAnImage("unknown data".into())),
    }
}

/// Refuses markup after the end of the image proper (a polyglot a browser could run if it ever
/// sniffed the file as HTML or SVG). Only the trailing bytes are searched: inside compressed
/// image data, short markers occur by chance.
pub(super) fn refuse_trailing_markup(trailing: &[u8]) -> Result<(), UploadError> {
    match markup(trailing) {
        Some(marker) => Err(UploadError::Polyglot(marker)),
        None => Ok(()),
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    !head.is_empty() && head.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace() || *b >= 0x80)
}

/// Markup a browser would render or run. `<svg` alone is short enough to occur by chance in
/// binary data, so it must be followed by a delimiter.
const MARKERS: &[&[u8]] = &[b"<html", b"<script", b"<!doctype", b"<body", b"<iframe", b"<?php", b"javascript:"];

pub(super) fn markup(bytes: &[u8]) -> Option<String> {
    (0..bytes.len()).filter(|&i| matches!(bytes[i], b'<' | b'j' | b'J')).find_map(|i| {
        let rest = &bytes[i..];
        let starts = |m: &[u8]| rest.len() >= m.len() && rest[..m.len()].eq_ignore_ascii_case(m);
        if let Some(m) = MARKERS.iter().find(|m| starts(m)) {
            return Some(String::from_utf8_lossy(m).into_owned());
        }
        let svg = starts(b"<svg") && rest.get(4).is_some_and(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
        svg.then(|| "<svg".to_owned())
    })
}

fn reencode(bytes: &[u8], kind: ImageType, max_pixels: u64) -> Result<Sanitized, UploadError> {
    let (format, end) = match kind {
        ImageType::Jpeg => (ImageFormat::Jpeg, jpeg_end(bytes)?),
        ImageType::Png => (ImageFormat::Png, png_end(bytes)?),
        _ => (ImageFormat::WebP, webp_end(bytes)?),
    };
    refuse_trailing_markup(&bytes[end..])?;
    let undecodable = |e: image::ImageError| UploadError::Undecodable(e.to_string());

    // The header alone says how big the image will be: refuse bombs before allocating.
    let (width, height) =
        ImageReader::with_format(Cursor::new(bytes), format).into_dimensions().map_err(undecodable)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(UploadError::Undecodable("the image has no pixels".into()));
    }
    if pixels > max_pixels {
        return Err(UploadError::TooManyPixels { width, height, max_pixels });
    }

    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels.saturating_mul(16).saturating_add(64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);

    let mut out = Vec::with_capacity(bytes.len());
    let encoded = match kind {
        ImageType::Jpeg => {
            let mut encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            if let Some(icc) = icc {
                let _ = encoder.set_icc_profile(icc);
            }
            DynamicImage::ImageRgb8(image.to_rgb8()).write_with_encoder(encoder)
        }
        ImageType::Png => {
            let mut encoder = PngEncoder::new(&mut out);
            if let Some(icc) = icc {
                let _ = encoder.set_icc_profile(icc);
            }
            image.write_with_encoder(encoder)
        }
        _ => {
            let rgba = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            rgba.write_with_encoder(WebPEncoder::new_lossless(&mut out))
        }
    };
    encoded.map_err(|e| UploadError::Internal(format!("re-encoding failed: {e}")))?;
    Ok(Sanitized { bytes: out, kind, width: image.width(), height: image.height() })
}

/// Walks the JPEG segments and returns where the image ends (after EOI). Lenient decoders
/// happily render a truncated file as grey, so the structure is checked before decoding.
fn jpeg_end(bytes: &[u8]) -> Result<usize, UploadError> {
    let truncated = || UploadError::Undecodable("the JPEG data is truncated".into());
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(UploadError::Undecodable("missing JPEG start marker".into()));
    }
    let mut i = 2;
    let mut scans = 0;
    loop {
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else { return Err(truncated()) };
        match marker {
            0xD9 if scans > 0 => return Ok(i + 2),
            0xD9 => return Err(UploadError::Undecodable("the JPEG has no image data".into())),
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let length = usize::from(u16::from_be_bytes([
                    *bytes.get(i + 2).ok_or_else(truncated)?,
                    *bytes.get(i + 3).ok_or_else(truncated)?,
                ]));
                if length < 2 || i + 2 + length > bytes.len() {
                    return Err(truncated());
                }
                i += 2 + length;
                if marker == 0xDA {
                    scans += 1;
                    // Entropy-coded data runs until a marker that is neither stuffing nor a restart.
                    loop {
                        match (bytes.get(i), bytes.get(i + 1)) {
                            (Some(0xFF), Some(0x00 | 0xD0..=0xD7)) => i += 2,
                            (Some(0xFF), Some(_)) => break,
                            (Some(_), _) => i += 1,
                            (None, _) => return Err(truncated()),
                        }
                    }
                }
            }
        }
    }
}

/// Walks the PNG chunks and returns where IEND ends.
fn png_end(bytes: &[u8]) -> Result<usize, UploadError> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) {
        return Err(UploadError::Undecodable("missing PNG signature".into()));
    }
    let mut i = SIGNATURE.len();
    while i + 12 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes")) as usize;
        let kind = &bytes[i + 4..i + 8];
        let end = i.checked_add(12 + length).filter(|end| *end <= bytes.len());
        let Some(end) = end else { break };
        if kind == b"IEND" {
            return Ok(end);
        }
        i = end;
    }
    Err(UploadError::Undecodable("the PNG data is truncated".into()))
}

/// The RIFF container must hold as many bytes as it says; returns where it ends.
fn webp_end(bytes: &[u8]) -> Result<usize, UploadError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err(UploadError::Undecodable("missing WebP header".into()));
    }
    let declared = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    // An odd-sized RIFF body is followed by one padding byte, which must be there too.
    let end = declared + 8 + (declared & 1);
    if end > bytes.len() {
        return Err(UploadError::Undecodable("the WebP data is truncated".into()));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::uploads::testdata;

    const MAX: u64 = 50_000_000;

    #[test]
    fn jpeg_loses_gps_and_turns_upright() {
        let original = testdata::jpeg_with_exif(40, 20, 6, true);
        assert!(testdata::has_exif(&original) && testdata::contains(&original, testdata::GPS_MARK));
        let clean = sanitize(&original, ImageType::Jpeg, MAX).unwrap();
        assert!(!testdata::has_exif(&clean.bytes), "no EXIF segment left");
        assert!(!testdata::contains(&clean.bytes, testdata::GPS_MARK), "no GPS bytes left");
        assert_eq!((clean.width, clean.height), (20, 40), "orientation 6 rotates a landscape image upright");
        let decoded = image::load_from_memory(&clean.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (20, 40));
    }

    #[test]
    fn png_and_webp_are_reencoded_in_their_own_format() {
        let png = testdata::png(12, 7);
        let clean = sanitize(&png, ImageType::Png, MAX).unwrap();
        assert_eq!((clean.kind, clean.width, clean.height), (ImageType::Png, 12, 7));
        assert_eq!(sniff(&clean.bytes).unwrap(), ImageType::Png);

        let webp = testdata::webp(9, 5);
        let clean = sanitize(&webp, ImageType::Webp, MAX).unwrap();
        assert_eq!((clean.kind, clean.width, clean.height), (ImageType::Webp, 9, 5));
    }

    #[test]
    fn the_bytes_decide_not_the_declaration() {
        let png = testdata::png(4, 4);
        assert!(matches!(sanitize(&png, ImageType::Jpeg, MAX), Err(UploadError::TypeMismatch { .. })));
        let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
        assert!(matches!(sanitize(html, ImageType::Png, MAX), Err(UploadError::NotAnImage(_))));
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>"#;
        assert!(matches!(sanitize(svg, ImageType::Png, MAX), Err(UploadError::NotAnImage(_))));
    }

    #[test]
    fn polyglots_truncations_and_bombs_are_refused() {
        let mut polyglot = testdata::jpeg_with_exif(8, 8, 1, false);
        polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
        assert!(matches!(sanitize(&polyglot, ImageType::Jpeg, MAX), Err(UploadError::Polyglot(_))));

        let full = testdata::jpeg_with_exif(64, 64, 1, false);
        let truncated = &full[..full.len() * 2 / 3];
        assert!(matches!(sanitize(truncated, ImageType::Jpeg, MAX), Err(UploadError::Undecodable(_))));
        let png = testdata::png(64, 64);
        assert!(matches!(sanitize(&png[..png.len() - 20], ImageType::Png, MAX), Err(UploadError::Undecodable(_))));

        let header_only = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
        assert!(matches!(sanitize(&header_only, ImageType::Jpeg, MAX), Err(UploadError::Undecodable(_))));

        let big = testdata::png(100, 100);
        assert!(matches!(sanitize(&big, ImageType::Png, 9_999), Err(UploadError::TooManyPixels { .. })));
        let bomb = testdata::png_claiming(60_000, 60_000);
        assert!(matches!(sanitize(&bomb, ImageType::Png, MAX), Err(UploadError::TooManyPixels { .. })));
    }

    #[test]
    fn a_webp_missing_its_padding_byte_is_refused_not_a_panic() {
        let mut webp = testdata::webp(9, 5);
        let odd = webp.len() - 8 - 1;
        webp.truncate(odd + 8);
        webp[4..8].copy_from_slice(&(odd as u32).to_le_bytes());
        assert!(matches!(sanitize(&webp, ImageType::Webp, MAX), Err(UploadError::Undecodable(_))));
    }

    #[test]
    fn markup_is_found_only_as_real_markup() {
        assert_eq!(markup(b"\0\0<SCRIPT src=x>").as_deref(), Some("<script"));
        assert_eq!(markup(b"<svg onload=alert(1)>").as_deref(), Some("<svg"));
        assert_eq!(markup(b"<svgX"), None, "four bytes that happen to spell <svg are not markup");
        assert_eq!(markup(b"motion photo trailer: ftypmp42 ..."), None);
        // Compressed data is random: a large noisy buffer with no markers passes.
        let noise: Vec<u8> = (0u32..2_000_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert_eq!(markup(&noise), None);
    }

    #[test]
    fn trailing_data_without_markup_is_dropped_not_refused() {
        let mut motion_photo = testdata::jpeg_with_exif(8, 8, 1, false);
        motion_photo.extend_from_slice(b"\0\0\0\x18ftypmp42 pretend video");
        let clean = sanitize(&motion_photo, ImageType::Jpeg, MAX).unwrap();
        assert!(!testdata::contains(&clean.bytes, b"ftypmp42"));
    }
}
