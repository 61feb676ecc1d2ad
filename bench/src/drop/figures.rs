//! What `bench drop` measured: each phase's and each configuration's figures, the ratios and
//! targets, and the results file they make up.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::Serialize;
use shared::Config;

use super::{
    Args, JWT_SECRET, Setup, TOKEN_TTL, command, database::StatementCounter, median_index, phases,
    shard::HotShard,
};
use crate::{
    machine::Machine,
    report::{round, thousands},
    wrk,
};

/// Targets, measured in the same run.
const TARGET_VS_LOCK: f64 = 10.0;
const TARGET_VS_FLOOR: f64 = 0.5;
/// The product's shard may do at most this much of the floor's Redis CPU per attempt.
const TARGET_SHARD_CPU_VS_FLOOR: f64 = 1.5;

/// Responses by status.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(super) struct StatusCounts {
    #[serde(rename = "201")]
    pub(super) created: u64,
    #[serde(rename = "409")]
    pub(super) conflict: u64,
    pub(super) other: u64,
}

/// CPU by process: cores busy over a phase, or microseconds per attempt.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(super) struct CpuSplit {
    pub(super) runner: f64,
    pub(super) wrk: f64,
    pub(super) redis: f64,
    pub(super) mariadb: f64,
    /// Everything else on the machine (other users of the shared cores included).
    pub(super) rest: f64,
    pub(super) total: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct TimeSpent {
    /// Cores busy over the phase, by process (of `machine.cores`).
    pub(super) cores: CpuSplit,
    pub(super) cpu_us_per_attempt: CpuSplit,
    /// Redis commands per attempt over the phase, by command (a pipeline of two EXISTS is one
    /// round trip and two commands; a script's own calls count too).
    pub(super) redis_commands_per_attempt: BTreeMap<String, f64>,
    /// Redis's own CPU over the phase (`INFO cpu`: `used_cpu_sys + used_cpu_user`).
    #[serde(skip)]
    pub(super) redis_used_cpu_s: Option<f64>,
    /// Calls and execution µs by command over the phase (`INFO commandstats`).
    #[serde(skip)]
    pub(super) redis_exec: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, Serialize)]
pub(super) struct PhaseFigures {
    pub(super) attempts: u64,
    pub(super) elapsed_s: f64,
    pub(super) attempts_per_s: f64,
    pub(super) p50_ms: f64,
    pub(super) p90_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    pub(super) status_counts: StatusCounts,
    /// Problem `code` of every answer other than 201 (`HTTP_<status>` without one).
    pub(super) codes: BTreeMap<String, u64>,
    pub(super) socket_errors: wrk::SocketErrors,
    pub(super) where_time_goes: TimeSpent,
    /// (percentile, µs) pairs, to merge the two phases' distributions.
    #[serde(skip)]
    pub(super) latency_grid: Vec<(f64, f64)>,
}

/// The sale as MySQL and Redis recorded it after a configuration.
#[derive(Debug, Serialize)]
pub(super) struct Audit {
    pub(super) orders: i64,
    pub(super) payments: i64,
    pub(super) order_items_quantity: i64,
    pub(super) distinct_buyers: i64,
    /// The most units any buyer holds (max_per_buyer is 1).
    pub(super) max_units_per_buyer: i64,
    pub(super) stock_remaining: i64,
    /// `StockReservations::remaining` (reservation), the floor's counter (floor); the lock
    /// strategy keeps no counter.
    pub(super) redis_remaining: Option<i64>,
    /// From the first order's `created_at` to the last one's: the sales go one at a time
    /// through the product's row lock in MySQL, and this is how long that took.
    pub(super) sales_span_s: f64,
}

/// One configuration's figures; attempts/s and latencies cover both phases.
#[derive(Debug, Serialize)]
pub(super) struct Measured {
    pub(super) attempts_per_s: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) units_sold: u64,
    pub(super) oversold: u64,
    /// Statements the runner sent MySQL during phase B, after the sell-out (not for the floor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mysql_statements_after_sellout: Option<u64>,
    pub(super) status_counts: StatusCounts,
    pub(super) codes: BTreeMap<String, u64>,
    pub(super) elapsed_s: f64,
    pub(super) phase_a: PhaseFigures,
    pub(super) phase_b: PhaseFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stock_strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) audit: Option<Audit>,
    /// `order-sweeper` runs the runner fired during phase B (each a few statements of its own,
    /// included in `mysql_statements_after_sellout`).
    pub(super) order_sweeper_runs_in_phase_b: u64,
    /// Attempts/s of every round of this configuration, in the order they ran; the figures
    /// above are the median round's.
    pub(super) rounds_attempts_per_s: Vec<f64>,
    /// The Redis work per attempt that lands on the product's slot, after the sell-out (the
    /// median round's; not for the lock strategy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hot_shard: Option<HotShard>,
}

#[derive(Debug, Serialize)]
pub(super) struct Ratios {
    pub(super) reservation_vs_lock: f64,
    /// The median of the per-round ratios.
    pub(super) reservation_vs_floor: f64,
    /// Phase B alone: every attempt refused as sold out.
    pub(super) reservation_vs_floor_phase_b: f64,
    /// Each round's reservation over the same round's floor.
    pub(super) reservation_vs_floor_by_round: Vec<f64>,
    /// Redis CPU per attempt after the sell-out on the product's slot, reservation over floor:
    /// the median of the per-round ratios, and each round's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) product_slot_redis_cpu_vs_floor: Option<f64>,
    pub(super) product_slot_redis_cpu_vs_floor_by_round: Vec<f64>,
    /// The same with the upper bound of the reservation's product-slot CPU.
    pub(super) product_slot_redis_cpu_upper_bound_vs_floor_by_round: Vec<f64>,
}

/// Per-round ratios of two configurations, paired round by round.
#[derive(Debug, Default)]
pub(super) struct ByRound {
    pub(super) attempts_per_s: Vec<f64>,
    pub(super) product_slot_cpu: Vec<f64>,
    pub(super) product_slot_cpu_upper_bound: Vec<f64>,
    /// Keys read by every attempt that are not the product's, in any round (reservation).
    pub(super) shared_keys: Vec<String>,
}

/// The median of per-round ratios (the lower middle one for an even count).
pub(super) fn median(values: &[f64]) -> Option<f64> {
    values.get(median_index(values)).copied()
}

/// Whether most rounds meet a target.
pub(super) fn most(values: &[f64], meets: impl Fn(f64) -> bool) -> bool {
    let met = values.iter().filter(|value| meets(**value)).count();
    !values.is_empty() && met * 2 > values.len()
}

#[derive(Debug, Serialize)]
pub(super) struct Targets {
    pub(super) units_sold_exact_pass: bool,
    pub(super) oversold_zero_pass: bool,
    pub(super) reservation_vs_lock_at_least: f64,
    pub(super) reservation_vs_lock_pass: bool,
    pub(super) reservation_vs_floor_at_least: f64,
    /// Met when most rounds' ratios meet it.
    pub(super) reservation_vs_floor_pass: bool,
    pub(super) reservation_mysql_after_sellout_zero_pass: bool,
    pub(super) product_slot_redis_cpu_vs_floor_at_most: f64,
    /// Met when most rounds' ratios meet it; `None` without the hot-shard sample.
    pub(super) product_slot_redis_cpu_vs_floor_pass: Option<bool>,
    /// No key but the product's read by every attempt, in any round.
    pub(super) no_shared_key_read_by_every_attempt_pass: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(super) struct RunnerSettings {
    pub(super) database_max_connections: u32,
    pub(super) checkout_limit_per_minute: u32,
    pub(super) checkout_limit_note: String,
    pub(super) stock_lock_wait_ms: u64,
    pub(super) stock_lock_lease_ms: u64,
    pub(super) access_token_ttl_s: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Replaced {
    pub(super) note: &'static str,
    pub(super) strategy: &'static str,
    pub(super) concurrent_buyers_without_oversell: u32,
    pub(super) attempts_per_s: Option<f64>,
}

pub(super) const REPLACED: Replaced = Replaced {
    note: "the system KickSync replaces, as published: no throughput figure was published, so none \
           is compared; the `lock` configuration re-implements its strategy and is measured here",
    strategy: "per-product Redisson lock around the MySQL checkout",
    concurrent_buyers_without_oversell: 500,
    attempts_per_s: None,
};

#[derive(Debug, Serialize)]
pub(super) struct Results {
    pub(super) date: String,
    pub(super) command: String,
    pub(super) machine: Machine,
    pub(super) units: u32,
    pub(super) attempts: u64,
    pub(super) buyers: u32,
    pub(super) connections: u32,
    pub(super) threads: u32,
    pub(super) phase_a_attempts: u64,
    pub(super) phase_b_attempts: u64,
    /// Rounds of the reservation strategy and the floor (the lock strategy runs once).
    pub(super) rounds: u32,
    /// The load generator's command line (URL and script arguments per phase).
    pub(super) wrk: String,
    pub(super) runner: RunnerSettings,
    pub(super) mysql_statements_counted_by: &'static str,
    /// Verifying one access token (HS256) in this process, averaged over every buyer's token.
    pub(super) jwt_verify_us: f64,
    pub(super) reservation: Measured,
    pub(super) lock: Measured,
    pub(super) floor: Measured,
    pub(super) ratios: Ratios,
    pub(super) targets: Targets,
    pub(super) baseline_replaced_system: Replaced,
}

/// One configuration's figures from its two phases.
pub(super) fn combine(
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
        hot_shard: None,
    }
}

/// The `p`th percentile (µs) of several phases' latencies together, each given as its number
/// of attempts and a grid of its own percentiles: the smallest grid value at which the merged
/// distribution reaches `p`. Exact at the grid's points for one phase; within the grid's step
/// (0.5 percentile) for several.
pub(super) fn merged_quantile(phases: &[(u64, &Vec<(f64, f64)>)], p: f64) -> f64 {
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

pub(super) fn summarise(
    args: &Args,
    machine: Machine,
    counter: StatementCounter,
    jwt_verify_us: f64,
    [reservation, lock, floor]: [Measured; 3],
    by_round: ByRound,
) -> Results {
    let sampled = !by_round.product_slot_cpu.is_empty();
    let ratios = Ratios {
        reservation_vs_lock: round(reservation.attempts_per_s / lock.attempts_per_s, 2),
        reservation_vs_floor: median(&by_round.attempts_per_s).unwrap_or(0.0),
        reservation_vs_floor_phase_b: round(
            reservation.phase_b.attempts_per_s / floor.phase_b.attempts_per_s,
            3,
        ),
        product_slot_redis_cpu_vs_floor: median(&by_round.product_slot_cpu),
        reservation_vs_floor_by_round: by_round.attempts_per_s,
        product_slot_redis_cpu_vs_floor_by_round: by_round.product_slot_cpu,
        product_slot_redis_cpu_upper_bound_vs_floor_by_round: by_round.product_slot_cpu_upper_bound,
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
        reservation_vs_floor_pass: most(&ratios.reservation_vs_floor_by_round, |ratio| {
            ratio >= TARGET_VS_FLOOR
        }),
        reservation_mysql_after_sellout_zero_pass: reservation.mysql_statements_after_sellout
            == Some(0),
        product_slot_redis_cpu_vs_floor_at_most: TARGET_SHARD_CPU_VS_FLOOR,
        product_slot_redis_cpu_vs_floor_pass: sampled.then(|| {
            most(&ratios.product_slot_redis_cpu_vs_floor_by_round, |ratio| {
                ratio <= TARGET_SHARD_CPU_VS_FLOOR
            })
        }),
        no_shared_key_read_by_every_attempt_pass: sampled
            .then_some(by_round.shared_keys.is_empty()),
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
