//! The integration suite: one binary (one link on a 2-core machine), a module per area.
//! `DARKROOM_TEST_DB=postgres` runs it against PostgreSQL instead of SQLite.

mod account;
mod admin;
mod auth;
mod cli;
mod fal;
mod fuzz;
mod gallery;
mod hardening;
mod helpers;
mod inputs;
mod jobs;
mod keys;
mod locale;
mod mobile;
mod openapi;
mod operations;
mod outages;
mod oversight;
mod pages;
mod posters;
mod process;
mod quotas;
mod reconcile;
mod replicas;
mod restart;
mod retention;
mod security;
mod shutdown;
mod spending;
mod storage;
#[path = "../../app/src/server/uploads/testdata.rs"]
mod testdata;
mod tokens;
mod uploads;
