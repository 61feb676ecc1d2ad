//! `kicksync-local`: run KickSync's Lambda handlers on a laptop. See the crate docs of
//! `kicksync_local` for how the runner is put together.

use std::process::ExitCode;

use clap::Parser;
use kicksync_local::cli::{self, Cli};

// The runner serves a thousand connections at once from one process, allocating per request;
// mimalloc keeps those allocations cheap where glibc's malloc contends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init_local();
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain of causes on one line, without a backtrace.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
