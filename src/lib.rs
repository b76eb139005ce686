//! The Darkroom server: wiring, the routes that are not server functions, the embedded S3
//! endpoint, operator commands, and (with the `fake-fal` feature) the fake fal server the tests run against.

pub mod cli;
pub mod embedded_s3;
#[cfg(feature = "fake-fal")]
pub mod fake_fal;
pub mod guards;
pub mod metrics;
mod observe;
mod probes;
mod render;
pub mod server;
pub mod telemetry;
