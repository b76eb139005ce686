//! Everything a request handler may need, built once at start and shared.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::config::Config;
use super::db::Db;
use super::fal::FalClient;
use super::jobs::JobRuntime;
use super::keys::Vault;
use super::storage::Storage;

pub struct Services {
    pub leptos_options: LeptosOptions,
    pub config: Config,
    pub db: Db,
    pub vault: Vault,
    pub fal: FalClient,
    pub storage: Storage,
    pub jobs: JobRuntime,
    /// The session store, for long-lived requests (the live stream) that must notice when the
    /// session they started with has ended.
    pub sessions: Arc<dyn tower_sessions::SessionStore>,
    /// Where the upload sweeper's reconciliation of storage goes on from.
    pub sweep_position: super::uploads::SweepPosition,
}

#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
