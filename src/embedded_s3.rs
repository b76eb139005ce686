//! The embedded S3 endpoint: s3s-fs serving `./data/s3` on a loopback port, with SigV4 and
//! presigned-URL checks (expiry included) done by s3s. Browsers PUT to it directly, so a CORS
//! layer sits in front (s3s-fs itself answers 501 to a preflight) and admits only the app's
//! own origins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use app::server::config::ExternalS3;
use app::server::secret_file;
use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use base64::Engine;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use rand::RngCore;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};

const ACCESS_KEY_ID: &str = "darkroom-embedded";

pub struct EmbeddedS3 {
    pub addr: SocketAddr,
    secret: String,
    task: tokio::task::JoinHandle<()>,
}

impl EmbeddedS3 {
    /// How the app's S3 client reaches this endpoint.
    pub fn endpoint(&self) -> ExternalS3 {
        ExternalS3 {
            endpoint: Some(format!("http://{}", self.addr).parse().expect("socket addresses form valid URLs")),
            region: "us-east-1".into(),
            credentials: Some((ACCESS_KEY_ID.into(), self.secret.clone())),
            force_path_style: true,
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the endpoint on `addr` (port 0 picks a free one), storing objects under `root` and
/// its credentials in `credentials_file`. `buckets` are created as directories if missing.
pub async fn start(
    addr: SocketAddr,
    root: &Path,
    credentials_file: &Path,
    buckets: &[&str],
    allowed_origins: Vec<HeaderValue>,
) -> anyhow::Result<EmbeddedS3> {
    anyhow::ensure!(addr.ip().is_loopback(), "the embedded S3 endpoint listens on loopback only, not {addr}");
    for bucket in buckets {
        std::fs::create_dir_all(root.join(bucket)).with_context(|| format!("creating bucket directory {bucket}"))?;
    }
    let (secret, _) = secret_file::read_or_create(credentials_file, || {
        let mut bytes = [0u8; 30];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    })
    .with_context(|| format!("embedded S3 credentials at {}", credentials_file.display()))?;

    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|e| anyhow::anyhow!("embedded S3 storage at {}: {e:?}", root.display()))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, secret.as_str()));
    // No host parser: every request is path-style, which is what our client sends.
    let s3 = builder.build();

    let objects_root = root.to_owned();
    let router = Router::new()
        .fallback(move |request: Request| {
            let (s3, root) = (s3.clone(), objects_root.clone());
            async move {
                let method = request.method().clone();
                let deleted = deleted_object(&request);
                match s3.call(request.map(s3s::Body::http_body_unsync)).await {
                    Ok(response) => {
                        let status = response.status();
                        if let (true, Some((bucket, key))) = (status.is_success(), deleted) {
                            remove_sidecars(&root, &bucket, &key);
                        }
                        if status.is_client_error() {
                            // Anyone can send a bad signature: never an error line, and never the
                            // URL (a presigned one is a credential).
                            tracing::debug!(%method, status = status.as_u16(), "embedded S3 refused a request");
                        }
                        response.into_response()
                    }
                    Err(err) => {
                        tracing::error!(error = ?err, "embedded S3 failed to answer");
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                }
            }
        })
        .layer(cors(allowed_origins));

    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("binding the embedded S3 endpoint on {addr}"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(%err, "embedded S3 endpoint stopped");
        }
    });
    tracing::info!(%addr, root = %root.display(), "embedded S3 endpoint listening");
    Ok(EmbeddedS3 { addr, secret, task })
}

/// The (bucket, key) a request deletes: a path-style `DELETE /bucket/key` that is not a
/// multipart abort.
fn deleted_object(request: &Request) -> Option<(String, String)> {
    if request.method() != Method::DELETE || request.uri().query().is_some_and(|q| q.contains("uploadId")) {
        return None;
    }
    let path = request.uri().path().trim_start_matches('/');
    let (bucket, key) = path.split_once('/')?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned());
    Some((decode(bucket)?, decode(key).filter(|k| !k.is_empty())?))
}

/// s3s-fs keeps two files of attributes beside each object and leaves them behind when the
/// object is deleted: remove them too, so deletes leave nothing on disk.
fn remove_sidecars(root: &Path, bucket: &str, key: &str) {
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for kind in ["internal", "metadata"] {
        let file = root.join(format!(".bucket-{}.object-{}.{kind}.json", encode(bucket), encode(key)));
        if let Err(err) = std::fs::remove_file(&file)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%err, "could not remove an attributes file of a deleted object");
        }
    }
}

/// Direct uploads need: the app's origin, PUT/GET/HEAD, the headers a presigned PUT signs, and
/// the `ETag` exposed to the uploader.
fn cors(allowed_origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed_origins))
        .allow_methods([Method::GET, Method::PUT, Method::HEAD])
        .allow_headers([
            http::header::CONTENT_TYPE,
            HeaderName::from_static("x-amz-checksum-sha256"),
            HeaderName::from_static("x-amz-content-sha256"),
        ])
        .expose_headers([http::header::ETAG])
        .max_age(std::time::Duration::from_secs(600))
}

/// The origins a browser may load the app from: `PUBLIC_URL`, and the loopback names of the
/// address the site listens on.
pub fn app_origins(public_url: Option<&url::Url>, site_addr: SocketAddr) -> Vec<HeaderValue> {
    let port = site_addr.port();
    let mut origins: Vec<String> = public_url.map(|u| u.origin().ascii_serialization()).into_iter().collect();
    if site_addr.ip().is_loopback() || site_addr.ip().is_unspecified() {
        origins.extend([
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]);
    } else {
        origins.push(format!("http://{site_addr}"));
    }
    origins.into_iter().filter_map(|o| HeaderValue::from_str(&o).ok()).collect()
}

/// The endpoint of an embedded S3 another Darkroom process is already serving (when this one
/// cannot bind the port), from the configured address and the stored credentials.
pub fn running(config: &app::server::config::Config) -> Option<ExternalS3> {
    let app::server::config::StorageBackend::Embedded { addr, .. } = &config.storage.backend else { return None };
    let secret = std::fs::read_to_string(credentials_path(&config.data_dir)).ok()?;
    Some(ExternalS3 {
        endpoint: format!("http://{addr}").parse().ok(),
        region: "us-east-1".into(),
        credentials: Some((ACCESS_KEY_ID.into(), secret.trim().to_owned())),
        force_path_style: true,
    })
}

/// Where the embedded endpoint keeps its credentials: beside, not inside, its object root.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("embedded-s3.secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_cover_public_url_and_loopback_names() {
        let public: url::Url = "https://darkroom.example".parse().unwrap();
        let origins = app_origins(Some(&public), "127.0.0.1:3000".parse().unwrap());
        let names: Vec<_> = origins.iter().map(|o| o.to_str().unwrap()).collect();
        assert_eq!(
            names,
            ["https://darkroom.example", "http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"]
        );
    }
}
