//! HEIF (HEIC) and AVIF: ISO base media file containers whose image data we cannot decode here.
//!
//! Nothing is kept because we failed to recognise it as dangerous; everything is kept only
//! because we recognise it as needed. What stays is the container's structure (`ftyp`, the
//! `meta` boxes that describe items, their properties and locations) and the bytes of image
//! items (coded tiles, grids, overlays). Everything else is blanked in place, so every offset
//! stays valid:
//! - boxes we do not need (`free`, `skip`, `uuid`, a `moov`, anything unknown, at any level we
//!   read) become `free` boxes full of zeros;
//! - the data of every item that is not an image (Exif, XMP, items described by old `infe`
//!   versions, anything else) is zeroed, as are bytes of `mdat` and `idat` no image uses;
//! - item names and the handler name are zeroed.
//!
//! The structure left outside image data is then searched for markup, and a file carrying any
//! is refused as a polyglot. Display orientation in HEIF lives in `irot`/`imir` properties, not
//! in Exif, so it survives.
//!
//! Every count read from the file is checked against the bytes that would have to describe it
//! before anything is allocated, and item, extent and association totals are capped, so the
//! parse needs the copy of the file plus a bounded amount of memory, and time linear in its size
//! (lookups are sorted, never nested scans).

use std::ops::Range;

use super::UploadError;
use super::policy::ImageType;
use super::sanitize::{Sanitized, markup, refuse_trailing_markup};

const HEIF_BRANDS: &[&[u8; 4]] = &[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"];
const AVIF_BRANDS: &[&[u8; 4]] = &[b"avif", b"avis"];

/// Item types whose data is picture data: coded images and the derivations built from them.
const IMAGE_ITEMS: &[&[u8; 4]] =
    &[b"hvc1", b"hev1", b"av01", b"avc1", b"vvc1", b"jpeg", b"j2k1", b"unci", b"grid", b"iovl", b"iden", b"tmap"];
/// Children of `meta` that describe items; any other child is blanked.
const META_BOXES: &[&[u8; 4]] = &[b"hdlr", b"pitm", b"iinf", b"iloc", b"iprp", b"iref", b"idat", b"dinf", b"grpl"];
/// Item properties a decoder needs to show the picture right; any other property is blanked.
const PROPERTIES: &[&[u8; 4]] = &[
    b"hvcC", b"av1C", b"avcC", b"vvcC", b"jpgC", b"j2kH", b"ispe", b"colr", b"pixi", b"irot", b"imir", b"clap",
    b"auxC", b"pasp", b"rloc", b"lsel", b"a1op", b"a1lx", b"clli", b"mdcv", b"cclv", b"amve", b"uncC", b"cmpd",
];

/// Real photos have a few hundred items at most (a 48-tile grid, its gain map, thumbnails), so
/// these caps refuse nothing a camera makes and bound what a crafted file can make us hold.
const MAX_ITEMS: usize = 10_000;
const MAX_EXTENTS: usize = 20_000;
const MAX_PICTURE_PIECES: usize = 4_096;
const MAX_MEDIA_BOXES: usize = 1_024;

fn invalid(why: &str) -> UploadError {
    UploadError::Undecodable(format!("the HEIF container is invalid: {why}"))
}

/// HEIF or AVIF, from the `ftyp` box's brands (AVIF wins when both appear).
pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
    let found = box_at(bytes, 0, bytes.len()).ok()?;
    if &found.kind != b"ftyp" || found.end - found.payload < 8 {
        return None;
    }
    let brands = std::iter::once(&bytes[found.payload..found.payload + 4])
        .chain(bytes[found.payload + 8..found.end].chunks_exact(4));
    let (mut avif, mut heif) = (false, false);
    for brand in brands {
        avif |= AVIF_BRANDS.iter().any(|a| a.as_slice() == brand);
        heif |= HEIF_BRANDS.iter().any(|h| h.as_slice() == brand);
    }
    if avif {
        Some(ImageType::Avif)
    } else if heif {
        Some(ImageType::Heif)
    } else {
        None
    }
}

/// A box: its type, where it starts, where its payload starts, where it ends.
#[derive(Clone, Copy, Debug)]
struct Bmff {
    kind: [u8; 4],
    start: usize,
    payload: usize,
    end: usize,
}

/// Reads the box at `offset` inside a parent that ends at `limit`.
fn box_at(bytes: &[u8], offset: usize, limit: usize) -> Result<Bmff, UploadError> {
    let header = bytes.get(offset..offset.saturating_add(8)).filter(|_| offset + 8 <= limit);
    let header = header.ok_or_else(|| invalid("truncated box header"))?;
    let size32 = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
    let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
    let (size, payload) = match size32 {
        0 => ((limit - offset) as u64, offset + 8),
        1 => {
            let large = bytes.get(offset + 8..offset + 16).filter(|_| offset + 16 <= limit);
            let large = large.ok_or_else(|| invalid("truncated box size"))?;
            (u64::from_be_bytes(large.try_into().expect("8 bytes")), offset + 16)
        }
        n => (u64::from(n), offset + 8),
    };
    let end = usize::try_from(size).ok().and_then(|s| offset.checked_add(s)).ok_or_else(|| invalid("box too large"))?;
    if end > limit || end < payload {
        return Err(invalid("a box runs past the end of its container"));
    }
    Ok(Bmff { kind, start: offset, payload, end })
}

/// The boxes that fill `[start, end)` exactly, one at a time (no list is built).
fn children(bytes: &[u8], start: usize, end: usize) -> impl Iterator<Item = Result<Bmff, UploadError>> + '_ {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let found = box_at(bytes, at, end);
        at = found.as_ref().map_or(end, |b| b.end);
        Some(found)
    })
}

/// Turns a box we do not keep into a `free` box of zeros (same size, so offsets stay valid).
fn blank_box(out: &mut [u8], found: &Bmff) {
    out[found.start + 4..found.start + 8].copy_from_slice(b"free");
    out[found.payload..found.end].fill(0);
}

/// A cursor over a box payload with big-endian reads; `base` is the payload's file offset.
struct Reader<'a> {
    bytes: &'a [u8],
    base: usize,
    at: usize,
}

impl<'a> Reader<'a> {
    fn of(bytes: &'a [u8], found: &Bmff) -> Self {
        Self { bytes: &bytes[found.payload..found.end], base: found.payload, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UploadError> {
        if n > self.remaining() {
            return Err(invalid("a box is shorter than its fields"));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn uint(&mut self, size: usize) -> Result<u64, UploadError> {
        Ok(self.take(size)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn u8(&mut self) -> Result<u8, UploadError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, UploadError> {
        Ok(self.uint(2)? as u16)
    }

    fn u32(&mut self) -> Result<u32, UploadError> {
        Ok(self.uint(4)? as u32)
    }

    /// A FullBox's version and flags.
    fn full_box(&mut self) -> Result<(u8, u32), UploadError> {
        let version = self.u8()?;
        Ok((version, self.uint(3)? as u32))
    }

    /// A NUL-terminated string (or the rest of the box); returns its file range.
    fn cstring(&mut self) -> Range<usize> {
        let rest = &self.bytes[self.at..];
        let len = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        let range = self.base + self.at..self.base + self.at + len;
        self.at += (len + 1).min(rest.len());
        range
    }

    /// Refuses a count whose entries, at `each` bytes at least, could not fit in what remains.
    fn check_count(&self, count: u64, each: usize) -> Result<(), UploadError> {
        if count.saturating_mul(each.max(1) as u64) > self.remaining() as u64 {
            return Err(invalid("a count is larger than its box"));
        }
        Ok(())
    }
}

/// Where one piece of an item's data is: the file (construction method 0), the `idat` box
/// (method 1), or another item (method 2, which holds no bytes of its own).
#[derive(Clone, Copy, Debug)]
struct Extent {
    item: u32,
    method: u8,
    start: u64,
    length: u64,
}

/// What `meta` says about the items, as far as keeping or blanking their data needs.
#[derive(Debug, Default)]
struct Meta {
    primary: u32,
    /// (item id, item type), sorted by id; items described by `infe` v0/v1 have type `\0\0\0\0`.
    items: Vec<(u32, [u8; 4])>,
    primary_size: Option<(u32, u32)>,
    idat: Option<Range<usize>>,
}

impl Meta {
    fn is_image(&self, id: u32) -> bool {
        let at = self.items.binary_search_by_key(&id, |(item, _)| *item);
        at.is_ok_and(|at| IMAGE_ITEMS.iter().any(|t| **t == self.items[at].1))
    }
}

/// The children of `meta` we read, found in a first pass (their order is free in the format).
#[derive(Default)]
struct MetaBoxes {
    hdlr: Option<Bmff>,
    pitm: Option<Bmff>,
    iinf: Option<Bmff>,
    iloc: Option<Bmff>,
    iprp: Option<Bmff>,
    idat: Option<Bmff>,
}

/// Reads `meta`, blanking in `out` what it describes but we do not keep, and returns the byte
/// ranges of the picture data (each inside one of the `media` boxes or the `idat`).
fn parse_meta(
    bytes: &[u8],
    out: &mut [u8],
    found: &Bmff,
    media: &[Range<usize>],
) -> Result<(Meta, Vec<Range<usize>>), UploadError> {
    let mut boxes = MetaBoxes::default();
    let mut kept: Vec<[u8; 4]> = Vec::new();
    // `meta` is a FullBox: its children start after version and flags.
    for child in children(bytes, found.payload + 4, found.end) {
        let child = child?;
        if !META_BOXES.iter().any(|k| **k == child.kind) {
            blank_box(out, &child);
            continue;
        }
        if kept.contains(&child.kind) {
            return Err(invalid("a metadata box appears twice"));
        }
        kept.push(child.kind);
        let slot = match &child.kind {
            b"hdlr" => &mut boxes.hdlr,
            b"pitm" => &mut boxes.pitm,
            b"iinf" => &mut boxes.iinf,
            b"iloc" => &mut boxes.iloc,
            b"iprp" => &mut boxes.iprp,
            b"idat" => &mut boxes.idat,
            _ => continue,
        };
        *slot = Some(child);
    }

    let hdlr = boxes.hdlr.ok_or_else(|| invalid("the metadata has no handler"))?;
    let mut r = Reader::of(bytes, &hdlr);
    r.full_box()?;
    r.take(4)?;
    if r.take(4)? != b"pict" {
        return Err(invalid("the metadata is not for a picture"));
    }
    r.take(12)?;
    out[hdlr.payload + r.at..hdlr.end].fill(0);

    let pitm = boxes.pitm.ok_or_else(|| invalid("no primary image"))?;
    let mut r = Reader::of(bytes, &pitm);
    let (version, _) = r.full_box()?;
    let primary = if version == 0 { u32::from(r.u16()?) } else { r.u32()? };

    let mut meta = Meta { primary, idat: boxes.idat.map(|b| b.payload..b.end), ..Meta::default() };
    if let Some(iinf) = &boxes.iinf {
        meta.items = parse_iinf(bytes, out, iinf)?;
    }
    if let Some(iprp) = &boxes.iprp {
        meta.primary_size = parse_iprp(bytes, out, iprp, primary)?;
    }
    let mut pictures = Vec::new();
    if let Some(iloc) = &boxes.iloc {
        parse_iloc(&mut Reader::of(bytes, iloc), |extent| {
            let Some(range) = extent_range(&meta, &extent, bytes.len())? else { return Ok(()) };
            if !meta.is_image(extent.item) {
                // Wherever it points, even into a picture: no metadata survives an overlap.
                out[range].fill(0);
                return Ok(());
            }
            let inside = |r: &Range<usize>| r.start <= range.start && range.end <= r.end;
            if !(media.iter().any(inside) || meta.idat.as_ref().is_some_and(inside)) {
                return Err(invalid("picture data outside the media boxes"));
            }
            if pictures.len() >= MAX_PICTURE_PIECES {
                return Err(invalid("too many picture pieces"));
            }
            pictures.push(range);
            Ok(())
        })?;
    }
    Ok((meta, pictures))
}

/// Item descriptions: every `infe` version. Names are zeroed; versions 0 and 1 carry no item
/// type, so their items count as "not an image" and their data is blanked.
fn parse_iinf(bytes: &[u8], out: &mut [u8], found: &Bmff) -> Result<Vec<(u32, [u8; 4])>, UploadError> {
    let mut items = Vec::new();
    let mut r = Reader::of(bytes, found);
    let (version, _) = r.full_box()?;
    let _count = if version == 0 { u32::from(r.u16()?) } else { r.u32()? };
    for entry in children(bytes, found.payload + r.at, found.end) {
        let entry = entry?;
        if &entry.kind != b"infe" {
            blank_box(out, &entry);
            continue;
        }
        if items.len() >= MAX_ITEMS {
            return Err(invalid("too many items"));
        }
        let mut e = Reader::of(bytes, &entry);
        let (version, _) = e.full_box()?;
        let (id, kind) = match version {
            0 | 1 => (u32::from(e.u16()?), [0; 4]),
            2 | 3 => {
                let id = if version == 2 { u32::from(e.u16()?) } else { e.u32()? };
                e.u16()?;
                (id, e.take(4)?.try_into().expect("4 bytes"))
            }
            _ => return Err(invalid("unknown item description version")),
        };
        if version < 2 {
            e.u16()?;
        }
        let name = e.cstring();
        out[name].fill(0);
        items.push((id, kind));
    }
    items.sort_unstable_by_key(|(id, _)| *id);
    if items.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(invalid("an item is described twice"));
    }
    Ok(items)
}

/// Item locations, handed one piece at a time to `each` (nothing is collected here).
fn parse_iloc(r: &mut Reader<'_>, mut each: impl FnMut(Extent) -> Result<(), UploadError>) -> Result<(), UploadError> {
    let (version, _) = r.full_box()?;
    if version > 2 {
        return Err(invalid("unknown item location version"));
    }
    let sizes = r.u16()?;
    let field = |shift: u16| usize::from((sizes >> shift) & 0xF);
    let (offset_size, length_size, base_size) = (field(12), field(8), field(4));
    let index_size = if version >= 1 { field(0) } else { 0 };
    if [offset_size, length_size, base_size, index_size].iter().any(|s| !matches!(s, 0 | 4 | 8)) {
        return Err(invalid("item location fields must be 0, 4 or 8 bytes"));
    }
    let id_size = if version < 2 { 2 } else { 4 };
    let count = u64::from(if version < 2 { u32::from(r.u16()?) } else { r.u32()? });
    let item_header = id_size + if version >= 1 { 2 } else { 0 } + 2 + base_size + 2;
    r.check_count(count, item_header)?;
    let extent_size = index_size + offset_size + length_size;
    let mut pieces = 0usize;
    for _ in 0..count {
        let item = r.uint(id_size)? as u32;
        let method = if version >= 1 { (r.u16()? & 0xF) as u8 } else { 0 };
        if r.u16()? != 0 {
            return Err(invalid("item data in another file"));
        }
        let base = r.uint(base_size)?;
        let extent_count = r.u16()?;
        // An extent of zero bytes cannot describe more than one piece: it means "all of it".
        if extent_count == 0 || (extent_size == 0 && extent_count > 1) {
            return Err(invalid("an item's data is described impossibly"));
        }
        r.check_count(u64::from(extent_count), extent_size)?;
        pieces += usize::from(extent_count);
        if pieces > MAX_EXTENTS {
            return Err(invalid("too many item pieces"));
        }
        for _ in 0..extent_count {
            r.uint(index_size)?;
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            let start = base.checked_add(offset).ok_or_else(|| invalid("item offset overflows"))?;
            each(Extent { item, method, start, length })?;
        }
    }
    Ok(())
}

/// Item properties: blanks unknown ones and returns the primary item's size (`ispe`).
fn parse_iprp(bytes: &[u8], out: &mut [u8], found: &Bmff, primary: u32) -> Result<Option<(u32, u32)>, UploadError> {
    // (1-based property index, width, height) of each `ispe`, in index order.
    let mut sizes: Vec<(u32, u32, u32)> = Vec::new();
    let mut primary_size = None;
    for child in children(bytes, found.payload, found.end) {
        let child = child?;
        match &child.kind {
            b"ipco" => {
                for (index, property) in children(bytes, child.payload, child.end).enumerate() {
                    let property = property?;
                    if &property.kind == b"ispe" {
                        let mut p = Reader::of(bytes, &property);
                        p.full_box()?;
                        let index = u32::try_from(index + 1).map_err(|_| invalid("too many properties"))?;
                        sizes.push((index, p.u32()?, p.u32()?));
                    } else if !PROPERTIES.iter().any(|k| **k == property.kind) {
                        blank_box(out, &property);
                    }
                }
            }
            b"ipma" => {
                let mut p = Reader::of(bytes, &child);
                let (version, flags) = p.full_box()?;
                let id_size = if version < 1 { 2 } else { 4 };
                let each = if flags & 1 == 1 { 2 } else { 1 };
                let count = p.u32()?;
                p.check_count(u64::from(count), id_size + 1)?;
                for _ in 0..count {
                    let item = p.uint(id_size)? as u32;
                    let props = p.u8()?;
                    p.check_count(u64::from(props), each)?;
                    for _ in 0..props {
                        let index = if each == 2 { u32::from(p.u16()? & 0x7FFF) } else { u32::from(p.u8()? & 0x7F) };
                        if item == primary && primary_size.is_none() {
                            let at = sizes.binary_search_by_key(&index, |(i, _, _)| *i);
                            primary_size = at.ok().map(|at| (sizes[at].1, sizes[at].2));
                        }
                    }
                }
            }
            _ => blank_box(out, &child),
        }
    }
    Ok(primary_size)
}

/// Checks the container and returns a copy holding only its structure and its image data.
pub fn strip_metadata(bytes: &[u8], kind: ImageType, max_pixels: u64) -> Result<Sanitized, UploadError> {
    let mut out = bytes.to_vec();
    let mut meta_box = None;
    let mut media: Vec<Range<usize>> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let found = match box_at(bytes, at, bytes.len()) {
            Ok(found) => found,
            // Bytes after the last box that do not form one: markup is a polyglot, anything
            // else a corrupt file.
            Err(err) => {
                refuse_trailing_markup(&bytes[at..])?;
                return Err(err);
            }
        };
        match &found.kind {
            b"ftyp" if at == 0 => {}
            b"meta" if meta_box.is_none() => meta_box = Some(found),
            b"meta" => return Err(invalid("more than one metadata box")),
            b"mdat" if media.len() < MAX_MEDIA_BOXES => media.push(found.payload..found.end),
            b"mdat" => return Err(invalid("too many media boxes")),
            _ => blank_box(&mut out, &found),
        }
        at = found.end;
    }
    let meta_box = meta_box.ok_or_else(|| invalid("no metadata box"))?;
    let (meta, pictures) = parse_meta(bytes, &mut out, &meta_box, &media)?;
    if !meta.is_image(meta.primary) {
        return Err(invalid("the primary item is not an image"));
    }
    let (width, height) = meta.primary_size.ok_or_else(|| invalid("the primary image has no size"))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(UploadError::Undecodable("the image has no pixels".into()));
    }
    if pixels > max_pixels {
        return Err(UploadError::TooManyPixels { width, height, max_pixels });
    }

    // Media bytes no picture uses are zeroed (where Exif and XMP items usually live).
    let pictures = merged(pictures);
    media.extend(meta.idat.clone());
    media.sort_unstable_by_key(|r| r.start);
    for unused in gaps(&media, &pictures) {
        out[unused].fill(0);
    }
    for outside_pictures in gaps(&[0..out.len()], &pictures) {
        if let Some(found) = markup(&out[outside_pictures]) {
            return Err(UploadError::Polyglot(found));
        }
    }
    Ok(Sanitized { bytes: out, kind, width, height })
}

/// The file range an extent covers (`None` for one that refers to another item). Every range
/// must be inside the file (a truncated upload fails here) and hold at least one byte.
fn extent_range(meta: &Meta, extent: &Extent, file_len: usize) -> Result<Option<Range<usize>>, UploadError> {
    let outside = || invalid("item data is outside the file (truncated?)");
    let start = usize::try_from(extent.start).map_err(|_| outside())?;
    let length = usize::try_from(extent.length).map_err(|_| outside())?;
    let (from, limit) = match extent.method {
        0 => (start, file_len),
        1 => {
            let idat = meta.idat.clone().ok_or_else(|| invalid("item data in a missing idat box"))?;
            (idat.start.checked_add(start).ok_or_else(outside)?, idat.end)
        }
        2 if meta.is_image(extent.item) => return Ok(None),
        _ => return Err(invalid("item data stored in an unsupported way")),
    };
    let to = from.checked_add(length).ok_or_else(outside)?;
    if length == 0 || to > limit {
        return Err(outside());
    }
    Ok(Some(from..to))
}

/// `ranges` sorted, with overlapping and touching ones joined.
fn merged(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match out.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => out.push(range),
        }
    }
    out
}

/// The parts of `areas` (sorted by start) not covered by `covered` (sorted, disjoint).
fn gaps<'a>(areas: &'a [Range<usize>], covered: &'a [Range<usize>]) -> impl Iterator<Item = Range<usize>> + 'a {
    areas.iter().flat_map(move |area| {
        let mut pieces = Vec::new();
        let mut at = area.start;
        let first = covered.partition_point(|c| c.end <= area.start);
        for c in covered[first..].iter().take_while(|c| c.start < area.end) {
            if c.start > at {
                pieces.push(at..c.start);
            }
            at = at.max(c.end);
        }
        if at < area.end {
            pieces.push(at..area.end);
        }
        pieces
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::uploads::testdata::{self, HeifItem, contains};

    const MAX: u64 = 50_000_000;

    #[test]
    fn heic_metadata_is_blanked_and_size_read() {
        let file = testdata::heif(b"heic", 4032, 3024);
        assert_eq!(sniff(&file), Some(ImageType::Heif));
        assert!(contains(&file, testdata::GPS_MARK) && contains(&file, b"<x:xmpmeta"));
        let clean = strip_metadata(&file, ImageType::Heif, MAX).unwrap();
        assert_eq!((clean.width, clean.height), (4032, 3024));
        assert!(!contains(&clean.bytes, testdata::GPS_MARK), "Exif item blanked");
        assert!(!contains(&clean.bytes, b"<x:xmpmeta"), "XMP item blanked");
        assert!(contains(&clean.bytes, testdata::HEVC_MARK), "image data untouched");
        assert_eq!(clean.bytes.len(), file.len());
        assert_eq!(strip_metadata(&clean.bytes, ImageType::Heif, MAX).unwrap().bytes, clean.bytes, "stable");
    }

    #[test]
    fn avif_is_recognised_by_brand() {
        let file = testdata::heif(b"avif", 64, 48);
        assert_eq!(sniff(&file), Some(ImageType::Avif));
        assert_eq!(strip_metadata(&file, ImageType::Avif, MAX).unwrap().width, 64);
    }

    #[test]
    fn broken_containers_are_refused() {
        let file = testdata::heif(b"heic", 640, 480);
        assert!(matches!(
            strip_metadata(&file[..file.len() - 10], ImageType::Heif, MAX),
            Err(UploadError::Undecodable(_))
        ));
        let mut with_html = file.clone();
        with_html.extend_from_slice(b"<html><script>alert(1)</script>");
        assert!(matches!(strip_metadata(&with_html, ImageType::Heif, MAX), Err(UploadError::Polyglot(_))));
        let huge = testdata::heif(b"heic", 100_000, 100_000);
        assert!(matches!(strip_metadata(&huge, ImageType::Heif, MAX), Err(UploadError::TooManyPixels { .. })));
        assert_eq!(sniff(b"\0\0\0\x10ftypisom\0\0\0\0"), None, "an MP4 is not an image");
    }

    #[test]
    fn markup_in_unused_boxes_and_media_gaps_is_blanked() {
        let markup = b"<html><body><script>alert(document.cookie)</script></body></html>";
        let file = testdata::HeifBuilder::new(b"heic", 64, 64)
            .top_box(b"free", markup)
            .top_box(b"skip", markup)
            .top_box(b"uuid", &[&[0x11; 16][..], markup].concat())
            .mdat_gap(markup)
            .last_box_to_end_of_file(b"free", markup)
            .build();
        assert!(contains(&file, b"<script>"));
        let clean = strip_metadata(&file, ImageType::Heif, MAX).unwrap();
        assert!(!contains(&clean.bytes, b"<script>"), "no markup left anywhere");
        assert!(!contains(&clean.bytes, b"uuid"), "unused boxes are turned into free space");
        assert!(contains(&clean.bytes, testdata::HEVC_MARK), "the picture is kept");
    }

    #[test]
    fn metadata_in_old_item_descriptions_and_unknown_items_is_blanked() {
        let file = testdata::HeifBuilder::new(b"heic", 64, 64)
            .item(HeifItem::v0_mime(b"application/rdf+xml", b"<x:xmpmeta>GPS DARKROOM-GPS-TEST</x:xmpmeta>"))
            .item(HeifItem::v1_mime(b"application/octet-stream", b"Exif\0\0 DARKROOM-GPS-TEST"))
            .item(HeifItem::typed(b"cust", b"DARKROOM-GPS-TEST in a custom item"))
            .build();
        assert!(contains(&file, testdata::GPS_MARK));
        let clean = strip_metadata(&file, ImageType::Heif, MAX).unwrap();
        assert!(!contains(&clean.bytes, testdata::GPS_MARK), "no location survives in any item");
        assert!(contains(&clean.bytes, testdata::HEVC_MARK));
    }

    #[test]
    fn markup_hidden_in_the_structure_is_refused() {
        let file = testdata::HeifBuilder::new(b"heic", 64, 64).item_name(b"<script>alert(1)</script>").build();
        let clean = strip_metadata(&file, ImageType::Heif, MAX).unwrap();
        assert!(!contains(&clean.bytes, b"<script>"), "item names are blanked");
        let file =
            testdata::HeifBuilder::new(b"heic", 64, 64).property(b"colr", b"prof<html><script>x</script>").build();
        assert!(matches!(strip_metadata(&file, ImageType::Heif, MAX), Err(UploadError::Polyglot(_))));
    }

    #[test]
    fn zero_sized_item_locations_cannot_make_the_parse_allocate() {
        // 2,000 items, each claiming 65,535 pieces of zero bytes: about 2 GiB before the fix.
        let bomb = testdata::heif_iloc_bomb(2_000, 65_535);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert!(matches!(strip_metadata(&bomb, ImageType::Heif, MAX), Err(UploadError::Undecodable(_))));
    }

    #[test]
    fn gaps_are_what_is_not_covered() {
        let areas = [0..10, 20..30];
        let covered = merged(vec![25..26, 3..5, 2..4, 8..22, 9..10]);
        assert_eq!(covered, [2..5, 8..22, 25..26]);
        let found: Vec<_> = gaps(&areas, &covered).collect();
        assert_eq!(found, [0..2, 5..8, 22..25, 26..30]);
    }
}
