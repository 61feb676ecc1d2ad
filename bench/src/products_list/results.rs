//! What `bench products-list` measured, as the results file and the table carry it.

use serde::Serialize;

use crate::{
    machine::Machine,
    report::{latency, rate, thousands},
    wrk::SocketErrors,
};

/// The published figures of the system KickSync replaces (not measured here).
pub(super) const REPLACED: Replaced = Replaced {
    note: "published figures of the system KickSync replaces; not measured by this benchmark",
    no_index_rps: 98.9,
    index_rps: 322.5,
    cache_rps: 2_406.0,
    no_index_mean_ms: 9_200.0,
    index_mean_ms: 2_800.0,
    cache_mean_ms: 365.0,
};

/// One configuration's figures.
#[derive(Debug, Serialize)]
pub(super) struct Measured {
    /// As wrk reports it: every completed response per second, error responses included.
    pub(super) rps: f64,
    pub(super) mean_ms: f64,
    pub(super) p99_ms: f64,
    /// Socket errors (connect, read, write, timeout) plus responses with status ≥ 400.
    pub(super) errors: u64,
    pub(super) p50_ms: f64,
    pub(super) requests: u64,
    pub(super) non_2xx: u64,
    pub(super) socket_errors: SocketErrors,
    pub(super) url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) x_cache: Option<&'static str>,
    /// EXPLAIN of the page-1 query in this configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) query_plan: Option<QueryPlan>,
}

#[derive(Debug, Serialize)]
pub(super) struct QueryPlan {
    pub(super) key: Option<String>,
    pub(super) extra: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Ratios {
    pub(super) cache_vs_floor: f64,
    pub(super) cache_vs_no_index: f64,
    pub(super) index_vs_no_index: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Targets {
    pub(super) cache_vs_floor_at_least: f64,
    pub(super) cache_without_errors: bool,
    pub(super) cache_vs_floor_pass: bool,
    pub(super) cache_vs_no_index_at_least: f64,
    pub(super) cache_vs_no_index_pass: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Replaced {
    pub(super) note: &'static str,
    pub(super) no_index_rps: f64,
    pub(super) index_rps: f64,
    pub(super) cache_rps: f64,
    pub(super) no_index_mean_ms: f64,
    pub(super) index_mean_ms: f64,
    pub(super) cache_mean_ms: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Results {
    pub(super) date: String,
    pub(super) command: String,
    pub(super) machine: Machine,
    pub(super) products: u32,
    pub(super) connections: u32,
    pub(super) threads: u32,
    pub(super) duration_s: u64,
    pub(super) database_max_connections: u32,
    /// The load generator's command line (URL per configuration).
    pub(super) wrk: String,
    pub(super) page_bytes: usize,
    pub(super) no_index: Measured,
    pub(super) index: Measured,
    pub(super) cache: Measured,
    pub(super) floor: Measured,
    pub(super) ratios: Ratios,
    pub(super) targets: Targets,
    pub(super) baseline_replaced_system: Replaced,
}

pub(super) fn print_table(results: &Results) {
    let rows = [
        ("no-index", &results.no_index),
        ("index", &results.index),
        ("cache", &results.cache),
        ("floor", &results.floor),
    ];
    println!(
        "\n{:<9} {:>11} {:>10} {:>10} {:>9} {:>11} {:>9}",
        "config", "req/s", "mean", "p99", "errors", "vs no-index", "vs floor"
    );
    for (name, figures) in rows {
        println!(
            "{name:<9} {:>11} {:>10} {:>10} {:>9} {:>10.1}x {:>8.3}x",
            rate(figures.rps),
            latency(figures.mean_ms),
            latency(figures.p99_ms),
            thousands(figures.errors),
            figures.rps / results.no_index.rps,
            figures.rps / results.floor.rps,
        );
    }
    let replaced = &results.baseline_replaced_system;
    println!(
        "\nreplaced system (published, not measured here): {} → {} → {} req/s, mean {} → {} → {}",
        rate(replaced.no_index_rps),
        rate(replaced.index_rps),
        rate(replaced.cache_rps),
        latency(replaced.no_index_mean_ms),
        latency(replaced.index_mean_ms),
        latency(replaced.cache_mean_ms),
    );
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let targets = &results.targets;
    println!(
        "{}  cache ≥ {}x floor req/s with no errors: {:.3}x, {} errors",
        verdict(targets.cache_vs_floor_pass),
        targets.cache_vs_floor_at_least,
        results.ratios.cache_vs_floor,
        thousands(results.cache.errors),
    );
    println!(
        "{}  cache ≥ {}x no-index req/s: {:.1}x",
        verdict(targets.cache_vs_no_index_pass),
        targets.cache_vs_no_index_at_least,
        results.ratios.cache_vs_no_index,
    );
}
