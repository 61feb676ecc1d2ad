//! Where the time goes: the CPU time of the runner, wrk, Redis and MariaDB, the machine's busy
//! time and Redis's per-command call counts, sampled before and after each phase.

use std::{collections::BTreeMap, time::Instant};

use shared::adapters::redis::RedisStore;
use sqlx::MySqlConnection;

use super::figures::{CpuSplit, TimeSpent};
use crate::{
    machine::{CpuTicks, command_name, process_cpu_seconds},
    report::round,
};

/// The processes whose CPU time is accounted for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pids {
    pub(super) runner: Option<u32>,
    pub(super) redis: Option<u32>,
    pub(super) mariadb: Option<u32>,
}

impl Pids {
    /// Redis's and MariaDB's processes as they report them, if they run on this machine.
    pub(super) async fn find(
        redis: &RedisStore,
        admin: &mut MySqlConnection,
        runner: Option<u32>,
    ) -> Self {
        let redis_pid = async {
            let mut connection = redis.connection().await.ok()?;
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut connection)
                .await
                .ok()?;
            info.lines()
                .find_map(|line| line.strip_prefix("process_id:"))
                .and_then(|pid| pid.trim().parse().ok())
        }
        .await;
        let mariadb_pid = async {
            let file: String = sqlx::query_scalar("SELECT @@pid_file")
                .fetch_one(&mut *admin)
                .await
                .ok()?;
            std::fs::read_to_string(file).ok()?.trim().parse().ok()
        }
        .await;
        Self {
            runner,
            redis: redis_pid
                .filter(|pid| command_name(*pid).is_some_and(|name| name.contains("redis"))),
            mariadb: mariadb_pid.filter(|pid| {
                command_name(*pid)
                    .is_some_and(|name| name.contains("mariadb") || name.contains("mysqld"))
            }),
        }
    }
}

/// Calls and execution µs per command from `INFO commandstats`.
pub(super) fn command_stats(info: &str) -> BTreeMap<String, (u64, u64)> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |field: &str| -> Option<u64> {
                stats
                    .split(',')
                    .find_map(|stat| stat.strip_prefix(field)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// Redis's CPU seconds so far from `INFO cpu` (`used_cpu_sys + used_cpu_user`).
pub(super) fn used_cpu_seconds(info: &str) -> Option<f64> {
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// CPU and Redis counters at one instant.
#[derive(Debug)]
pub(super) struct Usage {
    pub(super) at: Instant,
    pub(super) machine: Option<CpuTicks>,
    pub(super) runner: f64,
    pub(super) wrk: f64,
    pub(super) redis: f64,
    pub(super) mariadb: f64,
    /// Calls and execution µs by command.
    pub(super) redis_calls: BTreeMap<String, (u64, u64)>,
    pub(super) redis_cpu: Option<f64>,
}

impl Usage {
    pub(super) async fn sample(
        pids: &Pids,
        wrk: Option<u32>,
        redis: &RedisStore,
    ) -> anyhow::Result<Self> {
        let mut connection = redis.connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .arg("cpu")
            .query_async(&mut connection)
            .await?;
        Ok(Self {
            at: Instant::now(),
            machine: CpuTicks::read(),
            runner: process_cpu_seconds(pids.runner),
            wrk: process_cpu_seconds(wrk),
            redis: process_cpu_seconds(pids.redis),
            mariadb: process_cpu_seconds(pids.mariadb),
            redis_calls: command_stats(&info),
            redis_cpu: used_cpu_seconds(&info),
        })
    }

    /// What happened between `self` and `later`, over `attempts` attempts.
    pub(super) fn spent(&self, later: &Self, attempts: u64) -> TimeSpent {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let machine = match (self.machine, later.machine) {
            (Some(earlier), Some(now)) => now.busy_seconds_since(earlier),
            _ => 0.0,
        };
        #[allow(clippy::cast_precision_loss, reason = "attempts are far below 2^53")]
        let attempts = attempts.max(1) as f64;
        let seconds = [
            later.runner - self.runner,
            later.wrk - self.wrk,
            later.redis - self.redis,
            later.mariadb - self.mariadb,
        ];
        let split = |scale: f64, decimals: i32| {
            let [runner, wrk, redis, mariadb] = seconds.map(|value| round(value * scale, decimals));
            CpuSplit {
                runner,
                wrk,
                redis,
                mariadb,
                rest: round(
                    (machine - seconds.iter().sum::<f64>()).max(0.0) * scale,
                    decimals,
                ),
                total: round(machine * scale, decimals),
            }
        };
        // The bench's own INFO calls are not the attempts'.
        let redis_exec: BTreeMap<String, (u64, u64)> = later
            .redis_calls
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .filter_map(|(name, (calls, usec))| {
                let (calls_before, usec_before) =
                    self.redis_calls.get(name).copied().unwrap_or((0, 0));
                let calls = calls.saturating_sub(calls_before);
                (calls > 0).then(|| (name.clone(), (calls, usec.saturating_sub(usec_before))))
            })
            .collect();
        #[allow(clippy::cast_precision_loss, reason = "call counts are far below 2^53")]
        let redis_commands_per_attempt = redis_exec
            .iter()
            .map(|(name, (calls, _))| (name.clone(), round(*calls as f64 / attempts, 3)))
            .filter(|(_, per_attempt)| *per_attempt > 0.0)
            .collect();
        TimeSpent {
            cores: split(1.0 / wall, 2),
            cpu_us_per_attempt: split(1e6 / attempts, 1),
            redis_commands_per_attempt,
            redis_used_cpu_s: later
                .redis_cpu
                .zip(self.redis_cpu)
                .map(|(now, earlier)| (now - earlier).max(0.0)),
            redis_exec,
        }
    }
}
