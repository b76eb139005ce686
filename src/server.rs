//! Assembling and running the server: database, vault, storage, fal client, routes, guards.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use app::server::auth::verified::Verified;
use app::server::config::{Config, StorageBackend};
use app::server::db::{Db, SessionPool};
use app::server::fal::FalClient;
use app::server::jobs::{self, JobRuntime};
use app::server::keys::Vault;
use app::server::maintenance;
use app::server::state::{AppState, Services};
use app::server::storage::{Signing, Storage};
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::embedded_s3::{self, EmbeddedS3};
use crate::guards;

pub const SESSION_COOKIE: &str = "darkroom_session";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Leptos's site settings, from `LEPTOS_*` variables (cargo-leptos sets them) or defaults that
/// match `[[workspace.metadata.leptos]]`, so the binary runs without Cargo.toml beside it.
pub fn leptos_options(config: &Config) -> LeptosOptions {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    LeptosOptions::builder()
        .output_name(var("LEPTOS_OUTPUT_NAME", "darkroom"))
        .site_root(var("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(var("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(config.site_addr)
        .build()
}

/// A running server. Dropping it stops the server and the embedded S3 endpoint.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub embedded_s3: Option<EmbeddedS3>,
    maintenance: tokio::task::JoinHandle<()>,
    /// Watches for session changes other servers made (see `auth::verified`).
    sessions: tokio::task::JoinHandle<()>,
    worker: Option<tokio::task::JoinHandle<()>>,
    relay: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until the server stops (it never does unless shut down or failing).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")?.context("server")
    }

    /// Stops in order: no new connections or job claims, live streams end, requests under way
    /// and job steps get `grace` to finish (saves stop between parts; a submit fal accepted is
    /// always waited for until its request id is stored), then leases still held are released.
    pub async fn shut_down(mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.state.jobs.closing.send(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(worker) = self.worker.take()
            && tokio::time::timeout_at(deadline, worker).await.is_err()
        {
            tracing::warn!("job steps still running at the end of the grace period");
        }
        let _ = self.state.jobs.submitting.acquire_many(jobs::SUBMITS_AT_ONCE).await;
        if tokio::time::timeout_at(deadline, &mut self.task).await.is_err() {
            tracing::warn!("requests still open at the end of the grace period");
        }
        jobs::worker::release_leases((&self.state).into()).await;
        tracing::info!("stopped");
    }

    pub async fn stop(mut self) {
        if let Some(worker) = &self.worker {
            worker.abort();
        }
        let _ = self.state.jobs.closing.send(true);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        self.maintenance.abort();
        self.sessions.abort();
        if let Some(worker) = &self.worker {
            worker.abort();
        }
        if let Some(relay) = &self.relay {
            relay.abort();
        }
        let _ = self.state.jobs.closing.send(true);
    }
}

/// Opens everything `config` names and serves the app on `listener`.
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let mut leptos_options = leptos_options(&config);
    leptos_options.site_addr = addr;

    let (db, sessions) = Db::connect(&config.database_url).await.context("opening the database")?;
    let vault = Vault::load(&config.master_key, &config.previous_master_keys.0).context("loading the master key")?;

    let (storage, embedded_s3) = open_storage(&config, addr).await?;
    let fal = FalClient::new(&config.fal);
    let (jobs, relay) = JobRuntime::start(&config, &db).await;
    let session_store = app::server::auth::session::store(&sessions);
    let state = AppState::new(Services {
        leptos_options,
        config,
        db,
        vault,
        fal,
        storage,
        jobs,
        sessions: session_store,
        sweep_position: Default::default(),
    });
    let router = router(state.clone(), sessions, embedded_s3.as_ref()).await?;
    let maintenance = maintenance::spawn(state.clone());
    let sessions = Verified::watch(state.db.clone(), state.config.auth.session_recheck);
    let worker = (state.config.jobs.concurrency > 0).then(|| jobs::worker::spawn(state.clone()));
    let cleared = app::server::jobs::poster::clear_stale_spools(&state.config.jobs.spool_dir);
    if cleared > 0 {
        tracing::info!(cleared, "removed video spool files left by an earlier run");
    }
    match &state.config.jobs.ffmpeg {
        Some(ffmpeg) => tracing::info!(ffmpeg = %ffmpeg.display(), "videos get poster frames"),
        None if worker.is_some() => {
            tracing::warn!("no ffmpeg (DARKROOM_FFMPEG, or ffmpeg on PATH): video results get no poster frame")
        }
        None => {}
    }

    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "Darkroom listening");
    Ok(Running { addr, state, embedded_s3, maintenance, sessions, worker, relay, shutdown: Some(shutdown), task })
}

/// Opens the configured storage. The embedded endpoint is served by this server's own listener
/// at `site_addr`, which the server's client reaches too (its routes come back with it, to be
/// mounted); external storage must have both buckets, created when the credentials allow.
pub async fn open_storage(config: &Config, site_addr: SocketAddr) -> anyhow::Result<(Storage, Option<EmbeddedS3>)> {
    let (uploads, results) = (config.storage.uploads_bucket.clone(), config.storage.results_bucket.clone());
    match &config.storage.backend {
        StorageBackend::Embedded { root } => {
            let s3 = EmbeddedS3::open(root, &embedded_s3::credentials_path(&config.data_dir), &[&uploads, &results])?;
            let storage = Storage::connect(&s3.endpoint(site_addr), uploads, results, embedded_signing(config)).await;
            Ok((storage, Some(s3)))
        }
        StorageBackend::External(external) => {
            let signing = match &config.storage.public_endpoint {
                Some(public) => Signing::At(public.clone()),
                None => Signing::AsConnected,
            };
            let storage = Storage::connect(external, uploads, results, signing).await;
            storage.ensure_buckets().await.context("preparing the storage buckets")?;
            Ok((storage, None))
        }
    }
}

/// Links to the embedded endpoint point at `PUBLIC_URL` when there is one, else at whatever
/// address the browser used.
pub fn embedded_signing(config: &Config) -> Signing {
    match config.public_url.as_ref().and_then(|url| url::Url::parse(&url.origin().ascii_serialization()).ok()) {
        Some(origin) => Signing::At(origin),
        None => Signing::CallerOrigin,
    }
}

async fn router(state: AppState, sessions: SessionPool, embedded_s3: Option<&EmbeddedS3>) -> anyhow::Result<Router> {
    let routes = generate_route_list(App);
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let options = state.leptos_options.clone();
    crate::metrics::recorder();
    let app = Router::new()
        .route("/healthz", get(crate::probes::health))
        .route("/readyz", get(crate::probes::ready))
        .route("/metrics", get(crate::metrics::route))
        .route("/hooks/fal", post(jobs::webhook::receive))
        .route("/events", get(jobs::live::stream))
        .route("/account/export", get(app::server::export::download))
        .route("/language", get(crate::language::switch))
        .nest("/api/v1", app::server::api_v1::routes(state.clone()))
        .route(
            "/gallery/download",
            post(app::server::export::selection)
                .layer(axum::extract::DefaultBodyLimit::max(app::server::export::MAX_SELECTION_FORM)),
        )
        .leptos_routes_with_context(&state, routes, context, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(from_fn(crate::render::finish_abandoned))
        .layer(from_fn_with_state(state.clone(), guards::pages));

    let app = match sessions {
        SessionPool::Sqlite(pool) => {
            let store = SqliteStore::new(pool);
            store.migrate().await.context("session table")?;
            with_sessions(app, store, &state)
        }
        SessionPool::Postgres(pool) => {
            let store = PostgresStore::new(pool);
            store.migrate().await.context("session table")?;
            with_sessions(app, store, &state)
        }
    };
    // Storage needs no session, page guard or render task: its requests are signed by the URL.
    let app = match embedded_s3 {
        Some(s3) => app.merge(s3.routes()),
        None => app,
    };
    Ok(app
        .layer(from_fn_with_state(state.clone(), request_timeout))
        .layer(from_fn_with_state(state.clone(), guards::same_origin))
        .layer(from_fn(guards::tokens_only_on_the_api))
        .layer(from_fn_with_state(state.clone(), guards::security_headers))
        .layer(from_fn_with_state(state.clone(), guards::client_ip))
        .layer(from_fn(crate::observe::access_log))
        .layer(from_fn(crate::observe::request_id))
        .with_state(state))
}

fn with_sessions<S>(app: Router<AppState>, store: S, state: &AppState) -> Router<AppState>
where
    S: SessionStore + ExpiredDeletion + Clone,
{
    let config = &state.config;
    tokio::spawn(store.clone().continuously_delete_expired(Duration::from_secs(3600)));
    let ttl = tower_sessions::cookie::time::Duration::seconds(config.auth.session_ttl.as_secs() as i64);
    let layer = SessionManagerLayer::new(store)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(ttl));
    app.layer(layer)
}

/// No request may hold a worker forever (a stuck render, a peer that stopped reading), except
/// the live event stream, which is long-lived by design, and transfers to and from the embedded
/// storage, which take as long as the file and the connection need.
async fn request_timeout(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let storage = &state.storage;
    let embedded = matches!(state.config.storage.backend, StorageBackend::Embedded { .. });
    if path == "/events" || (embedded && (first == storage.uploads_bucket || first == storage.results_bucket)) {
        return next.run(request).await;
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
