//! What every results file carries (date, command, machine) and how figures are printed.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde::Serialize;

/// The machine the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    /// How busy the CPUs were in the second before the benchmark started (0 to 100): well
    /// above zero means something else was using the CPUs the figures were measured on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_busy_percent_at_start: Option<f64>,
}

impl Machine {
    /// Reads the CPU model and the core count.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            cpu_busy_percent_at_start: None,
        }
    }

    /// Like [`Machine::detect`], and watches for one second how busy the CPUs are.
    pub async fn detect_with_load() -> Self {
        let before = cpu_times();
        tokio::time::sleep(BUSY_SAMPLE).await;
        let after = cpu_times();
        let busy = before.zip(after).and_then(|(before, after)| {
            let total = after.total.checked_sub(before.total)?;
            let idle = after.idle.checked_sub(before.idle)?;
            #[allow(clippy::cast_precision_loss, reason = "jiffies over one second")]
            let busy = 100.0 * (1.0 - idle as f64 / total as f64);
            (total > 0).then_some(round(busy, 1))
        });
        Self {
            cpu_busy_percent_at_start: busy,
            ..Self::detect()
        }
    }

    /// Says so when the machine is busy before a benchmark starts: the figures would measure
    /// the competition too.
    pub fn warn_if_busy(&self) {
        if let Some(busy) = self
            .cpu_busy_percent_at_start
            .filter(|busy| *busy >= BUSY_WARNING_PERCENT)
        {
            eprintln!(
                "note: the CPUs were {busy:.0}% busy before the benchmark started: something \
                 else is using them, and the figures will show it"
            );
        }
    }
}

/// How long [`Machine::detect`] watches the CPUs.
const BUSY_SAMPLE: Duration = Duration::from_secs(1);
/// An idle machine's background stays well below this.
const BUSY_WARNING_PERCENT: f64 = 20.0;

/// Cumulative jiffies of all CPUs, from `/proc/stat`'s first line.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    total: u64,
    /// Idle plus waiting for I/O.
    idle: u64,
}

fn cpu_times() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    Some(CpuTimes {
        total: fields.iter().sum(),
        idle: fields.get(3)? + fields.get(4).copied().unwrap_or(0),
    })
}

/// Writes `value` as pretty JSON to `dir/name.json`, replacing an earlier run's file.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.json"));
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A latency for people: `812 µs`, `21.1 ms`, `5.02 s`.
pub fn latency(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1_000.0)
    } else if ms < 1_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1_000.0)
    }
}

/// A rate with thousands separators: `46,996.7`.
pub fn rate(per_sec: f64) -> String {
    let tenths = (per_sec * 10.0).round();
    // Rates are far below 2^53; the cast only drops the fraction we just rounded away.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let tenths = tenths.max(0.0) as u64;
    format!("{}.{}", thousands(tenths / 10), tenths % 10)
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Rounds for the results file, so it does not claim more precision than was measured.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(46_996.65), "46,996.7");
        assert_eq!(rate(98.9), "98.9");
        assert_eq!(latency(0.812), "812 µs");
        assert_eq!(latency(21.05), "21.1 ms");
        assert_eq!(latency(5_020.0), "5.02 s");
        assert!((round(0.123_456, 3) - 0.123).abs() < 1e-12);
    }
}
