//! `bench drop`: one limited drop, raced by many buyers, through the release local runner.
//!
//! One product with `--units` units (max one per buyer, released a minute ago, 199,000 KRW) and
//! `--buyers` buyers, each with an access token signed with the runner's `JWT_SECRET`. Each
//! configuration gets a fresh runner, the product's stock and orders reset, its own Redis key
//! prefix (flushed first), and the same `--attempts` checkout attempts from `--connections`
//! connections, round-robin over the buyers (about five attempts each), each with its own
//! `Idempotency-Key`:
//!
//! | configuration | runner | request |
//! |---|---|---|
//! | `reservation` | `STOCK_STRATEGY=reservation` (ours) | `POST /orders` |
//! | `lock` | `STOCK_STRATEGY=lock` (the replaced system's per-product lock) | `POST /orders` |
//! | `floor` | `serve --bench-floor` | `POST /_bench/drop-floor`: one Lua decrement, nothing else |
//!
//! The attempts run in two phases: phase A (`--sell-out-percent`, 20 % by default) must sell the
//! drop out, which is checked; phase B is the rest, the crowd that keeps trying after the sell-out.
//! Around phase B the runner's MySQL statements are counted: the runner connects as its own
//! MySQL user, `kicksync_bench`, whose counters MariaDB keeps in
//! `information_schema.USER_STATISTICS` once `userstat` is on (the bench turns it on and restores
//! it); without it, the server's global `Questions` is used, and the results file says which.
//!
//! After each configuration the sale is audited in MySQL (orders, their items, payments, distinct
//! buyers, `stock_remaining`) and in Redis (the reservation counter): anything but exactly
//! `--units` units sold stops the benchmark with an error, as does a phase A that did not sell
//! out or a phase that lost responses.
//!
//! # Where the time goes
//!
//! For each phase the bench samples, before and after, the CPU time of the runner, wrk, Redis and
//! MariaDB (`/proc/<pid>/stat`), the machine's busy time (`/proc/stat`) and Redis's per-command
//! call counts (`INFO commandstats`), and reports them per attempt. With every core busy,
//! attempts/s is the machine's cores divided by the CPU time one attempt costs all processes
//! together, so these figures say what to shave. Redis and the machine are shared: other
//! clients' work shows up as `rest` and in the command counts.
//!
//! # wrk
//!
//! `bench/scripts/drop.lua` makes wrk send an exact number of requests (wrk itself only knows
//! durations) and measures the phase's elapsed time itself; see the script's header.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use chrono::{TimeDelta, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kicksync_local::bench_floor::{DROP_FLOOR_KEY, DROP_FLOOR_PATH};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use shared::{
    Config,
    adapters::{redis::RedisStore, stock::StockReservations},
    auth::TokenCodec,
    domain::auth::Role,
};
use sqlx::{
    Connection, Executor, MySqlConnection, MySqlPool, QueryBuilder, mysql::MySqlPoolOptions,
};

use crate::{
    cli::{Environment, Seconds},
    products_list::flush,
    report::{self, Machine, latency, rate, round, thousands},
    runner::{Launch, Runner},
    wrk,
};

/// The results file: `bench/results/drop.json`.
const NAME: &str = "drop";
const DATABASE: &str = "kicksync_bench_drop";
/// The MySQL account the runner connects as, so that its statements are counted apart from
/// everyone else's; created for the loopback hosts, dropped at the end.
const RUNNER_USER: &str = "kicksync_bench";
const RUNNER_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "::1"];
/// The runner's token key; the bench signs the buyers' tokens with it.
const JWT_SECRET: &str = "kicksync-bench-jwt-secret-not-for-production";
/// The tokens must outlive every configuration of one run, the slow lock strategy included.
const TOKEN_TTL: Duration = Duration::from_secs(4 * 60 * 60);
const PRICE: i64 = 199_000;
const MAX_PER_BUYER: i32 = 1;
const RELEASED_AGO: TimeDelta = TimeDelta::minutes(1);
/// Buyers per multi-row INSERT (4 values each).
const INSERT_BATCH_ROWS: usize = 2_000;
/// Each configuration's Redis keys start with `bench-drop:<configuration>:`. Not `bench:`, which
/// `bench products-list` flushes.
const REDIS_PREFIX: &str = "bench-drop:";
const ORDERS_PATH: &str = "/orders";
/// The wrk script, written next to the tokens file at run time.
const WRK_SCRIPT: &str = include_str!("../scripts/drop.lua");
/// The line the script's `done()` prints its figures on.
const RESULT_MARKER: &str = "DROP-RESULT ";
/// How often the bench looks whether every wrk thread has finished its share.
const DONE_POLL: Duration = Duration::from_millis(2);
/// The runner fires `order-sweeper` (`rate(1 minute)`) this long after it starts, and then again
/// every period; a sweep issues a few MySQL statements of its own.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture).
const USER_HZ: f64 = 100.0;
/// The bench's own connections on the bench database (setup and audits).
const POOL_CONNECTIONS: u32 = 4;

/// Targets, measured in the same run.
const TARGET_VS_LOCK: f64 = 10.0;
const TARGET_VS_FLOOR: f64 = 0.5;

#[derive(Debug, Clone, Args)]
pub struct DropArgs {
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
    /// Measure only these configurations (comma-separated); the results file is written only
    /// when all three ran.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Setup>,
    #[command(flatten)]
    pub env: Environment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Setup {
    Reservation,
    Lock,
    Floor,
}

impl Setup {
    const ALL: [Self; 3] = [Self::Reservation, Self::Lock, Self::Floor];

    fn name(self) -> &'static str {
        match self {
            Self::Reservation => "reservation",
            Self::Lock => "lock",
            Self::Floor => "floor",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Floor => DROP_FLOOR_PATH,
            _ => ORDERS_PATH,
        }
    }

    /// The runner's `STOCK_STRATEGY`; the floor does not check out, so it has none.
    fn stock_strategy(self) -> Option<&'static str> {
        match self {
            Self::Reservation => Some("reservation"),
            Self::Lock => Some("lock"),
            Self::Floor => None,
        }
    }

    fn redis_prefix(self) -> String {
        format!("{REDIS_PREFIX}{}:", self.name())
    }
}

/// Responses by status.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct StatusCounts {
    #[serde(rename = "201")]
    created: u64,
    #[serde(rename = "409")]
    conflict: u64,
    other: u64,
}

/// CPU by process: cores busy over a phase, or microseconds per attempt.
#[derive(Debug, Clone, Copy, Serialize)]
struct CpuSplit {
    runner: f64,
    wrk: f64,
    redis: f64,
    mariadb: f64,
    /// Everything else on the machine (other users of the shared cores included).
    rest: f64,
    total: f64,
}

#[derive(Debug, Serialize)]
struct TimeSpent {
    /// Cores busy over the phase, by process (of `machine.cores`).
    cores: CpuSplit,
    cpu_us_per_attempt: CpuSplit,
    /// Redis commands per attempt over the phase, by command (a pipeline of two EXISTS is one
    /// round trip and two commands). Redis is shared: other clients' commands count too.
    redis_commands_per_attempt: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
struct PhaseFigures {
    attempts: u64,
    elapsed_s: f64,
    attempts_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    status_counts: StatusCounts,
    /// Problem `code` of every answer other than 201 (`HTTP_<status>` without one).
    codes: BTreeMap<String, u64>,
    socket_errors: wrk::SocketErrors,
    where_time_goes: TimeSpent,
    /// (percentile, µs) pairs, to merge the two phases' distributions.
    #[serde(skip)]
    latency_grid: Vec<(f64, f64)>,
}

/// The sale as MySQL and Redis recorded it after a configuration.
#[derive(Debug, Serialize)]
struct Audit {
    orders: i64,
    payments: i64,
    order_items_quantity: i64,
    distinct_buyers: i64,
    /// The most units any buyer holds (max_per_buyer is 1).
    max_units_per_buyer: i64,
    stock_remaining: i64,
    /// `StockReservations::remaining` (reservation), the floor's counter (floor); the lock
    /// strategy keeps no counter.
    redis_remaining: Option<i64>,
    /// From the first order's `created_at` to the last one's: the sales go one at a time
    /// through the product's row lock in MySQL, and this is how long that took.
    sales_span_s: f64,
}

/// One configuration's figures; attempts/s and latencies cover both phases.
#[derive(Debug, Serialize)]
struct Measured {
    attempts_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    units_sold: u64,
    oversold: u64,
    /// Statements the runner sent MySQL during phase B, after the sell-out (not for the floor).
    #[serde(skip_serializing_if = "Option::is_none")]
    mysql_statements_after_sellout: Option<u64>,
    status_counts: StatusCounts,
    codes: BTreeMap<String, u64>,
    elapsed_s: f64,
    phase_a: PhaseFigures,
    phase_b: PhaseFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    stock_strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<Audit>,
    /// `order-sweeper` runs the runner fired during phase B (each a few statements of its own,
    /// included in `mysql_statements_after_sellout`).
    order_sweeper_runs_in_phase_b: u64,
    /// Attempts/s of every round of this configuration, in the order they ran; the figures
    /// above are the median round's.
    rounds_attempts_per_s: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Ratios {
    reservation_vs_lock: f64,
    reservation_vs_floor: f64,
    /// Phase B alone: every attempt refused as sold out.
    reservation_vs_floor_phase_b: f64,
    /// Each round's reservation over the same round's floor.
    reservation_vs_floor_by_round: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Targets {
    units_sold_exact_pass: bool,
    oversold_zero_pass: bool,
    reservation_vs_lock_at_least: f64,
    reservation_vs_lock_pass: bool,
    reservation_vs_floor_at_least: f64,
    reservation_vs_floor_pass: bool,
    reservation_mysql_after_sellout_zero_pass: bool,
}

#[derive(Debug, Serialize)]
struct RunnerSettings {
    database_max_connections: u32,
    checkout_limit_per_minute: u32,
    checkout_limit_note: String,
    stock_lock_wait_ms: u64,
    stock_lock_lease_ms: u64,
    access_token_ttl_s: u64,
}

#[derive(Debug, Serialize)]
struct Replaced {
    note: &'static str,
    strategy: &'static str,
    concurrent_buyers_without_oversell: u32,
    attempts_per_s: Option<f64>,
}

const REPLACED: Replaced = Replaced {
    note: "the system KickSync replaces, as published: no throughput figure was published, so none \
           is compared; the `lock` configuration re-implements its strategy and is measured here",
    strategy: "per-product Redisson lock around the MySQL checkout",
    concurrent_buyers_without_oversell: 500,
    attempts_per_s: None,
};

#[derive(Debug, Serialize)]
struct Results {
    date: String,
    command: String,
    machine: Machine,
    units: u32,
    attempts: u64,
    buyers: u32,
    connections: u32,
    threads: u32,
    phase_a_attempts: u64,
    phase_b_attempts: u64,
    /// Rounds of the reservation strategy and the floor (the lock strategy runs once).
    rounds: u32,
    /// The load generator's command line (URL and script arguments per phase).
    wrk: String,
    runner: RunnerSettings,
    mysql_statements_counted_by: &'static str,
    /// Verifying one access token (HS256) in this process, averaged over every buyer's token.
    jwt_verify_us: f64,
    reservation: Measured,
    lock: Measured,
    floor: Measured,
    ratios: Ratios,
    targets: Targets,
    baseline_replaced_system: Replaced,
}

pub async fn run(args: &DropArgs) -> anyhow::Result<()> {
    validate(args)?;
    let machine = Machine::detect_with_load().await;
    machine.warn_if_busy();
    let setups: Vec<Setup> = if args.only.is_empty() {
        Setup::ALL.to_vec()
    } else {
        Setup::ALL
            .into_iter()
            .filter(|setup| args.only.contains(setup))
            .collect()
    };
    let runner_binary = args.env.runner_binary()?;
    let (phase_a, phase_b) = phases(args);
    println!(
        "drop: {} units, {} attempts by {} buyers at {} connections (phase A {}, phase B {}); {}",
        thousands(u64::from(args.units)),
        thousands(args.attempts),
        thousands(u64::from(args.buyers)),
        thousands(u64::from(args.connections)),
        thousands(phase_a),
        thousands(phase_b),
        setups
            .iter()
            .map(|setup| setup.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let work = WorkDir::create()?;
    let server = args.env.mysql_url.trim_end_matches('/').to_owned();
    let mut admin = MySqlConnection::connect(&server)
        .await
        .with_context(|| format!("connecting to MySQL at {server}"))?;
    let counter = StatementCounter::enable(&mut admin).await;
    let outcome = async {
        counter.counting(&mut admin, false).await?;
        create_database(&mut admin).await?;
        let bench = Bench::prepare(args, &server, &runner_binary, &work).await?;
        let mut rounds: BTreeMap<&str, Vec<Measured>> = BTreeMap::new();
        for round in 1..=args.rounds {
            for setup in &setups {
                if *setup == Setup::Lock && round > 1 {
                    continue;
                }
                if args.rounds > 1 {
                    println!("-- round {round} of {}: {}", args.rounds, setup.name());
                }
                let figures = bench.measure(*setup, &mut admin, counter).await?;
                rounds.entry(setup.name()).or_default().push(figures);
            }
        }
        bench.db.close().await;
        anyhow::Ok((rounds, bench.jwt_verify_us))
    }
    .await;
    clean_up(&mut admin, counter).await;
    let (rounds, jwt_verify_us) = outcome?;

    let by_round = paired_ratios(&rounds);
    let mut by_setup: BTreeMap<&str, Measured> = rounds
        .into_iter()
        .map(|(name, runs)| (name, median_round(runs)))
        .collect();
    let (Some(reservation), Some(lock), Some(floor)) = (
        by_setup.remove("reservation"),
        by_setup.remove("lock"),
        by_setup.remove("floor"),
    ) else {
        println!("\nnot every configuration ran (--only): no results file written");
        return Ok(());
    };
    let results = summarise(
        args,
        machine,
        counter,
        jwt_verify_us,
        [reservation, lock, floor],
        by_round,
    );
    print_table(&results);
    if args.rounds > 1 {
        println!(
            "\nrounds, attempts/s: reservation {:?}, floor {:?}; reservation/floor by round {:?} \
             (the figures above are each configuration's median round)",
            results.reservation.rounds_attempts_per_s,
            results.floor.rounds_attempts_per_s,
            results.ratios.reservation_vs_floor_by_round
        );
    }
    let path = report::write_json(&args.env.results_dir, NAME, &results)?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// The round with the median attempts/s (the lower one of the middle two for an even count),
/// with every round's attempts/s attached.
fn median_round(mut runs: Vec<Measured>) -> Measured {
    let all: Vec<f64> = runs.iter().map(|run| run.attempts_per_s).collect();
    let mut median = runs.swap_remove(median_index(&all));
    median.rounds_attempts_per_s = all;
    median
}

/// Where the median of `values` is (the lower middle one for an even count); 0 when empty.
fn median_index(values: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

/// Reservation over floor, round by round.
fn paired_ratios(rounds: &BTreeMap<&str, Vec<Measured>>) -> Vec<f64> {
    match (rounds.get("reservation"), rounds.get("floor")) {
        (Some(reservation), Some(floor)) => reservation
            .iter()
            .zip(floor)
            .map(|(ours, bare)| round(ours.attempts_per_s / bare.attempts_per_s, 3))
            .collect(),
        _ => Vec::new(),
    }
}

fn validate(args: &DropArgs) -> anyhow::Result<()> {
    ensure!(
        args.connections >= args.threads && args.threads > 0,
        "--connections must be at least --threads, and --threads at least 1"
    );
    ensure!(args.units > 0, "--units must be at least 1");
    ensure!(args.buyers > 0, "--buyers must be at least 1");
    ensure!(
        u64::from(args.buyers) >= u64::from(args.units),
        "--buyers must be at least --units: each buyer may hold one unit"
    );
    let (phase_a, phase_b) = phases(args);
    ensure!(
        phase_a >= u64::from(args.units) && phase_b > 0,
        "phase A ({phase_a} attempts) must be able to sell {} units and phase B must not be empty: \
         raise --attempts or change --sell-out-percent",
        args.units
    );
    Ok(())
}

/// Attempts in phase A (rounded up) and phase B.
fn phases(args: &DropArgs) -> (u64, u64) {
    let phase_a = (args.attempts * u64::from(args.sell_out_percent)).div_ceil(100);
    (phase_a, args.attempts.saturating_sub(phase_a))
}

/// The command that reproduces this run, every option spelled out.
fn command(args: &DropArgs) -> String {
    format!(
        "scripts/bench {NAME} --units {} --attempts {} --buyers {} --connections {} --threads {} \
         --port {} --sell-out-percent {} --db-connections {} --checkout-limit {}",
        args.units,
        args.attempts,
        args.buyers,
        args.connections,
        args.threads,
        args.port,
        args.sell_out_percent,
        args.db_connections,
        args.checkout_limit
    )
}

/// The temporary directory holding the tokens, the wrk script and the threads' done files.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("kicksync-bench-drop-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the runner's MySQL statements are counted.
#[derive(Debug, Clone, Copy)]
enum StatementCounter {
    /// MariaDB's per-user counters; `was_on` is restored at the end.
    UserStat { was_on: bool },
    /// The server's global `Questions`: everyone's statements, the bench's own reads included.
    Questions,
}

impl StatementCounter {
    async fn enable(admin: &mut MySqlConnection) -> Self {
        let was_on: Result<i64, _> = sqlx::query_scalar("SELECT CAST(@@GLOBAL.userstat AS SIGNED)")
            .fetch_one(&mut *admin)
            .await;
        let Ok(was_on) = was_on else {
            println!("note: no userstat on this server; counting global Questions instead");
            return Self::Questions;
        };
        match admin.execute("SET GLOBAL userstat = ON").await {
            Ok(_) => Self::UserStat {
                was_on: was_on != 0,
            },
            Err(err) => {
                println!(
                    "note: cannot turn userstat on ({err}); counting global Questions instead"
                );
                Self::Questions
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::UserStat { .. } => {
                "userstat (on during phase B only): SELECT_COMMANDS + UPDATE_COMMANDS + \
                 OTHER_COMMANDS of the runner's own MySQL user in information_schema.USER_STATISTICS"
            }
            Self::Questions => {
                "global Questions (userstat unavailable): every client's statements, so an upper bound"
            }
        }
    }

    /// Counts only while asked to: userstat costs every statement some work under a global
    /// mutex, so it is on for phase B, where the count is taken, and off for the sell-out.
    /// Left alone when the server had it on before the bench, or counts global Questions.
    async fn counting(self, admin: &mut MySqlConnection, on: bool) -> anyhow::Result<()> {
        if let Self::UserStat { was_on: false } = self {
            let statement = if on {
                "SET GLOBAL userstat = ON"
            } else {
                "SET GLOBAL userstat = OFF"
            };
            admin.execute(statement).await?;
        }
        Ok(())
    }

    async fn read(self, admin: &mut MySqlConnection) -> anyhow::Result<u64> {
        match self {
            Self::UserStat { .. } => {
                let count: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS), 0) \
                     AS SIGNED) FROM information_schema.USER_STATISTICS WHERE USER = ?",
                )
                .bind(RUNNER_USER)
                .fetch_one(&mut *admin)
                .await?;
                Ok(u64::try_from(count)?)
            }
            Self::Questions => {
                let (_, value): (String, String) =
                    sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Questions'")
                        .fetch_one(&mut *admin)
                        .await?;
                Ok(value.parse()?)
            }
        }
    }

    /// Statements between two readings; `Questions` counts the second reading itself.
    fn between(self, before: u64, after: u64) -> u64 {
        let own_reads = match self {
            Self::UserStat { .. } => 0,
            Self::Questions => 1,
        };
        after.saturating_sub(before).saturating_sub(own_reads)
    }
}

/// A fresh `kicksync_bench_drop` and the runner's own user on it.
async fn create_database(admin: &mut MySqlConnection) -> anyhow::Result<()> {
    admin
        .execute(format!("DROP DATABASE IF EXISTS `{DATABASE}`").as_str())
        .await?;
    admin
        .execute(
            format!(
                "CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            .as_str(),
        )
        .await?;
    for host in RUNNER_HOSTS {
        admin
            .execute(format!("CREATE USER IF NOT EXISTS '{RUNNER_USER}'@'{host}'").as_str())
            .await?;
        admin
            .execute(
                format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `{DATABASE}`.* TO '{RUNNER_USER}'@'{host}'"
                )
                .as_str(),
            )
            .await?;
    }
    Ok(())
}

/// Drops the database and the runner's user and puts `userstat` back; reports, never fails.
async fn clean_up(admin: &mut MySqlConnection, counter: StatementCounter) {
    let mut statements = vec![format!("DROP DATABASE IF EXISTS `{DATABASE}`")];
    statements.extend(
        RUNNER_HOSTS
            .iter()
            .map(|host| format!("DROP USER IF EXISTS '{RUNNER_USER}'@'{host}'")),
    );
    if let StatementCounter::UserStat { was_on: false } = counter {
        statements.push("SET GLOBAL userstat = OFF".to_owned());
    }
    for statement in statements {
        if let Err(err) = admin.execute(statement.as_str()).await {
            eprintln!("clean-up: {statement}: {err}");
        }
    }
}

/// `mysql://kicksync_bench@<host:port of the server URL>/kicksync_bench_drop`.
fn runner_database_url(server_url: &str) -> anyhow::Result<String> {
    let rest = server_url
        .strip_prefix("mysql://")
        .or_else(|| server_url.strip_prefix("mariadb://"))
        .with_context(|| format!("not a mysql:// URL: {server_url}"))?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['/', '?']).next().unwrap_or_default();
    ensure!(!host.is_empty(), "no host in {server_url}");
    Ok(format!("mysql://{RUNNER_USER}@{host}/{DATABASE}"))
}

/// Everything the configurations share: the data, the tokens, the paths.
#[derive(Debug)]
struct Bench<'a> {
    args: &'a DropArgs,
    db: MySqlPool,
    product_id: i64,
    runner_binary: &'a Path,
    runner_database_url: String,
    tokens_file: PathBuf,
    /// The first buyer's token, for the warm-up attempt.
    warm_up_token: String,
    script_file: PathBuf,
    work: &'a WorkDir,
    jwt_verify_us: f64,
    client: reqwest::Client,
}

impl<'a> Bench<'a> {
    async fn prepare(
        args: &'a DropArgs,
        server: &str,
        runner_binary: &'a Path,
        work: &'a WorkDir,
    ) -> anyhow::Result<Self> {
        let db = MySqlPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect(&format!("{server}/{DATABASE}"))
            .await?;
        shared::adapters::mysql::migrate(&db)
            .await
            .context("migrating the bench database")?;
        let product_id = insert_drop(&db, args.units).await?;
        let buyer_ids = insert_buyers(&db, args.buyers).await?;

        let config = Config::from_vars(
            [
                ("DATABASE_URL", format!("{server}/{DATABASE}")),
                ("JWT_SECRET", JWT_SECRET.to_owned()),
                ("ACCESS_TOKEN_TTL_SECONDS", TOKEN_TTL.as_secs().to_string()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        )?;
        let codec = TokenCodec::new(&config.auth);
        let now = Utc::now();
        let tokens = buyer_ids
            .iter()
            .map(|id| codec.issue(*id, Role::Buyer, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("signing the buyers' tokens: {err}"))?;
        let started = Instant::now();
        for token in &tokens {
            codec
                .verify(token)
                .map_err(|err| anyhow::anyhow!("a fresh token did not verify: {err}"))?;
        }
        #[allow(clippy::cast_precision_loss, reason = "thousands of tokens")]
        let jwt_verify_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;

        let tokens_file = work.join("tokens.txt");
        std::fs::write(&tokens_file, tokens.join("\n") + "\n")?;
        let warm_up_token = tokens.first().context("no buyer tokens")?.clone();
        let script_file = work.join("drop.lua");
        std::fs::write(&script_file, WRK_SCRIPT)?;
        println!(
            "database {DATABASE} ready: product {product_id} with {} units, {} buyers with tokens",
            thousands(u64::from(args.units)),
            thousands(u64::from(args.buyers))
        );
        Ok(Self {
            args,
            db,
            product_id,
            runner_binary,
            runner_database_url: runner_database_url(server)?,
            tokens_file,
            warm_up_token,
            script_file,
            work,
            jwt_verify_us,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// A drop opens on a running service: earlier traffic has loaded its logout blacklist and
    /// idempotency markers into Redis, and the bench flushed them with everything else. One
    /// attempt at a product that does not exist loads both and sells nothing, so phase A measures
    /// the drop, not the hundreds of first attempts that would each ask MySQL until they are
    /// loaded. (That case has its own tests: a Redis restart mid-drop.) The floor has neither.
    async fn warm_up(&self, setup: Setup, url: &str) -> anyhow::Result<()> {
        if setup == Setup::Floor {
            return Ok(());
        }
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.warm_up_token)
            .header("idempotency-key", "bench-warm-up")
            .json(&serde_json::json!({"items": [{"product_id": self.product_id + 1_000_000, "quantity": 1}]}))
            .send()
            .await?;
        ensure!(
            response.status() == reqwest::StatusCode::NOT_FOUND,
            "{}: the warm-up attempt answered {}, not 404",
            setup.name(),
            response.status()
        );
        Ok(())
    }

    /// One configuration from scratch: reset, fresh runner, phase A, sold out?, phase B, audit.
    async fn measure(
        &self,
        setup: Setup,
        admin: &mut MySqlConnection,
        counter: StatementCounter,
    ) -> anyhow::Result<Measured> {
        let args = self.args;
        reset(&self.db, self.product_id, args.units).await?;
        let redis = RedisStore::with_prefix(&args.env.redis_url, &setup.redis_prefix())?;
        flush(&redis).await?;
        if setup == Setup::Floor {
            let mut connection = redis.connection().await?;
            let () = connection
                .set(redis.key(DROP_FLOOR_KEY), args.units)
                .await?;
        }
        let runner = self.start_runner(setup).await?;
        let runner_started = Instant::now();
        let url = runner.url(setup.path());
        let pids = Pids::find(&redis, admin, runner.pid()).await;
        let (phase_a, phase_b) = phases(args);
        self.warm_up(setup, &url).await?;

        let a = self
            .phase(setup, "A", &url, 0, phase_a, &pids, &redis)
            .await?;
        let left = self.units_left(setup, &redis).await?;
        ensure!(
            left == 0,
            "{}: phase A ({} attempts) left {left} units unsold; raise --sell-out-percent",
            setup.name(),
            thousands(phase_a)
        );

        counter.counting(admin, true).await?;
        let before = counter.read(admin).await?;
        let b_from = runner_started.elapsed();
        let b = self
            .phase(setup, "B", &url, phase_a, phase_b, &pids, &redis)
            .await?;
        let b_to = runner_started.elapsed();
        let after = counter.read(admin).await?;
        counter.counting(admin, false).await?;
        runner
            .stop()
            .await
            .with_context(|| format!("{}: the runner", setup.name()))?;

        let audit = match setup {
            Setup::Floor => None,
            _ => Some(self.audit(&redis).await?),
        };
        let redis_left = match setup {
            Setup::Floor => Some(self.units_left(setup, &redis).await?),
            _ => audit.as_ref().and_then(|audit| audit.redis_remaining),
        };
        flush(&redis).await?;
        let figures = combine(
            setup,
            u64::from(args.units),
            a,
            b,
            audit,
            (setup != Setup::Floor).then(|| counter.between(before, after)),
            sweeps_between(b_from, b_to),
        );
        check_sale(setup, &figures, u64::from(args.units), redis_left)?;
        for (label, phase) in [("A", &figures.phase_a), ("B", &figures.phase_b)] {
            print_phase(&format!("{} {label}", setup.name()), phase);
        }
        if let Some(audit) = &figures.audit {
            println!(
                "  {} sales took {:.2} s in MySQL, first order to last",
                thousands(u64::try_from(audit.orders).unwrap_or(0)),
                audit.sales_span_s
            );
        }
        println!(
            "{:>12}: {} attempts/s, p50 {}, p99 {}; sold {}, oversold {}{}",
            setup.name(),
            rate(figures.attempts_per_s),
            latency(figures.p50_ms),
            latency(figures.p99_ms),
            thousands(figures.units_sold),
            thousands(figures.oversold),
            figures
                .mysql_statements_after_sellout
                .map(|count| format!("; {} MySQL statements after the sell-out", thousands(count)))
                .unwrap_or_default()
        );
        Ok(figures)
    }

    async fn start_runner(&self, setup: Setup) -> anyhow::Result<Runner> {
        let args = self.args;
        let mut env = vec![
            ("DATABASE_URL", self.runner_database_url.clone()),
            ("DATABASE_MAX_CONNECTIONS", args.db_connections.to_string()),
            ("REDIS_URL", args.env.redis_url.clone()),
            ("REDIS_KEY_PREFIX", setup.redis_prefix()),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("ACCESS_TOKEN_TTL_SECONDS", TOKEN_TTL.as_secs().to_string()),
            ("CHECKOUT_LIMIT_PER_MINUTE", args.checkout_limit.to_string()),
            // No SQS poller: the settlement worker has no part in a drop.
            ("SETTLEMENT_QUEUE_URL", String::new()),
            // Only warnings and errors: a log line per request would be part of the measurement.
            ("RUST_LOG", "warn".to_owned()),
        ];
        if let Some(strategy) = setup.stock_strategy() {
            env.push(("STOCK_STRATEGY", strategy.to_owned()));
        }
        let flags: &[&str] = if setup == Setup::Floor {
            &["--bench-floor"]
        } else {
            &[]
        };
        Runner::start(
            Launch {
                binary: self.runner_binary,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
                args: flags,
                env: &env,
                log: args
                    .env
                    .log_dir
                    .join(format!("{NAME}-{}.runner.log", setup.name())),
            },
            &self.client,
        )
        .await
        .with_context(|| format!("{}: starting the runner", setup.name()))
    }

    /// Units left: MySQL's `stock_remaining`, or the floor's Redis counter.
    async fn units_left(&self, setup: Setup, redis: &RedisStore) -> anyhow::Result<i64> {
        if setup == Setup::Floor {
            let mut connection = redis.connection().await?;
            let left: Option<i64> = connection.get(redis.key(DROP_FLOOR_KEY)).await?;
            return left.context("the floor's counter is gone");
        }
        let left: i32 = sqlx::query_scalar("SELECT stock_remaining FROM products WHERE id = ?")
            .bind(self.product_id)
            .fetch_one(&self.db)
            .await?;
        Ok(i64::from(left))
    }

    async fn audit(&self, redis: &RedisStore) -> anyhow::Result<Audit> {
        let count = |sql: &'static str| {
            let db = self.db.clone();
            async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await }
        };
        Ok(Audit {
            orders: count("SELECT COUNT(*) FROM orders").await?,
            payments: count("SELECT COUNT(*) FROM payments").await?,
            order_items_quantity: sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM order_items \
                 WHERE product_id = ?",
            )
            .bind(self.product_id)
            .fetch_one(&self.db)
            .await?,
            distinct_buyers: count("SELECT COUNT(DISTINCT buyer_id) FROM orders").await?,
            max_units_per_buyer: count(
                "SELECT CAST(COALESCE(MAX(quantity), 0) AS SIGNED) FROM buyer_product_purchases",
            )
            .await?,
            stock_remaining: self.units_left(Setup::Reservation, redis).await?,
            redis_remaining: StockReservations::new(redis.clone())
                .remaining(self.product_id)
                .await?,
            sales_span_s: round(micros_to_s(count(
                "SELECT CAST(COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), MAX(created_at)), 0) \
                 AS SIGNED) FROM orders",
            )
            .await?), 3),
        })
    }

    /// Runs wrk for attempts `first .. first + count` and reads what its script measured.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, every argument named"
    )]
    async fn phase(
        &self,
        setup: Setup,
        label: &str,
        url: &str,
        first: u64,
        count: u64,
        pids: &Pids,
        redis: &RedisStore,
    ) -> anyhow::Result<PhaseFigures> {
        let args = self.args;
        let name = format!("{} {label}", setup.name());
        let done_dir = self.work.join(&format!("done-{}-{label}", setup.name()));
        // Empty for every phase: an earlier round's marks would end this one at once.
        if done_dir.exists() {
            std::fs::remove_dir_all(&done_dir)?;
        }
        std::fs::create_dir_all(&done_dir)?;
        let wrk_args = vec![
            format!("-t{}", args.threads),
            format!("-c{}", args.connections),
            format!("-d{}", args.phase_limit),
            "--latency".to_owned(),
            "--timeout".to_owned(),
            wrk::REQUEST_TIMEOUT.to_string(),
            "-s".to_owned(),
            self.script_file.display().to_string(),
            url.to_owned(),
            "--".to_owned(),
            self.tokens_file.display().to_string(),
            self.product_id.to_string(),
            first.to_string(),
            count.to_string(),
            format!("drop-{}", setup.name()),
            done_dir.display().to_string(),
            args.threads.to_string(),
        ];

        let before = Usage::sample(pids, None, redis).await?;
        let mut child = tokio::process::Command::new("wrk")
            .args(&wrk_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting wrk (scripts/bench installs it: apt-get install wrk)")?;
        let wrk_pid = child.id();
        let stdout = child.stdout.take().context("wrk's stdout")?;
        let stderr = child.stderr.take().context("wrk's stderr")?;
        let read_stdout = tokio::spawn(read_all(stdout));
        let read_stderr = tokio::spawn(read_all(stderr));

        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{name}: {} attempts", thousands(count)));
        let mut after = None;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if after.is_none() && finished_threads(&done_dir) >= args.threads {
                after = Some(Usage::sample(pids, wrk_pid, redis).await?);
                // wrk's main thread sleeps for the whole -d; SIGINT ends the sleep, and wrk
                // prints its report as usual.
                if let Some(pid) = wrk_pid {
                    let _ = tokio::process::Command::new("kill")
                        .arg("-INT")
                        .arg(pid.to_string())
                        .status()
                        .await;
                }
            }
            bar.tick();
            tokio::time::sleep(DONE_POLL).await;
        };
        bar.finish_and_clear();
        let stdout = read_stdout.await??;
        let stderr = read_stderr.await??;
        let raw_path = args.env.log_dir.join(format!(
            "{NAME}-{}-{}.wrk.txt",
            setup.name(),
            label.to_lowercase()
        ));
        std::fs::create_dir_all(&args.env.log_dir)?;
        std::fs::write(
            &raw_path,
            format!("$ wrk {}\n{stdout}{stderr}", wrk_args.join(" ")),
        )
        .with_context(|| format!("writing {}", raw_path.display()))?;
        let Some(after) = after else {
            bail!(
                "{name}: wrk stopped ({status}) before every thread had its answers (see {}):\n{}{}",
                raw_path.display(),
                stdout.trim(),
                stderr.trim()
            );
        };
        let report = wrk::parse(&stdout).with_context(|| format!("{name}: wrk's report"))?;
        let result =
            LuaResult::parse(&stdout).with_context(|| format!("{name}: the script's result"))?;
        ensure!(
            result.attempts == count
                && result.responses == count
                && result.unfinished_threads == 0
                && report.requests == count,
            "{name}: {} attempts sent, {} answered, wrk counted {} (expected {count}); see {}",
            result.attempts,
            result.responses,
            report.requests,
            raw_path.display()
        );
        Ok(result.figures(report.socket_errors, before.spent(&after, count)))
    }
}

async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn finished_threads(done_dir: &Path) -> u32 {
    std::fs::read_dir(done_dir).map_or(0, |entries| {
        u32::try_from(entries.filter_map(Result::ok).count()).unwrap_or(u32::MAX)
    })
}

/// The partner and the drop: one product, released a minute ago. Returns its id.
async fn insert_drop(db: &MySqlPool, units: u32) -> anyhow::Result<i64> {
    let partner_id = sqlx::query(
        "INSERT INTO users (email, password_hash, name, role) VALUES (?, ?, ?, 'partner')",
    )
    .bind("drop-partner@bench.kicksync.local")
    // Nobody logs in as a bench user; this is not a valid Argon2 hash on purpose.
    .bind("bench-user-cannot-log-in")
    .bind("Bench Drop Partner")
    .execute(db)
    .await?
    .last_insert_id();
    let partner_id = i64::try_from(partner_id)?;
    sqlx::query("INSERT INTO partner_profiles (partner_id, business_name) VALUES (?, ?)")
        .bind(partner_id)
        .bind("Seongsu Drop Lab")
        .execute(db)
        .await?;
    let product_id = sqlx::query(
        "INSERT INTO products \
         (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(partner_id)
    .bind("Air Jordan 1 High OG 'Bench Drop'")
    .bind("Jordan")
    .bind(PRICE)
    .bind(Utc::now() - RELEASED_AGO)
    .bind(units)
    .bind(units)
    .bind(MAX_PER_BUYER)
    .execute(db)
    .await?
    .last_insert_id();
    Ok(i64::try_from(product_id)?)
}

/// `count` buyers in multi-row INSERTs; returns their ids in order.
async fn insert_buyers(db: &MySqlPool, count: u32) -> anyhow::Result<Vec<i64>> {
    let bar = ProgressBar::new(u64::from(count)).with_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {human_pos}/{human_len} buyers ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message("inserting");
    let numbers: Vec<u32> = (1..=count).collect();
    for chunk in numbers.chunks(INSERT_BATCH_ROWS) {
        let mut insert = QueryBuilder::new("INSERT INTO users (email, password_hash, name, role) ");
        insert.push_values(chunk, |mut row, n| {
            row.push_bind(format!("buyer{n:06}@bench.kicksync.local"))
                .push_bind("bench-user-cannot-log-in")
                .push_bind(format!("Bench Buyer {n:06}"))
                .push_bind("buyer");
        });
        insert.build().execute(db).await?;
        bar.inc(u64::try_from(chunk.len())?);
    }
    bar.finish_and_clear();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE role = 'buyer' ORDER BY id")
        .fetch_all(db)
        .await?;
    ensure!(
        ids.len() == usize::try_from(count)?,
        "inserted {count} buyers, found {}",
        ids.len()
    );
    Ok(ids)
}

/// Every order gone and every unit back, so each configuration sells the same units from scratch.
async fn reset(db: &MySqlPool, product_id: i64, units: u32) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for statement in [
        "DELETE FROM order_items",
        "DELETE FROM orders",
        "DELETE FROM payments",
        "DELETE FROM buyer_product_purchases",
    ] {
        tx.execute(statement).await?;
    }
    sqlx::query("UPDATE products SET stock = ?, stock_remaining = ? WHERE id = ?")
        .bind(units)
        .bind(units)
        .bind(product_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[allow(clippy::cast_precision_loss, reason = "spans of seconds")]
fn micros_to_s(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Sweeps the runner fired between `from` and `to` after it started.
fn sweeps_between(from: Duration, to: Duration) -> u64 {
    let period = SWEEP_PERIOD.as_secs_f64();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole periods of a run that lasts minutes"
    )]
    let fired = |at: Duration| (at.as_secs_f64() / period).floor() as u64;
    fired(to) - fired(from)
}

/// Exactly `units` sold, none oversold, every record agreeing: anything else is an error.
fn check_sale(
    setup: Setup,
    figures: &Measured,
    units: u64,
    redis_left: Option<i64>,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if figures.units_sold != units {
        problems.push(format!(
            "{} units sold, expected {units}",
            figures.units_sold
        ));
    }
    if figures.oversold > 0 {
        problems.push(format!("{} units oversold", figures.oversold));
    }
    if figures.status_counts.created != units {
        problems.push(format!(
            "{} attempts answered 201, expected {units}",
            figures.status_counts.created
        ));
    }
    if let Some(audit) = &figures.audit {
        let sold = i64::try_from(units)?;
        for (what, value) in [
            ("orders", audit.orders),
            ("payments", audit.payments),
            ("units in order_items", audit.order_items_quantity),
            ("distinct buyers", audit.distinct_buyers),
        ] {
            if value != sold {
                problems.push(format!("{value} {what}, expected {sold}"));
            }
        }
        if audit.max_units_per_buyer > i64::from(MAX_PER_BUYER) {
            problems.push(format!(
                "a buyer holds {} units, max_per_buyer is {MAX_PER_BUYER}",
                audit.max_units_per_buyer
            ));
        }
        if audit.stock_remaining != 0 {
            problems.push(format!(
                "stock_remaining is {}, expected 0",
                audit.stock_remaining
            ));
        }
    }
    let expected_redis = match setup {
        Setup::Lock => None,
        Setup::Reservation | Setup::Floor => Some(0),
    };
    if redis_left != expected_redis {
        problems.push(format!(
            "the Redis counter says {redis_left:?}, expected {expected_redis:?}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "{}: the sale is wrong: {}",
            setup.name(),
            problems.join("; ")
        )
    }
}

/// One configuration's figures from its two phases.
fn combine(
    setup: Setup,
    units: u64,
    a: PhaseFigures,
    b: PhaseFigures,
    audit: Option<Audit>,
    mysql_statements_after_sellout: Option<u64>,
    order_sweeper_runs_in_phase_b: u64,
) -> Measured {
    let attempts = a.attempts + b.attempts;
    let elapsed_s = a.elapsed_s + b.elapsed_s;
    let status_counts = StatusCounts {
        created: a.status_counts.created + b.status_counts.created,
        conflict: a.status_counts.conflict + b.status_counts.conflict,
        other: a.status_counts.other + b.status_counts.other,
    };
    let mut codes = a.codes.clone();
    for (code, count) in &b.codes {
        *codes.entry(code.clone()).or_default() += count;
    }
    // Units sold are the orders MySQL holds (the 201s for the floor); any record above the
    // units on sale counts as oversold.
    let (units_sold, most) = match &audit {
        Some(audit) => (
            u64::try_from(audit.orders).unwrap_or(0),
            u64::try_from(audit.orders.max(audit.order_items_quantity)).unwrap_or(0),
        ),
        None => (status_counts.created, status_counts.created),
    };
    #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
    let attempts_per_s = attempts as f64 / elapsed_s;
    let phases = [(a.attempts, &a.latency_grid), (b.attempts, &b.latency_grid)];
    Measured {
        attempts_per_s: round(attempts_per_s, 1),
        p50_ms: round(merged_quantile(&phases, 50.0) / 1_000.0, 3),
        p99_ms: round(merged_quantile(&phases, 99.0) / 1_000.0, 3),
        units_sold,
        oversold: most.max(status_counts.created).saturating_sub(units),
        mysql_statements_after_sellout,
        status_counts,
        codes,
        elapsed_s: round(elapsed_s, 3),
        phase_a: a,
        phase_b: b,
        stock_strategy: setup.stock_strategy(),
        audit,
        order_sweeper_runs_in_phase_b,
        rounds_attempts_per_s: vec![round(attempts_per_s, 1)],
    }
}

/// The processes whose CPU time is accounted for.
#[derive(Debug, Clone, Copy)]
struct Pids {
    runner: Option<u32>,
    redis: Option<u32>,
    mariadb: Option<u32>,
}

impl Pids {
    /// Redis's and MariaDB's processes as they report them, if they run on this machine.
    async fn find(redis: &RedisStore, admin: &mut MySqlConnection, runner: Option<u32>) -> Self {
        let redis_pid = async {
            let mut connection = redis.connection().await.ok()?;
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut connection)
                .await
                .ok()?;
            info.lines()
                .find_map(|line| line.strip_prefix("process_id:"))
                .and_then(|pid| pid.trim().parse().ok())
        }
        .await;
        let mariadb_pid = async {
            let file: String = sqlx::query_scalar("SELECT @@pid_file")
                .fetch_one(&mut *admin)
                .await
                .ok()?;
            std::fs::read_to_string(file).ok()?.trim().parse().ok()
        }
        .await;
        Self {
            runner,
            redis: redis_pid
                .filter(|pid| command_name(*pid).is_some_and(|name| name.contains("redis"))),
            mariadb: mariadb_pid.filter(|pid| {
                command_name(*pid)
                    .is_some_and(|name| name.contains("mariadb") || name.contains("mysqld"))
            }),
        }
    }
}

fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()
}

/// A process's user + system CPU time in seconds, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .and_then(|stat| process_ticks(&stat))
        .map_or(0.0, |ticks| ticks / USER_HZ)
}

/// utime + stime of a `/proc/<pid>/stat` line (fields 14 and 15; the name may hold spaces).
fn process_ticks(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// (busy, total) ticks of all CPUs from `/proc/stat`'s first line.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let total: u64 = values.iter().sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((total - idle, total))
}

/// Calls per command from `INFO commandstats`.
fn command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|stat| stat.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// CPU and Redis counters at one instant.
#[derive(Debug)]
struct Usage {
    at: Instant,
    machine: Option<(u64, u64)>,
    runner: f64,
    wrk: f64,
    redis: f64,
    mariadb: f64,
    redis_calls: BTreeMap<String, u64>,
}

impl Usage {
    async fn sample(pids: &Pids, wrk: Option<u32>, redis: &RedisStore) -> anyhow::Result<Self> {
        let mut connection = redis.connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await?;
        Ok(Self {
            at: Instant::now(),
            machine: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|stat| machine_ticks(&stat)),
            runner: cpu_seconds(pids.runner),
            wrk: cpu_seconds(wrk),
            redis: cpu_seconds(pids.redis),
            mariadb: cpu_seconds(pids.mariadb),
            redis_calls: command_calls(&info),
        })
    }

    /// What happened between `self` and `later`, over `attempts` attempts.
    fn spent(&self, later: &Self, attempts: u64) -> TimeSpent {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        #[allow(
            clippy::cast_precision_loss,
            reason = "tick counts and attempts are far below 2^53"
        )]
        let machine = match (self.machine, later.machine) {
            (Some((busy, _)), Some((busy_later, _))) => {
                busy_later.saturating_sub(busy) as f64 / USER_HZ
            }
            _ => 0.0,
        };
        #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
        let attempts = attempts.max(1) as f64;
        let seconds = [
            later.runner - self.runner,
            later.wrk - self.wrk,
            later.redis - self.redis,
            later.mariadb - self.mariadb,
        ];
        let split = |scale: f64, decimals: i32| {
            let [runner, wrk, redis, mariadb] = seconds.map(|value| round(value * scale, decimals));
            CpuSplit {
                runner,
                wrk,
                redis,
                mariadb,
                rest: round(
                    (machine - seconds.iter().sum::<f64>()).max(0.0) * scale,
                    decimals,
                ),
                total: round(machine * scale, decimals),
            }
        };
        #[allow(clippy::cast_precision_loss, reason = "call counts are far below 2^53")]
        let redis_commands_per_attempt = later
            .redis_calls
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .filter_map(|(name, calls)| {
                let before = self.redis_calls.get(name).copied().unwrap_or(0);
                let per_attempt = round(calls.saturating_sub(before) as f64 / attempts, 3);
                (per_attempt > 0.0).then(|| (name.clone(), per_attempt))
            })
            .collect();
        TimeSpent {
            cores: split(1.0 / wall, 2),
            cpu_us_per_attempt: split(1e6 / attempts, 1),
            redis_commands_per_attempt,
        }
    }
}

/// What `bench/scripts/drop.lua` prints after wrk's report.
#[derive(Debug, Deserialize)]
struct LuaResult {
    attempts: u64,
    responses: u64,
    unfinished_threads: u64,
    elapsed_us: u64,
    statuses: BTreeMap<String, u64>,
    codes: BTreeMap<String, u64>,
    latency_us: LuaLatency,
}

#[derive(Debug, Deserialize)]
struct LuaLatency {
    max: f64,
    /// (percentile, µs), ascending.
    quantiles: Vec<(f64, f64)>,
}

impl LuaResult {
    fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_MARKER))
            .with_context(|| format!("no `{}` line", RESULT_MARKER.trim()))?;
        serde_json::from_str(line).with_context(|| format!("not the expected JSON: {line}"))
    }

    fn figures(self, socket_errors: wrk::SocketErrors, where_time_goes: TimeSpent) -> PhaseFigures {
        #[allow(
            clippy::cast_precision_loss,
            reason = "microseconds and attempts far below 2^53"
        )]
        let elapsed_s = self.elapsed_us as f64 / 1e6;
        #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
        let attempts_per_s = self.attempts as f64 / elapsed_s.max(1e-9);
        let count = |status: &str| self.statuses.get(status).copied().unwrap_or(0);
        let created = count("201");
        let conflict = count("409");
        let grid = self.latency_us.quantiles;
        let ms = |p: f64| round(merged_quantile(&[(1, &grid)], p) / 1_000.0, 3);
        PhaseFigures {
            attempts: self.attempts,
            elapsed_s: round(elapsed_s, 3),
            attempts_per_s: round(attempts_per_s, 1),
            p50_ms: ms(50.0),
            p90_ms: ms(90.0),
            p99_ms: ms(99.0),
            max_ms: round(self.latency_us.max / 1_000.0, 3),
            status_counts: StatusCounts {
                created,
                conflict,
                other: self.responses.saturating_sub(created + conflict),
            },
            codes: self.codes,
            socket_errors,
            where_time_goes,
            latency_grid: grid,
        }
    }
}

/// The `p`th percentile (µs) of several phases' latencies together, each given as its number
/// of attempts and a grid of its own percentiles: the smallest grid value at which the merged
/// distribution reaches `p`. Exact at the grid's points for one phase; within the grid's step
/// (0.5 percentile) for several.
fn merged_quantile(phases: &[(u64, &Vec<(f64, f64)>)], p: f64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
    let total = phases
        .iter()
        .map(|(count, _)| *count as f64)
        .sum::<f64>()
        .max(1.0);
    let mut values: Vec<f64> = phases
        .iter()
        .flat_map(|(_, grid)| grid.iter().map(|(_, value)| *value))
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let share_at = |value: f64| {
        phases
            .iter()
            .map(|(count, grid)| {
                let below = grid
                    .iter()
                    .filter(|(_, at)| *at <= value)
                    .map(|(percentile, _)| *percentile)
                    .fold(0.0, f64::max);
                #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
                let weight = *count as f64;
                weight * below
            })
            .sum::<f64>()
            / total
    };
    values
        .iter()
        .copied()
        .find(|value| share_at(*value) >= p - 1e-9)
        .or_else(|| values.last().copied())
        .unwrap_or(0.0)
}

fn summarise(
    args: &DropArgs,
    machine: Machine,
    counter: StatementCounter,
    jwt_verify_us: f64,
    [reservation, lock, floor]: [Measured; 3],
    reservation_vs_floor_by_round: Vec<f64>,
) -> Results {
    let ratios = Ratios {
        reservation_vs_floor_by_round,
        reservation_vs_lock: round(reservation.attempts_per_s / lock.attempts_per_s, 2),
        reservation_vs_floor: round(reservation.attempts_per_s / floor.attempts_per_s, 3),
        reservation_vs_floor_phase_b: round(
            reservation.phase_b.attempts_per_s / floor.phase_b.attempts_per_s,
            3,
        ),
    };
    let units = u64::from(args.units);
    let targets = Targets {
        units_sold_exact_pass: [&reservation, &lock, &floor]
            .iter()
            .all(|figures| figures.units_sold == units),
        oversold_zero_pass: [&reservation, &lock, &floor]
            .iter()
            .all(|figures| figures.oversold == 0),
        reservation_vs_lock_at_least: TARGET_VS_LOCK,
        reservation_vs_lock_pass: ratios.reservation_vs_lock >= TARGET_VS_LOCK,
        reservation_vs_floor_at_least: TARGET_VS_FLOOR,
        reservation_vs_floor_pass: ratios.reservation_vs_floor >= TARGET_VS_FLOOR,
        reservation_mysql_after_sellout_zero_pass: reservation.mysql_statements_after_sellout
            == Some(0),
    };
    let defaults = Config::from_vars(
        [
            ("DATABASE_URL", "mysql://unused"),
            ("JWT_SECRET", JWT_SECRET),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect(),
    )
    .map(|config| config.orders);
    let (lock_wait, lock_lease) = defaults.map_or((0, 0), |orders| {
        (
            u64::try_from(orders.lock_wait.as_millis()).unwrap_or(u64::MAX),
            u64::try_from(orders.lock_lease.as_millis()).unwrap_or(u64::MAX),
        )
    });
    let (phase_a, phase_b) = phases(args);
    Results {
        date: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: command(args),
        machine,
        units: args.units,
        attempts: args.attempts,
        buyers: args.buyers,
        connections: args.connections,
        threads: args.threads,
        phase_a_attempts: phase_a,
        phase_b_attempts: phase_b,
        rounds: args.rounds,
        wrk: format!(
            "wrk -t{} -c{} -d{} --latency --timeout {} -s bench/scripts/drop.lua URL -- \
             TOKENS PRODUCT_ID FIRST COUNT KEY_TAG DONE_DIR {}",
            args.threads,
            args.connections,
            args.phase_limit,
            wrk::REQUEST_TIMEOUT,
            args.threads
        ),
        runner: RunnerSettings {
            database_max_connections: args.db_connections,
            checkout_limit_per_minute: args.checkout_limit,
            checkout_limit_note: format!(
                "raised from the default 30 so that the limiter never refuses here: {} attempts by \
                 {} buyers is about {} per buyer per configuration, each still counted in Redis",
                thousands(args.attempts),
                thousands(u64::from(args.buyers)),
                args.attempts.div_ceil(u64::from(args.buyers))
            ),
            stock_lock_wait_ms: lock_wait,
            stock_lock_lease_ms: lock_lease,
            access_token_ttl_s: TOKEN_TTL.as_secs(),
        },
        mysql_statements_counted_by: counter.describe(),
        jwt_verify_us: round(jwt_verify_us, 2),
        reservation,
        lock,
        floor,
        ratios,
        targets,
        baseline_replaced_system: REPLACED,
    }
}

/// `evalsha 1, exists 4, …`: the Redis commands of one attempt.
fn redis_commands<'a>(per_attempt: impl IntoIterator<Item = (&'a String, &'a f64)>) -> String {
    per_attempt
        .into_iter()
        .map(|(command, count)| format!("{command} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One phase on one line: rate, latencies, and where the CPU went.
fn print_phase(name: &str, phase: &PhaseFigures) {
    let spent = &phase.where_time_goes;
    let cpu = spent.cpu_us_per_attempt;
    println!(
        "  {name:<13} {:>9} attempts/s in {:.2} s, p50 {}, p99 {}; CPU µs/attempt: runner {:.1}, \
         wrk {:.1}, redis {:.1}, mariadb {:.1}, rest {:.1} ({:.2} cores busy); Redis: {}",
        rate(phase.attempts_per_s),
        phase.elapsed_s,
        latency(phase.p50_ms),
        latency(phase.p99_ms),
        cpu.runner,
        cpu.wrk,
        cpu.redis,
        cpu.mariadb,
        cpu.rest,
        spent.cores.total,
        redis_commands(&spent.redis_commands_per_attempt)
    );
}

fn print_table(results: &Results) {
    let rows = [
        ("reservation", &results.reservation),
        ("lock", &results.lock),
        ("floor", &results.floor),
    ];
    let statements = |figures: &Measured| {
        figures
            .mysql_statements_after_sellout
            .map_or_else(|| "—".to_owned(), thousands)
    };
    println!(
        "\n{:<12} {:>11} {:>9} {:>9} {:>6} {:>8} {:>10} {:>7} {:>7} {:>6}",
        "config", "attempts/s", "p50", "p99", "sold", "oversold", "MySQL(B)", "201", "409", "other"
    );
    for (name, figures) in rows {
        println!(
            "{name:<12} {:>11} {:>9} {:>9} {:>6} {:>8} {:>10} {:>7} {:>7} {:>6}",
            rate(figures.attempts_per_s),
            latency(figures.p50_ms),
            latency(figures.p99_ms),
            thousands(figures.units_sold),
            thousands(figures.oversold),
            statements(figures),
            thousands(figures.status_counts.created),
            thousands(figures.status_counts.conflict),
            thousands(figures.status_counts.other),
        );
    }
    println!(
        "\nphase B (after the sell-out; {} attempts)",
        thousands(results.phase_b_attempts)
    );
    println!(
        "{:<12} {:>11} {:>9} {:>9} | CPU µs/attempt {:>7} {:>7} {:>7} {:>7} {:>7} | Redis commands/attempt",
        "config", "attempts/s", "p50", "p99", "runner", "wrk", "redis", "mariadb", "rest"
    );
    for (name, figures) in rows {
        let phase = &figures.phase_b;
        let cpu = phase.where_time_goes.cpu_us_per_attempt;
        println!(
            "{name:<12} {:>11} {:>9} {:>9} |                {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1} | {}",
            rate(phase.attempts_per_s),
            latency(phase.p50_ms),
            latency(phase.p99_ms),
            cpu.runner,
            cpu.wrk,
            cpu.redis,
            cpu.mariadb,
            cpu.rest,
            redis_commands(&phase.where_time_goes.redis_commands_per_attempt)
        );
    }
    println!(
        "\nreplaced system (published, not measured here): {}, kept {} concurrent buyers from \
         overselling; no throughput figure published",
        REPLACED.strategy, REPLACED.concurrent_buyers_without_oversell
    );
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let targets = &results.targets;
    println!(
        "{}  exactly {} units sold and 0 oversold in every configuration",
        verdict(targets.units_sold_exact_pass && targets.oversold_zero_pass),
        thousands(u64::from(results.units))
    );
    println!(
        "{}  reservation ≥ {}x lock attempts/s: {:.2}x",
        verdict(targets.reservation_vs_lock_pass),
        targets.reservation_vs_lock_at_least,
        results.ratios.reservation_vs_lock
    );
    println!(
        "{}  reservation ≥ {}x floor attempts/s: {:.3}x (phase B alone {:.3}x)",
        verdict(targets.reservation_vs_floor_pass),
        targets.reservation_vs_floor_at_least,
        results.ratios.reservation_vs_floor,
        results.ratios.reservation_vs_floor_phase_b
    );
    println!(
        "{}  reservation: 0 MySQL statements after the sell-out: {}",
        verdict(targets.reservation_mysql_after_sellout_zero_pass),
        statements(&results.reservation)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_connects_as_its_own_user_to_the_same_server() {
        assert_eq!(
            runner_database_url("mysql://root@127.0.0.1:3306").unwrap(),
            "mysql://kicksync_bench@127.0.0.1:3306/kicksync_bench_drop"
        );
        assert_eq!(
            runner_database_url("mysql://root:secret@db.local:3307/").unwrap(),
            "mysql://kicksync_bench@db.local:3307/kicksync_bench_drop"
        );
        assert!(runner_database_url("postgres://root@127.0.0.1").is_err());
    }

    #[test]
    fn the_median_round_is_the_middle_one_by_rate() {
        assert_eq!(median_index(&[30.0, 10.0, 20.0]), 2);
        assert_eq!(median_index(&[5.0]), 0);
        assert_eq!(
            median_index(&[40.0, 10.0, 30.0, 20.0]),
            3,
            "the lower middle of four"
        );
    }

    #[test]
    fn phase_a_is_rounded_up_and_phase_b_is_the_rest() {
        let mut args = DropArgs {
            units: 1_000,
            attempts: 100_000,
            buyers: 20_000,
            connections: 1_000,
            threads: 2,
            port: 3901,
            sell_out_percent: 20,
            db_connections: 50,
            checkout_limit: 1_000,
            phase_limit: Seconds(900),
            rounds: 3,
            only: Vec::new(),
            env: Environment {
                mysql_url: String::new(),
                redis_url: String::new(),
                runner: None,
                results_dir: PathBuf::new(),
                log_dir: PathBuf::new(),
            },
        };
        assert_eq!(phases(&args), (20_000, 80_000));
        assert!(validate(&args).is_ok());
        args.attempts = 1_001;
        assert_eq!(phases(&args), (201, 800));
        assert!(
            validate(&args).is_err(),
            "201 attempts cannot sell 1,000 units"
        );
    }

    #[test]
    fn one_phase_quantiles_are_read_off_its_grid() {
        let grid = vec![
            (50.0, 1_000.0),
            (90.0, 2_000.0),
            (99.0, 5_000.0),
            (99.9, 9_000.0),
        ];
        assert!((merged_quantile(&[(10, &grid)], 50.0) - 1_000.0).abs() < 1e-9);
        assert!((merged_quantile(&[(10, &grid)], 99.0) - 5_000.0).abs() < 1e-9);
    }

    #[test]
    fn merged_quantiles_weigh_each_phase_by_its_attempts() {
        // A fast big phase and a slow small one: the median is the big phase's.
        let fast: Vec<(f64, f64)> = (1..=200)
            .map(|i| (f64::from(i) * 0.5, f64::from(i)))
            .collect();
        let slow: Vec<(f64, f64)> = (1..=200)
            .map(|i| (f64::from(i) * 0.5, 1_000.0 + f64::from(i)))
            .collect();
        let median = merged_quantile(&[(80, &fast), (20, &slow)], 50.0);
        // 50 % of all is 62.5 % of the fast phase: its value at 62.5 is 125.
        assert!((median - 125.0).abs() < 1e-9, "{median}");
        let p90 = merged_quantile(&[(80, &fast), (20, &slow)], 90.0);
        // The fast phase is 80 % of all; 90 % reaches half-way into the slow phase.
        assert!((p90 - 1_100.0).abs() < 1e-9, "{p90}");
    }

    #[test]
    fn process_and_machine_cpu_are_read_from_proc() {
        let stat = "4242 (tokio-runtime w) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 \
                    9 0 12345 100000 2000 18446744073709551615";
        assert!((process_ticks(stat).unwrap() - 325.0).abs() < 1e-9);
        let machine = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\n";
        assert_eq!(machine_ticks(machine), Some((161, 981)));
    }

    #[test]
    fn redis_command_counts_are_read_from_commandstats() {
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=2000,usec=9000,usec_per_call=4.50,\
                    rejected_calls=0,failed_calls=0\r\ncmdstat_exists:calls=4000,usec=1200\r\n";
        let calls = command_calls(info);
        assert_eq!(calls.get("evalsha"), Some(&2_000));
        assert_eq!(calls.get("exists"), Some(&4_000));
    }

    #[test]
    fn the_scripts_result_line_is_parsed() {
        let stdout = "Running 15m test @ http://127.0.0.1:3901/orders\n  2 threads and 1000 connections\n\
            DROP-RESULT {\"attempts\":10,\"responses\":10,\"unfinished_threads\":0,\"elapsed_us\":2000000,\
            \"statuses\":{\"201\":3,\"409\":6,\"429\":1},\"codes\":{\"SOLD_OUT\":6,\"RATE_LIMITED\":1},\
            \"latency_us\":{\"min\":100,\"mean\":150.5,\"max\":900,\"quantiles\":[[50,120],[90,300],[99,800]]},\
            \"errors\":{\"connect\":0,\"read\":0,\"write\":0,\"timeout\":0}}\n";
        let result = LuaResult::parse(stdout).unwrap();
        let figures = result.figures(
            wrk::SocketErrors::default(),
            TimeSpent {
                cores: CpuSplit {
                    runner: 0.0,
                    wrk: 0.0,
                    redis: 0.0,
                    mariadb: 0.0,
                    rest: 0.0,
                    total: 0.0,
                },
                cpu_us_per_attempt: CpuSplit {
                    runner: 0.0,
                    wrk: 0.0,
                    redis: 0.0,
                    mariadb: 0.0,
                    rest: 0.0,
                    total: 0.0,
                },
                redis_commands_per_attempt: BTreeMap::new(),
            },
        );
        assert!((figures.attempts_per_s - 5.0).abs() < 1e-9);
        assert!((figures.p50_ms - 0.12).abs() < 1e-9);
        assert!((figures.p99_ms - 0.8).abs() < 1e-9);
        assert_eq!(figures.status_counts.created, 3);
        assert_eq!(figures.status_counts.conflict, 6);
        assert_eq!(figures.status_counts.other, 1);
        assert_eq!(figures.codes.get("SOLD_OUT"), Some(&6));
    }

    #[test]
    fn sweeps_count_the_minute_marks_crossed() {
        let s = Duration::from_secs;
        assert_eq!(sweeps_between(s(5), s(20)), 0);
        assert_eq!(sweeps_between(s(50), s(70)), 1);
        assert_eq!(sweeps_between(s(10), s(200)), 3);
    }
}
