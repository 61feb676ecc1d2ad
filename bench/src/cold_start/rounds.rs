//! The rounds of `bench cold-start`: the warm-up start of every binary, then per round each
//! function right after a start of the floor ([`Bench::measure`]), each start with the
//! environment Lambda would give it ([`Bench::environment`]).

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use chrono::Utc;
use shared::{Config, auth::TokenCodec};
use sqlx::{Connection, Executor, MySqlConnection};

use super::{
    Args, DATABASE, Function, JWT_SECRET, MEMORY_MB, NAME, REDIS_PREFIX,
    launch::{ColdStart, Launch, Outcome, cold_start},
    runtime_api::{self, RuntimeApi},
};
use crate::{report::round, settlement::BenchAws};

/// Every start of one binary.
#[derive(Debug, Default)]
pub(super) struct Starts {
    pub(super) runs: Vec<ColdStart>,
}

impl Starts {
    pub(super) fn answered(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|run| round(run.answered_ms, 2))
            .collect()
    }

    pub(super) fn ready(&self) -> Vec<f64> {
        self.runs.iter().map(|run| round(run.ready_ms, 2)).collect()
    }

    pub(super) fn warm(&self) -> Vec<f64> {
        self.runs.iter().map(|run| round(run.warm_ms, 2)).collect()
    }

    pub(super) fn outcomes(&self) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = Vec::new();
        for run in &self.runs {
            if !outcomes.contains(&run.outcome) {
                outcomes.push(run.outcome.clone());
            }
        }
        outcomes
    }
}

/// What every start shares: the Runtime API, the environment, the tokens, the logs.
#[derive(Debug)]
pub(super) struct Bench<'a> {
    args: &'a Args,
    database_url: String,
    codec: TokenCodec,
    log_dir: PathBuf,
}

impl<'a> Bench<'a> {
    pub(super) fn new(args: &'a Args, server: &str) -> anyhow::Result<Self> {
        let database_url = format!("{server}/{DATABASE}");
        let config = Config::from_vars(
            [
                ("DATABASE_URL", database_url.clone()),
                ("JWT_SECRET", JWT_SECRET.to_owned()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        )?;
        std::fs::create_dir_all(&args.env.log_dir)?;
        Ok(Self {
            args,
            database_url,
            codec: TokenCodec::new(&config.auth),
            log_dir: args.env.log_dir.clone(),
        })
    }

    /// The warm-up start of every binary, then the rounds: per function, the floor and the
    /// function back to back. Returns, per function, its starts and the floor's paired with
    /// them.
    pub(super) async fn measure(
        &self,
        (floor, floor_binary): (&Function, &Path),
        functions: &[&Function],
        binaries: &[PathBuf],
    ) -> anyhow::Result<Vec<(Starts, Starts)>> {
        let mut api = RuntimeApi::start().await?;
        let mut starts: Vec<(Starts, Starts)> =
            functions.iter().map(|_| Default::default()).collect();
        let bar = crate::progress::bar(
            u64::from(self.args.rounds + 1) * u64::try_from(functions.len())? * 2,
            "{bar:40} {pos}/{len} starts {msg}",
        );
        for round in 0..=self.args.rounds {
            // Each round's own settlement table and queue (see `cold_start`'s doc).
            let aws = BenchAws::create(&self.args.aws_endpoint).await?;
            self.forget_runs().await?;
            let measured = async {
                for (index, (function, binary)) in functions.iter().zip(binaries).enumerate() {
                    bar.set_message(format!("round {round}: {}", function.name));
                    let floor = self
                        .start(&mut api, floor_binary, floor, &aws, round)
                        .await?;
                    bar.inc(1);
                    let own = self.start(&mut api, binary, function, &aws, round).await?;
                    bar.inc(1);
                    // Round 0 is the untimed warm-up.
                    if round > 0
                        && let Some((own_starts, floor_starts)) = starts.get_mut(index)
                    {
                        own_starts.runs.push(own);
                        floor_starts.runs.push(floor);
                    }
                }
                anyhow::Ok(())
            }
            .await;
            aws.delete().await;
            measured?;
        }
        bar.finish_and_clear();
        Ok(starts)
    }

    /// Deletes the runs earlier rounds started: one still RUNNING in MySQL but unknown to this
    /// round's table would send the scheduler down its dead-run repair (an extra DynamoDB read
    /// and MySQL update) instead of the plain start a nightly fire makes.
    async fn forget_runs(&self) -> anyhow::Result<()> {
        let mut db = MySqlConnection::connect(&self.database_url).await?;
        db.execute("DELETE FROM settlement_runs").await?;
        Ok(())
    }

    async fn start(
        &self,
        api: &mut RuntimeApi,
        binary: &Path,
        function: &Function,
        aws: &BenchAws,
        round: u32,
    ) -> anyhow::Result<ColdStart> {
        let event = match function.role {
            Some(role) => {
                let token = self
                    .codec
                    .issue(1, role, Utc::now())
                    .map_err(|err| anyhow::anyhow!("signing a token: {err}"))?;
                function.event.replace("<access token>", &token)
            }
            None => function.event.to_owned(),
        };
        let slug = function.slug();
        // Keys of the start's own, so that no start finds another's (a login rate limit).
        let prefix = format!("{REDIS_PREFIX}{round}:{slug}:");
        let env = self.environment(function.binary, aws, &prefix);
        let request_id = format!("{slug}-{round}-{}", uuid::Uuid::new_v4().simple());
        let log = self.log_dir.join(format!("{NAME}-{slug}.log"));
        cold_start(
            api,
            &Launch {
                binary,
                function: function.binary,
                request_id: &request_id,
                event: Bytes::from(event),
                env: &env,
                log: &log,
            },
        )
        .await
    }

    /// What Lambda sets, and the function's configuration: nothing else reaches the process.
    fn environment(
        &self,
        function: &str,
        aws: &BenchAws,
        redis_prefix: &str,
    ) -> Vec<(String, String)> {
        let region = runtime_api::region();
        [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("TZ", ":UTC"),
            ("LANG", "en_US.UTF-8"),
            ("_HANDLER", "bootstrap"),
            ("AWS_LAMBDA_FUNCTION_NAME", function),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_SESSION_TOKEN", "test"),
            ("AWS_ENDPOINT_URL", self.args.aws_endpoint.as_str()),
            ("DATABASE_URL", self.database_url.as_str()),
            ("REDIS_URL", self.args.env.redis_url.as_str()),
            ("REDIS_KEY_PREFIX", redis_prefix),
            ("JWT_SECRET", JWT_SECRET),
            ("SETTLEMENT_RUNS_TABLE", aws.table.as_str()),
            ("SETTLEMENT_QUEUE_URL", aws.queue_url.as_str()),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .chain(std::iter::once((
            "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
            format!("/aws/lambda/{function}"),
        )))
        .collect()
    }
}
