//! Tracing set-up. Lambda gets JSON lines (CloudWatch Logs Insights parses them); people running
//! the local stack get readable text. `RUST_LOG` filters both.

use tracing_subscriber::{EnvFilter, fmt};

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// For the Lambda binaries: JSON, no ANSI colours, no timestamps (CloudWatch adds its own).
pub fn init_lambda() {
    let _ = fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// For the local runner and tools.
pub fn init_local() {
    let _ = fmt().compact().with_env_filter(filter()).try_init();
}
