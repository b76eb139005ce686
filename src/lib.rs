//! The Darkroom server: wiring, the routes that are not server functions, the embedded S3
//! endpoint, operator commands, and (with the `fake-fal` feature) the fake fal server the tests run against.

pub mod cli;
pub mod embedded_s3;
#[cfg(feature = "fake-fal")]
pub mod fake_fal;
pub mod guards;
mod language;
pub mod metrics;
mod observe;
mod probes;
mod render;
pub mod server;
pub mod telemetry;

/// glibc's allocator spent about a fifth of a signed-in request's CPU (arena locks, chunk
/// consolidation, returning memory with `munmap`); mimalloc keeps per-thread pages instead
/// (measured with `cargo bench --bench presign`). Every binary linking the server uses it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
