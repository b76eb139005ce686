//! A fake fal.ai for tests, faithful to fal's documented HTTP protocol: same paths, same bodies,
//! same error families. It listens on loopback and serves every fal host under one base URL:
//! `/v1/…` (Platform API), `/queue/…` (queue API), `/rest/.well-known/jwks.json` (the keys its
//! webhooks are signed with), `/rest/storage/upload/initiate` (its storage, whose files live
//! under `/storage/files/…`) and `/files/…` (the CDN its results live on).
//!
//! Each submission follows a [`Scenario`] (by default: a short queue, a short run, one image and
//! a signed webhook); tests script others with [`FakeFal::script`].
//!
//! Keys follow fal's `key_id:key_secret` shape, and the key id chooses the account's behaviour:
//! `admin…` has ADMIN scope, `locked…` is a locked account, `invalid…` is unknown to fal, and
//! anything else is an ordinary API-scope key. It never logs a key.

mod auth;
mod media;
mod platform;
mod queue;
mod storage;
mod webhooks;

pub use media::{CLIP, CLIP_FIRST_COLOR, CLIP_MS, CLIP_SIZE};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
pub use storage::StoredFile;
pub use webhooks::FAKE_USER_ID;

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

/// How one submission behaves.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Submits answered 503 before this one is accepted (fal's retriable infrastructure error).
    pub submit_failures: u32,
    /// How long fal takes to answer the submit it accepted.
    pub submit_ms: u64,
    pub queue_ms: u64,
    pub run_ms: u64,
    pub outcome: Outcome,
    pub webhook: WebhookMode,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            submit_failures: 0,
            submit_ms: 0,
            queue_ms: 150,
            run_ms: 250,
            outcome: Outcome::Images { count: 1, width: 64, height: 64 },
            webhook: WebhookMode::Normal,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Images {
        count: u32,
        width: u32,
        height: u32,
    },
    /// A video of `bytes`, streamed, optionally no faster than `bytes_per_sec`.
    Video {
        bytes: u64,
        bytes_per_sec: Option<u64>,
    },
    /// A short real H.264 video ([`media::CLIP`]) that ffmpeg can decode, for poster frames.
    Clip,
    /// A result whose only file lives at this URL (for the SSRF tests).
    Url(String),
    ContentPolicy,
    Invalid {
        field: String,
        message: String,
    },
    Timeout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    Normal,
    None,
    Duplicate(u32),
    Forged,
    Stale,
}

/// A submitted request, as the fake remembers it.
#[derive(Clone, Debug)]
pub struct FalRequest {
    pub id: String,
    pub endpoint: String,
    pub input: serde_json::Value,
    pub webhook: Option<String>,
    /// The `X-Fal-Object-Lifecycle-Preference` header the submit carried.
    pub lifecycle: Option<String>,
    pub scenario: Scenario,
    pub started: Instant,
    pub canceled: bool,
    /// Each input URL the fake fetched, with the HTTP status it got (0: no answer).
    pub input_fetches: Vec<(String, u16)>,
    /// The inputs have been fetched (a model reads them when its run starts, as fal's do).
    pub inputs_fetched: bool,
    /// Which input field held the image URLs (`image_urls` or `image_url`).
    pub input_field: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub request_id: String,
    /// The status the webhook receiver answered (0: no answer).
    pub status: u16,
}

pub(crate) struct FakeState {
    recorded: Mutex<Vec<Recorded>>,
    balance: Mutex<f64>,
    scripts: Mutex<VecDeque<Scenario>>,
    requests: Mutex<HashMap<String, FalRequest>>,
    deliveries: Mutex<Vec<Delivery>>,
    /// Bytes sent so far by each video download, in the order they started.
    video_downloads: Mutex<Vec<Arc<std::sync::atomic::AtomicU64>>>,
    /// While set, the media host answers every download with 503.
    media_down: std::sync::atomic::AtomicBool,
    /// While set, the pricing endpoints answer 503.
    pricing_down: std::sync::atomic::AtomicBool,
    /// Files uploaded to the fake's storage (inputs a Darkroom fal cannot reach handed over).
    storage: Mutex<Vec<StoredFile>>,
    signing_key: ed25519_dalek::SigningKey,
    base: OnceLock<String>,
    /// How the fake reaches Darkroom (inputs, webhooks): with any extra trusted CA.
    http: reqwest::Client,
}

impl FakeState {
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.http
    }
}

impl FakeState {
    fn base_url(&self) -> String {
        self.base.get().cloned().unwrap_or_default()
    }
}

pub struct FakeFal {
    addr: SocketAddr,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeFal {
    pub async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        Self::start_trusting(addr, None).await
    }

    /// Starts on `addr` (loopback, or a private network a test built), trusting `ca` (PEM) as
    /// well as the usual roots when it fetches inputs and posts webhooks over https.
    pub async fn start_trusting(addr: SocketAddr, ca: Option<&[u8]>) -> anyhow::Result<Self> {
        let private = match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        };
        anyhow::ensure!(private, "the fake fal server listens on loopback or a private test network only");
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15));
        if let Some(pem) = ca {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem).context("the trusted CA")?);
        }
        let http = http.build().context("the fake's HTTP client")?;
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let state = Arc::new(FakeState {
            recorded: Mutex::default(),
            balance: Mutex::new(10.0),
            scripts: Mutex::default(),
            requests: Mutex::default(),
            deliveries: Mutex::default(),
            video_downloads: Mutex::default(),
            media_down: std::sync::atomic::AtomicBool::new(false),
            pricing_down: std::sync::atomic::AtomicBool::new(false),
            storage: Mutex::default(),
            signing_key: ed25519_dalek::SigningKey::from_bytes(&seed),
            base: OnceLock::new(),
            http,
        });
        let router = Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/rest/.well-known/jwks.json", axum::routing::get(jwks))
            .route("/queue/{*path}", axum::routing::any(queue::route))
            .route("/files/{request}/{name}", axum::routing::get(media::file))
            .route("/rest/storage/upload/initiate", axum::routing::post(storage::initiate))
            .route("/_fake/storage/{id}", axum::routing::put(storage::put))
            .route("/storage/files/{id}/{name}", axum::routing::get(storage::file))
            .route("/_fake/requests", axum::routing::get(inspect))
            .route("/_fake/script", axum::routing::post(script_over_http))
            .nest("/v1", platform::routes())
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the fake fal on {addr}"))?;
        let addr = listener.local_addr()?;
        let _ = state.base.set(format!("http://{addr}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        self.state.base_url()
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

    /// The next submission follows `scenario` (scripts are used in order; then the default).
    pub fn script(&self, scenario: Scenario) {
        self.state.scripts.lock().expect("script lock").push_back(scenario);
    }

    /// Every request submitted so far.
    pub fn submitted(&self) -> Vec<FalRequest> {
        let mut all: Vec<FalRequest> = self.state.requests.lock().expect("request lock").values().cloned().collect();
        all.sort_by_key(|r| r.started);
        all
    }

    /// Every webhook delivery made so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().expect("delivery lock").clone()
    }

    /// Every file uploaded to the fake's storage, oldest first.
    pub fn stored_files(&self) -> Vec<StoredFile> {
        self.state.storage.lock().expect("storage lock").clone()
    }

    /// Ages every stored file by `by`, as if that much time had passed (lifecycles end).
    pub fn age_stored_files(&self, by: std::time::Duration) {
        for file in self.state.storage.lock().expect("storage lock").iter_mut() {
            file.created = file.created.checked_sub(by).unwrap_or(file.created);
        }
    }

    /// Takes the media host down (every download answers 503) or brings it back.
    pub fn set_media_down(&self, down: bool) {
        self.state.media_down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn set_pricing_down(&self, down: bool) {
        self.state.pricing_down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves a request's own clock forward by `by`, as if that much time had passed for it (its
    /// queue and run phases are timed from its start), so tests need not sleep through them.
    pub fn advance(&self, request_id: &str, by: std::time::Duration) {
        if let Some(request) = self.state.requests.lock().expect("request lock").get_mut(request_id) {
            request.started = request.started.checked_sub(by).unwrap_or(request.started);
        }
    }

    /// How many bytes each video download has been sent so far, in the order they started (a
    /// download cut off midway stays below the file's size).
    pub fn video_downloads(&self) -> Vec<u64> {
        let downloads = self.state.video_downloads.lock().expect("download lock");
        downloads.iter().map(|sent| sent.load(std::sync::atomic::Ordering::SeqCst)).collect()
    }

    /// Posts a finished request's webhook again (a replay, as fal's retries look).
    pub async fn redeliver(&self, request_id: &str) {
        let (url, body) = {
            let requests = self.state.requests.lock().expect("request lock");
            let Some(request) = requests.get(request_id) else { return };
            let (_, payload) = queue::outcome_body(&self.base_url(), request);
            let body = serde_json::json!({ "request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": payload });
            (request.webhook.clone(), body.to_string())
        };
        if let Some(url) = url {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            webhooks::send(&self.state, request_id, &url, &body, &self.state.signing_key, now, 1).await;
        }
    }

    /// Signs `body` for `request_id` with the fake's key, as fal would (for hand-made deliveries).
    pub fn sign(&self, request_id: &str, timestamp: i64, body: &[u8]) -> String {
        use ed25519_dalek::Signer;
        let message =
            app::server::fal::webhook::message(request_id, webhooks::FAKE_USER_ID, &timestamp.to_string(), body);
        hex::encode(self.state.signing_key.sign(&message).to_bytes())
    }
}

/// What the fake has seen, for tests that run it as a separate process: every submission (its
/// input, the input fetches and their statuses, its output's URL) and every webhook delivery.
/// `POST /_fake/script {"outcome": "content_policy" | "timeout"}`: the next submission ends that
/// way, as [`FakeFal::script`] does for tests that hold the fake in their own process (the
/// browser tests run it as a separate one).
async fn script_over_http(
    State(state): State<Arc<FakeState>>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> axum::http::StatusCode {
    let outcome = match body.get("outcome").and_then(|o| o.as_str()) {
        Some("content_policy") => Outcome::ContentPolicy,
        Some("timeout") => Outcome::Timeout,
        _ => return axum::http::StatusCode::BAD_REQUEST,
    };
    state.scripts.lock().expect("script lock").push_back(Scenario { outcome, ..Scenario::default() });
    axum::http::StatusCode::NO_CONTENT
}

async fn inspect(State(state): State<Arc<FakeState>>) -> axum::Json<serde_json::Value> {
    let base = state.base_url();
    let requests: Vec<serde_json::Value> = {
        let requests = state.requests.lock().expect("request lock");
        requests
            .values()
            .map(|r| {
                let (_, output) = queue::outcome_body(&base, r);
                serde_json::json!({
                    "id": r.id,
                    "endpoint": r.endpoint,
                    "input": r.input,
                    "webhook": r.webhook,
                    "input_fetches": r.input_fetches.iter().map(|(url, status)| serde_json::json!({ "url": url, "status": status })).collect::<Vec<_>>(),
                    "output": output,
                })
            })
            .collect()
    };
    let deliveries: Vec<serde_json::Value> = state
        .deliveries
        .lock()
        .expect("delivery lock")
        .iter()
        .map(|d| serde_json::json!({ "request_id": d.request_id, "status": d.status }))
        .collect();
    let stored: Vec<serde_json::Value> = state
        .storage
        .lock()
        .expect("storage lock")
        .iter()
        .map(|f| {
            serde_json::json!({
                "file_url": f.file_url,
                "content_type": f.content_type,
                "lifecycle_secs": f.lifecycle_secs,
                "bytes": f.bytes.as_ref().map(Vec::len),
                "put_authorization": f.put_authorization,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "requests": requests, "deliveries": deliveries, "stored_files": stored }))
}

/// The JWKS fal publishes its webhook keys in; this one holds the fake's key.
async fn jwks(State(state): State<Arc<FakeState>>) -> axum::Json<serde_json::Value> {
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state.signing_key.verifying_key().as_bytes());
    axum::Json(serde_json::json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "fake" }] }))
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
