//! Runs `wrk --latency` and reads its report.
//!
//! wrk's text report is the source: requests/s as wrk prints it (every completed response,
//! including non-2xx ones), the mean of its latency histogram (`Thread Stats` → `Latency` →
//! `Avg`), the 50th and 99th percentiles of its `Latency Distribution`, and its error lines.
//! An error is any failed socket connect, read, write or timeout, or any response with a status
//! of 400 or more (wrk's "Non-2xx or 3xx responses").

use std::{process::Stdio, time::Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::process::Child;

use crate::{args::Seconds, progress};

/// How long wrk waits for one response before counting a timeout. Far above the slowest
/// configuration's latency, so that slowness shows as latency rather than as errors.
pub const REQUEST_TIMEOUT: Seconds = Seconds(30);

/// One load run: `wrk -t{threads} -c{connections} -d{duration} --latency --timeout 30s {url}`.
#[derive(Debug, Clone)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
    pub duration: Seconds,
    pub url: String,
}

impl Load {
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("-t{}", self.threads),
            format!("-c{}", self.connections),
            format!("-d{}", self.duration),
            "--latency".to_owned(),
            "--timeout".to_owned(),
            REQUEST_TIMEOUT.to_string(),
            self.url.clone(),
        ]
    }

    /// The command as one would type it.
    pub fn command_line(&self) -> String {
        format!("wrk {}", self.args().join(" "))
    }

    /// Runs wrk with a progress bar labelled `label`; returns the parsed report and wrk's
    /// output as printed.
    pub async fn run(&self, label: &str) -> anyhow::Result<(Report, String)> {
        let child = spawn(&self.args())?;
        let bar = progress::bar(self.duration.0, "{msg:>12} [{bar:40}] {pos}/{len} s");
        bar.set_message(label.to_owned());
        let started = Instant::now();
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(500));
        let output = child.wait_with_output();
        tokio::pin!(output);
        let output = loop {
            tokio::select! {
                output = &mut output => break output.context("waiting for wrk")?,
                _ = ticker.tick() => bar.set_position(started.elapsed().as_secs().min(self.duration.0)),
            }
        };
        bar.finish_and_clear();

        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "wrk failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                stdout.trim()
            );
        }
        let report = parse(&stdout).with_context(|| format!("reading wrk's report:\n{stdout}"))?;
        Ok((report, stdout))
    }
}

/// Starts `wrk ARGS` with its output piped; killed when dropped.
pub fn spawn(args: &[String]) -> anyhow::Result<Child> {
    tokio::process::Command::new("wrk")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting wrk (scripts/bench installs it: apt-get install wrk)")
}

/// What one wrk run measured. Latencies in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub requests: u64,
    pub duration_s: f64,
    pub requests_per_sec: f64,
    pub latency_mean_ms: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub socket_errors: SocketErrors,
    /// Responses with a status of 400 or more.
    pub non_2xx: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl Report {
    /// Socket errors of every kind plus error responses.
    pub fn errors(&self) -> u64 {
        let socket = self.socket_errors;
        socket.connect + socket.read + socket.write + socket.timeout + self.non_2xx
    }
}

/// Parses the report `wrk --latency` prints. The requests/s line, the latency mean, the 99th
/// percentile and the request count are required; error lines appear only when there were
/// errors, so their absence means zero.
pub fn parse(text: &str) -> anyhow::Result<Report> {
    let mut requests = None;
    let mut duration_s = None;
    let mut requests_per_sec = None;
    let mut mean = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut socket_errors = SocketErrors::default();
    let mut non_2xx = 0;
    let mut in_distribution = false;

    for line in text.lines().map(str::trim) {
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution {
            if let Some((percent, value)) = line.split_once('%') {
                match percent.trim() {
                    "50" => p50 = Some(time_ms(value.trim())?),
                    "99" => p99 = Some(time_ms(value.trim())?),
                    _ => {}
                }
                continue;
            }
            in_distribution = false;
        }
        if let Some(stats) = line.strip_prefix("Latency ") {
            let average = stats.split_whitespace().next().unwrap_or_default();
            mean = Some(time_ms(average)?);
        } else if let Some((count, rest)) = line.split_once(" requests in ") {
            requests = Some(number::<u64>(count, "request count")?);
            let duration = rest.split(',').next().unwrap_or_default().trim();
            duration_s = Some(time_ms(duration)? / 1000.0);
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            for entry in errors.split(',') {
                let (kind, count) = entry
                    .trim()
                    .split_once(' ')
                    .with_context(|| format!("a socket error entry: {entry:?}"))?;
                let count = number::<u64>(count, "socket error count")?;
                match kind {
                    "connect" => socket_errors.connect = count,
                    "read" => socket_errors.read = count,
                    "write" => socket_errors.write = count,
                    "timeout" => socket_errors.timeout = count,
                    other => bail!("an unknown kind of socket error: {other:?}"),
                }
            }
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = number(count, "non-2xx count")?;
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            requests_per_sec = Some(number::<f64>(rate, "requests/sec")?);
        }
    }

    Ok(Report {
        requests: requests.context("no `N requests in T` line")?,
        duration_s: duration_s.context("no run duration")?,
        requests_per_sec: requests_per_sec.context("no `Requests/sec:` line")?,
        latency_mean_ms: mean.context("no `Latency` line under Thread Stats")?,
        latency_p50_ms: p50.context("no 50% line: was wrk run with --latency?")?,
        latency_p99_ms: p99.context("no 99% line: was wrk run with --latency?")?,
        socket_errors,
        non_2xx,
    })
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> anyhow::Result<T> {
    text.trim()
        .parse()
        .ok()
        .with_context(|| format!("{what}: not a number: {text:?}"))
}

/// wrk's times (`812.00us`, `21.05ms`, `5.01s`, `1.02m`, `1.00h`) in milliseconds.
fn time_ms(text: &str) -> anyhow::Result<f64> {
    const UNITS: [(&str, f64); 5] = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1_000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    UNITS
        .iter()
        .find_map(|(unit, scale)| {
            let value: f64 = text.strip_suffix(unit)?.parse().ok()?;
            Some(value * scale)
        })
        .with_context(|| format!("not a wrk time: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real captures of `wrk --latency`, each file starting with the command that produced it.
    /// The no-index configuration of `bench products-list` at 1,000 connections: times in
    /// seconds, error responses (pool timeouts), no socket errors.
    const NO_INDEX: &str = include_str!("../fixtures/wrk-no-index.txt");
    /// Its floor configuration: times in milliseconds, no error lines at all.
    const FLOOR: &str = include_str!("../fixtures/wrk-floor.txt");
    /// A throwaway local server that answers 200 on some connections, 503 on others and hangs
    /// up on the rest: socket errors, error responses and times in microseconds.
    const FLAKY: &str = include_str!("../fixtures/wrk-flaky-server.txt");

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-6
    }

    #[test]
    fn reads_a_slow_run_with_error_responses() {
        let report = parse(NO_INDEX).unwrap();
        assert_eq!(report.requests, 3_750);
        assert!(close(report.duration_s, 15.06), "{report:?}");
        assert!(close(report.requests_per_sec, 249.04), "{report:?}");
        assert!(close(report.latency_mean_ms, 3_220.0), "{report:?}");
        assert!(close(report.latency_p50_ms, 3_500.0), "{report:?}");
        assert!(close(report.latency_p99_ms, 5_400.0), "{report:?}");
        assert_eq!(report.socket_errors, SocketErrors::default());
        assert_eq!(report.non_2xx, 272);
        assert_eq!(report.errors(), 272);
    }

    #[test]
    fn a_report_without_error_lines_has_no_errors() {
        let report = parse(FLOOR).unwrap();
        assert_eq!(report.requests, 751_316);
        assert!(close(report.requests_per_sec, 50_035.70), "{report:?}");
        assert!(close(report.latency_mean_ms, 19.22), "{report:?}");
        assert!(close(report.latency_p50_ms, 18.18), "{report:?}");
        assert!(close(report.latency_p99_ms, 37.41), "{report:?}");
        assert_eq!(report.errors(), 0);
    }

    #[test]
    fn socket_errors_and_error_responses_add_up() {
        let report = parse(FLAKY).unwrap();
        assert_eq!(
            report.socket_errors,
            SocketErrors {
                connect: 0,
                read: 3,
                write: 0,
                timeout: 0,
            }
        );
        assert_eq!(report.non_2xx, 127_441);
        assert_eq!(report.errors(), 127_444);
        assert!(close(report.latency_mean_ms, 0.081_47), "{report:?}");
        assert!(close(report.latency_p99_ms, 0.241), "{report:?}");
    }

    #[test]
    fn times_convert_from_every_unit_wrk_prints() {
        assert!(close(time_ms("812.00us").unwrap(), 0.812));
        assert!(close(time_ms("21.05ms").unwrap(), 21.05));
        assert!(close(time_ms("5.01s").unwrap(), 5_010.0));
        assert!(close(time_ms("1.50m").unwrap(), 90_000.0));
        assert!(close(time_ms("1.00h").unwrap(), 3_600_000.0));
        assert!(time_ms("fast").is_err());
    }

    #[test]
    fn a_report_without_the_latency_distribution_is_refused() {
        let without: String = FLOOR
            .lines()
            .filter(|line| !line.trim_start().starts_with("99%"))
            .map(|line| format!("{line}\n"))
            .collect();
        let err = parse(&without).unwrap_err();
        assert!(err.to_string().contains("99%"), "{err}");
    }

    #[test]
    fn the_command_line_is_the_documented_one() {
        let load = Load {
            threads: 2,
            connections: 1_000,
            duration: Seconds(15),
            url: "http://127.0.0.1:3900/products".to_owned(),
        };
        assert_eq!(
            load.command_line(),
            "wrk -t2 -c1000 -d15s --latency --timeout 30s http://127.0.0.1:3900/products"
        );
    }
}
