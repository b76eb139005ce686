//! HEIF (HEIC) and AVIF: ISO base media file containers whose image data we cannot decode here.
//!
//! What we can do, and do: check the container is well-formed (every box in bounds, nothing
//! after the last box, a primary item with sane dimensions and its data inside the file), and
//! blank the payload of every Exif and XMP item so no location or camera data survives. The
//! image data is untouched; display orientation in HEIF lives in `irot`/`imir` properties, not
//! in Exif, so it survives.

use super::UploadError;
use super::policy::ImageType;
use super::sanitize::{Sanitized, refuse_trailing_markup};

const HEIF_BRANDS: &[&[u8; 4]] = &[b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"];
const AVIF_BRANDS: &[&[u8; 4]] = &[b"avif", b"avis"];

fn invalid(why: &str) -> UploadError {
    UploadError::Undecodable(format!("the HEIF container is invalid: {why}"))
}

/// HEIF or AVIF, from the `ftyp` box's brands (AVIF wins when both appear).
pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
    let (kind, header, end) = box_at(bytes, 0).ok()?;
    if &kind != b"ftyp" || end - header < 8 {
        return None;
    }
    let brands: Vec<&[u8]> =
        std::iter::once(&bytes[header..header + 4]).chain(bytes[header + 8..end].chunks_exact(4)).collect();
    if brands.iter().any(|b| AVIF_BRANDS.iter().any(|a| a.as_slice() == *b)) {
        Some(ImageType::Avif)
    } else if brands.iter().any(|b| HEIF_BRANDS.iter().any(|h| h.as_slice() == *b)) {
        Some(ImageType::Heif)
    } else {
        None
    }
}

/// Reads the box at `offset`: (type, payload start, end).
fn box_at(bytes: &[u8], offset: usize) -> Result<([u8; 4], usize, usize), UploadError> {
    let header = bytes.get(offset..offset + 8).ok_or_else(|| invalid("truncated box header"))?;
    let size32 = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as u64;
    let kind: [u8; 4] = header[4..8].try_into().expect("4 bytes");
    let (size, payload) = match size32 {
        0 => ((bytes.len() - offset) as u64, offset + 8),
        1 => {
            let large = bytes.get(offset + 8..offset + 16).ok_or_else(|| invalid("truncated box size"))?;
            (u64::from_be_bytes(large.try_into().expect("8 bytes")), offset + 16)
        }
        n => (n, offset + 8),
    };
    let end = usize::try_from(size).ok().and_then(|s| offset.checked_add(s)).ok_or_else(|| invalid("box too large"))?;
    if end > bytes.len() || end < payload {
        return Err(invalid("a box runs past the end of the file"));
    }
    Ok((kind, payload, end))
}

/// The child boxes of the payload `[start, end)`.
fn children(bytes: &[u8], start: usize, end: usize) -> Result<Vec<([u8; 4], usize, usize)>, UploadError> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let (kind, payload, box_end) = box_at(&bytes[..end], at)?;
        out.push((kind, payload, box_end));
        at = box_end;
    }
    Ok(out)
}

/// A cursor over a box payload with big-endian reads.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], UploadError> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or_else(|| invalid("a box is shorter than its fields"))?;
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

    fn cstring(&mut self) -> Result<&'a [u8], UploadError> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let len = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        self.at += (len + 1).min(rest.len());
        Ok(&rest[..len])
    }
}

/// Where an item's bytes are: absolute file ranges (construction method 0) or ranges inside
/// the `idat` box (method 1).
#[derive(Debug, Default)]
struct Location {
    method: u8,
    extents: Vec<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Meta {
    primary: Option<u32>,
    /// item id → (type, MIME content type for `mime` items)
    items: Vec<(u32, [u8; 4], Vec<u8>)>,
    locations: Vec<(u32, Location)>,
    /// (width, height) of each `ispe` in `ipco`, by 1-based property index.
    sizes: Vec<(usize, u32, u32)>,
    /// item id → property indexes
    associations: Vec<(u32, Vec<usize>)>,
    idat: Option<(usize, usize)>,
}

fn parse_meta(bytes: &[u8], payload: usize, end: usize) -> Result<Meta, UploadError> {
    let mut meta = Meta::default();
    // `meta` is a FullBox: skip version and flags.
    let mut handler_ok = false;
    for (kind, start, stop) in children(bytes, payload + 4, end)? {
        let mut r = Reader::new(&bytes[start..stop]);
        match &kind {
            b"hdlr" => {
                r.full_box()?;
                r.take(4)?;
                handler_ok = r.take(4)? == b"pict";
            }
            b"pitm" => {
                let (version, _) = r.full_box()?;
                meta.primary = Some(if version == 0 { u32::from(r.u16()?) } else { r.u32()? });
            }
            b"iinf" => {
                let (version, _) = r.full_box()?;
                let _count = if version == 0 { u32::from(r.u16()?) } else { r.u32()? };
                let entries = children(bytes, start + r.at, stop)?;
                for (entry, e_start, e_stop) in entries {
                    if &entry != b"infe" {
                        continue;
                    }
                    let mut e = Reader::new(&bytes[e_start..e_stop]);
                    let (version, _) = e.full_box()?;
                    if version < 2 {
                        continue;
                    }
                    let id = if version == 2 { u32::from(e.u16()?) } else { e.u32()? };
                    e.u16()?;
                    let item_type: [u8; 4] = e.take(4)?.try_into().expect("4 bytes");
                    e.cstring()?;
                    let content_type = if &item_type == b"mime" { e.cstring()?.to_vec() } else { Vec::new() };
                    meta.items.push((id, item_type, content_type));
                }
            }
            b"iloc" => meta.locations = parse_iloc(&mut r)?,
            b"iprp" => {
                for (child, c_start, c_stop) in children(bytes, start, stop)? {
                    match &child {
                        b"ipco" => {
                            for (index, (prop, p_start, p_stop)) in
                                children(bytes, c_start, c_stop)?.into_iter().enumerate()
                            {
                                if &prop == b"ispe" {
                                    let mut p = Reader::new(&bytes[p_start..p_stop]);
                                    p.full_box()?;
                                    meta.sizes.push((index + 1, p.u32()?, p.u32()?));
                                }
                            }
                        }
                        b"ipma" => {
                            let mut p = Reader::new(&bytes[c_start..c_stop]);
                            let (version, flags) = p.full_box()?;
                            for _ in 0..p.u32()? {
                                let id = if version < 1 { u32::from(p.u16()?) } else { p.u32()? };
                                let count = p.u8()?;
                                let mut props = Vec::with_capacity(usize::from(count));
                                for _ in 0..count {
                                    let index = if flags & 1 == 1 {
                                        usize::from(p.u16()? & 0x7FFF)
                                    } else {
                                        usize::from(p.u8()? & 0x7F)
                                    };
                                    props.push(index);
                                }
                                meta.associations.push((id, props));
                            }
                        }
                        _ => {}
                    }
                }
            }
            b"idat" => meta.idat = Some((start, stop)),
            _ => {}
        }
    }
    if !handler_ok {
        return Err(invalid("the metadata is not for a picture"));
    }
    Ok(meta)
}

fn parse_iloc(r: &mut Reader<'_>) -> Result<Vec<(u32, Location)>, UploadError> {
    let (version, _) = r.full_box()?;
    if version > 2 {
        return Err(invalid("unknown item location version"));
    }
    let sizes = r.u16()?;
    let (offset_size, length_size, base_size) =
        (usize::from(sizes >> 12), usize::from((sizes >> 8) & 0xF), usize::from((sizes >> 4) & 0xF));
    let index_size = if version >= 1 { usize::from(sizes & 0xF) } else { 0 };
    let count = if version < 2 { u32::from(r.u16()?) } else { r.u32()? };
    let mut out = Vec::new();
    for _ in 0..count {
        let id = if version < 2 { u32::from(r.u16()?) } else { r.u32()? };
        let method = if version >= 1 { (r.u16()? & 0xF) as u8 } else { 0 };
        r.u16()?;
        let base = r.uint(base_size)?;
        let extent_count = r.u16()?;
        let mut location = Location { method, extents: Vec::with_capacity(usize::from(extent_count)) };
        for _ in 0..extent_count {
            r.uint(index_size)?;
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            let start = base.checked_add(offset).ok_or_else(|| invalid("item offset overflows"))?;
            location.extents.push((start, length));
        }
        out.push((id, location));
    }
    Ok(out)
}

/// Checks the container and returns a copy with every Exif and XMP item's bytes zeroed.
pub fn strip_metadata(bytes: &[u8], kind: ImageType, max_pixels: u64) -> Result<Sanitized, UploadError> {
    let mut meta = None;
    let mut at = 0;
    while at < bytes.len() {
        let (box_kind, payload, end) = match box_at(bytes, at) {
            Ok(found) => found,
            // Bytes after the last box that do not form one: markup is a polyglot, anything
            // else a corrupt file.
            Err(err) => {
                refuse_trailing_markup(&bytes[at..])?;
                return Err(err);
            }
        };
        if &box_kind == b"meta" {
            if meta.is_some() {
                return Err(invalid("more than one metadata box"));
            }
            meta = Some(parse_meta(bytes, payload, end)?);
        }
        at = end;
    }
    let meta = meta.ok_or_else(|| invalid("no metadata box"))?;
    let primary = meta.primary.ok_or_else(|| invalid("no primary image"))?;
    if !meta.items.iter().any(|(id, _, _)| *id == primary) {
        return Err(invalid("the primary image is not described"));
    }

    let (width, height) = meta
        .associations
        .iter()
        .find(|(id, _)| *id == primary)
        .and_then(|(_, props)| props.iter().find_map(|p| meta.sizes.iter().find(|(i, _, _)| i == p)))
        .map(|(_, w, h)| (*w, *h))
        .ok_or_else(|| invalid("the primary image has no size"))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(UploadError::Undecodable("the image has no pixels".into()));
    }
    if pixels > max_pixels {
        return Err(UploadError::TooManyPixels { width, height, max_pixels });
    }

    // Every file-located extent must be inside the file (a truncated upload fails here).
    let file_range = |start: u64, length: u64| -> Result<(usize, usize), UploadError> {
        let start = usize::try_from(start).map_err(|_| invalid("item outside the file"))?;
        let end =
            usize::try_from(length).ok().and_then(|l| start.checked_add(l)).ok_or_else(|| invalid("item too large"))?;
        if length == 0 || end > bytes.len() {
            Err(invalid("item data is outside the file (truncated?)"))
        } else {
            Ok((start, end))
        }
    };
    for (_, location) in meta.locations.iter().filter(|(_, l)| l.method == 0) {
        for (start, length) in &location.extents {
            file_range(*start, *length)?;
        }
    }

    let mut out = bytes.to_vec();
    let metadata_items = meta
        .items
        .iter()
        .filter(|(_, t, content)| t == b"Exif" || (t == b"mime" && is_xmp(content)))
        .map(|(id, _, _)| *id);
    for id in metadata_items {
        let Some((_, location)) = meta.locations.iter().find(|(item, _)| *item == id) else { continue };
        for (start, length) in &location.extents {
            let (from, to) = match location.method {
                0 => file_range(*start, *length)?,
                1 => {
                    let (idat_start, idat_end) = meta.idat.ok_or_else(|| invalid("metadata in a missing idat box"))?;
                    let from = idat_start + usize::try_from(*start).map_err(|_| invalid("idat offset"))?;
                    let to = from + usize::try_from(*length).map_err(|_| invalid("idat length"))?;
                    if *length == 0 || to > idat_end {
                        return Err(invalid("metadata outside its idat box"));
                    }
                    (from, to)
                }
                _ => return Err(invalid("metadata stored in an unsupported way")),
            };
            out[from..to].fill(0);
        }
    }
    Ok(Sanitized { bytes: out, kind, width, height })
}

fn is_xmp(content_type: &[u8]) -> bool {
    let text = String::from_utf8_lossy(content_type).to_ascii_lowercase();
    text.contains("rdf+xml") || text.contains("xmp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::uploads::testdata::{self, contains};

    #[test]
    fn heic_metadata_is_blanked_and_size_read() {
        let file = testdata::heif(b"heic", 4032, 3024);
        assert_eq!(sniff(&file), Some(ImageType::Heif));
        assert!(contains(&file, testdata::GPS_MARK) && contains(&file, b"<x:xmpmeta"));
        let clean = strip_metadata(&file, ImageType::Heif, 50_000_000).unwrap();
        assert_eq!((clean.width, clean.height), (4032, 3024));
        assert!(!contains(&clean.bytes, testdata::GPS_MARK), "Exif item blanked");
        assert!(!contains(&clean.bytes, b"<x:xmpmeta"), "XMP item blanked");
        assert!(contains(&clean.bytes, testdata::HEVC_MARK), "image data untouched");
        assert_eq!(clean.bytes.len(), file.len());
    }

    #[test]
    fn avif_is_recognised_by_brand() {
        let file = testdata::heif(b"avif", 64, 48);
        assert_eq!(sniff(&file), Some(ImageType::Avif));
        assert_eq!(strip_metadata(&file, ImageType::Avif, 50_000_000).unwrap().width, 64);
    }

    #[test]
    fn broken_containers_are_refused() {
        let file = testdata::heif(b"heic", 640, 480);
        assert!(matches!(
            strip_metadata(&file[..file.len() - 10], ImageType::Heif, 50_000_000),
            Err(UploadError::Undecodable(_))
        ));
        let mut with_html = file.clone();
        with_html.extend_from_slice(b"<html><script>alert(1)</script>");
        assert!(matches!(strip_metadata(&with_html, ImageType::Heif, 50_000_000), Err(UploadError::Polyglot(_))));
        let huge = testdata::heif(b"heic", 100_000, 100_000);
        assert!(matches!(strip_metadata(&huge, ImageType::Heif, 50_000_000), Err(UploadError::TooManyPixels { .. })));
        assert_eq!(sniff(b"\0\0\0\x10ftypisom\0\0\0\0"), None, "an MP4 is not an image");
    }
}
