//! Upload-ticket throughput: authenticated `uploads/issue` calls against the real server on
//! loopback (SQLite, embedded S3), each recording a ticket and signing a PUT. Prints requests
//! per second and latency percentiles; asserts nothing about speed.
//!
//! `cargo bench --bench presign` (optionally `-- <requests> <concurrency>`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::server::config::Config;
use base64::Engine;
use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let requests: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);

    let dir = std::env::temp_dir().join(format!("darkroom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", format!("sqlite://{}", dir.join("bench.db").display())),
        ("DARKROOM_DATA_DIR", dir.display().to_string()),
        ("S3_EMBEDDED_ADDR", "127.0.0.1:0".into()),
        ("DARKROOM_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        ("DARKROOM_UPLOADS_PER_DAY", "100000000".into()),
        ("DARKROOM_UPLOAD_BYTES_PER_DAY", "1000000000000000".into()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = darkroom::server::start(config, listener).await?;
    let base = format!("http://{}", server.addr);
    let signup_url = format!("{base}/api/auth/signup");

    let client = reqwest::Client::builder().cookie_store(true).pool_max_idle_per_host(concurrency).build()?;
    let password = "benchmark password";
    let signup = client
        .post(signup_url)
        .header("accept", "application/json")
        .form(&[("email", "bench@example.com"), ("password", password), ("confirm", password)])
        .send()
        .await?;
    anyhow::ensure!(signup.status().is_success(), "signup failed: {}", signup.text().await?);

    let checksum = hex::encode(Sha256::digest(b"benchmark image bytes"));
    let issue = move |client: reqwest::Client| {
        let (base, checksum) = (base.clone(), checksum.clone());
        async move {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/api/uploads/issue"))
                .header("accept", "application/json")
                .form(&[("content_type", "image/jpeg"), ("byte_length", "2500000"), ("sha256", checksum.as_str())])
                .send()
                .await
                .expect("the server answers");
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            (started.elapsed(), ok)
        }
    };

    // Warm up connections, the database and the signing key cache.
    for _ in 0..50 {
        issue(client.clone()).await;
    }

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = 0;
    let per_worker = requests / concurrency;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let issue = issue.clone();
            tokio::spawn(async move {
                let mut results = Vec::with_capacity(per_worker);
                for _ in 0..per_worker {
                    results.push(issue(client.clone()).await);
                }
                results
            })
        })
        .collect();
    for worker in workers {
        for (latency, ok) in worker.await? {
            latencies.push(latency);
            failures += usize::from(!ok);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "presign benchmark: {} authenticated uploads/issue calls, concurrency {concurrency}, loopback, SQLite",
        latencies.len()
    );
    println!("  throughput   {:.0} requests/s", latencies.len() as f64 / elapsed.as_secs_f64());
    println!("  latency p50  {:.2} ms", ms(pct(0.50)));
    println!("  latency p99  {:.2} ms", ms(pct(0.99)));
    println!("  latency max  {:.2} ms", ms(*latencies.last().expect("at least one request")));
    println!("  failures     {failures}");
    server.stop().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
