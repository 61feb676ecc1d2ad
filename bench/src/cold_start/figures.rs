//! What the rounds' starts come to: each binary's figures (medians, the ratio to the floor,
//! package sizes), the targets met or missed, the results file's shape and the table printed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    FLOOR, TARGET_INIT_MS, TARGET_VS_FLOOR, TARGET_ZIP_BYTES, launch::Outcome, rounds::Starts,
};
use crate::{
    machine::Machine,
    report::{median, round, thousands},
};

/// One binary's figures.
#[derive(Debug, Serialize)]
pub(super) struct Figures {
    /// Spawn to the first invocation answered: the median round's.
    init_ms: f64,
    /// Spawn to the first `GET .../invocation/next` (Lambda's Init phase): the median.
    ready_ms: f64,
    /// The same event invoked again in the same process (warm): the median. What the
    /// handler's own work costs, connections made.
    warm_ms: f64,
    /// The host's release binary zipped as `bootstrap`.
    zip_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    arm64_zip_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    /// How the first invocation was answered (every round's, when they agree).
    first_answer: Vec<Outcome>,
    init_ms_by_round: Vec<f64>,
    /// The function's time over the floor's started just before it, by round; the median.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vs_floor_by_round: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_floor: Option<f64>,
    /// A row that is reported but not held to the targets (a second event of a function).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reported_only: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Targets {
    init_vs_floor_at_most: f64,
    init_ms_at_most: f64,
    zip_bytes_at_most: u64,
    /// Functions whose ratio and time met the targets in most rounds (the rows held to them).
    init_pass: BTreeMap<&'static str, bool>,
    zip_pass: BTreeMap<&'static str, bool>,
    all_pass: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Results {
    pub(super) date: String,
    pub(super) command: String,
    pub(super) machine: Machine,
    pub(super) build: &'static str,
    pub(super) rounds: u32,
    pub(super) floor: Figures,
    #[serde(flatten)]
    pub(super) functions: BTreeMap<&'static str, Figures>,
    pub(super) targets: Targets,
}

/// Package sizes by binary: the host zip and cargo-lambda's arm64 zip if there is one.
pub(super) type Sizes = BTreeMap<&'static str, (u64, Option<u64>)>;

/// One row's figures from its starts; with `floor`, the floor's starts paired with them round
/// by round, for the ratios.
pub(super) fn figures(
    starts: &Starts,
    floor: Option<&Starts>,
    event: Option<&'static str>,
    zips: (u64, Option<u64>),
    reported_only: bool,
) -> Figures {
    let answered = starts.answered();
    let vs_floor_by_round: Vec<f64> = floor
        .map(|floor| {
            answered
                .iter()
                .zip(floor.answered())
                .map(|(ours, bare)| round(ours / bare.max(1e-9), 2))
                .collect()
        })
        .unwrap_or_default();
    let (zip_bytes, arm64_zip_bytes) = zips;
    Figures {
        init_ms: median(&answered).unwrap_or(0.0),
        ready_ms: median(&starts.ready()).unwrap_or(0.0),
        warm_ms: median(&starts.warm()).unwrap_or(0.0),
        zip_bytes,
        arm64_zip_bytes,
        event,
        first_answer: starts.outcomes(),
        init_ms_by_round: answered,
        vs_floor: median(&vs_floor_by_round),
        vs_floor_by_round,
        reported_only,
    }
}

pub(super) fn targets(functions: &BTreeMap<&'static str, Figures>, floor: &Figures) -> Targets {
    let most = |values: &[bool]| values.iter().filter(|met| **met).count() * 2 > values.len();
    let targeted = || {
        functions
            .iter()
            .filter(|(_, figures)| !figures.reported_only)
    };
    let init_pass: BTreeMap<&'static str, bool> = targeted()
        .map(|(name, figures)| {
            let rounds: Vec<bool> = figures
                .init_ms_by_round
                .iter()
                .zip(&figures.vs_floor_by_round)
                .map(|(ms, ratio)| *ms <= TARGET_INIT_MS && *ratio <= TARGET_VS_FLOOR)
                .collect();
            (*name, most(&rounds))
        })
        .collect();
    let zip_pass: BTreeMap<&'static str, bool> = std::iter::once((FLOOR, floor))
        .chain(targeted().map(|(name, figures)| (*name, figures)))
        .map(|(name, figures)| {
            let biggest = figures.zip_bytes.max(figures.arm64_zip_bytes.unwrap_or(0));
            (name, biggest <= TARGET_ZIP_BYTES)
        })
        .collect();
    let all_pass = init_pass.values().chain(zip_pass.values()).all(|met| *met);
    Targets {
        init_vs_floor_at_most: TARGET_VS_FLOOR,
        init_ms_at_most: TARGET_INIT_MS,
        zip_bytes_at_most: TARGET_ZIP_BYTES,
        init_pass,
        zip_pass,
        all_pass,
    }
}

pub(super) fn print_table(results: &Results) {
    println!(
        "\n{:<22} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}  first answer",
        "function", "ready", "answered", "× floor", "warm", "zip (host)", "zip (arm64)"
    );
    let row = |name: &str, figures: &Figures| {
        println!(
            "{name:<22} {:>6.1} ms {:>6.1} ms {:>9} {:>6.1} ms {:>12} {:>12}  {}",
            figures.ready_ms,
            figures.init_ms,
            figures
                .vs_floor
                .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×")),
            figures.warm_ms,
            thousands(figures.zip_bytes),
            figures
                .arm64_zip_bytes
                .map_or_else(|| "–".to_owned(), thousands),
            figures
                .first_answer
                .iter()
                .map(|outcome| match outcome.status {
                    Some(status) => format!("{} {status}", outcome.kind),
                    None => outcome.kind.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
                + if figures.reported_only {
                    " (reported, no target)"
                } else {
                    ""
                }
        );
    };
    row("floor", &results.floor);
    for (name, figures) in &results.functions {
        row(name, figures);
    }
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let targets = &results.targets;
    for (name, pass) in &targets.init_pass {
        println!(
            "{}  {name}: first answer ≤ {}× the floor and ≤ {} ms in most rounds",
            verdict(*pass),
            targets.init_vs_floor_at_most,
            targets.init_ms_at_most
        );
    }
    let too_big: Vec<&str> = targets
        .zip_pass
        .iter()
        .filter(|(_, pass)| !**pass)
        .map(|(name, _)| *name)
        .collect();
    println!(
        "{}  every zip ≤ {} bytes{}",
        verdict(too_big.is_empty()),
        thousands(targets.zip_bytes_at_most),
        if too_big.is_empty() {
            String::new()
        } else {
            format!(": not {}", too_big.join(", "))
        }
    );
}
