//! Logging, set up once.

use tracing_subscriber::EnvFilter;

/// Directives applied whatever `RUST_LOG` says: the embedded S3 server logs each request's URI
/// at debug level, and a presigned URL is a credential that must never reach a log; it also logs
/// every refused signature as an error, which would let anyone flood the log (the embedded
/// endpoint notes refusals itself, at debug level).
pub const ALWAYS: &[&str] = &["s3s=info", "s3s::ops=off"];

/// `RUST_LOG` decides; the default keeps our own crates at info and the chatty ones quieter.
/// `LOG_FORMAT=json` writes one JSON object per line (with the request and job spans' fields),
/// for log collectors.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,tower_sessions=warn")
    });
    let subscriber = tracing_subscriber::fmt().with_env_filter(with_always(filter)).with_target(false);
    if std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        subscriber.json().with_current_span(true).with_span_list(true).init();
    } else {
        subscriber.init();
    }
}

pub fn with_always(mut filter: EnvFilter) -> EnvFilter {
    for directive in ALWAYS {
        filter = filter.add_directive(directive.parse().expect("static directive"));
    }
    filter
}
