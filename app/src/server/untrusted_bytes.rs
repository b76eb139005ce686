//! Property tests for every parser of bytes we did not make: uploaded images (JPEG, PNG and WebP
//! re-encoding; HEIF and AVIF containers), the MP4 probe that reads a provider's video as it
//! streams, and inline `data:` outputs. Mutated valid files and random bytes must never panic,
//! and the most heap a parse holds at once stays under a bound set by the input's size and the
//! decoded-picture limit, measured with the counting allocator (`crate::alloc_meter`).

use proptest::prelude::*;
use proptest::sample::Index;

use crate::alloc_meter::peak_heap;
use crate::server::jobs::{data_uri, mp4};
use crate::server::uploads::heif;
use crate::server::uploads::policy::ImageType;
use crate::server::uploads::sanitize::sanitize;
use crate::server::uploads::testdata;

/// The decoded-picture limit in these tests: 1 megapixel.
const MAX_PIXELS: u64 = 1_000_000;
/// What a decoder may hold for the picture itself: 16 bytes per pixel at most (RGBA in f32),
/// plus its tables.
const PICTURE_LIMIT: usize = MAX_PIXELS as usize * 16 + (1 << 20);

/// One change an attacker (or a bad disk) might make to a file.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// A 32-bit field set to an extreme (sizes and counts live in such fields).
    Extreme(Index, u32),
    Repeat(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let extreme = prop_oneof![Just(0u32), Just(1), Just(0x7FFF_FFFF), Just(0xFFFF_FFFF), Just(0xFFFF), any::<u32>()];
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), extreme).prop_map(|(i, v)| Mutation::Extreme(i, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Repeat(a, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, x) => {
                let at = i.index(bytes.len());
                bytes[at] ^= x;
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Insert(i, extra) => {
                let at = i.index(bytes.len());
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Extreme(i, value) => {
                let at = i.index(bytes.len());
                let end = (at + 4).min(bytes.len());
                bytes[at..end].copy_from_slice(&value.to_be_bytes()[..end - at]);
            }
            Mutation::Repeat(a, b) => {
                let (x, y) = (a.index(bytes.len()), b.index(bytes.len()));
                let piece = bytes[x.min(y)..x.max(y)].to_vec();
                bytes.extend_from_slice(&piece);
            }
        }
    }
    bytes
}

/// A valid file of each kind, then changed by a few mutations.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), prop::collection::vec(mutation(), 1..6)).prop_map(|(seed, ms)| apply(seed, &ms))
}

fn images() -> Vec<Vec<u8>> {
    vec![
        testdata::jpeg_with_exif(24, 16, 6, true),
        testdata::png(20, 12),
        testdata::webp(16, 10),
        testdata::heif(b"heic", 640, 480),
        testdata::heif(b"avif", 64, 48),
    ]
}

/// Every kind the upload path accepts, so a mutation that changes the sniffed type still goes
/// through the parser it now looks like.
const KINDS: [ImageType; 5] = [ImageType::Jpeg, ImageType::Png, ImageType::Webp, ImageType::Heif, ImageType::Avif];

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn uploaded_images_never_panic_and_stay_within_memory(bytes in mutated(images())) {
        for kind in KINDS {
            let (_, peak) = peak_heap(|| sanitize(&bytes, kind, MAX_PIXELS));
            prop_assert!(peak <= 4 * bytes.len() + PICTURE_LIMIT, "{kind:?}: {peak} bytes for a {} byte file", bytes.len());
        }
    }

    #[test]
    fn random_bytes_behind_an_image_signature_never_panic(
        magic in prop::sample::select(vec![&b"\xFF\xD8\xFF\xE0"[..], b"\x89PNG\r\n\x1a\n", b"RIFF\x20\0\0\0WEBPVP8 ", b"\0\0\0\x18ftypheic"]),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = [magic, &tail[..]].concat();
        for kind in KINDS {
            let (_, peak) = peak_heap(|| sanitize(&bytes, kind, MAX_PIXELS));
            prop_assert!(peak <= 4 * bytes.len() + PICTURE_LIMIT, "{kind:?}: {peak} bytes");
        }
    }

    #[test]
    fn heif_containers_use_memory_in_proportion_to_the_file(bytes in mutated(vec![
        testdata::heif(b"heic", 640, 480),
        testdata::heif_iloc_bomb(40, 3),
        testdata::HeifBuilder::new(b"heic", 64, 64)
            .item(testdata::HeifItem::v0_mime(b"application/rdf+xml", b"<x:xmpmeta/>"))
            .top_box(b"uuid", &[7; 40])
            .build(),
    ])) {
        let (_, peak) = peak_heap(|| heif::strip_metadata(&bytes, ImageType::Heif, MAX_PIXELS));
        // The copy that is returned, plus a bounded amount for the structure.
        prop_assert!(peak <= 2 * bytes.len() + (256 << 10), "{peak} bytes for a {} byte file", bytes.len());
    }

    #[test]
    fn the_video_probe_holds_little_whatever_it_is_fed(
        bytes in mutated(vec![mp4::sample_header(5_000, 1280, 720, 64), [mp4::sample_header(1, 2, 3, 0), vec![0; 64]].concat()]),
        chunk in 1usize..300,
    ) {
        let (_, peak) = peak_heap(|| {
            let mut probe = mp4::Probe::default();
            for part in bytes.chunks(chunk) {
                probe.feed(part);
            }
            probe.info()
        });
        prop_assert!(peak <= 4 * bytes.len() + 1024, "{peak} bytes for a {} byte stream", bytes.len());
    }

    #[test]
    fn inline_outputs_decode_within_their_limit(
        text in "[a-z/;=+%0-9A-Fa-f,]{0,300}",
        limit in 0u64..200,
    ) {
        let (decoded, peak) = peak_heap(|| data_uri::decode(&text, limit));
        if let Ok(bytes) = decoded {
            prop_assert!(bytes.len() as u64 <= limit);
        }
        prop_assert!(peak <= 4 * text.len() + 64, "{peak} bytes for {} characters", text.len());
    }
}

#[test]
fn a_heic_bomb_costs_memory_in_proportion_to_its_size() {
    // 2,000 items of 65,535 zero-byte pieces each: about 2 GiB before the fix.
    let bomb = testdata::heif_iloc_bomb(2_000, 65_535);
    let (result, peak) = peak_heap(|| heif::strip_metadata(&bomb, ImageType::Heif, MAX_PIXELS));
    assert!(result.is_err());
    assert!(peak <= 2 * bomb.len() + (256 << 10), "{peak} bytes for a {} byte file", bomb.len());
}
