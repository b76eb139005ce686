//! Test images built in code: JPEGs with EXIF orientation and GPS, PNG and WebP, a PNG whose
//! header claims a huge size, and HEIF/AVIF containers with Exif and XMP items. Shared by the
//! unit tests and (through `#[path]`) the integration tests, so it depends on `image` only.
#![allow(dead_code)]

use std::io::Cursor;

/// Stored in the GPS IFD (as GPSMapDatum) and in the XMP packet: if these bytes survive, so did
/// the location.
pub const GPS_MARK: &[u8] = b"DARKROOM-GPS-TEST";
/// Stands in for coded image data in the HEIF containers.
pub const HEVC_MARK: &[u8] = b"PRETEND-HEVC-IMAGE-DATA";

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn has_exif(bytes: &[u8]) -> bool {
    contains(bytes, b"Exif\0\0")
}

fn gradient(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x + y) % 256) as u8])
    })
}

/// A JPEG with an EXIF block holding `orientation` and, when `gps`, a GPS IFD.
pub fn jpeg_with_exif(width: u32, height: u32, orientation: u16, gps: bool) -> Vec<u8> {
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(gradient(width, height))
        .write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .expect("encoding a JPEG in memory");
    let tiff = tiff_block(orientation, gps);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A little-endian TIFF structure: IFD0 with Orientation (and GPSInfo), plus the GPS IFD.
fn tiff_block(orientation: u16, gps: bool) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"II\x2A\x00");
    t.extend_from_slice(&8u32.to_le_bytes());
    let entries: u16 = if gps { 2 } else { 1 };
    let gps_ifd = 8 + 2 + 12 * u32::from(entries) + 4;
    t.extend_from_slice(&entries.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation));
    if gps {
        entry(&mut t, 0x8825, 4, 1, gps_ifd);
    }
    t.extend_from_slice(&0u32.to_le_bytes());
    if gps {
        let data = gps_ifd + 2 + 12 * 3 + 4;
        t.extend_from_slice(&3u16.to_le_bytes());
        entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
        entry(&mut t, 0x0002, 5, 3, data);
        entry(&mut t, 0x0012, 2, GPS_MARK.len() as u32 + 1, data + 24);
        t.extend_from_slice(&0u32.to_le_bytes());
        for (num, den) in [(48u32, 1u32), (51, 1), (2437, 100)] {
            t.extend_from_slice(&num.to_le_bytes());
            t.extend_from_slice(&den.to_le_bytes());
        }
        t.extend_from_slice(GPS_MARK);
        t.push(0);
    }
    t
}

fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
    t.extend_from_slice(&tag.to_le_bytes());
    t.extend_from_slice(&kind.to_le_bytes());
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&value.to_le_bytes());
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(gradient(width, height))
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out
}

pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(gradient(width, height))
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::WebP)
        .expect("encoding a WebP in memory");
    out
}

/// A small, well-formed PNG whose header claims `width × height` pixels (a decompression bomb's
/// opening move).
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn bmff(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![version];
    body.extend_from_slice(&flags.to_be_bytes()[1..]);
    body.extend_from_slice(payload);
    bmff(kind, &body)
}

/// A HEIF (`brand` heic) or AVIF (`brand` avif) file: a primary image item of `width × height`,
/// an Exif item with a GPS IFD, and an XMP item, all three stored in `mdat`.
pub fn heif(brand: &[u8; 4], width: u32, height: u32) -> Vec<u8> {
    let mut exif = 6u32.to_be_bytes().to_vec();
    exif.extend_from_slice(b"Exif\0\0");
    exif.extend_from_slice(&tiff_block(1, true));
    let mut xmp = b"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><exif:GPSLatitude>".to_vec();
    xmp.extend_from_slice(GPS_MARK);
    xmp.extend_from_slice(b"</exif:GPSLatitude></x:xmpmeta>");
    HeifBuilder::new(brand, width, height)
        .item(HeifItem::typed(b"Exif", &exif))
        .item(HeifItem::mime(b"application/rdf+xml", &xmp))
        .build()
}

/// An item besides the picture, as some camera or tool might write it.
pub struct HeifItem {
    version: u8,
    kind: [u8; 4],
    content_type: Vec<u8>,
    data: Vec<u8>,
}

impl HeifItem {
    /// An item of a given type (`infe` version 2).
    pub fn typed(kind: &[u8; 4], data: &[u8]) -> Self {
        Self { version: 2, kind: *kind, content_type: Vec::new(), data: data.to_vec() }
    }

    /// A `mime` item (`infe` version 2), how XMP is usually stored.
    pub fn mime(content_type: &[u8], data: &[u8]) -> Self {
        Self { version: 2, kind: *b"mime", content_type: content_type.to_vec(), data: data.to_vec() }
    }

    /// An item described by `infe` version 0, which has a content type but no item type.
    pub fn v0_mime(content_type: &[u8], data: &[u8]) -> Self {
        Self { version: 0, kind: [0; 4], content_type: content_type.to_vec(), data: data.to_vec() }
    }

    /// The same with `infe` version 1.
    pub fn v1_mime(content_type: &[u8], data: &[u8]) -> Self {
        Self { version: 1, kind: [0; 4], content_type: content_type.to_vec(), data: data.to_vec() }
    }

    fn infe(&self, id: u16, name: &[u8]) -> Vec<u8> {
        let mut e = id.to_be_bytes().to_vec();
        e.extend_from_slice(&0u16.to_be_bytes());
        if self.version >= 2 {
            e.extend_from_slice(&self.kind);
        }
        e.extend_from_slice(name);
        e.push(0);
        if self.version < 2 || &self.kind == b"mime" {
            e.extend_from_slice(&self.content_type);
            e.push(0);
        }
        full(b"infe", self.version, 0, &e)
    }
}

/// Builds HEIF/AVIF files with whatever extra boxes, items and properties a test needs around
/// one primary picture item.
pub struct HeifBuilder {
    brand: [u8; 4],
    width: u32,
    height: u32,
    image_name: Vec<u8>,
    items: Vec<HeifItem>,
    properties: Vec<([u8; 4], Vec<u8>)>,
    top: Vec<([u8; 4], Vec<u8>)>,
    gap: Vec<u8>,
    tail: Option<([u8; 4], Vec<u8>)>,
}

impl HeifBuilder {
    pub fn new(brand: &[u8; 4], width: u32, height: u32) -> Self {
        Self {
            brand: *brand,
            width,
            height,
            image_name: Vec::new(),
            items: Vec::new(),
            properties: Vec::new(),
            top: Vec::new(),
            gap: Vec::new(),
            tail: None,
        }
    }

    pub fn item(mut self, item: HeifItem) -> Self {
        self.items.push(item);
        self
    }

    /// The picture item's name in its `infe`.
    pub fn item_name(mut self, name: &[u8]) -> Self {
        self.image_name = name.to_vec();
        self
    }

    /// One more item property in `ipco` (not associated with any item).
    pub fn property(mut self, kind: &[u8; 4], payload: &[u8]) -> Self {
        self.properties.push((*kind, payload.to_vec()));
        self
    }

    /// A top-level box between `meta` and `mdat`.
    pub fn top_box(mut self, kind: &[u8; 4], payload: &[u8]) -> Self {
        self.top.push((*kind, payload.to_vec()));
        self
    }

    /// Bytes inside `mdat` that belong to no item.
    pub fn mdat_gap(mut self, bytes: &[u8]) -> Self {
        self.gap = bytes.to_vec();
        self
    }

    /// A last box with size 0 ("to the end of the file").
    pub fn last_box_to_end_of_file(mut self, kind: &[u8; 4], payload: &[u8]) -> Self {
        self.tail = Some((*kind, payload.to_vec()));
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut image_data = HEVC_MARK.to_vec();
        image_data.extend(std::iter::repeat_n(0xAB, 200));
        let coded: [u8; 4] = if &self.brand == b"avif" { *b"av01" } else { *b"hvc1" };
        let picture = HeifItem { version: 2, kind: coded, content_type: Vec::new(), data: image_data };
        let all: Vec<&HeifItem> = std::iter::once(&picture).chain(&self.items).collect();

        let mut ftyp = self.brand.to_vec();
        ftyp.extend_from_slice(&0u32.to_be_bytes());
        ftyp.extend_from_slice(b"mif1");
        ftyp.extend_from_slice(&self.brand);
        let ftyp = bmff(b"ftyp", &ftyp);

        let meta = |data_start: u32| {
            let mut hdlr = 0u32.to_be_bytes().to_vec();
            hdlr.extend_from_slice(b"pict");
            hdlr.extend_from_slice(&[0; 12]);
            hdlr.push(0);
            let mut iloc = 0x4400u16.to_be_bytes().to_vec();
            iloc.extend_from_slice(&(all.len() as u16).to_be_bytes());
            let mut iinf = (all.len() as u16).to_be_bytes().to_vec();
            let mut offset = data_start;
            for (n, item) in all.iter().enumerate() {
                let id = n as u16 + 1;
                iloc.extend_from_slice(&id.to_be_bytes());
                iloc.extend_from_slice(&0u16.to_be_bytes());
                iloc.extend_from_slice(&1u16.to_be_bytes());
                iloc.extend_from_slice(&offset.to_be_bytes());
                iloc.extend_from_slice(&(item.data.len() as u32).to_be_bytes());
                iinf.extend(item.infe(id, if n == 0 { &self.image_name } else { b"" }));
                offset += item.data.len() as u32;
                if n == 0 {
                    offset += self.gap.len() as u32;
                }
            }
            let mut ispe = self.width.to_be_bytes().to_vec();
            ispe.extend_from_slice(&self.height.to_be_bytes());
            let mut ipco = full(b"ispe", 0, 0, &ispe);
            for (kind, payload) in &self.properties {
                ipco.extend(bmff(kind, payload));
            }
            let mut ipma = 1u32.to_be_bytes().to_vec();
            ipma.extend_from_slice(&1u16.to_be_bytes());
            ipma.push(1);
            ipma.push(0x81);
            let mut iprp = bmff(b"ipco", &ipco);
            iprp.extend(full(b"ipma", 0, 0, &ipma));
            let mut body = Vec::new();
            body.extend(full(b"hdlr", 0, 0, &hdlr));
            body.extend(full(b"pitm", 0, 0, &1u16.to_be_bytes()));
            body.extend(full(b"iloc", 0, 0, &iloc));
            body.extend(full(b"iinf", 0, 0, &iinf));
            body.extend(bmff(b"iprp", &iprp));
            full(b"meta", 0, 0, &body)
        };
        let top: Vec<u8> = self.top.iter().flat_map(|(kind, payload)| bmff(kind, payload)).collect();
        let data_start = (ftyp.len() + meta(0).len() + top.len() + 8) as u32;
        let mut mdat = picture.data.clone();
        mdat.extend_from_slice(&self.gap);
        for item in &self.items {
            mdat.extend_from_slice(&item.data);
        }
        let mut out = ftyp;
        out.extend(meta(data_start));
        out.extend(top);
        out.extend(bmff(b"mdat", &mdat));
        if let Some((kind, payload)) = &self.tail {
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(payload);
        }
        out
    }
}

/// A small HEIF whose `iloc` lists `items` items of `extents` zero-byte pieces each (offset,
/// length, base and index sizes all 0): each piece costs nothing in the file.
pub fn heif_iloc_bomb(items: u16, extents: u16) -> Vec<u8> {
    let mut ftyp = b"heic".to_vec();
    ftyp.extend_from_slice(&0u32.to_be_bytes());
    ftyp.extend_from_slice(b"mif1heic");
    let mut hdlr = 0u32.to_be_bytes().to_vec();
    hdlr.extend_from_slice(b"pict");
    hdlr.extend_from_slice(&[0; 13]);
    let mut iloc = 0u16.to_be_bytes().to_vec();
    iloc.extend_from_slice(&items.to_be_bytes());
    for id in 1..=items {
        iloc.extend_from_slice(&id.to_be_bytes());
        iloc.extend_from_slice(&0u16.to_be_bytes()); // construction method
        iloc.extend_from_slice(&0u16.to_be_bytes()); // data reference
        iloc.extend_from_slice(&extents.to_be_bytes());
    }
    let mut body = full(b"hdlr", 0, 0, &hdlr);
    body.extend(full(b"pitm", 0, 0, &1u16.to_be_bytes()));
    body.extend(full(b"iloc", 1, 0, &iloc));
    let mut out = bmff(b"ftyp", &ftyp);
    out.extend(full(b"meta", 0, 0, &body));
    out.extend(bmff(b"mdat", HEVC_MARK));
    out
}
