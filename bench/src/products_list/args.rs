//! The options of `bench products-list`.

use crate::args::{Environment, Seconds};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Products generated into the bench database.
    #[arg(long, default_value_t = 50_000)]
    pub products: u32,
    /// Concurrent connections wrk keeps open.
    #[arg(long, default_value_t = 1_000)]
    pub connections: u32,
    /// How long wrk loads each configuration (`15s`, `1m`).
    #[arg(long, default_value = "15s")]
    pub duration: Seconds,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// The port the runner under test listens on (127.0.0.1).
    #[arg(long, default_value_t = 3900)]
    pub port: u16,
    /// The runner's DATABASE_MAX_CONNECTIONS, the same in every configuration.
    #[arg(long, default_value_t = 50)]
    pub db_connections: u32,
    #[command(flatten)]
    pub env: Environment,
}
