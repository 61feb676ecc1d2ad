//! The `bench` command line: one subcommand per benchmark, each with its own options (the
//! benchmark's `Args`). `scripts/bench` passes its arguments through.

use clap::{Parser, Subcommand};

use crate::{cold_start, drop, products_list, settlement};

/// KickSync's benchmarks. Each measures its baseline in the same run and writes
/// bench/results/<name>.json.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Page 1 of GET /products under load: no index, index, index + cache, and the floor
    /// (one Redis GET on the same HTTP stack).
    ProductsList(products_list::Args),
    /// The nightly settlement end to end (scheduler, SQS, workers) against one GROUP BY, the
    /// naive approach, a partition sweep, 10M orders, and a batched against a row-by-row insert.
    Settlement(settlement::Args),
    /// A drop of 1,000 units raced by 100,000 attempts: the reservation strategy against the
    /// replaced system's per-product lock and the floor (one Lua decrement on the same stack).
    Drop(drop::Args),
    /// Each function's release binary from process start to its first invocation answered,
    /// against a hello-world lambda_runtime function (the floor), and each package's zip size.
    ColdStart(cold_start::Args),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ProductsList(args) => products_list::run(&args).await,
        Command::Settlement(args) => settlement::run(&args).await,
        Command::Drop(args) => drop::run(&args).await,
        Command::ColdStart(args) => cold_start::run(&args).await,
    }
}
