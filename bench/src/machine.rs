//! The machine the figures are measured on, and what `/proc` says about its CPUs and processes:
//! the one place that reads `/proc/cpuinfo`, `/proc/stat` and `/proc/<pid>/{stat,comm}`.

use std::time::Duration;

use serde::Serialize;

use crate::report::round;

/// Clock ticks per second of `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux
/// architecture).
const USER_HZ: f64 = 100.0;
/// How long [`Machine::detect_with_load`] watches the CPUs.
const BUSY_SAMPLE: Duration = Duration::from_secs(1);
/// An idle machine's background stays well below this.
const BUSY_WARNING_PERCENT: f64 = 20.0;

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
        let before = CpuTicks::read();
        tokio::time::sleep(BUSY_SAMPLE).await;
        let after = CpuTicks::read();
        let busy = before
            .zip(after)
            .and_then(|(before, after)| after.busy_percent_since(before));
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

/// Cumulative ticks of all CPUs together, from `/proc/stat`'s first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// Everything but idle and waiting for I/O.
    pub busy: u64,
    pub total: u64,
}

impl CpuTicks {
    /// The machine's ticks now; `None` where `/proc/stat` cannot be read.
    pub fn read() -> Option<Self> {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| Self::parse(&stat))
    }

    /// The first line's user, nice, system, idle, iowait, irq, softirq and steal (guest time
    /// is counted in user already).
    fn parse(stat: &str) -> Option<Self> {
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
        Some(Self {
            busy: total - idle,
            total,
        })
    }

    /// CPU seconds the whole machine was busy since `earlier`, every core together.
    #[allow(clippy::cast_precision_loss, reason = "tick counts are far below 2^53")]
    pub fn busy_seconds_since(self, earlier: Self) -> f64 {
        self.busy.saturating_sub(earlier.busy) as f64 / USER_HZ
    }

    /// How busy the CPUs were since `earlier`, 0 to 100 to one decimal; `None` without ticks.
    fn busy_percent_since(self, earlier: Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = (self.total - self.busy).checked_sub(earlier.total - earlier.busy)?;
        #[allow(clippy::cast_precision_loss, reason = "ticks over one second")]
        let busy = 100.0 * (1.0 - idle as f64 / total as f64);
        (total > 0).then_some(round(busy, 1))
    }
}

/// A process's user + system CPU time in seconds, from `/proc/<pid>/stat`; 0 without one.
pub fn process_cpu_seconds(pid: Option<u32>) -> f64 {
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

/// A process's command name (`/proc/<pid>/comm`), if it runs on this machine.
pub fn command_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_and_machine_cpu_are_read_from_proc() {
        let stat = "4242 (tokio-runtime w) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 \
                    9 0 12345 100000 2000 18446744073709551615";
        assert!((process_ticks(stat).unwrap() - 325.0).abs() < 1e-9);
        let machine = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\n";
        assert_eq!(
            CpuTicks::parse(machine),
            Some(CpuTicks {
                busy: 161,
                total: 981
            })
        );
    }

    #[test]
    fn busy_time_and_share_are_taken_between_two_readings() {
        let earlier = CpuTicks {
            busy: 1_000,
            total: 5_000,
        };
        let later = CpuTicks {
            busy: 1_050,
            total: 5_200,
        };
        assert!((later.busy_seconds_since(earlier) - 0.5).abs() < 1e-9);
        assert_eq!(later.busy_percent_since(earlier), Some(25.0));
        assert_eq!(earlier.busy_percent_since(earlier), None);
    }
}
