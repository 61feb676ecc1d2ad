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
//! together, so these figures say what to shave. Redis is a server the bench starts for the run
//! (`--redis-port`), so its counters are the run's alone; the machine is shared: other work
//! shows up as `rest`.
//!
//! # The hot shard
//!
//! After phase B of the reservation strategy and of the floor, a sample of attempts under
//! `MONITOR` says which keys an attempt touches and which of its commands land on the product's
//! hash slot, and phase B's Redis counters say what that costs: see [`shard`].
//!
//! # wrk
//!
//! `bench/scripts/drop.lua` makes wrk send an exact number of requests (wrk itself only knows
//! durations) and measures the phase's elapsed time itself; see the script's header.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod args;
mod audit;
mod configuration;
mod database;
mod figures;
mod phase;
mod shard;
mod slots;
mod table;
#[cfg(test)]
mod tests;
mod usage;

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, ensure};
use clap::ValueEnum;
use kicksync_local::bench_floor::DROP_FLOOR_PATH;
use sqlx::{Connection, MySqlConnection};

pub use self::args::Args;
use self::{
    configuration::{Bench, WorkDir},
    database::{StatementCounter, clean_up, create_database},
    figures::{ByRound, Measured, summarise},
    table::print_table,
};
use crate::{
    machine::Machine,
    redis_server::PrivateRedis,
    report::{self, round, thousands},
};

/// The results file: `bench/results/drop.json`.
const NAME: &str = "drop";
const DATABASE: &str = "kicksync_bench_drop";
/// The runner's token key; the bench signs the buyers' tokens with it.
const JWT_SECRET: &str = "kicksync-bench-jwt-secret-not-for-production";
/// The tokens must outlive every configuration of one run, the slow lock strategy included.
const TOKEN_TTL: Duration = Duration::from_secs(4 * 60 * 60);
const MAX_PER_BUYER: i32 = 1;
/// Each configuration's Redis keys start with `bench-drop:<configuration>:`. Not `bench:`, which
/// `bench products-list` flushes.
const REDIS_PREFIX: &str = "bench-drop:";
const ORDERS_PATH: &str = "/orders";

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

pub async fn run(args: &Args) -> anyhow::Result<()> {
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
    let private_redis = PrivateRedis::start(args.redis_port, &args.env.log_dir, NAME).await?;
    println!("Redis: the bench's own server on {}", private_redis.addr());
    let server = args.env.mysql_url.trim_end_matches('/').to_owned();
    let mut admin = MySqlConnection::connect(&server)
        .await
        .with_context(|| format!("connecting to MySQL at {server}"))?;
    let counter = StatementCounter::enable(&mut admin).await;
    let outcome = async {
        counter.counting(&mut admin, false).await?;
        create_database(&mut admin).await?;
        let bench =
            Bench::prepare(args, &server, &runner_binary, &work, private_redis.addr()).await?;
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

    drop(private_redis);
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
            "\nrounds, attempts/s: reservation {:?}, floor {:?}; reservation/floor by round {:?}; \
             product-slot Redis CPU per attempt, reservation/floor by round {:?} (the figures \
             above are each configuration's median round)",
            results.reservation.rounds_attempts_per_s,
            results.floor.rounds_attempts_per_s,
            results.ratios.reservation_vs_floor_by_round,
            results.ratios.product_slot_redis_cpu_vs_floor_by_round
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

/// Reservation over floor, round by round: attempts/s, and Redis CPU per attempt on the
/// product's slot where both sampled it.
fn paired_ratios(rounds: &BTreeMap<&str, Vec<Measured>>) -> ByRound {
    let (Some(reservation), Some(floor)) = (rounds.get("reservation"), rounds.get("floor")) else {
        return ByRound::default();
    };
    let mut by_round = ByRound::default();
    for (ours, bare) in reservation.iter().zip(floor) {
        by_round
            .attempts_per_s
            .push(round(ours.attempts_per_s / bare.attempts_per_s, 3));
        if let (Some(ours), Some(bare)) = (&ours.hot_shard, &bare.hot_shard) {
            let floor_cpu = bare.product_slot_redis_cpu_us_per_attempt.max(1e-9);
            by_round.product_slot_cpu.push(round(
                ours.product_slot_redis_cpu_us_per_attempt / floor_cpu,
                3,
            ));
            by_round.product_slot_cpu_upper_bound.push(round(
                ours.product_slot_redis_cpu_us_per_attempt_upper_bound / floor_cpu,
                3,
            ));
            for key in &ours.shared_keys_read_by_every_attempt {
                if !by_round.shared_keys.contains(key) {
                    by_round.shared_keys.push(key.clone());
                }
            }
        }
    }
    by_round
}

fn validate(args: &Args) -> anyhow::Result<()> {
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
fn phases(args: &Args) -> (u64, u64) {
    let phase_a = (args.attempts * u64::from(args.sell_out_percent)).div_ceil(100);
    (phase_a, args.attempts.saturating_sub(phase_a))
}

/// The command that reproduces this run, every option spelled out.
fn command(args: &Args) -> String {
    format!(
        "scripts/bench {NAME} --units {} --attempts {} --buyers {} --connections {} --threads {} \
         --port {} --sell-out-percent {} --db-connections {} --checkout-limit {} --rounds {} \
         --redis-port {} --shard-sample {}",
        args.units,
        args.attempts,
        args.buyers,
        args.connections,
        args.threads,
        args.port,
        args.sell_out_percent,
        args.db_connections,
        args.checkout_limit,
        args.rounds,
        args.redis_port,
        args.shard_sample
    )
}
