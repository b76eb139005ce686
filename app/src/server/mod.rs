//! Server-only services (the `ssr` feature): each owns its SQL and I/O. Server functions in
//! `crate::api` authorize, validate and call exactly one of them.

pub mod admin;
pub mod api_v1;
pub mod audit;
pub mod auth;
pub mod config;
pub mod csp;
pub mod db;
pub mod erase;
pub mod export;
pub mod faces;
pub mod fal;
pub mod gallery;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod quota;
pub mod rate_limit;
pub mod reconcile;
pub mod redact;
pub mod request;
pub mod secret_file;
pub mod spend;
pub mod state;
pub mod storage;
pub mod tokens;
#[cfg(test)]
mod untrusted_bytes;
pub mod uploads;
