//! The `bench` command line: one subcommand per benchmark, each with the sizes it measures and
//! the services it uses. `scripts/bench` passes its arguments through.

use std::{fmt, path::PathBuf, str::FromStr};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::products_list;

/// Where results go unless `--results-dir` says otherwise: this crate's `results/`.
const DEFAULT_RESULTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
/// Where the runners' logs and wrk's raw reports go: the clone's `.local/logs/bench/`.
const DEFAULT_LOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/logs/bench");

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
    ProductsList(ProductsListArgs),
    /// The nightly settlement end to end (scheduler, SQS, workers) against one GROUP BY, the
    /// naive approach, a partition sweep, 10M orders, and a batched against a row-by-row insert.
    Settlement(crate::settlement::SettlementArgs),
    /// A drop of 1,000 units raced by 100,000 attempts: the reservation strategy against the
    /// replaced system's per-product lock and the floor (one Lua decrement on the same stack).
    Drop(crate::drop::DropArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ProductsListArgs {
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

/// The services and files a benchmark uses.
#[derive(Debug, Clone, Args)]
pub struct Environment {
    /// MySQL / MariaDB server, without a database: the bench creates (and drops) its own.
    #[arg(
        long,
        env = "BENCH_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306",
        hide_env_values = true
    )]
    pub mysql_url: String,
    /// Redis; the bench's keys carry the prefix `bench:`.
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
    /// The release `kicksync-local` binary [default: next to this binary].
    #[arg(long)]
    pub runner: Option<PathBuf>,
    /// Where `<benchmark>.json` is written.
    #[arg(long, default_value = DEFAULT_RESULTS_DIR)]
    pub results_dir: PathBuf,
    /// Where the runners' logs and wrk's raw reports are written.
    #[arg(long, default_value = DEFAULT_LOG_DIR)]
    pub log_dir: PathBuf,
}

impl Environment {
    /// `--runner`, or `kicksync-local` beside this binary (both are built into one target dir).
    pub fn runner_binary(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.runner {
            return Ok(path.clone());
        }
        let me = std::env::current_exe().context("finding this binary")?;
        let path = me.with_file_name("kicksync-local");
        anyhow::ensure!(
            path.is_file(),
            "{} not found: build it (`cargo build --release -p kicksync-local`) or pass --runner",
            path.display()
        );
        Ok(path)
    }
}

/// A whole number of seconds, written the way wrk takes it: `15s`, `2m` (or plain `15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a positive whole duration like 15s or 1m, got {0:?}")]
pub struct BadDuration(String);

impl FromStr for Seconds {
    type Err = BadDuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (number, scale) = match text.strip_suffix('m') {
            Some(minutes) => (minutes, 60),
            None => (text.strip_suffix('s').unwrap_or(text), 1),
        };
        match number.parse::<u64>() {
            Ok(value) if value > 0 => Ok(Self(value * scale)),
            _ => Err(BadDuration(text.to_owned())),
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::ProductsList(args) => products_list::run(&args).await,
        Command::Settlement(args) => crate::settlement::run(&args).await,
        Command::Drop(args) => crate::drop::run(&args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_wrk_writes_them() {
        assert_eq!("15s".parse::<Seconds>(), Ok(Seconds(15)));
        assert_eq!("2m".parse::<Seconds>(), Ok(Seconds(120)));
        assert_eq!("30".parse::<Seconds>(), Ok(Seconds(30)));
        assert!("0s".parse::<Seconds>().is_err());
        assert!("1.5s".parse::<Seconds>().is_err());
        assert_eq!(Seconds(120).to_string(), "120s");
    }
}
