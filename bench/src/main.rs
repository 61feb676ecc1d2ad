//! `bench`: KickSync's benchmarks. See the crate docs of `kicksync_bench`; run it through
//! `scripts/bench <name>`.

use std::process::ExitCode;

use clap::Parser;
use kicksync_bench::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain of causes on one line.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
