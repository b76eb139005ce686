//! The operator commands, run as the real binary against the test database.

use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::helpers::{PASSWORD, TestApp};

pub struct Outcome {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(self) -> Self {
        assert!(self.status.success(), "command failed: {}\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs `darkroom <args>` with the app's environment, writing `stdin` to it.
pub async fn run(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Outcome {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_darkroom"));
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    for (name, value) in &app.vars {
        command.env(name, value);
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the darkroom binary runs");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let output = child.wait_with_output().await.unwrap();
    Outcome {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn user_create_admin_reads_the_password_from_stdin() {
    let app = TestApp::spawn().await;
    let out = run(&app, &["user", "create", "--email", "Root@Example.com", "--admin"], Some(&format!("{PASSWORD}\n")))
        .await
        .success();
    assert!(out.stdout.contains("root@example.com (admin)"), "{}", out.stdout);
    let client = app.client();
    assert_eq!(client.login("root@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(client.get("/admin").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_password_never_goes_on_the_command_line() {
    let app = TestApp::spawn().await;
    let out = run(&app, &["user", "create", "--email", "a@example.com", "--password", PASSWORD], None).await;
    assert!(!out.status.success(), "a --password flag must not exist");
    let out = run(&app, &["user", "create", "--email", "a@example.com"], Some("")).await;
    assert!(!out.status.success());
    assert!(out.stderr.contains("DARKROOM_PASSWORD"), "says how to pass it: {}", out.stderr);
    let out = run(&app, &["user", "create", "--email", "a@example.com"], Some("short\n")).await;
    assert!(!out.status.success(), "the password rules apply to the CLI too");
}

#[tokio::test]
async fn user_promote_makes_an_existing_account_admin_without_relogin() {
    // The server trusts a verified session for an hour here: only `auth_epoch`, which the
    // command (another process) moves, can tell it about the promotion.
    let app = TestApp::spawn_with(&[("DARKROOM_SESSION_RECHECK_SECS", "3600")]).await;
    let client = app.user("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(client.get("/admin").await.status, StatusCode::FORBIDDEN);
    }
    run(&app, &["user", "promote", "ADA@example.com"], None).await.success();
    crate::helpers::eventually("the server sees the promotion", || async {
        (client.get("/admin").await.status == StatusCode::OK).then_some(())
    })
    .await;
    let missing = run(&app, &["user", "promote", "nobody@example.com"], None).await;
    assert!(!missing.status.success());
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let app = TestApp::spawn().await;
    let out = run(&app, &["migrate"], None).await.success();
    assert!(out.stdout.contains("up to date"));
    run(&app, &["migrate"], None).await.success();
}
