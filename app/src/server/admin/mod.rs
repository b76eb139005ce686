//! What only admins do: see every account with what it holds and spends and change who may sign
//! in and with which role (`users`); follow, retry and cancel everyone's jobs (`jobs`); read the
//! audit log (`audit`); look into an account's gallery for a stated reason, for a limited time
//! (`access`).

pub mod access;
pub mod audit;
pub mod jobs;
pub mod users;
