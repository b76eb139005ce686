//! `TestApp::spawn()`: the real server on a random loopback port with a fresh database, its own
//! embedded S3 endpoint and a fake fal server, plus a cookie-keeping client that remembers every
//! response it saw (so a test can assert a secret never left the server).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use app::server::config::Config;
use app::views::JobView;
use base64::Engine;
use darkroom::fake_fal::FakeFal;
use darkroom::server::{Running, SESSION_COOKIE};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use sqlx::Connection;

pub const PASSWORD: &str = "correct horse battery";

/// How long a test waits for something that should happen soon. Generous on purpose: a loaded
/// 2-core machine can be many times slower than an idle one, and a passing test returns as soon
/// as the condition holds.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `check` until it gives a value, and fails the test naming `what` if that takes longer
/// than [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("DARKROOM_TEST_DB").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("DARKROOM_TEST_DB must be sqlite or postgres, not {other}"),
    }
}

/// Which S3 the app under test stores into: its own embedded endpoint, or a Garage server started
/// by the test command (`DARKROOM_TEST_STORAGE=garage`, endpoint and key in `DARKROOM_TEST_S3_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    Embedded,
    Garage,
}

pub fn storage_kind() -> StorageKind {
    match std::env::var("DARKROOM_TEST_STORAGE").as_deref() {
        Ok("garage") => StorageKind::Garage,
        Ok("embedded") | Err(_) => StorageKind::Embedded,
        Ok(other) => panic!("DARKROOM_TEST_STORAGE must be embedded or garage, not {other}"),
    }
}

fn garage_vars(tag: &str) -> Vec<(String, String)> {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set for Garage tests"));
    vec![
        ("S3_ENDPOINT".into(), var("DARKROOM_TEST_S3_ENDPOINT")),
        ("S3_REGION".into(), var("DARKROOM_TEST_S3_REGION")),
        ("S3_ACCESS_KEY_ID".into(), var("DARKROOM_TEST_S3_KEY_ID")),
        ("S3_SECRET_ACCESS_KEY".into(), var("DARKROOM_TEST_S3_SECRET")),
        // Buckets of their own keep tests apart on the shared server.
        ("S3_UPLOADS_BUCKET".into(), format!("t{tag}-uploads")),
        ("S3_RESULTS_BUCKET".into(), format!("t{tag}-results")),
    ]
}

/// Creates buckets as a Garage operator would (`garage bucket create`): with global aliases, the
/// only kind Garage applies CORS rules to (a preflight carries no key to resolve a local alias).
async fn create_garage_buckets(names: &[&str]) {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set for Garage tests"));
    let (admin, token, key) =
        (var("DARKROOM_TEST_GARAGE_ADMIN"), var("DARKROOM_TEST_GARAGE_ADMIN_TOKEN"), var("DARKROOM_TEST_S3_KEY_ID"));
    let http = reqwest::Client::new();
    for name in names {
        let created: serde_json::Value = http
            .post(format!("{admin}/v2/CreateBucket"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "globalAlias": name }))
            .send()
            .await
            .expect("Garage admin API reachable")
            .json()
            .await
            .expect("a bucket description");
        let allowed = http
            .post(format!("{admin}/v2/AllowBucketKey"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "bucketId": created["id"],
                "accessKeyId": key,
                "permissions": { "read": true, "write": true, "owner": true },
            }))
            .send()
            .await
            .expect("Garage admin API reachable");
        assert!(allowed.status().is_success(), "granting the test key access to {name}");
    }
}

fn postgres_admin_url() -> String {
    std::env::var("DARKROOM_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Log files of server processes the tests started, searched when an answer is a 5xx.
pub fn process_logs() -> &'static Mutex<Vec<std::path::PathBuf>> {
    static LOGS: OnceLock<Mutex<Vec<std::path::PathBuf>>> = OnceLock::new();
    LOGS.get_or_init(Mutex::default)
}

/// The server's account of one request: its lines in this process's log or a server process's.
pub fn lines_about(request_id: &str) -> String {
    let mut logs = vec![captured_logs()];
    logs.extend(process_logs().lock().unwrap().iter().filter_map(|path| std::fs::read_to_string(path).ok()));
    let lines: Vec<&str> = logs.iter().flat_map(|log| log.lines()).filter(|l| l.contains(request_id)).collect();
    if lines.is_empty() { "(none mention it)".to_owned() } else { lines[lines.len().saturating_sub(40)..].join("\n") }
}

/// Everything the process logged, for secret-leak assertions.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            // As verbose as anyone could set it, with the same caps as production.
            .with_env_filter(darkroom::telemetry::with_always(tracing_subscriber::EnvFilter::new(
                "trace,hyper=debug,hyper_util=debug,h2=debug,sqlx=debug,aws_smithy_runtime=debug,aws_sdk_s3=debug",
            )))
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestApp {
    pub running: Running,
    pub fake: FakeFal,
    pub base: String,
    pub dir: PathBuf,
    pub vars: HashMap<String, String>,
    pg_database: Option<String>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts an app whose environment is the test defaults plus `extra`.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        log_buffer();
        let dir = std::env::temp_dir().join("darkroom-tests").join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let (database_url, pg_database) = match backend() {
            Backend::Sqlite => (format!("sqlite://{}", dir.join("darkroom.db").display()), None),
            Backend::Postgres => {
                let name = format!("darkroom_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("PostgreSQL reachable");
                sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut admin).await.unwrap();
                let url = postgres_admin_url();
                let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b).to_owned();
                (format!("{base}/{name}"), Some(name))
            }
        };
        let fake = FakeFal::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), database_url.clone()),
            ("DARKROOM_DATA_DIR".into(), dir.display().to_string()),
            ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
            ("DARKROOM_MASTER_KEY".into(), base64::engine::general_purpose::STANDARD.encode(rand_bytes())),
        ]);
        vars.extend(fake.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
        if storage_kind() == StorageKind::Garage {
            let garage = garage_vars(&uuid::Uuid::new_v4().simple().to_string()[..12]);
            let buckets: Vec<&str> =
                garage.iter().filter(|(k, _)| k.ends_with("_BUCKET")).map(|(_, v)| v.as_str()).collect();
            create_garage_buckets(&buckets).await;
            vars.extend(garage);
        }
        // Jobs move fast in tests: quick polls and retries, and a webhook grace long enough that
        // a test on the webhook path would notice the poller doing the webhook's work.
        for (name, value) in [
            ("DARKROOM_JOB_POLL_FIRST_MS", "100"),
            ("DARKROOM_JOB_POLL_MAX_MS", "400"),
            ("DARKROOM_JOB_RETRY_BASE_MS", "100"),
            ("DARKROOM_WORKER_TICK_MS", "50"),
            ("DARKROOM_WEBHOOK_GRACE_SECS", "30"),
            // Synthetic test images have no faces; the face check's own tests turn it on.
            ("DARKROOM_FACE_CHECK", "off"),
        ] {
            vars.insert(name.into(), value.into());
        }
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // `PUBLIC_URL=self`: the app's own address, so fal's webhooks reach it.
        if vars.get("PUBLIC_URL").map(String::as_str) == Some("self") {
            vars.insert("PUBLIC_URL".into(), format!("http://{}", listener.local_addr().unwrap()));
        }
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid");
        let running = darkroom::server::start(config, listener).await.expect("server starts");
        let base = format!("http://{}", running.addr);
        Self { running, fake, base, dir, vars, pg_database }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// A client already signed up and logged in as `email`.
    pub async fn user(&self, email: &str) -> Client {
        let client = self.client();
        let reply = client.signup(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "signup of {email} failed: {}", reply.body);
        client
    }

    pub async fn admin(&self, email: &str) -> Client {
        let client = self.user(email).await;
        crate::cli::run(self, &["user", "promote", email], None).await.success();
        client
    }

    pub fn db(&self) -> &app::server::db::Db {
        &self.running.state.db
    }

    pub fn storage(&self) -> &app::server::storage::Storage {
        &self.running.state.storage
    }

    /// The object at `key` in the uploads bucket, if any.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let storage = self.storage();
        match storage.get_bytes(&storage.uploads_bucket, key, u64::MAX).await.expect("storage reachable") {
            Some(app::server::storage::Fetched::Bytes(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// Every key under `prefix` in the results bucket.
    pub async fn result_keys(&self, prefix: &str) -> Vec<String> {
        let storage = self.storage();
        let mut keys: Vec<String> = storage
            .list(&storage.results_bucket, prefix, None)
            .await
            .expect("storage reachable")
            .0
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys
    }

    /// Every key under `prefix` in the uploads bucket.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let storage = self.storage();
        storage
            .list(&storage.uploads_bucket, prefix, None)
            .await
            .expect("storage reachable")
            .0
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if storage_kind() == StorageKind::Garage {
            // The app's client lives on the test's runtime, which is blocked here: use a new one.
            let vars = self.vars.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
                    if let app::server::config::StorageBackend::External(endpoint) = &config.storage.backend {
                        let storage = app::server::storage::Storage::connect(
                            endpoint,
                            config.storage.uploads_bucket.clone(),
                            config.storage.results_bucket.clone(),
                            app::server::storage::Signing::AsConnected,
                        )
                        .await;
                        empty_and_remove_buckets(storage).await;
                    }
                });
            })
            .join()
            .ok();
        }
        if let Some(name) = self.pg_database.take() {
            // Dropping happens inside the test's runtime; use a thread with its own.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

async fn empty_and_remove_buckets(storage: app::server::storage::Storage) {
    for bucket in [storage.uploads_bucket.clone(), storage.results_bucket.clone()] {
        for prefix in ["uploads/", "sources/", "results/", "thumbs/", ""] {
            if let Ok((objects, _)) = storage.list(&bucket, prefix, None).await {
                for (key, _) in objects {
                    let _ = storage.delete(&bucket, &key).await;
                }
            }
        }
        let _ = storage.client().delete_bucket().bucket(&bucket).send().await;
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

/// A browser-like client: keeps cookies, does not follow redirects, remembers every response.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    jar: Arc<Jar>,
    seen: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not the expected JSON ({e}): {}", self.body))
    }

    pub fn code(&self) -> String {
        let value: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        value["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the answer is a refusal with this status and error code.
    pub fn refused(&self, status: StatusCode, code: &str) {
        assert_eq!((self.status, self.code().as_str()), (status, code), "{}", self.body);
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self::from_address(base, None)
    }

    /// A client whose connections leave from `local` (any 127.x.y.z is this machine too), so the
    /// server sees another caller address.
    pub fn from_address(base: &str, local: Option<std::net::IpAddr>) -> Self {
        Self::build(base, local, None)
    }

    /// A client that introduces itself with `user_agent`, like a particular browser would.
    pub fn with_user_agent(base: &str, user_agent: &str) -> Self {
        Self::build(base, None, Some(user_agent))
    }

    fn build(base: &str, local: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Self {
        let jar = Arc::new(Jar::default());
        let mut http = reqwest::Client::builder();
        if let Some(user_agent) = user_agent {
            http = http.user_agent(user_agent);
        }
        let http = http
            .local_address(local)
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            // A hung request fails the test with its URL instead of hanging the suite.
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Self { http, base: base.to_owned(), jar, seen: Arc::default() }
    }

    /// The same browser (cookies and all) talking to another address of the same host.
    pub fn at(&self, base: &str) -> Client {
        Client { http: self.http.clone(), base: base.to_owned(), jar: self.jar.clone(), seen: self.seen.clone() }
    }

    /// Calls a server function the way the hydrated app does (form body, JSON answer).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> Reply {
        let request =
            self.http.post(format!("{}/api/{endpoint}", self.base)).header("accept", "application/json").form(form);
        self.send(request).await
    }

    /// An admin's lookup of the account `email`'s id (through the admin's users list).
    pub async fn account_id(&self, email: &str) -> String {
        let page: app::api::admin::UsersPage = self.call("admin/users", &[("q", email)]).await.json();
        page.users.into_iter().find(|u| u.email == email).expect("listed").id
    }

    /// Calls a server function that takes JSON (`input = Json`), as the hydrated app does.
    pub async fn call_json(&self, endpoint: &str, body: &serde_json::Value) -> Reply {
        let request =
            self.http.post(format!("{}/api/{endpoint}", self.base)).header("accept", "application/json").json(body);
        self.send(request).await
    }

    /// Starts a job and answers the app's own view of it (the typed calls below fail to compile
    /// when a view changes shape, where a JSON lookup would quietly read nothing).
    pub async fn create_job(&self, model: &str, params: serde_json::Value, images: &[&str]) -> Result<JobView, Reply> {
        let body = serde_json::json!({ "model": model, "params": params, "images": images });
        let request =
            self.http.post(format!("{}/api/jobs/create", self.base)).header("accept", "application/json").json(&body);
        let reply = self.send(request).await;
        if reply.status == StatusCode::OK { Ok(reply.json()) } else { Err(reply) }
    }

    /// The owner's view of job `id`.
    pub async fn job_view(&self, id: &str) -> JobView {
        let reply = self.call("jobs/get", &[("id", id)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap_or_else(|e| panic!("request failed: {e:?}"));
        let status = response.status();
        let headers = response.headers().clone();
        let url = response.url().clone();
        let body = response.text().await.unwrap_or_else(|e| panic!("reading the answer from {url} failed: {e:?}"));
        if status.is_server_error() {
            // A 5xx is a defect whoever asked: show the server's own account of this request.
            let id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            eprintln!("{status} from {url}, request {id}; the server logged:\n{}", lines_about(id));
        }
        let mut seen = self.seen.lock().unwrap();
        seen.push(format!("{headers:?}"));
        seen.push(body.clone());
        Reply { status, headers, body }
    }

    /// Every header block and body this client received.
    pub fn everything_seen(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Reply {
        self.call("auth/signup", &[("email", email), ("password", password), ("confirm", password)]).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.call("auth/login", &[("email", email), ("password", password)]).await
    }

    pub async fn me(&self) -> Option<String> {
        let reply = self.call("auth/me", &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.json::<Option<serde_json::Value>>().map(|me| me["email"].as_str().unwrap().to_owned())
    }

    pub fn session_cookie(&self) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix(&format!("{SESSION_COOKIE}=")).map(str::to_owned))
    }
}
