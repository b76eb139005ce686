//! Persisting a large output: a 1 GiB video streamed from the fake fal server through a real
//! `darkroom serve` process (SQLite, embedded S3) into the results bucket. Prints throughput and
//! how much the server's resident memory grew while it did it; asserts nothing about speed.
//!
//! `cargo bench --bench persist` (optionally `-- <MiB>`).

use std::time::{Duration, Instant};

use base64::Engine;
use darkroom::fake_fal::{FakeFal, Outcome, Scenario};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (current, peak) resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let bytes = mib * 1024 * 1024;
    let fake = FakeFal::start("127.0.0.1:0".parse()?).await?;
    fake.script(Scenario { outcome: Outcome::Video { bytes, bytes_per_sec: None }, ..Scenario::default() });

    let dir = std::env::temp_dir().join(format!("darkroom-bench-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_darkroom"));
    command
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("bench.db").display()))
        .env("DARKROOM_DATA_DIR", &dir)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("S3_EMBEDDED_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DARKROOM_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
        .env("DARKROOM_JOB_POLL_FIRST_MS", "100")
        .env("DARKROOM_JOB_POLL_MAX_MS", "200")
        .env("DARKROOM_WORKER_TICK_MS", "50")
        .kill_on_drop(true);
    for (name, value) in fake.env() {
        command.env(name, value);
    }
    let mut server = command.spawn()?;
    let pid = server.id().expect("the server runs");

    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let ready = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        anyhow::ensure!(ready.elapsed() < Duration::from_secs(60), "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let call = |endpoint: &str, form: Vec<(&'static str, String)>| {
        client.post(format!("{base}/api/{endpoint}")).header("accept", "application/json").form(&form).send()
    };
    let password = "benchmark password".to_owned();
    call(
        "auth/signup",
        vec![("email", "bench@example.com".into()), ("password", password.clone()), ("confirm", password)],
    )
    .await?
    .error_for_status()?;
    call("keys/save", vec![("key", "api-bench:secret-value-1234".into())]).await?.error_for_status()?;

    let (rss_before, _) = rss_kib(pid);
    let created: Value = client
        .post(format!("{base}/api/jobs/create"))
        .header("accept", "application/json")
        .json(&json!({ "model": "fal-ai/nano-banana", "params": { "prompt": "a long video" }, "images": [] }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let mut persisting_at = None;
    let mut peak_sampled = rss_before;
    let done = loop {
        let (rss, _) = rss_kib(pid);
        peak_sampled = peak_sampled.max(rss);
        let job: Value = call("jobs/get", vec![("id", id.clone())]).await?.json().await?;
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        if state == "persisting" && persisting_at.is_none() {
            persisting_at = Some(Instant::now());
        }
        if matches!(state.as_str(), "succeeded" | "failed" | "canceled") {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = persisting_at.map_or(Duration::ZERO, |at| at.elapsed());
    let (_, peak) = rss_kib(pid);
    anyhow::ensure!(done["state"] == "succeeded", "the job did not succeed: {done}");
    let stored = done["assets"][0]["byte_size"].as_u64().unwrap_or_default();
    anyhow::ensure!(stored == bytes, "stored {stored} bytes, expected {bytes}");

    let secs = elapsed.as_secs_f64();
    println!("persist: {mib} MiB video, fake fal → darkroom serve (SQLite, embedded S3) on loopback");
    println!("  time from result to stored:  {secs:.2} s");
    println!("  throughput:                  {:.1} MiB/s", mib as f64 / secs);
    println!("  server RSS before the job:   {:.1} MiB", rss_before as f64 / 1024.0);
    println!("  server RSS peak (sampled):   {:.1} MiB", peak_sampled as f64 / 1024.0);
    println!("  server RSS high-water mark:  {:.1} MiB", peak as f64 / 1024.0);
    println!(
        "  peak growth during the job:  {:.1} MiB",
        peak.max(peak_sampled).saturating_sub(rss_before) as f64 / 1024.0
    );

    server.start_kill()?;
    let _ = server.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
