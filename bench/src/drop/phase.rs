//! One phase of a configuration: wrk sends an exact number of attempts through
//! `bench/scripts/drop.lua`, and the script's own figures, wrk's socket errors and the CPU and
//! Redis counters around it make the phase's figures.

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use shared::adapters::redis::RedisStore;

use super::{
    NAME, Setup,
    configuration::Bench,
    figures::{PhaseFigures, StatusCounts, TimeSpent, merged_quantile},
    usage::{Pids, Usage},
};
use crate::{
    report::{round, thousands},
    wrk,
};

/// The wrk script, written next to the tokens file at run time.
pub(super) const WRK_SCRIPT: &str = include_str!("../../scripts/drop.lua");
/// The line the script's `done()` prints its figures on.
const RESULT_MARKER: &str = "DROP-RESULT ";
/// How often the bench looks whether every wrk thread has finished its share.
const DONE_POLL: Duration = Duration::from_millis(2);

impl Bench<'_> {
    /// Runs wrk for attempts `first .. first + count` and reads what its script measured.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, every argument named"
    )]
    pub(super) async fn phase(
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
        let mut child = wrk::spawn(&wrk_args)?;
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

pub(super) async fn read_all(
    mut from: impl tokio::io::AsyncRead + Unpin,
) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    from.read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn finished_threads(done_dir: &Path) -> u32 {
    std::fs::read_dir(done_dir).map_or(0, |entries| {
        u32::try_from(entries.filter_map(Result::ok).count()).unwrap_or(u32::MAX)
    })
}

/// What `bench/scripts/drop.lua` prints after wrk's report.
#[derive(Debug, Deserialize)]
pub(super) struct LuaResult {
    pub(super) attempts: u64,
    pub(super) responses: u64,
    pub(super) unfinished_threads: u64,
    pub(super) elapsed_us: u64,
    pub(super) statuses: BTreeMap<String, u64>,
    pub(super) codes: BTreeMap<String, u64>,
    pub(super) latency_us: LuaLatency,
}

#[derive(Debug, Deserialize)]
pub(super) struct LuaLatency {
    pub(super) max: f64,
    /// (percentile, µs), ascending.
    pub(super) quantiles: Vec<(f64, f64)>,
}

impl LuaResult {
    pub(super) fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix(RESULT_MARKER))
            .with_context(|| format!("no `{}` line", RESULT_MARKER.trim()))?;
        serde_json::from_str(line).with_context(|| format!("not the expected JSON: {line}"))
    }

    pub(super) fn figures(
        self,
        socket_errors: wrk::SocketErrors,
        where_time_goes: TimeSpent,
    ) -> PhaseFigures {
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
