//! Gallery at scale: one user with 100,000 results (and, on PostgreSQL, 1,000,000 results across
//! 50 users), then the server time of what the Gallery tab asks for, through the real server on
//! loopback: the first page, a page 2,000 pages deep (or as deep as the results go), a filtered
//! page, prompt searches (a rare word and a common one, the last word typed as a prefix) and a
//! bulk trash of 10,000 results in calls of 1,000. Prints p50 and p95 over 200 requests each;
//! asserts nothing.
//!
//! `cargo bench --features fake-fal --bench gallery [-- <results>]` runs on SQLite;
//! `DARKROOM_BENCH_DB=postgres` (with `DARKROOM_TEST_PG_URL`, default the local server) on a
//! fresh PostgreSQL database. Results are seeded straight into the database (the files they
//! name are not stored: pages sign links without reading objects).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::server::config::Config;
use base64::Engine;
use serde_json::json;

const PAGE: usize = 60;
const SAMPLES: usize = 200;
const RARE: &str = "zeppelin";
const NOUNS: [&str; 8] = ["lighthouse", "fox", "castle", "garden", "robot", "harbor", "forest", "portrait"];
const PLACES: [&str; 6] = ["at dusk", "in snow", "under neon", "by the sea", "in watercolor", "at noon"];
const MODELS: [&str; 3] = ["fal-ai/nano-banana", "fal-ai/flux/dev", "fal-ai/nano-banana/edit"];

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let results: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let postgres = std::env::var("DARKROOM_BENCH_DB").is_ok_and(|db| db == "postgres");
    let dir = std::env::temp_dir().join(format!("darkroom-gallery-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (database_url, pg_admin) = if postgres {
        let admin = std::env::var("DARKROOM_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("darkroom_gallery_bench_{}", std::process::id());
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin).await?;
        sqlx::Executor::execute(&pool, format!("CREATE DATABASE {name}").as_str()).await?;
        pool.close().await;
        let Some((server, _)) = admin.rsplit_once('/') else { anyhow::bail!("the URL must end in a database") };
        (format!("{server}/{name}"), Some((admin, name)))
    } else {
        (format!("sqlite://{}", dir.join("bench.db").display()), None)
    };
    let vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        ("DARKROOM_DATA_DIR", dir.display().to_string()),
        ("DARKROOM_MASTER_KEY", base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        ("DARKROOM_SIGNUPS_PER_IP", "1000".into()),
    ]);
    let config = Config::from_lookup(|name| vars.get(name).cloned())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = darkroom::server::start(config, listener).await?;
    let base = format!("http://{}", server.addr);
    let db = server.state.db.clone();

    let bench = signup(&base, "bench@example.com").await?;
    let bench_id = user_id(&db, "bench@example.com").await?;
    let started = Instant::now();
    seed(&db, &bench_id, results, 0).await?;
    let mut total = results;
    if postgres {
        for n in 0..49 {
            let email = format!("other{n}@example.com");
            signup(&base, &email).await?;
            seed(&db, &user_id(&db, &email).await?, 18_368, n + 1).await?;
            total += 18_368;
        }
    }
    if postgres {
        sqlx::query("ANALYZE").execute(&db.pool).await?;
    }
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!(
        "gallery benchmark on {backend}: {results} results for the user measured, {total} in all, seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let list = |query: serde_json::Value, after: Option<String>| {
        let (bench, base) = (bench.clone(), base.clone());
        async move {
            let started = Instant::now();
            let response = bench
                .post(format!("{base}/api/gallery/list"))
                .header("accept", "application/json")
                .json(&json!({ "query": query, "after": after }))
                .send()
                .await
                .expect("the server answers");
            assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
            let page: serde_json::Value = response.json().await.expect("a page");
            (started.elapsed(), page)
        }
    };
    // The cursor of a page `depth` pages in (or the deepest full page there is).
    let depth = 2000.min(results / PAGE - 1);
    let deep = {
        let offset = (depth * PAGE - 1) as i64;
        let row: (i64, String) = sqlx::query_as(
            "SELECT created_at, id FROM assets WHERE user_id = $1 AND trashed_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $2",
        )
        .bind(&bench_id)
        .bind(offset)
        .fetch_one(&db.pool)
        .await?;
        format!("{}_{}", row.0, row.1)
    };
    for _ in 0..20 {
        list(json!({}), None).await;
    }
    let cases: Vec<(String, serde_json::Value, Option<String>)> = vec![
        ("first page".into(), json!({}), None),
        (format!("page {depth} deep"), json!({}), Some(deep)),
        (
            "filtered: favorites, images, one model, one month".into(),
            json!({ "favorites": true, "kind": "image", "model": MODELS[1], "from": "2026-01-01", "to": "2026-12-31" }),
            None,
        ),
        ("search: a rare word (1 in 100)".into(), json!({ "q": RARE }), None),
        ("search: a common word, typed (\"lightho\")".into(), json!({ "q": "lightho" }), None),
        ("search + filter: \"fox\" videos".into(), json!({ "q": "fox ", "kind": "video" }), None),
    ];
    for (name, query, after) in cases {
        let mut times = Vec::with_capacity(SAMPLES);
        let mut shown = 0;
        for _ in 0..SAMPLES {
            let (took, page) = list(query.clone(), after.clone()).await;
            shown = page["items"].as_array().map_or(0, Vec::len);
            times.push(took);
        }
        report(&name, &mut times, shown);
    }

    // Bulk trash of 10,000 results, as the page sends it: calls of 1,000 ids.
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM assets WHERE user_id = $1 ORDER BY created_at LIMIT 10000")
            .bind(&bench_id)
            .fetch_all(&db.pool)
            .await?;
    let started = Instant::now();
    let mut changed = 0;
    for batch in ids.chunks(1000) {
        let response = bench
            .post(format!("{base}/api/gallery/curate"))
            .header("accept", "application/json")
            .json(&json!({ "action": "trash", "ids": batch }))
            .send()
            .await?;
        let report: serde_json::Value = response.json().await?;
        changed += report["items"].as_array().map_or(0, |items| items.iter().filter(|i| i[1] == "changed").count());
    }
    println!(
        "  bulk trash of {} results in calls of 1,000: {:.2} s ({changed} changed)",
        ids.len(),
        started.elapsed().as_secs_f64()
    );

    server.stop().await;
    if let Some((admin, name)) = pg_admin {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin).await?;
        sqlx::Executor::execute(&pool, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn report(name: &str, times: &mut [Duration], shown: usize) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)].as_secs_f64() * 1000.0;
    println!("  {name:<52} p50 {:>7.2} ms   p95 {:>7.2} ms   ({shown} shown)", pct(0.50), pct(0.95));
}

async fn signup(base: &str, email: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let password = "benchmark password";
    let reply = client
        .post(format!("{base}/api/auth/signup"))
        .header("accept", "application/json")
        .form(&[("email", email), ("password", password), ("confirm", password)])
        .send()
        .await?;
    anyhow::ensure!(reply.status().is_success(), "signup failed: {}", reply.text().await?);
    Ok(client)
}

async fn user_id(db: &app::server::db::Db, email: &str) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_one(&db.pool).await?)
}

/// `count` finished jobs with one result each, one a minute back from now: a tenth favorites, a
/// fifth videos, three models, prompts from a small vocabulary with one rare word in a hundred.
async fn seed(db: &app::server::db::Db, user_id: &str, count: usize, salt: usize) -> anyhow::Result<()> {
    let now = app::server::db::now_ms();
    const ROWS: usize = 400;
    for chunk in (0..count).collect::<Vec<_>>().chunks(ROWS) {
        let mut tx = db.begin_write().await?;
        let mut jobs = String::from(
            "INSERT INTO jobs (id, user_id, model, params_json, upload_ids_json, state, max_attempts, next_attempt_at, \
             queued_at, created_at, updated_at, prompt_search) VALUES ",
        );
        let mut assets = String::from(
            "INSERT INTO assets (id, user_id, job_id, position, object_key, kind, content_type, byte_size, sha256, \
             width, height, favorite, expires_at, created_at) VALUES ",
        );
        let mut job_rows = Vec::new();
        for (i, n) in chunk.iter().enumerate() {
            let n = n + salt * 7;
            let created = now - (n as i64) * 60_000;
            let rare = if n % 100 == 7 { format!(" {RARE}") } else { String::new() };
            let prompt = format!("a {} {}{rare} number {n}", NOUNS[n % NOUNS.len()], PLACES[n % PLACES.len()]);
            let model = MODELS[n % MODELS.len()];
            let video = n % 5 == 0;
            let (job_id, asset_id) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
            let (b, a) = (i * 5, i * 4);
            let comma = if i == 0 { "" } else { ", " };
            jobs.push_str(&format!(
                "{comma}(${}, ${}, ${}, ${}, '[]', 'succeeded', 5, {created}, {created}, {created}, {created}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            assets.push_str(&format!(
                "{comma}(${}, ${}, ${}, 0, ${}, '{}', '{}', 250000, 'x', 1024, 1024, {}, {}, {created})",
                a + 1,
                a + 2,
                a + 3,
                a + 4,
                if video { "video" } else { "image" },
                if video { "video/mp4" } else { "image/png" },
                i64::from(n % 10 == 3),
                created + 7 * 86_400_000,
            ));
            job_rows.push((job_id, asset_id, model, json!({ "prompt": prompt }).to_string(), prompt));
        }
        let mut query = sqlx::query(&jobs);
        for (job_id, _, model, params, prompt) in &job_rows {
            query = query
                .bind(job_id.as_str())
                .bind(user_id)
                .bind(*model)
                .bind(params.as_str())
                .bind(app::server::gallery::search::fold(prompt));
        }
        query.execute(&mut *tx).await?;
        let mut query = sqlx::query(&assets);
        for (job_id, asset_id, ..) in &job_rows {
            query = query
                .bind(asset_id.as_str())
                .bind(user_id)
                .bind(job_id.as_str())
                .bind(format!("results/{user_id}/{job_id}/0.png"));
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(())
}
