//! Reading a video's duration and picture size from its bytes as they stream past (ISO BMFF:
//! MP4, MOV): top-level boxes are skipped until `moov`, which is kept (up to a limit) and read
//! for `mvhd` (duration) and the first `tkhd` with a picture size. Nothing else is buffered.

const MAX_MOOV: u64 = 8 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoInfo {
    pub duration_ms: Option<i64>,
    pub width: Option<u64>,
    pub height: Option<u64>,
}

enum State {
    Header(Vec<u8>),
    Skip(u64),
    Moov(u64),
    Done,
}

pub struct Probe {
    state: State,
    moov: Vec<u8>,
    info: Option<VideoInfo>,
}

impl Default for Probe {
    fn default() -> Self {
        Self { state: State::Header(Vec::with_capacity(16)), moov: Vec::new(), info: None }
    }
}

impl Probe {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Skip(left) => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        self.state = State::Header(Vec::with_capacity(16));
                    }
                }
                State::Moov(left) => {
                    let take = (*left).min(data.len() as u64) as usize;
                    self.moov.extend_from_slice(&data[..take]);
                    *left -= take as u64;
                    data = &data[take..];
                    if *left == 0 {
                        self.info = Some(read_moov(&self.moov));
                        self.moov = Vec::new();
                        self.state = State::Done;
                    }
                }
                State::Header(header) => {
                    let need = if header.len() >= 8 && be32(&header[0..4]) == 1 { 16 } else { 8 };
                    let take = (need - header.len()).min(data.len());
                    header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if header.len() < need {
                        continue;
                    }
                    if need == 8 && be32(&header[0..4]) == 1 {
                        continue; // a 64-bit size follows
                    }
                    let size = if need == 16 { be64(&header[8..16]) } else { u64::from(be32(&header[0..4])) };
                    let kind = [header[4], header[5], header[6], header[7]];
                    // Size 0 means "to the end of the file": nothing after it to find.
                    if size < need as u64 {
                        self.state = State::Done;
                        continue;
                    }
                    let body = size - need as u64;
                    self.state = if &kind == b"moov" && body <= MAX_MOOV {
                        // Grown as bytes arrive, never from the size the stream claims.
                        self.moov = Vec::new();
                        if body == 0 { State::Done } else { State::Moov(body) }
                    } else if body == 0 {
                        State::Header(Vec::with_capacity(16))
                    } else {
                        State::Skip(body)
                    };
                }
            }
        }
    }

    pub fn info(&self) -> Option<VideoInfo> {
        self.info
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The child boxes of a box body, one at a time: (type, body).
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let (size, header) = match be32(&data[0..4]) {
            1 if data.len() >= 16 => (usize::try_from(be64(&data[8..16])).unwrap_or(usize::MAX), 16),
            0 => (data.len(), 8),
            n => (n as usize, 8),
        };
        if size < header || size > data.len() {
            return None;
        }
        let found = ([data[4], data[5], data[6], data[7]], &data[header..size]);
        data = &data[size..];
        Some(found)
    })
}

fn read_moov(moov: &[u8]) -> VideoInfo {
    let mut info = VideoInfo { duration_ms: None, width: None, height: None };
    for (kind, body) in children(moov) {
        match &kind {
            b"mvhd" => info.duration_ms = mvhd_duration(body),
            b"trak" if info.width.is_none() => {
                if let Some((_, tkhd)) = children(body).find(|(k, _)| k == b"tkhd")
                    && let Some((w, h)) = tkhd_size(tkhd)
                {
                    (info.width, info.height) = (Some(w), Some(h));
                }
            }
            _ => {}
        }
    }
    info
}

fn mvhd_duration(body: &[u8]) -> Option<i64> {
    let (timescale, duration) = match *body.first()? {
        0 if body.len() >= 20 => (be32(&body[12..16]), u64::from(be32(&body[16..20]))),
        1 if body.len() >= 32 => (be32(&body[20..24]), be64(&body[24..32])),
        _ => return None,
    };
    (timescale > 0 && duration != u64::from(u32::MAX)).then(|| (duration as f64 * 1000.0 / f64::from(timescale)) as i64)
}

fn tkhd_size(body: &[u8]) -> Option<(u64, u64)> {
    // Version 0 has 4-byte times and duration, version 1 8-byte ones; then 52 bytes to the size.
    let at = match *body.first()? {
        0 => 4 + 20 + 52,
        1 => 4 + 32 + 52,
        _ => return None,
    };
    let size = body.get(at..at + 8)?;
    let (w, h) = (u64::from(be32(&size[0..4]) >> 16), u64::from(be32(&size[4..8]) >> 16));
    (w > 0 && h > 0).then_some((w, h))
}

/// A minimal MP4 (`ftyp`, `moov` with `mvhd` and one video `tkhd`, then `mdat` of `media`
/// bytes) for tests and the fake fal server.
pub fn sample_header(duration_ms: u32, width: u32, height: u32, media: u64) -> Vec<u8> {
    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }
    let mut mvhd = vec![0u8; 4 + 8];
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    mvhd.extend_from_slice(&duration_ms.to_be_bytes());
    mvhd.extend_from_slice(&[0u8; 80]);
    let mut tkhd = vec![0u8; 4 + 20 + 52];
    tkhd.extend_from_slice(&(width << 16).to_be_bytes());
    tkhd.extend_from_slice(&(height << 16).to_be_bytes());
    let moov = boxed(b"moov", &[boxed(b"mvhd", &mvhd), boxed(b"trak", &boxed(b"tkhd", &tkhd))].concat());
    let mut out = boxed(b"ftyp", b"mp42\0\0\0\0mp42isom");
    out.extend_from_slice(&moov);
    // `mdat` with a 64-bit size, as large files have.
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(&(media + 16).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(bytes: &[u8], chunk: usize) -> Option<VideoInfo> {
        let mut probe = Probe::default();
        for part in bytes.chunks(chunk) {
            probe.feed(part);
        }
        probe.info()
    }

    #[test]
    fn reads_duration_and_size_whatever_the_chunking() {
        let mut file = sample_header(5_250, 640, 360, 100);
        file.extend_from_slice(&[0u8; 100]);
        let expected = Some(VideoInfo { duration_ms: Some(5_250), width: Some(640), height: Some(360) });
        for chunk in [1, 3, 7, 64, 4096] {
            assert_eq!(probe(&file, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn finds_moov_after_the_media_and_gives_up_on_garbage() {
        let header = sample_header(2_000, 320, 240, 0);
        let (ftyp, rest) = header.split_at(24);
        let moov_len = be32(&rest[0..4]) as usize;
        let (moov, _) = rest.split_at(moov_len);
        let mut file = ftyp.to_vec();
        file.extend_from_slice(&(8u32 + 50).to_be_bytes());
        file.extend_from_slice(b"mdat");
        file.extend_from_slice(&[7u8; 50]);
        file.extend_from_slice(moov);
        assert_eq!(probe(&file, 5).and_then(|i| i.duration_ms), Some(2_000));
        assert_eq!(probe(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x00\x00\x00", 4), None);
        assert_eq!(probe(&[0xff; 64], 8), None);
    }
}
