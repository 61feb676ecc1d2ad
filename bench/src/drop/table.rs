//! What `bench drop` prints: a line per phase as it runs, then the table of every
//! configuration and the targets met or missed.

use super::{
    figures::{Measured, PhaseFigures, REPLACED, Results},
    shard::HotShard,
};
use crate::report::{latency, rate, thousands};

/// `evalsha 1, exists 4, …`: the Redis commands of one attempt.
pub(super) fn redis_commands<'a>(
    per_attempt: impl IntoIterator<Item = (&'a String, &'a f64)>,
) -> String {
    per_attempt
        .into_iter()
        .map(|(command, count)| format!("{command} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One phase on one line: rate, latencies, and where the CPU went.
pub(super) fn print_phase(name: &str, phase: &PhaseFigures) {
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

/// The hot shard of one configuration: the keys an attempt touched, where they would sit on a
/// cluster, and the Redis work that lands on the product's slot.
pub(super) fn print_hot_shard(name: &str, shard: &HotShard) {
    println!(
        "  {name} hot shard (sample of {} attempts after the sell-out): Redis CPU {:.2} µs/attempt; \
         on the product's slot {} {:.2} µs/attempt ({:.0}% of the commands; at most {:.2}), \
         commands: {}",
        thousands(shard.sample_attempts),
        shard.redis_cpu_us_per_attempt,
        shard.product_slot,
        shard.product_slot_redis_cpu_us_per_attempt,
        shard.product_slot_command_share * 100.0,
        shard.product_slot_redis_cpu_us_per_attempt_upper_bound,
        redis_commands(&shard.product_slot_commands_per_attempt)
    );
    for key in &shard.keys {
        println!(
            "    {:<40} {:<26} {:>6.3}/attempt, {} key(s){}",
            key.key,
            format!("{:?}", key.placement),
            key.commands_per_attempt,
            thousands(u64::try_from(key.distinct_keys).unwrap_or(u64::MAX)),
            key.slot
                .map(|slot| format!(", slot {slot}"))
                .unwrap_or_default()
        );
    }
    if shard.cross_slot_commands > 0 || !shard.unknown_commands.is_empty() {
        println!(
            "    {} commands with keys in several slots (CROSSSLOT on a cluster); commands of \
             unknown keys: {:?}",
            shard.cross_slot_commands, shard.unknown_commands
        );
    }
}

pub(super) fn print_table(results: &Results) {
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
        "{}  reservation ≥ {}x floor attempts/s in most rounds: {:.3}x, the median of {:?} \
         (phase B alone {:.3}x in the median rounds)",
        verdict(targets.reservation_vs_floor_pass),
        targets.reservation_vs_floor_at_least,
        results.ratios.reservation_vs_floor,
        results.ratios.reservation_vs_floor_by_round,
        results.ratios.reservation_vs_floor_phase_b
    );
    if let (Some(pass), Some(ratio)) = (
        targets.product_slot_redis_cpu_vs_floor_pass,
        results.ratios.product_slot_redis_cpu_vs_floor,
    ) {
        println!(
            "{}  reservation ≤ {}x the floor's Redis CPU per attempt on the product's slot in most \
             rounds: {ratio:.3}x, the median of {:?} (upper bound by round {:?})",
            verdict(pass),
            targets.product_slot_redis_cpu_vs_floor_at_most,
            results.ratios.product_slot_redis_cpu_vs_floor_by_round,
            results
                .ratios
                .product_slot_redis_cpu_upper_bound_vs_floor_by_round
        );
    }
    if let Some(pass) = targets.no_shared_key_read_by_every_attempt_pass {
        let shared = results
            .reservation
            .hot_shard
            .as_ref()
            .map(|shard| shard.shared_keys_read_by_every_attempt.join(", "))
            .unwrap_or_default();
        println!(
            "{}  no key but the product's read by every attempt: {}",
            verdict(pass),
            if shared.is_empty() { "none" } else { &shared }
        );
    }
    println!(
        "{}  reservation: 0 MySQL statements after the sell-out: {}",
        verdict(targets.reservation_mysql_after_sellout_zero_pass),
        statements(&results.reservation)
    );
}
