//! The options of `bench settlement`.

use kicksync_local::functions::{SETTLEMENT_WORKER_BATCH_SIZE, SETTLEMENT_WORKER_CONCURRENCY};

use crate::args::Environment;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Orders of the main day.
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: u64,
    /// Partitions of the main end-to-end figure.
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Orders of the naive approach's day.
    #[arg(long, default_value_t = 100_000)]
    pub naive_orders: u64,
    /// Settlement rows of the bulk-insert comparison.
    #[arg(long, default_value_t = 100_000)]
    pub bulk_rows: u32,
    /// Skip the sweep of partition counts.
    #[arg(long)]
    pub no_sweep: bool,
    /// Skip the 10M-order run (its data takes a few minutes to generate).
    #[arg(long)]
    pub no_10m: bool,
    /// Only the floor and the end-to-end figure (no naive, bulk-insert, sweep or 10M runs):
    /// for iterating on the pipeline. Writes no results file.
    #[arg(long)]
    pub quick: bool,
    /// Keep the bench database afterwards and reuse the orders already generated in it.
    #[arg(long)]
    pub reuse_data: bool,
    /// Messages per worker invocation (template.yaml's `BatchSize`, as the local runner binds it).
    #[arg(long, default_value_t = SETTLEMENT_WORKER_BATCH_SIZE)]
    pub batch_size: i32,
    /// Worker invocations at once (template.yaml's `MaximumConcurrency`).
    #[arg(long, default_value_t = SETTLEMENT_WORKER_CONCURRENCY)]
    pub concurrency: usize,
    /// Local AWS endpoint (moto_server).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:5000"
    )]
    pub aws_endpoint: String,
    #[command(flatten)]
    pub env: Environment,
}
