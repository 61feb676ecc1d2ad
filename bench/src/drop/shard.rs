//! The hot shard: on a Redis Cluster one product's counter lives on one shard, so what limits a
//! drop of one product is the Redis work per attempt that lands on the product's slot.
//!
//! The bench runs against a Redis server of its own, so `INFO cpu` and `INFO commandstats`
//! count only the configuration under test. Two measurements make the figure:
//!
//! 1. **Which keys an attempt touches** (a sample): after phase B, with the drop sold out, a
//!    further `--shard-sample` attempts run with a `MONITOR` connection open. Every command the
//!    runner sent (commands a script runs are left out: the script's call names its keys) is
//!    read with its keys, and each key is given the slot a cluster would keep it in
//!    ([`super::slots`]). The sample is not timed (MONITOR costs Redis CPU of its own).
//! 2. **What that costs** (phase B, timed, no MONITOR): Redis's CPU (`used_cpu_sys +
//!    used_cpu_user` in `INFO cpu`) around the phase, per attempt. The product's slot's share
//!    is its share of the commands: for commands this small, reading, parsing and answering
//!    them is most of Redis's work, and the runner sends every command over one multiplexed
//!    connection, so that work is per command, not per attempt. The upper bound charges all of
//!    Redis's CPU to the product's slot. (`INFO commandstats` also gives each command's time
//!    inside Redis, reported as `redis_exec_us_per_attempt`; it is wall-clock time, so on a
//!    machine whose cores are shared it can exceed the CPU Redis got, and it is not used to
//!    split the CPU.)
//!
//! The floor's one EVALSHA lands on its counter's slot, so its product-slot CPU is all of its
//! Redis CPU. A key read by every attempt that is not the product's (one concrete key, not one
//! per buyer or per request) would be read by every attempt of every product on a cluster: its
//! slot would be hotter than any product's; such keys are listed.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
};

use anyhow::Context;
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    task::JoinHandle,
};

use super::{
    figures::TimeSpent,
    slots::{MonitorLine, hash_tag, key_slot},
};
use crate::report::round;

/// The text the bench echoes to mark the end of a sample in the `MONITOR` feed.
pub(super) const SAMPLE_END: &str = "kicksync-bench-shard-sample-end";
/// Commands the bench itself sends around a phase; never the runner's.
const BENCH_COMMANDS: [&str; 2] = ["info", "echo"];

/// A `MONITOR` connection collecting the feed until [`SAMPLE_END`] comes by.
#[derive(Debug)]
pub(super) struct Monitor {
    task: JoinHandle<anyhow::Result<Vec<String>>>,
}

impl Monitor {
    /// Connects, sends `MONITOR` and returns once Redis has said OK.
    pub(super) async fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("MONITOR: connecting to {addr}"))?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).await?;
        anyhow::ensure!(
            first.trim_end() == "+OK",
            "MONITOR answered {}",
            first.trim_end()
        );
        let task = tokio::spawn(async move {
            let mut lines = Vec::new();
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 {
                    anyhow::bail!("MONITOR: Redis closed the connection");
                }
                let text = line.trim_end().trim_start_matches('+');
                if text.contains(SAMPLE_END) {
                    return Ok(lines);
                }
                lines.push(text.to_owned());
            }
        });
        Ok(Self { task })
    }

    /// The lines up to the end mark (which the caller has sent).
    pub(super) async fn finish(self) -> anyhow::Result<Vec<String>> {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(30), self.task)
            .await
            .context("MONITOR: the end mark did not come")?;
        waited?
    }
}

/// Which key of an attempt a figure is about, by where it would sit on a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Placement {
    /// The product's counter and anything tagged with the product (`{p<id>}`).
    ProductSlot,
    /// One key read by every attempt, not the product's: every product's attempts read it.
    SharedByEveryAttempt,
    /// Keys of one buyer or one request (e.g. `{u<id>}`), spread over the slots.
    Spread,
}

/// One kind of key the attempts touched.
#[derive(Debug, Serialize)]
pub(super) struct KeyUse {
    /// The key without the configuration's prefix, digits as `#` and long ids as `<id>`.
    pub(super) key: String,
    pub(super) placement: Placement,
    /// Commands per attempt naming a key of this kind.
    pub(super) commands_per_attempt: f64,
    /// Distinct keys of this kind in the sample.
    pub(super) distinct_keys: usize,
    /// The slot, when every key of this kind has the same one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) slot: Option<u16>,
}

/// What the sample saw, per attempt.
#[derive(Debug)]
pub(super) struct KeySample {
    pub(super) attempts: u64,
    pub(super) product_slot: u16,
    /// Top-level commands by name, and those of them that land on the product's slot.
    pub(super) commands: BTreeMap<String, u64>,
    pub(super) product_slot_commands: BTreeMap<String, u64>,
    /// Commands whose keys sit in more than one slot (a cluster refuses them: CROSSSLOT).
    pub(super) cross_slot_commands: u64,
    /// Commands the key table does not know, by name (their keys are not attributed).
    pub(super) unknown_commands: BTreeMap<String, u64>,
    pub(super) keys: Vec<KeyUse>,
    /// Concrete keys read by every attempt that are not the product's.
    pub(super) shared_keys: Vec<String>,
}

/// The product's hash tag (`p<id>`, as `shared::adapters::stock` keys its counter), or the
/// floor's whole counter key.
#[derive(Debug, Clone)]
pub(super) struct ProductKey {
    /// The key (with its prefix) whose slot is the product's.
    pub(super) key: String,
}

impl KeySample {
    /// Counts the sample's lines for `attempts` attempts; `prefix` is the configuration's key
    /// prefix (removed from the keys reported).
    pub(super) fn count(
        lines: &[String],
        attempts: u64,
        product: &ProductKey,
        prefix: &str,
    ) -> Self {
        let product_tag = hash_tag(product.key.as_bytes()).to_vec();
        let product_slot = key_slot(product.key.as_bytes());
        let mut commands = BTreeMap::new();
        let mut product_slot_commands = BTreeMap::new();
        let mut cross_slot_commands = 0;
        let mut unknown_commands = BTreeMap::new();
        let mut per_key: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for line in lines.iter().filter_map(|line| MonitorLine::parse(line)) {
            if line.is_from_script() || BENCH_COMMANDS.contains(&line.command.as_str()) {
                continue;
            }
            *commands.entry(line.command.clone()).or_insert(0) += 1;
            let Some(keys) = line.keys() else {
                *unknown_commands.entry(line.command.clone()).or_insert(0) += 1;
                continue;
            };
            let slots: BTreeSet<u16> = keys.iter().map(|key| key_slot(key)).collect();
            if slots.len() > 1 {
                cross_slot_commands += 1;
            }
            if slots.contains(&product_slot) {
                *product_slot_commands
                    .entry(line.command.clone())
                    .or_insert(0) += 1;
            }
            for key in keys {
                *per_key.entry(key.to_vec()).or_insert(0) += 1;
            }
        }
        let placement = |key: &[u8], count: u64| {
            if hash_tag(key) == product_tag.as_slice() {
                Placement::ProductSlot
            } else if count >= attempts {
                Placement::SharedByEveryAttempt
            } else {
                Placement::Spread
            }
        };
        let shared_keys = per_key
            .iter()
            .filter(|(key, count)| placement(key, **count) == Placement::SharedByEveryAttempt)
            .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
            .collect();
        // Grouped by the key's shape and where it sits.
        let mut groups: BTreeMap<(String, Placement), (u64, usize, BTreeSet<u16>)> =
            BTreeMap::new();
        for (key, count) in &per_key {
            let group = groups
                .entry((shape(key, prefix), placement(key, *count)))
                .or_default();
            group.0 += count;
            group.1 += 1;
            group.2.insert(key_slot(key));
        }
        let keys = groups
            .into_iter()
            .map(|((key, placement), (count, distinct_keys, slots))| KeyUse {
                key,
                placement,
                commands_per_attempt: per_attempt(count, attempts),
                distinct_keys,
                slot: (slots.len() == 1).then(|| slots.first().copied()).flatten(),
            })
            .collect();
        Self {
            attempts,
            product_slot,
            commands,
            product_slot_commands,
            cross_slot_commands,
            unknown_commands,
            keys,
            shared_keys,
        }
    }
}

/// A key's shape for people: the prefix removed, runs of digits as `#`, and a part (between
/// colons) longer than 24 characters (a token id, an idempotency key) as `<id>`.
fn shape(key: &[u8], prefix: &str) -> String {
    let text = String::from_utf8_lossy(key);
    let text = text.strip_prefix(prefix).unwrap_or(&text);
    text.split(':')
        .map(|part| {
            if part.len() > 24 {
                return "<id>".to_owned();
            }
            let mut folded = String::with_capacity(part.len());
            for character in part.chars() {
                if !character.is_ascii_digit() {
                    folded.push(character);
                } else if !folded.ends_with('#') {
                    folded.push('#');
                }
            }
            folded
        })
        .collect::<Vec<_>>()
        .join(":")
}

fn per_attempt(count: u64, attempts: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
    let share = count as f64 / attempts.max(1) as f64;
    round(share, 3)
}

/// The hot-shard figures of one configuration in one round.
#[derive(Debug, Serialize)]
pub(super) struct HotShard {
    pub(super) sample_attempts: u64,
    /// The slot of the product's counter (the floor's: its counter key's).
    pub(super) product_slot: u16,
    /// Commands the runner sent per attempt (top level; a script's own calls are part of it).
    pub(super) commands_per_attempt: BTreeMap<String, f64>,
    /// Of those, the ones naming a key in the product's slot.
    pub(super) product_slot_commands_per_attempt: BTreeMap<String, f64>,
    pub(super) product_slot_commands_per_attempt_total: f64,
    pub(super) cross_slot_commands: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) unknown_commands: BTreeMap<String, u64>,
    /// Every kind of key an attempt touched, and where it would sit on a cluster.
    pub(super) keys: Vec<KeyUse>,
    /// Keys read by every attempt that are not the product's (target: none).
    pub(super) shared_keys_read_by_every_attempt: Vec<String>,
    /// Phase B, timed without MONITOR: Redis's CPU per attempt (`INFO cpu`).
    pub(super) redis_cpu_us_per_attempt: f64,
    /// Wall-clock time inside the runner's commands per attempt (`INFO commandstats` usec).
    pub(super) redis_exec_us_per_attempt: f64,
    /// The product's slot's share of the commands.
    pub(super) product_slot_command_share: f64,
    /// Redis's CPU per attempt times that share.
    pub(super) product_slot_redis_cpu_us_per_attempt: f64,
    /// All of Redis's CPU per attempt, as if it were all the product's slot's.
    pub(super) product_slot_redis_cpu_us_per_attempt_upper_bound: f64,
}

impl HotShard {
    /// The figures from the sample's key counts and phase B's Redis counters.
    pub(super) fn new(sample: KeySample, phase_b: &TimeSpent, phase_b_attempts: u64) -> Self {
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
        let attempts = phase_b_attempts.max(1) as f64;
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
        let sample_attempts = sample.attempts.max(1) as f64;
        // Time inside each command per call, as phase B measured it, times the sample's calls.
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
        let exec_all = sample
            .commands
            .iter()
            .filter_map(|(command, count)| {
                let (calls, usec) = phase_b.redis_exec.get(command)?;
                let per_call = *usec as f64 / (*calls).max(1) as f64;
                Some(*count as f64 / sample_attempts * per_call)
            })
            .sum::<f64>();
        let count = |counts: &BTreeMap<String, u64>| counts.values().sum::<u64>();
        let cpu = phase_b.redis_used_cpu_s.unwrap_or(0.0) * 1e6 / attempts;
        #[allow(clippy::cast_precision_loss, reason = "counts are far below 2^53")]
        let share =
            count(&sample.product_slot_commands) as f64 / count(&sample.commands).max(1) as f64;
        let per_attempt_map = |counts: &BTreeMap<String, u64>| {
            counts
                .iter()
                .map(|(command, count)| (command.clone(), per_attempt(*count, sample.attempts)))
                .collect()
        };
        Self {
            sample_attempts: sample.attempts,
            product_slot: sample.product_slot,
            commands_per_attempt: per_attempt_map(&sample.commands),
            product_slot_commands_per_attempt: per_attempt_map(&sample.product_slot_commands),
            product_slot_commands_per_attempt_total: per_attempt(
                count(&sample.product_slot_commands),
                sample.attempts,
            ),
            cross_slot_commands: sample.cross_slot_commands,
            unknown_commands: sample.unknown_commands,
            keys: sample.keys,
            shared_keys_read_by_every_attempt: sample.shared_keys,
            redis_cpu_us_per_attempt: round(cpu, 2),
            redis_exec_us_per_attempt: round(exec_all, 2),
            product_slot_command_share: round(share, 3),
            product_slot_redis_cpu_us_per_attempt: round(cpu * share, 2),
            product_slot_redis_cpu_us_per_attempt_upper_bound: round(cpu, 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drop::figures::CpuSplit;

    fn line(command: &str, args: &[&str]) -> String {
        let mut text = format!("1733300000.1 [0 127.0.0.1:6000] \"{command}\"");
        for arg in args {
            text.push_str(&format!(" \"{arg}\""));
        }
        text
    }

    /// Two attempts as the gate sends them today: the buyer's script, the loaded flags, the
    /// product's counter; one script call's own command in between.
    fn gate_sample() -> Vec<String> {
        let mut lines = Vec::new();
        for buyer in [7, 8] {
            lines.push(line(
                "evalsha",
                &[
                    "ab",
                    "2",
                    &format!("x:checkout:{{u{buyer}}}"),
                    &format!("x:bl:{{u{buyer}}}:0123456789abcdef0123456789"),
                    "30",
                ],
            ));
            lines.push(format!(
                "1733300000.2 [0 lua] \"incr\" \"x:checkout:{{u{buyer}}}\""
            ));
            lines.push(line(
                "exists",
                &["x:{loaded}:blacklist", "x:{loaded}:markers"],
            ));
            lines.push(line("hmget", &["x:stock:{p1}", "left"]));
        }
        lines.push(line("info", &["commandstats"]));
        lines
    }

    #[test]
    fn an_attempts_keys_are_placed_by_slot() {
        let product = ProductKey {
            key: "x:stock:{p1}".to_owned(),
        };
        let sample = KeySample::count(&gate_sample(), 2, &product, "x:");
        assert_eq!(
            sample.commands.values().sum::<u64>(),
            6,
            "the script's incr is not counted"
        );
        assert_eq!(sample.product_slot_commands.get("hmget"), Some(&2));
        assert_eq!(sample.product_slot_commands.len(), 1);
        assert_eq!(
            sample.shared_keys,
            vec![
                "x:{loaded}:blacklist".to_owned(),
                "x:{loaded}:markers".to_owned()
            ]
        );
        let placement_of = |shape: &str| {
            sample
                .keys
                .iter()
                .find(|key| key.key == shape)
                .map(|key| (key.placement, key.distinct_keys))
        };
        assert_eq!(
            placement_of("stock:{p#}"),
            Some((Placement::ProductSlot, 1))
        );
        assert_eq!(placement_of("checkout:{u#}"), Some((Placement::Spread, 2)));
        assert_eq!(placement_of("bl:{u#}:<id>"), Some((Placement::Spread, 2)));
        assert_eq!(
            placement_of("{loaded}:blacklist"),
            Some((Placement::SharedByEveryAttempt, 1))
        );
        assert_eq!(sample.cross_slot_commands, 0);
    }

    #[test]
    fn the_product_slot_gets_its_share_of_the_commands() {
        let product = ProductKey {
            key: "x:stock:{p1}".to_owned(),
        };
        let sample = KeySample::count(&gate_sample(), 2, &product, "x:");
        // Phase B: 1,000 attempts, 12 ms of Redis CPU (12 µs each); per call, evalsha 3 µs,
        // exists 1 µs, hmget 2 µs: 6 µs inside commands; a third of the commands on the
        // product's slot.
        let phase_b = TimeSpent {
            cores: CpuSplit::default(),
            cpu_us_per_attempt: CpuSplit::default(),
            redis_commands_per_attempt: BTreeMap::new(),
            redis_used_cpu_s: Some(0.012),
            redis_exec: [("evalsha", 3_000), ("exists", 1_000), ("hmget", 2_000)]
                .into_iter()
                .map(|(name, usec)| (name.to_owned(), (1_000, usec)))
                .collect(),
        };
        let shard = HotShard::new(sample, &phase_b, 1_000);
        assert!((shard.redis_cpu_us_per_attempt - 12.0).abs() < 1e-9);
        assert!((shard.redis_exec_us_per_attempt - 6.0).abs() < 1e-9);
        assert!((shard.product_slot_redis_cpu_us_per_attempt - 4.0).abs() < 1e-9);
        assert!((shard.product_slot_redis_cpu_us_per_attempt_upper_bound - 12.0).abs() < 1e-9);
        assert!((shard.product_slot_commands_per_attempt_total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_floors_one_call_is_all_on_its_slot() {
        let product = ProductKey {
            key: "f:bench:drop-floor".to_owned(),
        };
        let lines: Vec<String> = (0..3)
            .map(|_| line("evalsha", &["cd", "1", "f:bench:drop-floor"]))
            .collect();
        let sample = KeySample::count(&lines, 3, &product, "f:");
        assert!(
            sample.shared_keys.is_empty(),
            "the product's own key is not shared"
        );
        let phase_b = TimeSpent {
            cores: CpuSplit::default(),
            cpu_us_per_attempt: CpuSplit::default(),
            redis_commands_per_attempt: BTreeMap::new(),
            redis_used_cpu_s: Some(0.005),
            redis_exec: [("evalsha".to_owned(), (1_000, 2_000))]
                .into_iter()
                .collect(),
        };
        let shard = HotShard::new(sample, &phase_b, 1_000);
        assert!((shard.product_slot_redis_cpu_us_per_attempt - 5.0).abs() < 1e-9);
        assert!((shard.product_slot_redis_cpu_us_per_attempt_upper_bound - 5.0).abs() < 1e-9);
    }
}
