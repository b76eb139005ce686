//! A fake fal.ai for tests, faithful to `../shared/fal-protocol.md`: same paths, same bodies,
//! same error families. It listens on loopback and serves every fal host under one base URL:
//! `/v1/…` (Platform API), later `/queue/…`, `/rest/…` and `/files/…`.
//!
//! Keys follow fal's `key_id:key_secret` shape, and the key id chooses the account's behaviour:
//! `admin…` has ADMIN scope, `locked…` is a locked account, `invalid…` is unknown to fal, and
//! anything else is an ordinary API-scope key. It never logs a key.

mod auth;
mod platform;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;

/// A request the fake received, for assertions ("which key did the app send?").
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub(crate) struct FakeState {
    recorded: Mutex<Vec<Recorded>>,
    balance: Mutex<f64>,
}

pub struct FakeFal {
    addr: SocketAddr,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeFal {
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(addr.ip().is_loopback(), "the fake fal server listens on loopback only");
        let state = Arc::new(FakeState { balance: Mutex::new(10.0), ..Default::default() });
        let router = Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .nest("/v1", platform::routes())
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the fake fal on {addr}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `FAL_*` variables that point the app at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let base = self.base_url();
        vec![
            ("FAL_QUEUE_URL", format!("{base}/queue")),
            ("FAL_API_URL", format!("{base}/v1")),
            ("FAL_REST_URL", format!("{base}/rest")),
            ("FAL_JWKS_URL", format!("{base}/rest/.well-known/jwks.json")),
            ("FAL_MEDIA_HOSTS", self.addr.ip().to_string()),
        ]
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.recorded.lock().expect("recorder lock").clone()
    }

    pub fn set_balance(&self, amount: f64) {
        *self.state.balance.lock().expect("balance lock") = amount;
    }
}

impl Drop for FakeFal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<Arc<FakeState>>, request: Request, next: Next) -> Response {
    let entry = Recorded {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        authorization: request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    state.recorded.lock().expect("recorder lock").push(entry);
    next.run(request).await
}
