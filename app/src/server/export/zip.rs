//! A ZIP archive written front to back, for downloads that start before the last file has
//! been read: every entry is stored (pictures and videos are compressed already) with its CRC
//! and size in a data descriptor after its bytes, so nothing is ever buffered or sought back.
//! ZIP64 records appear only where a size, an offset or the entry count needs them, so small
//! archives stay readable by every unzip tool.

/// Sizes and offsets from here up need ZIP64 fields.
const LIMIT: u64 = 0xFFFF_FFFF;
const ENTRY_LIMIT: usize = 0xFFFF;

struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
    zip64: bool,
    time: u16,
    date: u16,
}

/// Writes the archive's structure; the caller sends [`Writer::begin`]'s header, the entry's
/// bytes, then [`Writer::end`]'s descriptor, for each entry, and finally [`Writer::finish`].
pub struct Writer {
    written: u64,
    entries: Vec<Entry>,
    open: Option<Entry>,
    /// Entries this large or larger get ZIP64 sizes (lowered in tests).
    zip64_from: u64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    #[error("an entry is already open")]
    EntryOpen,
    #[error("no entry is open")]
    NoEntry,
    #[error("the entry is larger than it was declared ({0} bytes)")]
    LargerThanDeclared(u64),
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Self { written: 0, entries: Vec::new(), open: None, zip64_from: LIMIT }
    }

    #[cfg(test)]
    fn with_zip64_from(zip64_from: u64) -> Self {
        Self { zip64_from, ..Self::new() }
    }

    /// The local header of an entry named `name` (UTF-8, `/` separated) of about `declared`
    /// bytes, modified at `modified_ms` (epoch milliseconds, UTC).
    pub fn begin(&mut self, name: &str, declared: u64, modified_ms: i64) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let (time, date) = dos_time(modified_ms);
        let zip64 = declared >= self.zip64_from;
        let entry = Entry { name: name.to_owned(), crc: 0, size: 0, offset: self.written, zip64, time, date };
        let mut out = Vec::with_capacity(30 + name.len() + 20);
        put32(&mut out, 0x0403_4b50);
        put16(&mut out, if zip64 { 45 } else { 20 });
        put16(&mut out, FLAGS);
        put16(&mut out, 0); // stored
        put16(&mut out, time);
        put16(&mut out, date);
        put32(&mut out, 0); // CRC, sizes: in the data descriptor
        let unknown = if zip64 { u32::MAX } else { 0 };
        put32(&mut out, unknown);
        put32(&mut out, unknown);
        put16(&mut out, name.len() as u16);
        put16(&mut out, if zip64 { 20 } else { 0 });
        out.extend_from_slice(name.as_bytes());
        if zip64 {
            put16(&mut out, 0x0001);
            put16(&mut out, 16);
            put64(&mut out, 0);
            put64(&mut out, 0);
        }
        self.written += out.len() as u64;
        self.open = Some(entry);
        Ok(out)
    }

    /// The data descriptor closing the open entry, whose `size` bytes had checksum `crc`.
    pub fn end(&mut self, crc: u32, size: u64) -> Result<Vec<u8>, ZipError> {
        let mut entry = self.open.take().ok_or(ZipError::NoEntry)?;
        if !entry.zip64 && size >= LIMIT {
            return Err(ZipError::LargerThanDeclared(size));
        }
        entry.crc = crc;
        entry.size = size;
        let mut out = Vec::with_capacity(24);
        put32(&mut out, 0x0807_4b50);
        put32(&mut out, crc);
        if entry.zip64 {
            put64(&mut out, size);
            put64(&mut out, size);
        } else {
            put32(&mut out, size as u32);
            put32(&mut out, size as u32);
        }
        self.written += size + out.len() as u64;
        self.entries.push(entry);
        Ok(out)
    }

    /// The central directory and the end records.
    pub fn finish(self) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::EntryOpen);
        }
        let mut out = Vec::new();
        let directory_at = self.written;
        for entry in &self.entries {
            let big_size = entry.zip64 || entry.size >= LIMIT;
            let big_offset = entry.offset >= LIMIT;
            let mut extra = Vec::new();
            if big_size {
                put64(&mut extra, entry.size);
                put64(&mut extra, entry.size);
            }
            if big_offset {
                put64(&mut extra, entry.offset);
            }
            let needs64 = big_size || big_offset;
            put32(&mut out, 0x0201_4b50);
            put16(&mut out, 0x0300 | 45); // made by: Unix, spec 4.5
            put16(&mut out, if needs64 { 45 } else { 20 });
            put16(&mut out, FLAGS);
            put16(&mut out, 0);
            put16(&mut out, entry.time);
            put16(&mut out, entry.date);
            put32(&mut out, entry.crc);
            let size = if big_size { u32::MAX } else { entry.size as u32 };
            put32(&mut out, size);
            put32(&mut out, size);
            put16(&mut out, entry.name.len() as u16);
            put16(&mut out, if needs64 { 4 + extra.len() as u16 } else { 0 });
            put16(&mut out, 0); // comment
            put16(&mut out, 0); // disk
            put16(&mut out, 0); // internal attributes
            put32(&mut out, 0o100_644 << 16); // a regular file, rw-r--r--
            put32(&mut out, if big_offset { u32::MAX } else { entry.offset as u32 });
            out.extend_from_slice(entry.name.as_bytes());
            if needs64 {
                put16(&mut out, 0x0001);
                put16(&mut out, extra.len() as u16);
                out.extend_from_slice(&extra);
            }
        }
        let directory_size = out.len() as u64;
        let count = self.entries.len();
        let needs64 = count >= ENTRY_LIMIT || directory_at >= LIMIT || directory_size >= LIMIT;
        if needs64 {
            let record_at = directory_at + directory_size;
            put32(&mut out, 0x0606_4b50);
            put64(&mut out, 44);
            put16(&mut out, 0x0300 | 45);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count as u64);
            put64(&mut out, count as u64);
            put64(&mut out, directory_size);
            put64(&mut out, directory_at);
            put32(&mut out, 0x0706_4b50);
            put32(&mut out, 0);
            put64(&mut out, record_at);
            put32(&mut out, 1);
        }
        put32(&mut out, 0x0605_4b50);
        put16(&mut out, 0);
        put16(&mut out, 0);
        let shown = if needs64 { u16::MAX } else { count as u16 };
        put16(&mut out, shown);
        put16(&mut out, shown);
        put32(&mut out, if needs64 { u32::MAX } else { directory_size as u32 });
        put32(&mut out, if needs64 { u32::MAX } else { directory_at as u32 });
        put16(&mut out, 0);
        Ok(out)
    }
}

/// Data descriptor follows (bit 3); names are UTF-8 (bit 11).
const FLAGS: u16 = 0x0008 | 0x0800;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// MS-DOS time and date (two-second steps, years 1980–2107), clamped to that range.
fn dos_time(ms: i64) -> (u16, u16) {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else { return (0, 0x21) };
    if at.year() < 1980 {
        return (0, 0x21); // 1980-01-01 00:00
    }
    let year = (at.year().min(2107) - 1980) as u16;
    let date = (year << 9) | ((at.month() as u16) << 5) | at.day() as u16;
    let time = ((at.hour() as u16) << 11) | ((at.minute() as u16) << 5) | (at.second() as u16 / 2);
    (time, date)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use proptest::prelude::*;

    use super::*;

    fn archive(mut writer: Writer, files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, bytes) in files {
            out.extend(writer.begin(name, bytes.len() as u64, 1_764_547_200_000).unwrap());
            out.extend_from_slice(bytes);
            out.extend(writer.end(crc32fast::hash(bytes), bytes.len() as u64).unwrap());
        }
        out.extend(writer.finish().unwrap());
        out
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut zip = ::zip::ZipArchive::new(Cursor::new(bytes)).expect("a readable archive");
        (0..zip.len())
            .map(|i| {
                let mut file = zip.by_index(i).unwrap();
                let mut content = Vec::new();
                file.read_to_end(&mut content).expect("the entry's CRC matches");
                (file.name().to_owned(), content)
            })
            .collect()
    }

    #[test]
    fn an_archive_reads_back_with_its_names_bytes_and_date() {
        let files = vec![
            ("manifest.json".to_owned(), b"{\"jobs\":[]}".to_vec()),
            ("results/2026-12-01 lighthouse é.png".to_owned(), vec![7; 70_000]),
            ("empty.txt".to_owned(), Vec::new()),
        ];
        let bytes = archive(Writer::new(), &files);
        assert_eq!(read_back(bytes.clone()), files);
        let zip = ::zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert!(zip.comment().is_empty());
    }

    #[test]
    fn zip64_records_are_read_back_too() {
        // Every entry "large": the ZIP64 sizes and extra fields, as a 5 GiB video would get.
        let files = vec![("a.mp4".to_owned(), vec![1; 1000]), ("b.mp4".to_owned(), vec![2; 10])];
        assert_eq!(read_back(archive(Writer::with_zip64_from(0), &files)), files);
    }

    #[test]
    fn misuse_is_an_error_not_a_corrupt_archive() {
        let mut writer = Writer::new();
        assert_eq!(writer.end(0, 0), Err(ZipError::NoEntry));
        writer.begin("a", 1, 0).unwrap();
        assert_eq!(writer.begin("b", 1, 0), Err(ZipError::EntryOpen));
        assert_eq!(writer.end(0, LIMIT), Err(ZipError::LargerThanDeclared(LIMIT)));
        let mut writer = Writer::new();
        writer.begin("a", 1, 0).unwrap();
        assert_eq!(writer.finish(), Err(ZipError::EntryOpen));
    }

    #[test]
    fn dates_outside_what_zip_can_say_are_clamped() {
        assert_eq!(dos_time(0), (0, 0x21));
        assert_eq!(dos_time(-5), (0, 0x21));
        let (time, date) = dos_time(1_764_590_461_000); // 2025-12-01 12:01:01 UTC
        assert_eq!(date, (45 << 9) | (12 << 5) | 1);
        assert_eq!(time, (12 << 11) | (1 << 5));
    }

    proptest! {
        #[test]
        fn any_set_of_files_reads_back_unchanged(
            files in prop::collection::vec(("[a-z0-9éü ._-]{1,40}", prop::collection::vec(any::<u8>(), 0..3000)), 0..12),
            zip64 in any::<bool>(),
        ) {
            let files: Vec<(String, Vec<u8>)> = files.into_iter().enumerate()
                .map(|(i, (name, bytes))| (format!("{i}/{name}"), bytes)).collect();
            let writer = if zip64 { Writer::with_zip64_from(0) } else { Writer::new() };
            prop_assert_eq!(read_back(archive(writer, &files)), files);
        }
    }
}
