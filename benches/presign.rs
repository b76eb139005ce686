//! Upload-ticket throughput: authenticated `uploads/issue` calls against the real server on
//! loopback (embedded S3), each recording a ticket and signing a PUT. Prints requests per
//! second, latency percentiles and the server's CPU time per request; asserts nothing.
//!
//! `cargo bench --bench presign [-- <requests> <concurrency>]` runs on SQLite; with
//! `DARKROOM_BENCH_DB=postgres` (and `DARKROOM_TEST_PG_URL`, default the local server) it runs
//! on a fresh PostgreSQL database. The server runs on its own runtime, whose threads (and
//! SQLite's worker threads) are the ones counted as server CPU; the client's threads are not.
//! PostgreSQL's own processes are not counted either; when they run on this machine, their CPU
//! is printed on a line of its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::server::config::Config;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Threads whose CPU is the client's, not the server's.
const CLIENT_THREADS: &str = "bench-client";

fn main() -> anyhow::Result<()> {
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()?;
    // The main thread only waits: the client's work runs on the client's named threads.
    client_runtime.block_on(async { tokio::spawn(run()).await? })
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let requests: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let concurrency: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let postgres = std::env::var("DARKROOM_BENCH_DB").is_ok_and(|db| db == "postgres");

    let dir = std::env::temp_dir().join(format!("darkroom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (database_url, pg_admin) = if postgres {
        let admin = std::env::var("DARKROOM_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("darkroom_bench_{}", std::process::id());
        let pool = connect_pg(&admin).await?;
        sqlx::Executor::execute(&pool, format!("CREATE DATABASE {name}").as_str()).await?;
        pool.close().await;
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => anyhow::bail!("DARKROOM_TEST_PG_URL must end in a database name"),
        };
        (url, Some((admin, name)))
    } else {
        (format!("sqlite://{}", dir.join("bench.db").display()), None)
    };
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        ("DARKROOM_DATA_DIR", dir.display().to_string()),
        ("S3_EMBEDDED_ADDR", "127.0.0.1:0".into()),
        ("DARKROOM_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        ("DARKROOM_UPLOADS_PER_DAY", "100000000".into()),
        ("DARKROOM_UPLOAD_BYTES_PER_DAY", "1000000000000000".into()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;

    // The server on a runtime of its own, as in production (two workers on this machine).
    let server_runtime = tokio::runtime::Builder::new_multi_thread().thread_name("server").enable_all().build()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let server = server_runtime
        .spawn(async move { darkroom::server::start(config, tokio::net::TcpListener::from_std(listener)?).await })
        .await??;
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

    let cpu_before = server_cpu()?;
    let database_before = postgres_cpu();
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
    let cpu = server_cpu()? - cpu_before;
    let database = postgres_cpu().saturating_sub(database_before);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "presign benchmark: {} authenticated uploads/issue calls, concurrency {concurrency}, loopback, {backend}",
        latencies.len()
    );
    println!("  throughput   {:.0} requests/s", latencies.len() as f64 / elapsed.as_secs_f64());
    println!("  latency p50  {:.2} ms", ms(pct(0.50)));
    println!("  latency p99  {:.2} ms", ms(pct(0.99)));
    println!("  latency max  {:.2} ms", ms(*latencies.last().expect("at least one request")));
    println!("  server CPU   {:.0} µs per request", cpu.as_secs_f64() * 1e6 / latencies.len() as f64);
    if postgres && !database.is_zero() {
        let per_request = database.as_secs_f64() * 1e6 / latencies.len() as f64;
        println!("  PostgreSQL   {per_request:.0} µs CPU per request (its processes on this machine)");
    }
    println!("  failures     {failures}");
    server_runtime.spawn(server.stop()).await?;
    server_runtime.shutdown_background();
    if let Some((admin, name)) = pg_admin {
        let pool = connect_pg(&admin).await?;
        sqlx::Executor::execute(&pool, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn connect_pg(url: &str) -> anyhow::Result<sqlx::PgPool> {
    Ok(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?)
}

/// CPU time (user and system) of the process (threads that have ended included), less that of
/// the client's threads and the main thread (which only waits), from `/proc`. A client thread
/// that ended meanwhile would count as the server's: the figure errs high, never low.
fn server_cpu() -> anyhow::Result<Duration> {
    // /proc counts in USER_HZ, which Linux fixes at 100 per second.
    const TICKS_PER_SEC: f64 = 100.0;
    let main = std::process::id().to_string();
    let mut ticks = cpu_ticks(&std::fs::read_to_string("/proc/self/stat")?).map(|(_, t)| t).unwrap_or(0);
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((name, used)) = cpu_ticks(&stat) else { continue };
        if task.file_name().to_string_lossy() == main || name.starts_with(CLIENT_THREADS) {
            ticks = ticks.saturating_sub(used);
        }
    }
    Ok(Duration::from_secs_f64(ticks as f64 / TICKS_PER_SEC))
}

/// CPU time of every process named `postgres` on this machine (none when it runs elsewhere).
fn postgres_cpu() -> Duration {
    let mut ticks = 0;
    for process in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(stat) = std::fs::read_to_string(process.path().join("stat"))
            && let Some((name, used)) = cpu_ticks(&stat)
            && name == "postgres"
        {
            ticks += used;
        }
    }
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// The name and the user plus system clock ticks in a `stat` line: "id (name) state …", with
/// utime and stime the 14th and 15th fields (the name may hold spaces, so count after it).
fn cpu_ticks(stat: &str) -> Option<(String, u64)> {
    let (head, rest) = stat.rsplit_once(") ")?;
    let name = head.split_once(" (").map_or("", |(_, n)| n).to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}
