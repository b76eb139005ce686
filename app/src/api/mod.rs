//! Server functions: the API seam between the pages and the services. Each one authorizes,
//! validates its input and calls one service; each has a fixed endpoint under `/api/`.

pub mod account;
pub mod admin;
pub mod auth;
pub mod gallery;
pub mod jobs;
pub mod keys;
pub mod oversight;
pub mod quotas;
pub mod spending;
pub mod tokens;
pub mod uploads;
