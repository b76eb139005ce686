//! Two replicas behind a round-robin proxy on one PostgreSQL and one Garage, the way the README's
//! production section runs them: a session, a logout, live events and jobs all cross replicas,
//! and a replica killed mid-save has its job finished by the other, exactly once. Run by
//! `make test-replicas` (PostgreSQL, Garage and nginx).

use std::path::{Path, PathBuf};
use std::time::Duration;

use app::server::jobs::rows::{self, JobState};
use darkroom::fake_fal::{Outcome, Scenario};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, Client, PASSWORD, StorageKind, TestApp, backend, eventually, storage_kind};
use crate::process::{ServerProcess, free_port};

const VIDEO_BYTES: u64 = 48 * 1024 * 1024;

/// nginx in front of the replicas, round-robin, naming in `X-Replica` which one answered.
struct Proxy {
    child: tokio::process::Child,
    dir: PathBuf,
}

impl Proxy {
    async fn start(dir: &Path, port: u16, upstreams: &[&str]) -> Self {
        let dir = dir.join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|base| format!("server {} max_fails=1 fail_timeout=30s;\n", base.trim_start_matches("http://")))
            .collect();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n access_log {d}/access.log;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             upstream replicas {{\n{servers}}}\n\
             server {{\n listen 127.0.0.1:{port};\n client_max_body_size 20m;\n location / {{\n\
             proxy_pass http://replicas;\n proxy_http_version 1.1;\n proxy_set_header Host $http_host;\n\
             proxy_request_buffering off;\n proxy_buffering off;\n proxy_read_timeout 3600s;\n\
             add_header X-Replica $upstream_addr always;\n }}\n }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is installed (`make test-replicas` installs it; else `apt-get install nginx-light`)");
        let child = tokio::process::Command::new(nginx)
            .args(["-p", &dir.display().to_string(), "-c", "nginx.conf", "-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        let proxy = Self { child, dir };
        let base = format!("http://127.0.0.1:{port}/healthz");
        eventually("the proxy answering", || async {
            reqwest::get(&base).await.ok().filter(|r| r.status().is_success())
        })
        .await;
        proxy
    }
}

impl Drop for Proxy {
    /// SIGTERM, not SIGKILL: nginx's master then stops its worker, which would outlive it.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            for _ in 0..200 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn replica_of(reply: &crate::helpers::Reply) -> String {
    reply.header("x-replica").expect("the proxy names the replica").to_owned()
}

/// The states a job goes through on one event stream, until it succeeds.
async fn follow(mut events: reqwest::Response, id: &str) -> Vec<String> {
    let mut states: Vec<String> = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    while states.last().map(String::as_str) != Some("succeeded") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream never reported success: {states:?}"))
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) =
                event.lines().find_map(|l| l.strip_prefix("data: ")).filter(|_| event.contains("event: job"))
            else {
                continue;
            };
            let view: Value = serde_json::from_str(data).unwrap();
            let state = view["state"].as_str().unwrap().to_owned();
            if view["id"] == id && states.last() != Some(&state) {
                states.push(state);
            }
        }
    }
    states
}

async fn create(client: &Client, params: Value) -> String {
    let body = json!({ "model": "fal-ai/nano-banana", "params": params, "images": [] });
    let request =
        client.http.post(format!("{}/api/jobs/create", client.base)).header("accept", "application/json").json(&body);
    let reply = client.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json::<Value>()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_replicas_behind_a_proxy_share_sessions_live_events_and_jobs() {
    assert!(
        backend() == Backend::Postgres && storage_kind() == StorageKind::Garage,
        "replicas share PostgreSQL and external storage: run this with `make test-replicas`"
    );
    // The test's own app only holds the database and storage; it runs no jobs.
    let app = TestApp::spawn_with(&[("DARKROOM_WORKERS", "0")]).await;
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let settings = [("PUBLIC_URL", public.as_str()), ("DARKROOM_WORKERS", "2"), ("DARKROOM_JOB_LEASE_SECS", "2")];
    let replicas = [app.process("replica-a", &settings).await, app.process("replica-b", &settings).await];
    let names: Vec<String> = replicas.iter().map(|r| r.base.trim_start_matches("http://").to_owned()).collect();
    let _proxy = Proxy::start(&app.dir, port, &[&replicas[0].base, &replicas[1].base]).await;

    // One session, whichever replica answers.
    let ada = Client::new(&public);
    assert_eq!(ada.signup("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    let mut answered_by = Vec::new();
    for _ in 0..2 {
        let me = ada.call("auth/me", &[]).await;
        assert_eq!(me.json::<Value>()["email"], "ada@example.com", "logged in on {}", replica_of(&me));
        answered_by.push(replica_of(&me));
    }
    answered_by.sort();
    let mut both = names.clone();
    both.sort();
    assert_eq!(answered_by, both, "round-robin: each replica answered once");
    assert_eq!(ada.call("keys/save", &[("key", "api-replicas:secret-value-1234")]).await.status, StatusCode::OK);

    // A logout on one replica ends the session on the other.
    let laptop = Client::new(&public);
    assert_eq!(laptop.login("ada@example.com", PASSWORD).await.status, StatusCode::OK);
    let cookie = laptop.session_cookie().expect("a session cookie");
    let on_b = || async {
        let request = reqwest::Client::new()
            .post(format!("{}/api/auth/me", replicas[1].base))
            .header("accept", "application/json")
            .header("cookie", format!("{}={cookie}", darkroom::server::SESSION_COOKIE));
        request.send().await.unwrap().json::<Value>().await.unwrap()
    };
    assert_eq!(on_b().await["email"], "ada@example.com");
    assert_eq!(laptop.at(&replicas[0].base).call("auth/logout", &[]).await.status, StatusCode::OK);
    assert_eq!(on_b().await, Value::Null, "the session ended on replica b too");
    assert_eq!(ada.me().await.as_deref(), Some("ada@example.com"), "other sessions live on");

    // Live events: a stream on each replica; whichever replica runs the job, one of the two
    // streams is on the other, and both see every change through to success.
    let open = |base: &str| {
        let request = ada.at(base).http.get(format!("{base}/events")).timeout(Duration::from_secs(120));
        async move { request.send().await.unwrap() }
    };
    let streams = [open(&replicas[0].base).await, open(&replicas[1].base).await];
    let id = create(&ada, json!({ "prompt": "a lighthouse" })).await;
    let [on_a, on_b] = streams;
    // Each stream reads the job when told of a change, so close changes may show as one; the
    // end is what both must reach.
    let (seen_a, seen_b) = tokio::join!(follow(on_a, &id), follow(on_b, &id));
    assert_eq!((seen_a.last(), seen_b.last()), (Some(&"succeeded".to_owned()), Some(&"succeeded".to_owned())));

    // A replica killed mid-save: the other one finishes the job, with one copy of the output.
    app.fake.script(Scenario {
        outcome: Outcome::Video { bytes: VIDEO_BYTES, bytes_per_sec: Some(12 * 1024 * 1024) },
        ..Scenario::default()
    });
    let id = create(&ada, json!({ "prompt": "waves" })).await;
    let [mut a, mut b] = replicas;
    let saving = format!("job_id={id}");
    let started = tokio::time::Instant::now();
    while app.fake.video_downloads().first().is_none_or(|sent| *sent < VIDEO_BYTES / 4) {
        assert!(started.elapsed() < crate::helpers::PATIENCE, "no replica got far into the download");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let saver_is_a = a.log().lines().any(|l| l.contains(&saving) && l.contains("saving results"));
    let (victim, survivor): (&mut ServerProcess, &mut ServerProcess) =
        if saver_is_a { (&mut a, &mut b) } else { (&mut b, &mut a) };
    assert!(victim.log().lines().any(|l| l.contains(&saving) && l.contains("saving results")));
    victim.child.start_kill().unwrap(); // SIGKILL
    victim.child.wait().await.unwrap();
    assert_eq!(rows::find(app.db(), &id).await.unwrap().unwrap().state, JobState::Persisting);

    let done = eventually("the surviving replica finishing the job", || async {
        let job = rows::find(app.db(), &id).await.unwrap().unwrap();
        job.state.is_final().then_some(job)
    })
    .await;
    assert_eq!(done.state, JobState::Succeeded, "{:?}: {:?}", done.error_code, done.error_message);
    // The line follows the commit the test just saw.
    eventually("the survivor saying it saved the results", || async {
        survivor.log().lines().any(|l| l.contains(&saving) && l.contains("results persisted")).then_some(())
    })
    .await;
    let assets: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT object_key, byte_size, sha256 FROM assets WHERE job_id = $1")
            .bind(&id)
            .fetch_all(&app.db().pool)
            .await
            .unwrap();
    assert_eq!(assets.len(), 1, "one asset row");
    let prefix = format!("results/{}/{}/", done.user_id, done.id);
    assert_eq!(app.result_keys(&prefix).await, [assets[0].0.clone()], "one object");
    let storage = app.storage();
    let Some(app::server::storage::Fetched::Bytes(stored)) =
        storage.get_bytes(&storage.results_bucket, &assets[0].0, u64::MAX).await.unwrap()
    else {
        panic!("the result is stored");
    };
    assert_eq!((stored.len() as u64, assets[0].1 as u64), (VIDEO_BYTES, VIDEO_BYTES));
    assert_eq!(hex::encode(Sha256::digest(&stored)), assets[0].2);
    let open_uploads = storage
        .client()
        .list_multipart_uploads()
        .bucket(&storage.results_bucket)
        .prefix(&prefix)
        .send()
        .await
        .expect("Garage lists multipart uploads");
    assert!(open_uploads.uploads().is_empty(), "no multipart upload is left open");
    assert!(survivor.panics().is_empty() && victim.panics().is_empty());
}
