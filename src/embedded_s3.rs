//! The embedded S3 endpoint: s3s-fs storing under `./data/s3`, served by the app's own listener
//! at the buckets' paths (`/darkroom-uploads/…`, `/darkroom-results/…`), so one origin, one port
//! and one certificate serve the app and its storage, and no CORS is needed.
//!
//! SigV4 and presigned-URL checks (expiry included) are s3s's, unchanged: a presigned URL is
//! signed for the public origin and the exact path the browser sends, and the bucket path is
//! that path, not a prefix stripped before checking. A reverse proxy in front must pass the
//! original `Host`. Requests without a valid signature are refused, so the buckets stay private.
//! The server itself reaches the endpoint through the same listener on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use app::server::config::ExternalS3;
use app::server::secret_file;
use app::server::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{Method, StatusCode};
use rand::RngCore;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

const ACCESS_KEY_ID: &str = "darkroom-embedded";

#[derive(Clone)]
pub struct EmbeddedS3 {
    service: S3Service,
    root: PathBuf,
    secret: String,
    buckets: Vec<String>,
}

impl EmbeddedS3 {
    /// Opens the object store under `root` (creating the `buckets` as directories) with the
    /// credentials kept in `credentials_file`.
    pub fn open(root: &Path, credentials_file: &Path, buckets: &[&str]) -> anyhow::Result<Self> {
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket))
                .with_context(|| format!("creating bucket directory {bucket}"))?;
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
        Ok(Self {
            service: builder.build(),
            root: root.to_owned(),
            secret,
            buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        })
    }

    /// How the server's own client reaches the endpoint: through the listener at `site_addr`,
    /// on loopback.
    pub fn endpoint(&self, site_addr: SocketAddr) -> ExternalS3 {
        let ip = match site_addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let addr = SocketAddr::new(ip, site_addr.port());
        ExternalS3 {
            endpoint: Some(format!("http://{addr}").parse().expect("socket addresses form valid URLs")),
            region: "us-east-1".into(),
            credentials: Some((ACCESS_KEY_ID.into(), self.secret.clone())),
            force_path_style: true,
        }
    }

    /// The routes that serve the buckets, to merge into the app's router.
    pub fn routes(&self) -> Router<AppState> {
        let mut router = Router::new();
        for bucket in &self.buckets {
            // Bucket operations come as `/bucket` or `/bucket/` (the SDK's choice), objects below.
            for path in [format!("/{bucket}"), format!("/{bucket}/"), format!("/{bucket}/{{*key}}")] {
                let store = self.clone();
                router = router.route_service(
                    &path,
                    tower::service_fn(move |request: Request| {
                        let store = store.clone();
                        async move { Ok::<_, std::convert::Infallible>(store.answer(request).await) }
                    }),
                );
            }
        }
        router
    }

    /// The endpoint on a private loopback listener of its own, for a command run while no
    /// server is up (or beside one: both read and write the same directory).
    pub async fn serve_privately(&self) -> anyhow::Result<(ExternalS3, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding a private endpoint")?;
        let addr = listener.local_addr()?;
        let store = self.clone();
        let router = Router::new().fallback(move |request: Request| {
            let store = store.clone();
            async move { store.answer(request).await }
        });
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                tracing::error!(%err, "private S3 endpoint stopped");
            }
        });
        Ok((self.endpoint(addr), task))
    }

    async fn answer(&self, request: Request) -> Response {
        let method = request.method().clone();
        let deleted = deleted_object(&request);
        let overrides = if method == Method::GET || method == Method::HEAD {
            response_overrides(request.uri().query())
        } else {
            Vec::new()
        };
        match self.service.call(request.map(s3s::Body::http_body_unsync)).await {
            Ok(mut response) => {
                let status = response.status();
                if status.is_success() {
                    for (name, value) in overrides {
                        response.headers_mut().insert(name, value);
                    }
                }
                if let (true, Some((bucket, key))) = (status.is_success(), deleted) {
                    remove_sidecars(&self.root, &bucket, &key);
                    remove_empty_folders(&self.root, &bucket, &key);
                }
                if status.is_client_error() {
                    // Anyone can send a bad signature: never an error line, and never the URL
                    // (a presigned one is a credential).
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
}

/// The headers a GET's `response-…` parameters ask for. S3 lets a presigned link choose them
/// (the signature covers the query, and s3s has checked it by the time they are applied);
/// s3s-fs ignores them, so they are applied here. Values that are not valid headers are
/// dropped.
fn response_overrides(query: Option<&str>) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let Some(query) = query else { return Vec::new() };
    url::form_urlencoded::parse(query.as_bytes())
        .filter_map(|(name, value)| {
            let header = match name.as_ref() {
                "response-cache-control" => http::header::CACHE_CONTROL,
                "response-content-disposition" => http::header::CONTENT_DISPOSITION,
                _ => return None,
            };
            Some((header, http::HeaderValue::from_str(&value).ok()?))
        })
        .collect()
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

/// s3s-fs stores `a/b/c` as a file in folders `a/b`, and leaves the folders when the last object
/// in them goes. Keys name their owner (`uploads/{user}/…`), so an empty folder would still say
/// an account existed after it was deleted: remove the folders the delete emptied. `remove_dir`
/// only ever removes an empty folder, so an object stored meanwhile keeps its own.
fn remove_empty_folders(root: &Path, bucket: &str, key: &str) {
    if key.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return;
    }
    let bucket_root = root.join(bucket);
    let mut folder = bucket_root.join(key);
    while folder.pop() && folder != bucket_root && folder.starts_with(&bucket_root) {
        if std::fs::remove_dir(&folder).is_err() {
            break;
        }
    }
}

/// Where the embedded endpoint keeps its credentials: beside, not inside, its object root.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join("embedded-s3.secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_reaches_its_own_listener_on_loopback() {
        let dir = std::env::temp_dir().join(format!("darkroom-embedded-{}", uuid::Uuid::new_v4()));
        let store = EmbeddedS3::open(&dir.join("s3"), &dir.join("secret"), &["b"]).unwrap();
        let url = |addr: &str| store.endpoint(addr.parse().unwrap()).endpoint.unwrap().to_string();
        assert_eq!(url("0.0.0.0:3000"), "http://127.0.0.1:3000/");
        assert_eq!(url("[::]:3000"), "http://[::1]:3000/");
        assert_eq!(url("10.1.2.3:8080"), "http://10.1.2.3:8080/");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_get_answers_with_the_headers_its_link_asks_for_and_no_others() {
        let query = "X-Amz-Signature=x&response-cache-control=private%2C%20max-age%3D60\
            &response-content-disposition=attachment%3B%20filename%3D%22a.png%22&response-expires=0&x-id=GetObject";
        let headers = response_overrides(Some(query));
        assert_eq!(
            headers,
            vec![
                (http::header::CACHE_CONTROL, http::HeaderValue::from_static("private, max-age=60")),
                (http::header::CONTENT_DISPOSITION, http::HeaderValue::from_static("attachment; filename=\"a.png\"")),
            ]
        );
        assert!(response_overrides(Some("response-cache-control=a%0Ab")).is_empty(), "no header injection");
        assert!(response_overrides(None).is_empty());
    }

    #[test]
    fn a_delete_removes_the_folders_it_emptied_and_no_others() {
        let root = std::env::temp_dir().join(format!("darkroom-folders-{}", uuid::Uuid::new_v4()));
        for key in ["sources/ada/1", "sources/bob/2"] {
            std::fs::create_dir_all(root.join("b").join(key).parent().unwrap()).unwrap();
            std::fs::write(root.join("b").join(key), b"x").unwrap();
        }
        std::fs::remove_file(root.join("b/sources/ada/1")).unwrap();
        remove_empty_folders(&root, "b", "sources/ada/1");
        assert!(!root.join("b/sources/ada").exists(), "the emptied folder went");
        assert!(root.join("b/sources/bob/2").exists(), "a folder with an object stays");
        remove_empty_folders(&root, "b", "sources/../../x");
        assert!(root.join("b/sources").exists());
        std::fs::remove_file(root.join("b/sources/bob/2")).unwrap();
        remove_empty_folders(&root, "b", "sources/bob/2");
        assert!(!root.join("b/sources").exists());
        assert!(root.join("b").exists(), "the bucket itself stays");
        let _ = std::fs::remove_dir_all(root);
    }
}
