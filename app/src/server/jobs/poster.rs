//! Poster frames: the first picture of a video result, so the gallery shows a still where it
//! would otherwise have to load a video per tile. `ffmpeg` (Debian's package, found on `PATH` or
//! named by `DARKROOM_FFMPEG`) decodes it from a spool file the download is copied into while it
//! streams to storage; the frame then becomes the same WebP thumbnail an image gets.
//!
//! The video comes from the provider, so ffmpeg reads untrusted bytes. These are limits on what
//! it is asked to do, not a sandbox: it is told which container to expect and may use no other
//! demuxer (no probing into playlists), opens nothing but the spool file (no network, no other
//! files), decodes only common video codecs and no picture larger than the uploads' pixel
//! limit, runs one at a time with one thread, an empty environment and resource limits
//! (address space, CPU time, no files written, no core dump), and is killed after [`TIMEOUT`].
//! A video without a poster is still a result: every failure here is logged and the tile falls
//! back to the video itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest a frame may take, from starting ffmpeg to its last byte.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The frame is scaled down to this width inside ffmpeg, so a 4K video never makes a 30 MB PNG.
const FRAME_WIDTH: u32 = 1024;
/// Largest PNG accepted from ffmpeg (a 1024-wide frame is far smaller).
const MAX_FRAME_BYTES: u64 = 16 * 1024 * 1024;
/// What is kept of ffmpeg's complaints for the log.
const MAX_STDERR: u64 = 2048;
/// The decoders ffmpeg may use, by decoder name (AV1 is decoded by libdav1d or libaom on
/// Debian): what video models produce, nothing exotic.
const DECODERS: &str = "h264,hevc,vp8,vp9,mpeg4,av1,libdav1d,libaom-av1";
/// ffmpeg's address space: room for a large frame and its references, not for a runaway.
const MAX_MEMORY: u64 = 2 << 30;
/// ffmpeg's CPU time, a second line behind the wall-clock [`TIMEOUT`].
const MAX_CPU_SECS: u64 = 60;
/// Where spool files older than this are leftovers of a process that ended mid-download.
const STALE_SPOOL: Duration = Duration::from_secs(24 * 3600);
const SPOOL_PREFIX: &str = "darkroom-video-";
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Debug, thiserror::Error)]
pub enum PosterError {
    #[error("ffmpeg could not be started: {0}")]
    Start(std::io::Error),
    #[error("ffmpeg took longer than {0:?}")]
    Timeout(Duration),
    #[error("ffmpeg found no frame: {0}")]
    NoFrame(String),
    #[error("the frame is larger than {MAX_FRAME_BYTES} bytes")]
    TooLarge,
    #[error("reading from ffmpeg failed: {0}")]
    Io(std::io::Error),
}

/// A copy of a video being downloaded, removed when dropped.
pub struct Spool {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl Spool {
    /// A new, empty spool file in `dir` (created if missing), readable only by this user: it
    /// holds a user's result while the poster is made.
    pub async fn create(dir: &Path) -> std::io::Result<Self> {
        tokio::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).await?;
        let path = dir.join(format!("{SPOOL_PREFIX}{}", uuid::Uuid::now_v7()));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).await?;
        Ok(Self { path, file: Some(file) })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.write_all(bytes).await,
            None => Err(std::io::Error::other("the spool is closed")),
        }
    }

    /// Flushes and closes the file; its path stays readable until the spool is dropped.
    pub async fn close(&mut self) -> std::io::Result<&Path> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
        }
        Ok(&self.path)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes spool files a previous process left behind (it ended while a video was downloading);
/// returns how many. Files younger than a day are left alone: another process sharing the data
/// directory may be writing them.
pub fn clear_stale_spools(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let now = std::time::SystemTime::now();
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(SPOOL_PREFIX))
        .filter(|entry| {
            let modified = entry.metadata().and_then(|m| m.modified());
            modified.is_ok_and(|at| now.duration_since(at).is_ok_and(|age| age > STALE_SPOOL))
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

/// ffmpeg's name for the demuxer of a content type we store as video; `None` for the ones it
/// is not asked to read.
fn demuxer(content_type: &str) -> Option<&'static str> {
    match content_type {
        "video/mp4" | "video/quicktime" => Some("mov"),
        "video/webm" => Some("matroska"),
        _ => None,
    }
}

/// The first frame of the video at `video` (of `content_type`) as a PNG at most
/// [`FRAME_WIDTH`] wide, from a video whose pictures have at most `max_pixels` pixels.
/// `Ok(None)`: not a type posters are made for.
pub async fn first_frame(
    ffmpeg: &Path,
    video: &Path,
    content_type: &str,
    max_pixels: u64,
) -> Result<Option<Vec<u8>>, PosterError> {
    let Some(format) = demuxer(content_type) else { return Ok(None) };
    let _turn = RUNNING.acquire().await.ok();
    let mut command = tokio::process::Command::new(ffmpeg);
    command
        .env_clear()
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-filter_threads", "1", "-threads", "1"])
        .args(["-protocol_whitelist", "file", "-format_whitelist", format, "-codec_whitelist", DECODERS])
        .args(["-max_pixels", &max_pixels.min(i32::MAX as u64).to_string(), "-f", format, "-i"])
        .arg(video)
        .args(["-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"])
        .args(["-vf", &format!("scale='min({FRAME_WIDTH},iw)':-2"), "-threads", "1"])
        .args(["-f", "image2pipe", "-c:v", "png", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let limits = LIMITS.map(|(resource, max)| (resource, libc::rlim_t::try_from(max).unwrap_or(libc::RLIM_INFINITY)));
    // SAFETY: the closure runs in the child between fork and exec. It allocates nothing, takes
    // no lock and only makes the getrlimit and setrlimit calls, which glibc and musl implement
    // as bare system calls (POSIX does not list them as async-signal-safe).
    unsafe {
        command.pre_exec(move || limit_resources(&limits));
    }
    let mut child = command.spawn().map_err(PosterError::Start)?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(PosterError::Start(std::io::Error::other("no pipes")));
    };
    let run = async {
        let (frame, complaints) =
            tokio::join!(read_capped(stdout, MAX_FRAME_BYTES + 1), read_capped(stderr, MAX_STDERR));
        let (frame, complaints) = (frame.map_err(PosterError::Io)?, complaints.unwrap_or_default());
        if frame.len() as u64 > MAX_FRAME_BYTES {
            return Err(PosterError::TooLarge);
        }
        let status = child.wait().await.map_err(PosterError::Io)?;
        if !status.success() || frame.is_empty() {
            let said = String::from_utf8_lossy(&complaints).trim().to_owned();
            return Err(PosterError::NoFrame(if said.is_empty() {
                format!("ffmpeg exited with {status}")
            } else {
                said
            }));
        }
        Ok(Some(frame))
    };
    // Dropping the future on timeout drops the child, which kills it.
    tokio::time::timeout(TIMEOUT, run).await.map_err(|_| PosterError::Timeout(TIMEOUT))?
}

/// ffmpeg's resource limits: address space, CPU seconds, no file written, no core dump.
const LIMITS: [(libc::__rlimit_resource_t, u64); 4] =
    [(libc::RLIMIT_AS, MAX_MEMORY), (libc::RLIMIT_CPU, MAX_CPU_SECS), (libc::RLIMIT_FSIZE, 0), (libc::RLIMIT_CORE, 0)];

/// Sets `limits` in the child after fork and before exec, never above a hard limit the
/// process already has (raising one needs privileges Darkroom should not have).
fn limit_resources(limits: &[(libc::__rlimit_resource_t, libc::rlim_t)]) -> std::io::Result<()> {
    for &(resource, wanted) in limits {
        let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes only into the struct it is given; setrlimit only reads it.
        if unsafe { libc::getrlimit(resource, &mut now) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let max = wanted.min(now.rlim_max);
        let limit = libc::rlimit { rlim_cur: max, rlim_max: max };
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Everything `from` sends, of which the first `cap` bytes are kept: reading on to the end
/// keeps ffmpeg from blocking on a full pipe.
async fn read_capped(mut from: impl tokio::io::AsyncRead + Unpin, cap: u64) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    (&mut from).take(cap).read_to_end(&mut kept).await?;
    tokio::io::copy(&mut from, &mut tokio::io::sink()).await?;
    Ok(kept)
}

/// `DARKROOM_FFMPEG`: `off` turns posters off; a path (or a bare name, looked up on `path`)
/// names the program, and one that is not an executable file is an error, so a typo is not
/// silently a gallery without posters; unset looks for `ffmpeg` on `path` (the process's
/// `PATH`; no posters when there is none).
pub fn locate(setting: Option<&str>, path: Option<&std::ffi::OsStr>) -> Result<Option<PathBuf>, String> {
    let on_path = |name: &str| {
        path.and_then(|paths| {
            std::env::split_paths(paths).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
        })
    };
    match setting.map(str::trim) {
        Some("off") => Ok(None),
        Some(program) if !program.is_empty() => {
            let found = if program.contains('/') {
                Some(PathBuf::from(program)).filter(|program| is_executable(program))
            } else {
                on_path(program)
            };
            found
                .map(Some)
                .ok_or_else(|| format!("{program} is not an executable file (set `off` for no video posters)"))
        }
        _ => Ok(on_path("ffmpeg")),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posters_can_be_turned_off_or_pointed_at_a_program_that_exists() {
        let dir = tempdir();
        let program = dir.join("my-ffmpeg");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(locate(Some("off"), None), Ok(None));
        assert_eq!(locate(Some(program.to_str().unwrap()), None), Ok(Some(program.clone())));
        let missing = dir.join("ffmpg");
        let refused = locate(Some(missing.to_str().unwrap()), None).unwrap_err();
        assert!(refused.contains("ffmpg"), "{refused}");
        // Unset: the first executable `ffmpeg` on the search path, or none.
        std::fs::copy(&program, dir.join("ffmpeg")).unwrap();
        std::fs::set_permissions(dir.join("ffmpeg"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([dir.join("empty"), dir.clone()]).unwrap();
        assert_eq!(locate(None, Some(&path)), Ok(Some(dir.join("ffmpeg"))));
        // A bare name is looked up on the search path.
        assert_eq!(locate(Some("my-ffmpeg"), Some(&path)), Ok(Some(program.clone())));
        assert!(locate(Some("ffmpeg-7"), Some(&path)).is_err());
        assert_eq!(locate(None, Some(std::ffi::OsStr::new("/nonexistent"))), Ok(None));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A fresh directory under the system's temporary one.
    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("darkroom-poster-test-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_video_containers_are_handed_to_ffmpeg() {
        assert_eq!(demuxer("video/mp4"), Some("mov"));
        assert_eq!(demuxer("video/webm"), Some("matroska"));
        assert_eq!(demuxer("application/vnd.apple.mpegurl"), None);
        assert_eq!(demuxer("image/png"), None);
    }

    /// The fake fal's sample video (see `src/fake_fal/media.rs`): 160×90, first frame orange-red.
    const CLIP: &[u8] = include_bytes!("testdata/clip.mp4");

    fn ffmpeg() -> PathBuf {
        locate(None, std::env::var_os("PATH").as_deref())
            .unwrap()
            .expect("ffmpeg on PATH: `.ci/tools.sh ffmpeg` installs it")
    }

    async fn frame_of(bytes: &[u8], content_type: &str) -> Result<Option<Vec<u8>>, PosterError> {
        frame_within(bytes, content_type, 50_000_000).await
    }

    async fn frame_within(bytes: &[u8], content_type: &str, max_pixels: u64) -> Result<Option<Vec<u8>>, PosterError> {
        let dir = tempdir();
        let mut spool = Spool::create(&dir).await.unwrap();
        spool.write(bytes).await.unwrap();
        let path = spool.close().await.unwrap().to_owned();
        let frame = first_frame(&ffmpeg(), &path, content_type, max_pixels).await;
        drop(spool);
        let _ = std::fs::remove_dir_all(dir);
        frame
    }

    /// What other video models send: AV1 in MP4 and VP9 in WebM (96×64, green), made with
    /// `ffmpeg -f lavfi -i color=c=0x20C040:s=96x64:d=0.2:r=10 -c:v libaom-av1` (or `libvpx-vp9`).
    #[tokio::test]
    async fn av1_and_vp9_videos_get_posters_too() {
        for (bytes, content_type) in [
            (&include_bytes!("testdata/green-av1.mp4")[..], "video/mp4"),
            (&include_bytes!("testdata/green-vp9.webm")[..], "video/webm"),
        ] {
            let png = frame_of(bytes, content_type).await.unwrap().expect("a frame");
            let picture = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgb8();
            assert_eq!(picture.dimensions(), (96, 64), "{content_type}");
            let [r, g, b] = picture.get_pixel(48, 32).0;
            assert!(g > 150 && r < 80 && b < 110, "{content_type}: green, not {r},{g},{b}");
        }
    }

    #[tokio::test]
    async fn a_video_with_pictures_over_the_pixel_limit_is_not_decoded() {
        // 160×90 is 14,400 pixels (the decoder's buffers are a little larger, padded to blocks).
        assert!(frame_within(CLIP, "video/mp4", 100_000).await.unwrap().is_some());
        let refused = frame_within(CLIP, "video/mp4", 10_000).await.unwrap_err();
        assert!(matches!(refused, PosterError::NoFrame(_)), "{refused}");
    }

    #[tokio::test]
    async fn the_first_frame_of_a_video_comes_back_as_a_png_of_its_size() {
        let png = frame_of(CLIP, "video/mp4").await.unwrap().expect("a frame");
        let picture = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(picture.dimensions(), (160, 90));
        let [r, g, b] = picture.get_pixel(80, 45).0;
        assert!(r > 180 && g < 90 && b < 80, "the first frame is orange-red, not the later blue: {r},{g},{b}");
    }

    #[tokio::test]
    async fn a_playlist_posing_as_a_video_reaches_nothing() {
        // An HLS playlist names other files and URLs; ffmpeg asked for an MP4 from a file must
        // neither parse it as a playlist nor open what it names.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let playlist = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:{port}/secret.ts\n#EXT-X-ENDLIST\n"
        );
        assert!(frame_of(playlist.as_bytes(), "video/mp4").await.is_err());
        assert!(listener.accept().is_err(), "ffmpeg connected to the address the playlist named");
        assert!(frame_of(playlist.as_bytes(), "application/vnd.apple.mpegurl").await.unwrap().is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

        /// Whatever the bytes (noise, or the sample with some bytes changed), an answer comes:
        /// a frame or an error, never a hang or a panic.
        #[test]
        fn any_bytes_get_an_answer(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            flips in proptest::collection::vec((0..CLIP.len(), proptest::prelude::any::<u8>()), 1..16),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let mut damaged = CLIP.to_vec();
            for (at, byte) in flips {
                damaged[at] = byte;
            }
            for bytes in [noise, damaged] {
                if let Ok(Some(png)) = runtime.block_on(frame_of(&bytes, "video/mp4")) {
                    proptest::prop_assert!(png.starts_with(b"\x89PNG"));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_spool_file_is_private_and_gone_when_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir().join("spool");
        let mut spool = Spool::create(&dir).await.unwrap();
        spool.write(b"abc").await.unwrap();
        let path = spool.close().await.unwrap().to_owned();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(dir.metadata().unwrap().permissions().mode() & 0o777, 0o700);
        drop(spool);
        assert!(!path.exists());
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn spools_left_by_an_ended_process_are_cleared_and_young_ones_kept() {
        let dir = tempdir();
        let old = dir.join(format!("{SPOOL_PREFIX}old"));
        let young = dir.join(format!("{SPOOL_PREFIX}young"));
        let other = dir.join("someone-elses-file");
        for file in [&old, &young, &other] {
            std::fs::write(file, b"x").unwrap();
        }
        let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        for file in [&old, &other] {
            std::fs::File::options().write(true).open(file).unwrap().set_modified(two_days_ago).unwrap();
        }
        assert_eq!(clear_stale_spools(&dir), 1);
        assert!(!old.exists());
        assert!(young.exists() && other.exists());
        assert_eq!(clear_stale_spools(&dir.join("missing")), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
