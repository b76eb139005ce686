//! The try-on's face check: a hairstyle try-on costs the user a model run, so a selfie without a
//! face (a landscape picked by mistake) or a group photo is refused before anything reaches fal.
//!
//! The detector is SeetaFace's frontal cascade (the `rustface` crate), whose model file is built
//! into the binary; nothing is downloaded. It looks at a grey copy of the image scaled down to
//! [`SCAN_EDGE`], which keeps a check to a few hundred milliseconds of one core whatever the
//! photo's size.

use std::io::Cursor;
use std::sync::OnceLock;

use image::{ImageReader, Limits};

/// The SeetaFace frontal face model shipped in the `rustface` package (located by build.rs).
static MODEL: &[u8] = include_bytes!(env!("DARKROOM_FACE_MODEL"));

/// Longest edge of the copy the detector scans. A face that fills less than [`MIN_FACE`] of it
/// is too small for a try-on to show a hairstyle on anyway.
const SCAN_EDGE: u32 = 640;
/// Narrowest face counted, in pixels of the scanned copy (about 6% of its longest edge).
const MIN_FACE: u32 = 40;
/// The cascade's confidence a window needs to count as a face. Real faces in the fixtures score
/// 20 and above; 2 is SeetaFace's own default.
const MIN_SCORE: f64 = 2.0;
/// A second face counts when it is at least this share of the largest one's width: someone
/// small in the background does not make a selfie a group photo.
const COMPANION_SHARE: f64 = 0.5;

/// What the detector saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faces {
    None,
    One,
    /// This many faces of comparable size.
    Many(usize),
}

/// Why an image could not be looked at.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("the image cannot be decoded here: {0}")]
    Undecodable(String),
    #[error("the image has {0} pixels, more than the {1} allowed")]
    TooManyPixels(u64, u64),
    #[error("the face model did not load: {0}")]
    Model(String),
}

fn model() -> Result<&'static rustface::Model, Unreadable> {
    static PARSED: OnceLock<Result<rustface::Model, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| rustface::read_model(Cursor::new(MODEL)).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Unreadable::Model(e.clone()))
}

/// Counts the faces in an encoded JPEG, PNG or WebP image of at most `max_pixels` pixels.
/// CPU-bound (up to a few hundred milliseconds): call it from a blocking task.
pub fn count(bytes: &[u8], max_pixels: u64) -> Result<Faces, Unreadable> {
    let undecodable = |e: image::ImageError| Unreadable::Undecodable(e.to_string());
    let (width, height) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Unreadable::Undecodable(e.to_string()))?
        .into_dimensions()
        .map_err(undecodable)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(Unreadable::TooManyPixels(pixels, max_pixels));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels.saturating_mul(16).saturating_add(64 << 20));
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Unreadable::Undecodable(e.to_string()))?;
    reader.limits(limits);
    let decoded = reader.decode().map_err(undecodable)?;
    let small = if width > SCAN_EDGE || height > SCAN_EDGE { decoded.thumbnail(SCAN_EDGE, SCAN_EDGE) } else { decoded };
    let grey = small.to_luma8();
    Ok(judge(&detect(model()?, grey.as_raw(), grey.width(), grey.height())))
}

/// The widths of the faces found in a grey image.
fn detect(model: &rustface::Model, grey: &[u8], width: u32, height: u32) -> Vec<u32> {
    // The detector panics on an image smaller than its window; no usable face fits there anyway.
    if width < MIN_FACE || height < MIN_FACE || grey.len() < (width as usize) * (height as usize) {
        return Vec::new();
    }
    let mut detector = rustface::create_detector_with_model(model.clone());
    detector.set_min_face_size(MIN_FACE);
    detector.set_score_thresh(MIN_SCORE);
    detector.set_pyramid_scale_factor(0.8);
    detector.set_slide_window_step(4, 4);
    let faces = detector.detect(&rustface::ImageData::new(grey, width, height));
    faces.iter().map(|face| face.bbox().width()).filter(|w| *w >= MIN_FACE).collect()
}

fn judge(widths: &[u32]) -> Faces {
    let Some(largest) = widths.iter().copied().max() else { return Faces::None };
    match widths.iter().filter(|w| f64::from(**w) >= f64::from(largest) * COMPANION_SHARE).count() {
        0 | 1 => Faces::One,
        n => Faces::Many(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, RgbImage};
    use proptest::prelude::*;

    const SELFIE: &[u8] = include_bytes!("../../../tests/fixtures/selfie.jpg");
    const LANDSCAPE: &[u8] = include_bytes!("../../../tests/fixtures/landscape.jpg");
    const MAX_PIXELS: u64 = 50_000_000;

    fn png(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    /// `selfie.jpg` pasted at each (x, y, edge) onto a grey canvas.
    fn collage(width: u32, height: u32, places: &[(u32, u32, u32)]) -> Vec<u8> {
        let selfie = image::load_from_memory(SELFIE).unwrap();
        let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
        for &(x, y, edge) in places {
            let resized = selfie.resize_exact(edge, edge, image::imageops::FilterType::Triangle).to_rgb8();
            image::imageops::replace(&mut canvas, &resized, i64::from(x), i64::from(y));
        }
        png(&DynamicImage::ImageRgb8(canvas))
    }

    #[test]
    fn a_selfie_has_one_face_and_a_landscape_none() {
        assert_eq!(count(SELFIE, MAX_PIXELS).unwrap(), Faces::One);
        assert_eq!(count(LANDSCAPE, MAX_PIXELS).unwrap(), Faces::None);
    }

    #[test]
    fn two_people_side_by_side_are_many_but_a_small_one_behind_is_not() {
        assert_eq!(count(&collage(1024, 512, &[(0, 0, 512), (512, 0, 512)]), MAX_PIXELS).unwrap(), Faces::Many(2));
        assert_eq!(count(&collage(1024, 512, &[(0, 0, 512), (800, 300, 200)]), MAX_PIXELS).unwrap(), Faces::One);
    }

    #[test]
    fn a_big_photo_is_scanned_scaled_down_and_still_found() {
        let big = image::load_from_memory(SELFIE).unwrap().resize(2048, 2048, image::imageops::FilterType::Triangle);
        assert_eq!(count(&png(&big), MAX_PIXELS).unwrap(), Faces::One);
        assert!(matches!(count(&png(&big), 1_000_000), Err(Unreadable::TooManyPixels(_, 1_000_000))));
    }

    #[test]
    fn a_face_too_small_to_use_is_no_face() {
        assert_eq!(count(&collage(2000, 2000, &[(900, 900, 48)]), MAX_PIXELS).unwrap(), Faces::None);
    }

    #[test]
    fn garbage_is_unreadable() {
        assert!(matches!(count(b"not an image at all", MAX_PIXELS), Err(Unreadable::Undecodable(_))));
        assert!(matches!(count(&SELFIE[..200], MAX_PIXELS), Err(Unreadable::Undecodable(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any size of image, down to one pixel, and any content is looked at without a panic.
        #[test]
        fn any_image_is_looked_at_without_panicking(w in 1u32..200, h in 1u32..200, seed in any::<u64>()) {
            let mut state = seed | 1;
            let image = RgbImage::from_fn(w, h, |_, _| {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
            });
            prop_assert!(count(&png(&DynamicImage::ImageRgb8(image)), MAX_PIXELS).is_ok());
        }

        /// Untrusted bytes, including a real image's damaged, never panic.
        #[test]
        fn any_bytes_are_refused_or_counted(cut in 0usize..SELFIE.len(), flip in any::<(usize, u8)>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = SELFIE[..cut].to_vec();
            if !bytes.is_empty() {
                let at = flip.0 % bytes.len();
                bytes[at] ^= flip.1;
            }
            bytes.extend(tail);
            let _ = count(&bytes, MAX_PIXELS);
        }
    }
}
