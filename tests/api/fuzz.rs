//! The JSON API against its own OpenAPI document, with tools from PyPI: openapi-spec-validator
//! says the document is valid OpenAPI 3.1, then schemathesis generates requests from it (valid
//! and deliberately invalid ones) and checks every answer: never a 5xx, and every status, content
//! type and body as the document says.
//!
//! `make test` installs both (`.ci/tools.sh api-fuzz`) and names their directory in
//! `DARKROOM_TEST_API_FUZZ`; a plain `cargo test` without it skips this test, saying so.
//! `DARKROOM_TEST_API_FUZZ_SEED` replays or varies a run (the default seed is fixed, so the
//! suite is repeatable); `DARKROOM_TEST_API_FUZZ_EXAMPLES` sets the cases per operation.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

/// What schemathesis checks every answer for. `positive_data_acceptance` is left out: a request
/// can match the schema and still be refused for what it means (an unknown upload key, a
/// checksum of other bytes).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_headers_conformance,response_schema_conformance,negative_data_rejection,\
    missing_required_header,ignored_auth";

fn tools() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("DARKROOM_TEST_API_FUZZ")?);
    assert!(dir.join("schemathesis").is_file(), "DARKROOM_TEST_API_FUZZ={} holds no schemathesis", dir.display());
    Some(dir)
}

#[tokio::test]
async fn the_api_document_validates_and_a_fuzzer_finds_no_server_error_or_schema_violation() {
    let Some(bin) = tools() else {
        eprintln!("skipped: DARKROOM_TEST_API_FUZZ names no schemathesis (`make test` installs it)");
        return;
    };
    // The fuzzer sends thousands of requests: no rate limit should answer for the API.
    let app = TestApp::spawn_with(&[("DARKROOM_API_REQUESTS_PER_MINUTE", "1000000")]).await;
    let owner = crate::jobs::user_with_key(&app, "fuzz@example.com", "api").await;
    let made = owner
        .call_json(
            "tokens/create",
            &json!({ "name": "fuzzer", "days": 1, "scopes":
                ["uploads:write", "jobs:write", "jobs:read", "assets:read", "assets:write", "account:read"] }),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = made.json::<serde_json::Value>()["token"].as_str().unwrap().to_owned();
    // Something of the account's to find: an image and a finished job with a result.
    let image = crate::jobs::selfie(&owner).await;
    let style = app::catalog::HAIRSTYLES[0].prompt;
    owner.create_job(app::catalog::HAIRSTYLE_TRY_ON, json!({ "prompt": style }), &[&image]).await.unwrap();

    let document_url = format!("{}/api/v1/openapi.json", app.base);
    let document = reqwest::get(&document_url).await.unwrap().bytes().await.unwrap();
    let path = app.dir.join("openapi.json");
    std::fs::write(&path, &document).unwrap();
    let validated = tokio::process::Command::new(bin.join("openapi-spec-validator"))
        .arg(&path)
        .output()
        .await
        .expect("openapi-spec-validator runs");
    assert!(
        validated.status.success(),
        "the OpenAPI document is not valid:\n{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );

    let seed = std::env::var("DARKROOM_TEST_API_FUZZ_SEED").unwrap_or_else(|_| "20261203".into());
    let examples = std::env::var("DARKROOM_TEST_API_FUZZ_EXAMPLES").unwrap_or_else(|_| "40".into());
    let report = app.dir.join("schemathesis.xml");
    let fuzzed = tokio::process::Command::new(bin.join("schemathesis"))
        .current_dir(&app.dir)
        .env("SCHEMATHESIS_HOOKS", "")
        .args(["run", &document_url, "--checks", CHECKS, "--max-examples", &examples, "--seed", &seed])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--workers", "2", "--generation-database", "none", "--no-color", "--request-timeout", "30"])
        .args(["--phases", "examples,coverage,fuzzing", "--report", "junit", "--report-junit-path"])
        .arg(&report)
        .output()
        .await
        .expect("schemathesis runs");
    let out = String::from_utf8_lossy(&fuzzed.stdout);
    eprintln!("{}", out.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
    assert!(
        fuzzed.status.success(),
        "schemathesis found problems (seed {seed}):\n{out}{}",
        String::from_utf8_lossy(&fuzzed.stderr)
    );
    assert!(out.contains("passed"), "schemathesis ran no test:\n{out}");
}
