//! Logging, set up once.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` decides; the default keeps our own crates at info and the chatty ones quieter.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,tower_sessions=warn")
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}
