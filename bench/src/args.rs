//! The arguments every benchmark shares: the services and files it uses ([`Environment`]) and
//! durations as wrk writes them ([`Seconds`]). Each benchmark's own `Args` flattens these in;
//! this module knows no benchmark.

use std::{fmt, path::PathBuf, str::FromStr};

use anyhow::Context;

/// Where results go unless `--results-dir` says otherwise: this crate's `results/`.
const DEFAULT_RESULTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results");
/// Where the runners' logs and wrk's raw reports go: the clone's `.local/logs/bench/`.
const DEFAULT_LOG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/logs/bench");

/// The services and files a benchmark uses.
#[derive(Debug, Clone, clap::Args)]
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
            "{} not found: build it (`scripts/bench` does) or pass --runner",
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
