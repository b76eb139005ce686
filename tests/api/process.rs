//! A real `darkroom serve` process on a test app's database and storage, its output in a log
//! file: for what only a process shows (signals, kills, resident memory, panics in its log).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{PATIENCE, StorageKind, TestApp, storage_kind};

pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    /// `http://127.0.0.1:port` once it listens.
    pub base: String,
}

impl TestApp {
    /// Starts `darkroom serve` with the app's settings plus `extra`, named `name` in its log file,
    /// and waits until it answers. With the embedded endpoint, it stores into the test's.
    pub async fn process(&self, name: &str, extra: &[(&str, &str)]) -> ServerProcess {
        self.start_process(name, extra, true).await
    }

    /// The same, but with the embedded endpoint the process serves its own storage (under the
    /// `DARKROOM_DATA_DIR` that `extra` should give), which goes down with it.
    pub async fn process_with_own_storage(&self, name: &str, extra: &[(&str, &str)]) -> ServerProcess {
        self.start_process(name, extra, false).await
    }

    async fn start_process(&self, name: &str, extra: &[(&str, &str)], shared_storage: bool) -> ServerProcess {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_darkroom"));
        command.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in &self.vars {
            command.env(key, value);
        }
        command.env("RUST_LOG", "info").env("NO_COLOR", "1").env("LEPTOS_SITE_ADDR", "127.0.0.1:0");
        if shared_storage && storage_kind() == StorageKind::Embedded {
            // The test's embedded endpoint, used by the process as an external S3.
            let embedded = self.running.embedded_s3.as_ref().expect("the test runs the embedded S3");
            let endpoint = embedded.endpoint(self.running.addr);
            let (id, secret) = endpoint.credentials.unwrap();
            command
                .env("S3_ENDPOINT", endpoint.endpoint.unwrap().as_str())
                .env("S3_REGION", endpoint.region)
                .env("S3_ACCESS_KEY_ID", id)
                .env("S3_SECRET_ACCESS_KEY", secret);
        }
        for (key, value) in extra {
            command.env(key, value);
        }
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        command.stdout(Stdio::from(file.try_clone().unwrap())).stderr(Stdio::from(file)).kill_on_drop(true);
        crate::helpers::process_logs().lock().unwrap().push(log.clone());
        let child = command.spawn().expect("the darkroom binary runs");
        let mut process = ServerProcess { child, log, base: String::new() };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("{name} exited ({status}) before listening:\n{}", process.log());
            }
            let log = process.log();
            // `addr=127.0.0.1:1234` in text logs, `"addr":"127.0.0.1:1234"` in JSON ones.
            let addr = log.lines().find(|l| l.contains("Darkroom listening")).and_then(|line| {
                let rest = line.split("addr=").nth(1).or_else(|| line.split("\"addr\":\"").nth(1))?;
                Some(rest.split(|c: char| c.is_whitespace() || c == '"').next()?.to_owned())
            });
            if let Some(addr) = addr {
                process.base = format!("http://{addr}");
                return process;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} never listened:\n{log}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl ServerProcess {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// Resident memory, in KiB, from the kernel's accounting.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Runs `work` while sampling the process's resident memory every few milliseconds; returns
    /// what `work` gave and the highest sample, in KiB.
    pub async fn peak_rss_during<T>(&self, work: impl std::future::Future<Output = T>) -> (T, u64) {
        let pid = self.pid();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(self.rss_kib()));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                    let rss = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok());
                    peak.fetch_max(rss.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let out = work.await;
        sampler.abort();
        (out, peak.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Sends SIGTERM and waits (at most `patience`) for the exit.
    pub async fn terminate(&mut self, patience: Duration) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        tokio::time::timeout(patience, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within {patience:?} of SIGTERM:\n{}", self.log()))
            .unwrap()
    }

    /// Each panic the log reports, with the lines that say what it was.
    pub fn panics(&self) -> Vec<String> {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let found = lines.iter().enumerate().filter(|(_, l)| l.contains("panicked"));
        found.map(|(at, _)| lines[at..(at + 3).min(lines.len())].join("\n")).collect()
    }
}

/// A loopback port nothing listens on right now (for a process that must come back on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
