//! Typed configuration, read once from the environment (the README's "Configuration").
//!
//! Everything has a default so the app runs with nothing set: SQLite under `./data`, the
//! embedded S3 endpoint on loopback, and a master key file generated on first run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {name} {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

fn bad(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { name, problem: problem.into() }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub site_addr: SocketAddr,
    /// Externally reachable base URL; decides the `Secure` cookie flag, the allowed `Origin`
    /// and (later) the webhook URL. `None` means "whatever Host the browser used".
    pub public_url: Option<Url>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub storage: StorageConfig,
    pub fal: FalConfig,
    pub master_key: MasterKeySource,
    /// Older master keys that still open values sealed before a rotation.
    pub previous_master_keys: PreviousMasterKeys,
    pub auth: AuthConfig,
    pub uploads: UploadConfig,
    pub jobs: JobConfig,
    pub gallery: GalleryConfig,
    /// How many reverse proxies of ours stand in front and append to `X-Forwarded-For`
    /// (0: the header is ignored, as it must be when none is really in front).
    pub trusted_proxies: u8,
    /// Bearer token for `/metrics` from other hosts (loopback needs none).
    pub metrics_token: Option<Secret>,
    /// On SIGTERM, how long requests and job steps get to finish before the process exits.
    pub shutdown_grace: Duration,
}

/// A configuration value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub uploads_bucket: String,
    pub results_bucket: String,
    /// Where browsers and fal reach external storage when it differs from where the server does
    /// (`S3_PUBLIC_ENDPOINT`): presigned URLs are signed for it.
    pub public_endpoint: Option<Url>,
}

#[derive(Clone, Debug)]
pub enum StorageBackend {
    /// The in-process S3 endpoint (s3s-fs), served by the app's own listener at the buckets'
    /// paths.
    Embedded {
        root: PathBuf,
    },
    External(ExternalS3),
}

/// First path segments the app itself uses: an embedded bucket must not be named after one,
/// since its objects are served at `/<bucket>/…` on the same origin.
const RESERVED_PATHS: &[&str] = &[
    "api",
    "pkg",
    "events",
    "hooks",
    "healthz",
    "readyz",
    "metrics",
    "login",
    "signup",
    "create",
    "gallery",
    "account",
    "admin",
    "favicon.ico",
    "robots.txt",
];

#[derive(Clone)]
pub struct ExternalS3 {
    pub endpoint: Option<Url>,
    pub region: String,
    /// `None` falls back to the SDK's default credential chain (IAM roles, profiles).
    pub credentials: Option<(String, String)>,
    pub force_path_style: bool,
}

impl std::fmt::Debug for ExternalS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalS3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials.as_ref().map(|(id, _)| id))
            .field("force_path_style", &self.force_path_style)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct FalConfig {
    pub queue_url: Url,
    pub api_url: Url,
    pub rest_url: Url,
    pub jwks_url: Url,
    pub media_hosts: Vec<String>,
    pub timeout: Duration,
}

#[derive(Clone)]
pub enum MasterKeySource {
    /// Base64 of 32 bytes, straight from `DARKROOM_MASTER_KEY`.
    Inline(String),
    /// A file holding the base64 key; created with mode 0600 when missing.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

#[derive(Clone, Default)]
pub struct PreviousMasterKeys(pub Vec<String>);

impl std::fmt::Debug for PreviousMasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviousMasterKeys({} redacted)", self.0.len())
    }
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub allow_signup: bool,
    /// Operator opt-in: the first account to sign up becomes admin.
    pub first_user_admin: bool,
    pub login_limit: RateLimit,
    pub login_ip_limit: RateLimit,
    pub signup_limit: RateLimit,
    pub signup_ip_limit: RateLimit,
    pub session_ttl: Duration,
    /// How long a verified session is trusted without reading the database again, when nothing
    /// that ends sessions happened meanwhile (zero: every request reads it).
    pub session_recheck: Duration,
    /// JSON API requests per minute for one access token (`DARKROOM_API_REQUESTS_PER_MINUTE`,
    /// 600); an account may make twice as many across its tokens.
    pub api_token_limit: RateLimit,
    pub api_account_limit: RateLimit,
}

#[derive(Clone, Debug)]
pub struct UploadConfig {
    /// Largest accepted upload, in bytes.
    pub max_bytes: u64,
    /// Upload tickets a user may get per UTC day.
    pub per_day: u64,
    /// Declared bytes a user may upload per UTC day.
    pub bytes_per_day: u64,
    /// What each account may keep, images and results together (`DARKROOM_STORAGE_QUOTA_MB`;
    /// `None`, the default: no limit). An admin may set an account's own.
    pub storage_bytes: Option<u64>,
    /// Largest accepted image, in pixels (decompression bombs are refused before decoding).
    pub max_pixels: u64,
    /// How long a presigned PUT (and its ticket) stays valid; at most 5 minutes.
    pub ticket_ttl: Duration,
    /// How long a presigned GET for viewing stays valid.
    pub view_ttl: Duration,
    /// How often the sweeper expires tickets and removes leftover objects.
    pub sweep_every: Duration,
    /// How long after an account's deletion the last pass over storage runs (removing what a
    /// job still running at the time wrote).
    pub erase_last_pass_after: Duration,
    /// How long a ready image is kept after its upload or its last use by a job, whichever is
    /// later; `None` keeps images until their owner deletes them.
    pub source_ttl: Option<Duration>,
    /// How often each server checks all of storage against the rows (`None`: never; the
    /// `darkroom storage reconcile` command still does).
    pub reconcile_every: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct GalleryConfig {
    /// How long a result stays in the trash before it is deleted for good.
    pub trash_ttl: Duration,
    /// Links to results are signed as of the start of the current window of this length, so
    /// the same file keeps the same URL (and the browser's cached copy) for that long.
    pub link_window: Duration,
    /// How long an admin may look at another account's gallery after giving a reason
    /// (`DARKROOM_ADMIN_ACCESS_MINUTES`, 30 by default, at most 8 hours).
    pub admin_access: Duration,
}

#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Where fal posts completions (`<PUBLIC_URL>/hooks/fal`); `None` means poll only.
    pub webhook_url: Option<Url>,
    /// How long fal keeps its copy of our outputs (`X-Fal-Object-Lifecycle-Preference`).
    pub fal_output_ttl: Duration,
    /// Submissions (and saves of the results) tried before a job fails for good.
    pub max_attempts: u32,
    /// How long passing trouble (a provider or media-host outage, our storage down) is retried
    /// before a job fails: from its queueing for submits, from its result's arrival for saves.
    /// Never longer than fal keeps the outputs.
    pub retry_window: Duration,
    /// First retry delay; each further retry doubles it (with jitter).
    pub retry_base: Duration,
    /// First status poll after a submit without a webhook; polls then back off to `poll_max`.
    pub poll_first: Duration,
    pub poll_max: Duration,
    /// How long to wait for a webhook before fetching the result by polling (status is
    /// checked every `poll_max` meanwhile).
    pub webhook_grace: Duration,
    /// How long a claimed job stays a worker's without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs.
    pub tick: Duration,
    /// Jobs one process works on at once; 0 makes a web-only replica that runs no jobs.
    pub concurrency: usize,
    /// A job still running at fal this long after it was submitted fails as timed out.
    pub timeout: Duration,
    /// Largest output file accepted, in bytes.
    pub max_output_bytes: u64,
    /// Results expire this long after creation unless favorited.
    pub result_ttl: Duration,
    /// Validity of the presigned GET handed to fal for each input image (at most 5 minutes).
    pub input_url_ttl: Duration,
    /// How fal receives a job's input images.
    pub inputs: InputDelivery,
    /// The ffmpeg that makes videos' poster frames (`DARKROOM_FFMPEG`); `None`: no posters.
    pub ffmpeg: Option<std::path::PathBuf>,
    /// Where a video is copied while it downloads, for ffmpeg to read its first frame:
    /// `<DARKROOM_DATA_DIR>/spool`. Needs room for one result per worker.
    pub spool_dir: std::path::PathBuf,
    /// What each user's jobs may spend per UTC day and month, estimated, unless an admin set
    /// their own caps (`DARKROOM_SPEND_CAP_DAY_USD`, `DARKROOM_SPEND_CAP_MONTH_USD`; off by default).
    pub spend_caps: crate::server::spend::Caps,
    /// Hairstyle try-ons need a selfie with exactly one face, checked before fal is asked
    /// (`DARKROOM_FACE_CHECK`, on by default).
    pub face_check: bool,
}

impl InputDelivery {
    /// What a user is told about where their images go when they generate.
    pub fn describe(self, link_ttl: Duration) -> String {
        match self {
            Self::Links => format!(
                "When you generate, fal reads the chosen images from this server through private links that expire after {}.",
                crate::format::span(link_ttl.as_secs())
            ),
            Self::FalStorage { ttl } => format!(
                "When you generate, a copy of each chosen image is uploaded to fal's storage with your key and deleted there after {}.",
                crate::format::span(ttl.as_secs())
            ),
        }
    }
}

/// How fal receives a job's input images (`DARKROOM_FAL_INPUTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputDelivery {
    /// fal fetches each image from our storage through a presigned GET: nothing leaves our
    /// storage but what fal reads, and only while the link lives. Needs storage fal can reach.
    Links,
    /// Each image is copied to fal's own storage with the user's key before the submit, and fal
    /// deletes the copy after `ttl`: for a Darkroom the internet cannot reach.
    FalStorage { ttl: Duration },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads configuration through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned());

        let site_addr = parse_addr("LEPTOS_SITE_ADDR", get("LEPTOS_SITE_ADDR"), "127.0.0.1:3000")?;
        let public_url = get("PUBLIC_URL").map(|raw| parse_url("PUBLIC_URL", &raw)).transpose()?;
        let data_dir = PathBuf::from(get("DARKROOM_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url =
            get("DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", data_dir.join("darkroom.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres:")
            || database_url.starts_with("postgresql:"))
        {
            return Err(bad("DATABASE_URL", "must start with sqlite: or postgres:"));
        }

        let backend = match get("S3_ENDPOINT") {
            None if get("S3_REGION").is_none() && get("S3_ACCESS_KEY_ID").is_none() => {
                StorageBackend::Embedded { root: data_dir.join("s3") }
            }
            endpoint => {
                let credentials = match (get("S3_ACCESS_KEY_ID"), get("S3_SECRET_ACCESS_KEY")) {
                    (Some(id), Some(secret)) => Some((id, secret)),
                    (None, None) => None,
                    _ => {
                        return Err(bad("S3_ACCESS_KEY_ID", "and S3_SECRET_ACCESS_KEY must be set together"));
                    }
                };
                StorageBackend::External(ExternalS3 {
                    endpoint: endpoint.map(|raw| parse_url("S3_ENDPOINT", &raw)).transpose()?,
                    region: get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    credentials,
                    force_path_style: parse_bool("S3_FORCE_PATH_STYLE", get("S3_FORCE_PATH_STYLE"), true)?,
                })
            }
        };
        let public_endpoint = get("S3_PUBLIC_ENDPOINT").map(|raw| parse_url("S3_PUBLIC_ENDPOINT", &raw)).transpose()?;
        if public_endpoint.is_some() && matches!(backend, StorageBackend::Embedded { .. }) {
            return Err(bad(
                "S3_PUBLIC_ENDPOINT",
                "applies to external storage; the embedded endpoint is served at PUBLIC_URL (or the address the browser used)",
            ));
        }
        let storage = StorageConfig {
            backend,
            uploads_bucket: bucket_name("S3_UPLOADS_BUCKET", get("S3_UPLOADS_BUCKET"), "darkroom-uploads")?,
            results_bucket: bucket_name("S3_RESULTS_BUCKET", get("S3_RESULTS_BUCKET"), "darkroom-results")?,
            public_endpoint,
        };
        if storage.uploads_bucket == storage.results_bucket {
            return Err(bad("S3_RESULTS_BUCKET", "must differ from S3_UPLOADS_BUCKET"));
        }
        if matches!(storage.backend, StorageBackend::Embedded { .. }) {
            for (name, bucket) in
                [("S3_UPLOADS_BUCKET", &storage.uploads_bucket), ("S3_RESULTS_BUCKET", &storage.results_bucket)]
            {
                if RESERVED_PATHS.contains(&bucket.as_str()) {
                    return Err(bad(
                        name,
                        format!("{bucket:?} is a path the app itself uses; pick another bucket name"),
                    ));
                }
            }
        }

        let fal = FalConfig {
            queue_url: parse_url(
                "FAL_QUEUE_URL",
                &get("FAL_QUEUE_URL").unwrap_or_else(|| "https://queue.fal.run".into()),
            )?,
            api_url: parse_url("FAL_API_URL", &get("FAL_API_URL").unwrap_or_else(|| "https://api.fal.ai/v1".into()))?,
            rest_url: parse_url("FAL_REST_URL", &get("FAL_REST_URL").unwrap_or_else(|| "https://rest.fal.ai".into()))?,
            jwks_url: parse_url(
                "FAL_JWKS_URL",
                &get("FAL_JWKS_URL").unwrap_or_else(|| "https://rest.fal.ai/.well-known/jwks.json".into()),
            )?,
            media_hosts: get("FAL_MEDIA_HOSTS")
                .unwrap_or_else(|| "v3.fal.media,v3b.fal.media,fal.media".into())
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            timeout: Duration::from_secs(parse_u64("FAL_TIMEOUT_SECS", get("FAL_TIMEOUT_SECS"), 30)?),
        };

        let master_key = match (get("DARKROOM_MASTER_KEY"), get("DARKROOM_MASTER_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(bad("DARKROOM_MASTER_KEY", "and DARKROOM_MASTER_KEY_FILE are mutually exclusive"));
            }
            (Some(inline), None) => MasterKeySource::Inline(inline),
            (None, Some(path)) => MasterKeySource::File(PathBuf::from(path)),
            (None, None) => MasterKeySource::File(data_dir.join("master.key")),
        };

        let previous_master_keys = PreviousMasterKeys(
            get("DARKROOM_MASTER_KEY_PREVIOUS")
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect())
                .unwrap_or_default(),
        );

        let minutes = |m: u64| Duration::from_secs(m * 60);
        let api_per_minute =
            u32::try_from(parse_u64("DARKROOM_API_REQUESTS_PER_MINUTE", get("DARKROOM_API_REQUESTS_PER_MINUTE"), 600)?)
                .map_err(|_| bad("DARKROOM_API_REQUESTS_PER_MINUTE", "is too large"))?;
        let auth = AuthConfig {
            allow_signup: parse_bool("DARKROOM_ALLOW_SIGNUP", get("DARKROOM_ALLOW_SIGNUP"), true)?,
            first_user_admin: parse_bool("DARKROOM_FIRST_USER_ADMIN", get("DARKROOM_FIRST_USER_ADMIN"), false)?,
            login_limit: RateLimit {
                max: parse_u64("DARKROOM_LOGIN_MAX_FAILURES", get("DARKROOM_LOGIN_MAX_FAILURES"), 5)? as u32,
                window: minutes(15),
            },
            login_ip_limit: RateLimit {
                max: parse_u64("DARKROOM_LOGIN_MAX_FAILURES_PER_IP", get("DARKROOM_LOGIN_MAX_FAILURES_PER_IP"), 20)?
                    as u32,
                window: minutes(15),
            },
            api_token_limit: RateLimit { max: api_per_minute, window: minutes(1) },
            api_account_limit: RateLimit { max: api_per_minute.saturating_mul(2), window: minutes(1) },
            signup_limit: RateLimit { max: 5, window: minutes(60) },
            signup_ip_limit: RateLimit {
                max: parse_u64("DARKROOM_SIGNUPS_PER_IP", get("DARKROOM_SIGNUPS_PER_IP"), 10)? as u32,
                window: minutes(60),
            },
            session_ttl: Duration::from_secs(
                parse_u64("DARKROOM_SESSION_DAYS", get("DARKROOM_SESSION_DAYS"), 14)? * 24 * 3600,
            ),
            session_recheck: Duration::from_secs(
                parse_u64("DARKROOM_SESSION_RECHECK_SECS", get("DARKROOM_SESSION_RECHECK_SECS"), 10)?.min(3600),
            ),
        };

        let ticket_ttl = parse_u64("DARKROOM_UPLOAD_TTL_SECS", get("DARKROOM_UPLOAD_TTL_SECS"), 300)?;
        if !(1..=300).contains(&ticket_ttl) {
            return Err(bad("DARKROOM_UPLOAD_TTL_SECS", "must be between 1 and 300 seconds"));
        }
        let uploads = UploadConfig {
            max_bytes: parse_u64("DARKROOM_UPLOAD_MAX_BYTES", get("DARKROOM_UPLOAD_MAX_BYTES"), 16 * 1024 * 1024)?,
            per_day: parse_u64("DARKROOM_UPLOADS_PER_DAY", get("DARKROOM_UPLOADS_PER_DAY"), 200)?,
            bytes_per_day: parse_u64(
                "DARKROOM_UPLOAD_BYTES_PER_DAY",
                get("DARKROOM_UPLOAD_BYTES_PER_DAY"),
                1024 * 1024 * 1024,
            )?,
            storage_bytes: match parse_u64("DARKROOM_STORAGE_QUOTA_MB", get("DARKROOM_STORAGE_QUOTA_MB"), 0)? {
                0 => None,
                mb => Some(mb.checked_mul(1 << 20).ok_or_else(|| bad("DARKROOM_STORAGE_QUOTA_MB", "is too large"))?),
            },
            max_pixels: parse_u64("DARKROOM_UPLOAD_MAX_PIXELS", get("DARKROOM_UPLOAD_MAX_PIXELS"), 50_000_000)?,
            ticket_ttl: Duration::from_secs(ticket_ttl),
            view_ttl: Duration::from_secs(600),
            sweep_every: Duration::from_secs(parse_u64(
                "DARKROOM_SWEEP_EVERY_SECS",
                get("DARKROOM_SWEEP_EVERY_SECS"),
                60,
            )?),
            erase_last_pass_after: Duration::from_secs(parse_u64(
                "DARKROOM_ERASE_LAST_PASS_SECS",
                get("DARKROOM_ERASE_LAST_PASS_SECS"),
                600,
            )?),
            source_ttl: match parse_u64("DARKROOM_SOURCE_TTL_HOURS", get("DARKROOM_SOURCE_TTL_HOURS"), 24)? {
                0 => None,
                hours if hours > 100 * 365 * 24 => {
                    return Err(bad("DARKROOM_SOURCE_TTL_HOURS", "must be at most 876000 (100 years); 0 keeps images"));
                }
                hours => Some(Duration::from_secs(hours * 3600)),
            },
            reconcile_every: match parse_u64(
                "DARKROOM_RECONCILE_EVERY_HOURS",
                get("DARKROOM_RECONCILE_EVERY_HOURS"),
                24,
            )? {
                0 => None,
                hours if hours > 24 * 366 => {
                    return Err(bad("DARKROOM_RECONCILE_EVERY_HOURS", "must be at most 8784 (a year); 0 turns it off"));
                }
                hours => Some(Duration::from_secs(hours * 3600)),
            },
        };
        if uploads.max_bytes == 0 || uploads.max_pixels == 0 {
            return Err(bad("DARKROOM_UPLOAD_MAX_BYTES", "and DARKROOM_UPLOAD_MAX_PIXELS must be above zero"));
        }

        let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(parse_u64(name, get(name), default)?))
        };
        let secs = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(parse_u64(name, get(name), default)?))
        };
        let jobs = JobConfig {
            webhook_url: public_url.as_ref().map(|base| {
                let mut url = base.clone();
                url.set_path(&format!("{}/hooks/fal", base.path().trim_end_matches('/')));
                url.set_query(None);
                url
            }),
            fal_output_ttl: secs("DARKROOM_FAL_OUTPUT_TTL_SECS", 24 * 3600)?,
            max_attempts: parse_u64("DARKROOM_JOB_MAX_ATTEMPTS", get("DARKROOM_JOB_MAX_ATTEMPTS"), 50)?.clamp(1, 1000)
                as u32,
            retry_window: secs("DARKROOM_JOB_RETRY_WINDOW_SECS", 6 * 3600)?,
            retry_base: millis("DARKROOM_JOB_RETRY_BASE_MS", 2000)?,
            poll_first: millis("DARKROOM_JOB_POLL_FIRST_MS", 1000)?,
            poll_max: millis("DARKROOM_JOB_POLL_MAX_MS", 15_000)?,
            webhook_grace: secs("DARKROOM_WEBHOOK_GRACE_SECS", 60)?,
            lease: secs("DARKROOM_JOB_LEASE_SECS", 60)?.max(Duration::from_secs(1)),
            tick: millis("DARKROOM_WORKER_TICK_MS", 500)?.max(Duration::from_millis(10)),
            concurrency: parse_u64("DARKROOM_WORKERS", get("DARKROOM_WORKERS"), 4)?.min(64) as usize,
            timeout: secs("DARKROOM_JOB_TIMEOUT_SECS", 3600)?,
            max_output_bytes: parse_u64("DARKROOM_OUTPUT_MAX_BYTES", get("DARKROOM_OUTPUT_MAX_BYTES"), 4 << 30)?,
            result_ttl: match parse_u64("DARKROOM_RESULT_TTL_DAYS", get("DARKROOM_RESULT_TTL_DAYS"), 7)? {
                days if days > 100 * 365 => {
                    return Err(bad("DARKROOM_RESULT_TTL_DAYS", "must be at most 36500 (100 years); 0 keeps results"));
                }
                days => Duration::from_secs(days * 86_400),
            },
            input_url_ttl: secs("DARKROOM_INPUT_URL_TTL_SECS", 300)?,
            spend_caps: crate::server::spend::Caps {
                day: parse_usd_cap("DARKROOM_SPEND_CAP_DAY_USD", get("DARKROOM_SPEND_CAP_DAY_USD"))?,
                month: parse_usd_cap("DARKROOM_SPEND_CAP_MONTH_USD", get("DARKROOM_SPEND_CAP_MONTH_USD"))?,
            },
            inputs: input_delivery(
                get("DARKROOM_FAL_INPUTS").as_deref(),
                public_url.is_some(),
                secs("DARKROOM_FAL_INPUT_COPY_TTL_SECS", 3600)?,
            )?,
            ffmpeg: crate::server::jobs::poster::locate(
                get("DARKROOM_FFMPEG").as_deref(),
                std::env::var_os("PATH").as_deref(),
            )
            .map_err(|problem| bad("DARKROOM_FFMPEG", problem))?,
            spool_dir: data_dir.join("spool"),
            face_check: parse_bool("DARKROOM_FACE_CHECK", get("DARKROOM_FACE_CHECK"), true)?,
        };
        if jobs.retry_window > jobs.fal_output_ttl {
            return Err(bad(
                "DARKROOM_JOB_RETRY_WINDOW_SECS",
                "must not exceed DARKROOM_FAL_OUTPUT_TTL_SECS: a result cannot be saved after fal has deleted it",
            ));
        }
        if jobs.input_url_ttl.is_zero() || jobs.input_url_ttl > Duration::from_secs(300) {
            return Err(bad("DARKROOM_INPUT_URL_TTL_SECS", "must be between 1 and 300 seconds"));
        }

        let gallery = GalleryConfig {
            trash_ttl: Duration::from_secs(
                parse_u64("DARKROOM_TRASH_DAYS", get("DARKROOM_TRASH_DAYS"), 30)?.max(1) * 86_400,
            ),
            link_window: secs("DARKROOM_LINK_WINDOW_SECS", 3600)?,
            admin_access: Duration::from_secs(
                parse_u64("DARKROOM_ADMIN_ACCESS_MINUTES", get("DARKROOM_ADMIN_ACCESS_MINUTES"), 30)? * 60,
            ),
        };
        if gallery.admin_access.is_zero() || gallery.admin_access > Duration::from_secs(8 * 3600) {
            return Err(bad("DARKROOM_ADMIN_ACCESS_MINUTES", "must be between 1 minute and 8 hours (480)"));
        }
        if gallery.link_window.is_zero() || gallery.link_window > Duration::from_secs(24 * 3600) {
            return Err(bad("DARKROOM_LINK_WINDOW_SECS", "must be between 1 second and 1 day"));
        }

        Ok(Self {
            site_addr,
            public_url,
            data_dir,
            database_url,
            storage,
            fal,
            master_key,
            previous_master_keys,
            auth,
            uploads,
            jobs,
            gallery,
            trusted_proxies: parse_proxies(get("DARKROOM_TRUST_FORWARDED_FOR"))?,
            metrics_token: get("DARKROOM_METRICS_TOKEN").map(Secret),
            shutdown_grace: Duration::from_secs(parse_u64(
                "DARKROOM_SHUTDOWN_GRACE_SECS",
                get("DARKROOM_SHUTDOWN_GRACE_SECS"),
                25,
            )?),
        })
    }

    /// Cookies get `Secure` exactly when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    pub fn is_postgres(&self) -> bool {
        !self.database_url.starts_with("sqlite:")
    }
}

fn parse_addr(name: &'static str, raw: Option<String>, default: &str) -> Result<SocketAddr, ConfigError> {
    let raw = raw.unwrap_or_else(|| default.to_owned());
    raw.parse().map_err(|_| bad(name, format!("is not an ip:port address: {raw:?}")))
}

fn parse_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| bad(name, format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(name, "must be an http or https URL"));
    }
    Ok(url)
}

/// A dollar amount (`5`, `0.50`); unset, empty or `0`: no cap.
fn parse_usd_cap(name: &'static str, raw: Option<String>) -> Result<Option<i64>, ConfigError> {
    match raw.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(text) => match crate::format::parse_usd(text) {
            Some(0) => Ok(None),
            Some(micros) => Ok(Some(micros)),
            None => {
                Err(bad(name, "must be an amount in US dollars such as 5 or 0.50 (at most 1000000); 0 turns it off"))
            }
        },
    }
}

fn parse_bool(name: &'static str, raw: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(bad(name, format!("must be true or false, not {other:?}"))),
    }
}

/// `links`, `fal-storage`, or `auto` (the default): links when a public URL says fal can reach
/// this server, copies in fal's storage otherwise.
fn input_delivery(raw: Option<&str>, public: bool, copy_ttl: Duration) -> Result<InputDelivery, ConfigError> {
    const NAME: &str = "DARKROOM_FAL_INPUTS";
    if !(60..=7 * 86_400).contains(&copy_ttl.as_secs()) {
        return Err(bad("DARKROOM_FAL_INPUT_COPY_TTL_SECS", "must be between 60 seconds and 7 days"));
    }
    let copies = InputDelivery::FalStorage { ttl: copy_ttl };
    match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "auto") => Ok(if public { InputDelivery::Links } else { copies }),
        Some("links") => Ok(InputDelivery::Links),
        Some("fal-storage") => Ok(copies),
        Some(other) => Err(bad(NAME, format!("must be auto, links or fal-storage, not {other:?}"))),
    }
}

/// `true` means one proxy, a number that many (a CDN before a load balancer is two).
fn parse_proxies(raw: Option<String>) -> Result<u8, ConfigError> {
    const NAME: &str = "DARKROOM_TRUST_FORWARDED_FOR";
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(0),
        Some("true" | "yes" | "on") => Ok(1),
        Some(other) => match other.parse::<u8>() {
            Ok(hops) if hops <= 10 => Ok(hops),
            _ => Err(bad(NAME, format!("must be true, false or a number of proxies up to 10, not {other:?}"))),
        },
    }
}

fn parse_u64(name: &'static str, raw: Option<String>, default: u64) -> Result<u64, ConfigError> {
    raw.map_or(Ok(default), |v| v.parse().map_err(|_| bad(name, format!("must be a whole number, not {v:?}"))))
}

/// S3 bucket naming rules (lowercase letters, digits, dots and hyphens; 3 to 63 characters).
fn bucket_name(name: &'static str, raw: Option<String>, default: &str) -> Result<String, ConfigError> {
    let value = raw.unwrap_or_else(|| default.to_owned());
    let valid = (3..=63).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric();
    if valid { Ok(value) } else { Err(bad(name, format!("is not a valid bucket name: {value:?}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn runs_on_embedded_defaults_with_nothing_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.site_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url, "sqlite://./data/darkroom.db");
        assert!(matches!(c.storage.backend, StorageBackend::Embedded { .. }));
        assert!(matches!(c.master_key, MasterKeySource::File(ref p) if p.ends_with("master.key")));
        assert!(!c.secure_cookies());
        assert!(!c.auth.first_user_admin);
    }

    #[test]
    fn retention_times_are_bounded_and_zero_keeps() {
        let c = config(&[]).unwrap();
        assert_eq!(c.uploads.source_ttl, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(c.jobs.result_ttl, Duration::from_secs(7 * 86_400));
        let keep = config(&[("DARKROOM_SOURCE_TTL_HOURS", "0"), ("DARKROOM_RESULT_TTL_DAYS", "0")]).unwrap();
        assert_eq!((keep.uploads.source_ttl, keep.jobs.result_ttl), (None, Duration::ZERO));
        // Values that would overflow (and so expire everything at once) are refused, not wrapped.
        assert_eq!(c.uploads.reconcile_every, Some(Duration::from_secs(24 * 3600)));
        assert_eq!(config(&[("DARKROOM_RECONCILE_EVERY_HOURS", "0")]).unwrap().uploads.reconcile_every, None);
        for (name, value) in [
            ("DARKROOM_SOURCE_TTL_HOURS", "18446744073709551615"),
            ("DARKROOM_RESULT_TTL_DAYS", "36501"),
            ("DARKROOM_RECONCILE_EVERY_HOURS", "9000"),
        ] {
            assert_eq!(config(&[(name, value)]).unwrap_err().name, name);
        }
    }

    #[test]
    fn spending_caps_are_off_unless_set_in_dollars() {
        use crate::server::spend::Caps;
        assert_eq!(config(&[]).unwrap().jobs.spend_caps, Caps::default());
        let set = config(&[("DARKROOM_SPEND_CAP_DAY_USD", "0.10"), ("DARKROOM_SPEND_CAP_MONTH_USD", "$25")]).unwrap();
        assert_eq!(set.jobs.spend_caps, Caps { day: Some(100_000), month: Some(25_000_000) });
        assert_eq!(config(&[("DARKROOM_SPEND_CAP_DAY_USD", "0")]).unwrap().jobs.spend_caps, Caps::default());
        for value in ["-1", "ten", "1e3", "0.0000001"] {
            let refused = config(&[("DARKROOM_SPEND_CAP_MONTH_USD", value)]).unwrap_err();
            assert_eq!(refused.name, "DARKROOM_SPEND_CAP_MONTH_USD", "{value}");
        }
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        assert!(config(&[("PUBLIC_URL", "https://darkroom.example")]).unwrap().secure_cookies());
        assert!(!config(&[("PUBLIC_URL", "http://localhost:3000")]).unwrap().secure_cookies());
    }

    #[test]
    fn external_storage_needs_both_credentials() {
        let err = config(&[("S3_ENDPOINT", "http://127.0.0.1:3902"), ("S3_ACCESS_KEY_ID", "x")]).unwrap_err();
        assert_eq!(err.name, "S3_ACCESS_KEY_ID");
        let ok = config(&[
            ("S3_ENDPOINT", "http://127.0.0.1:3902"),
            ("S3_ACCESS_KEY_ID", "GKabc"),
            ("S3_SECRET_ACCESS_KEY", "shh"),
        ])
        .unwrap();
        let StorageBackend::External(ext) = ok.storage.backend else { panic!("expected external storage") };
        assert!(ext.force_path_style);
        assert!(!format!("{ext:?}").contains("shh"), "the secret must not appear in Debug output");
    }

    #[test]
    fn embedded_buckets_cannot_shadow_the_app_and_a_public_endpoint_is_for_external_storage() {
        assert_eq!(config(&[("S3_UPLOADS_BUCKET", "api")]).unwrap_err().name, "S3_UPLOADS_BUCKET");
        assert_eq!(config(&[("S3_PUBLIC_ENDPOINT", "https://s3.example")]).unwrap_err().name, "S3_PUBLIC_ENDPOINT");
        let external = config(&[
            ("S3_ENDPOINT", "http://garage:3900"),
            ("S3_PUBLIC_ENDPOINT", "https://s3.example"),
            ("S3_ACCESS_KEY_ID", "GKabc"),
            ("S3_SECRET_ACCESS_KEY", "shh"),
        ])
        .unwrap();
        assert_eq!(external.storage.public_endpoint.unwrap().as_str(), "https://s3.example/");
    }

    #[test]
    fn refuses_nonsense_with_the_variable_name() {
        assert_eq!(config(&[("DATABASE_URL", "mysql://x")]).unwrap_err().name, "DATABASE_URL");
        assert_eq!(config(&[("S3_UPLOADS_BUCKET", "Bad_Bucket")]).unwrap_err().name, "S3_UPLOADS_BUCKET");
        assert_eq!(config(&[("LEPTOS_SITE_ADDR", "localhost")]).unwrap_err().name, "LEPTOS_SITE_ADDR");
        assert_eq!(config(&[("PUBLIC_URL", "ftp://x")]).unwrap_err().name, "PUBLIC_URL");
        assert_eq!(
            config(&[("DARKROOM_MASTER_KEY", "a"), ("DARKROOM_MASTER_KEY_FILE", "/k")]).unwrap_err().name,
            "DARKROOM_MASTER_KEY"
        );
    }

    #[test]
    fn the_webhook_url_follows_the_public_url() {
        assert_eq!(config(&[]).unwrap().jobs.webhook_url, None, "no public URL: poll only");
        let c = config(&[("PUBLIC_URL", "https://darkroom.example/app/")]).unwrap();
        assert_eq!(c.jobs.webhook_url.unwrap().as_str(), "https://darkroom.example/app/hooks/fal");
        assert_eq!(config(&[("DARKROOM_INPUT_URL_TTL_SECS", "301")]).unwrap_err().name, "DARKROOM_INPUT_URL_TTL_SECS");
    }

    #[test]
    fn inputs_reach_fal_by_link_only_when_it_can_reach_us() {
        let hour = InputDelivery::FalStorage { ttl: Duration::from_secs(3600) };
        assert_eq!(config(&[]).unwrap().jobs.inputs, hour);
        assert_eq!(config(&[("PUBLIC_URL", "https://d.example")]).unwrap().jobs.inputs, InputDelivery::Links);
        let forced = [("PUBLIC_URL", "https://d.example"), ("DARKROOM_FAL_INPUTS", "fal-storage")];
        assert_eq!(config(&forced).unwrap().jobs.inputs, hour);
        assert_eq!(config(&[("DARKROOM_FAL_INPUTS", "Links")]).unwrap().jobs.inputs, InputDelivery::Links);
        let short = [("DARKROOM_FAL_INPUT_COPY_TTL_SECS", "120")];
        assert_eq!(config(&short).unwrap().jobs.inputs, InputDelivery::FalStorage { ttl: Duration::from_secs(120) });
        assert!(config(&[("DARKROOM_FAL_INPUTS", "carrier-pigeon")]).is_err());
        assert!(config(&[("DARKROOM_FAL_INPUT_COPY_TTL_SECS", "5")]).is_err());
    }

    #[test]
    fn media_hosts_are_normalised() {
        let c = config(&[("FAL_MEDIA_HOSTS", " V3.fal.media , ,127.0.0.1")]).unwrap();
        assert_eq!(c.fal.media_hosts, vec!["v3.fal.media", "127.0.0.1"]);
    }
}
