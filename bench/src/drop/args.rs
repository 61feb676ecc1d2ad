//! The options of `bench drop`.

use super::Setup;
use crate::args::{Environment, Seconds};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Units of the one product on sale.
    #[arg(long, default_value_t = 1_000)]
    pub units: u32,
    /// Checkout attempts per configuration.
    #[arg(long, default_value_t = 100_000)]
    pub attempts: u64,
    /// Distinct buyers; the attempts go round-robin over them.
    #[arg(long, default_value_t = 20_000)]
    pub buyers: u32,
    /// Concurrent connections wrk keeps open.
    #[arg(long, default_value_t = 1_000)]
    pub connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// The port the runner under test listens on (127.0.0.1).
    #[arg(long, default_value_t = 3901)]
    pub port: u16,
    /// Share of the attempts, in percent, in phase A, which must sell the drop out.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(1..100))]
    pub sell_out_percent: u8,
    /// The runner's DATABASE_MAX_CONNECTIONS, the same in every configuration.
    #[arg(long, default_value_t = 50)]
    pub db_connections: u32,
    /// The runner's CHECKOUT_LIMIT_PER_MINUTE: high enough that the limiter never refuses.
    #[arg(long, default_value_t = 1_000)]
    pub checkout_limit: u32,
    /// The longest one phase may take (wrk's -d); a phase still running then is an error.
    #[arg(long, default_value = "15m")]
    pub phase_limit: Seconds,
    /// Rounds of the reservation strategy and the floor, one after the other; each keeps the
    /// figures of its median round, so one noisy moment on a shared machine does not decide the
    /// ratio. The lock strategy (a minute or two a round) runs in the first round only.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub rounds: u32,
    /// The port of the Redis server the bench starts for the run (127.0.0.1), so that Redis's
    /// CPU and command counts are the configuration's alone.
    #[arg(long, default_value_t = 6392)]
    pub redis_port: u16,
    /// Attempts sent after phase B, with the drop sold out, while a MONITOR connection records
    /// which keys each attempt touches (untimed); 0 skips the hot-shard figures.
    #[arg(long, default_value_t = 2_000)]
    pub shard_sample: u64,
    /// Measure only these configurations (comma-separated); the results file is written only
    /// when all three ran.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Setup>,
    #[command(flatten)]
    pub env: Environment,
}
