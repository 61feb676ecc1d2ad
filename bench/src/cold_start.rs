//! `bench cold-start`: how long each function takes from process start to its first invocation
//! answered, against a hello-world `lambda_runtime` function built the same way (the floor,
//! `bench/floor-lambda`), and how big each deployment package is.
//!
//! The bench serves the Lambda Runtime API itself ([`runtime_api`]) and starts each release
//! binary as Lambda would: an environment of Lambda's variables and the function's
//! configuration and nothing else (MariaDB, Redis, and DynamoDB and SQS on the local AWS
//! endpoint, moto), `AWS_LAMBDA_RUNTIME_API` pointing at the bench. The first invocation is a
//! sample event of the function from `events/<function>/` (an access token of the right role
//! signed in where the event has `<access token>`), so the first answer does what it does in
//! Lambda: connect to the stores and handle the event. Timed per start ([`launch`]): until the
//! first `GET .../invocation/next` (Lambda's Init phase) and until the answer (the figure).
//!
//! Each binary is started once, untimed, before the rounds (its file is then in the page cache
//! for every timed start, the floor's too). Each round starts, per function, the floor and then
//! the function, back to back; the figure is the median of the per-round ratios, and a target is
//! met when most rounds meet it. Each round has a settlement-runs table and queue of its own,
//! so the scheduler's first invocation starts a run in every round.
//!
//! The binaries are the host's release build (`scripts/bench` builds the workspace): x86_64
//! here, not the arm64 build Lambda runs. Sizes are the host binary zipped as `bootstrap`
//! ([`package`]), and cargo-lambda's arm64 zip when `scripts/build-lambdas` has made one.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod launch;
mod package;
mod runtime_api;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, ensure};
use axum::body::Bytes;
use chrono::Utc;
use serde::Serialize;
use shared::{Config, adapters::redis::RedisStore, auth::TokenCodec, domain::auth::Role};
use sqlx::{Connection, Executor, MySqlConnection};

use self::{
    launch::{ColdStart, Launch, Outcome, cold_start},
    package::{arm64_zip, zipped_bytes},
    runtime_api::RuntimeApi,
};
use crate::{
    args::Environment,
    keys::flush,
    machine::Machine,
    report::{self, median, round, thousands},
    settlement::BenchAws,
};

const NAME: &str = "cold-start";
const DATABASE: &str = "kicksync_bench_cold_start";
const REDIS_PREFIX: &str = "bench-cold-start:";
const JWT_SECRET: &str = "kicksync-bench-jwt-secret-not-for-production";
/// The floor's binary (`bench/floor-lambda`).
const FLOOR: &str = "floor-lambda";
/// What the floor is invoked with (it ignores it).
const FLOOR_EVENT: &str = include_str!("../../events/auth/health.json");
/// Lambda's memory setting, as template.yaml's `Globals` sets it.
const MEMORY_MB: &str = "512";

/// Targets: a function's first answer within this many times the floor's, and this many ms.
const TARGET_VS_FLOOR: f64 = 3.0;
const TARGET_INIT_MS: f64 = 50.0;
/// A package at most this big (10 MB).
const TARGET_ZIP_BYTES: u64 = 10_000_000;

/// A function and the event its first invocation gets.
#[derive(Debug)]
struct Function {
    name: &'static str,
    event_file: &'static str,
    event: &'static str,
    /// The role of the access token put in place of `<access token>`.
    role: Option<Role>,
}

macro_rules! event {
    ($function:literal, $file:literal) => {
        (
            concat!("events/", $function, "/", $file),
            include_str!(concat!("../../events/", $function, "/", $file)),
        )
    };
}

fn functions() -> Vec<Function> {
    let function = |name, (event_file, event), role| Function {
        name,
        event_file,
        event,
        role,
    };
    vec![
        function("auth", event!("auth", "login.json"), None),
        function("products", event!("products", "list-size-2.json"), None),
        function(
            "orders",
            event!("orders", "checkout.json"),
            Some(Role::Buyer),
        ),
        function(
            "payment-webhook",
            event!("payment-webhook", "webhook-paid.json"),
            None,
        ),
        function(
            "order-sweeper",
            event!("order-sweeper", "scheduled.json"),
            None,
        ),
        function(
            "settlement-scheduler",
            event!("settlement-scheduler", "scheduled.json"),
            None,
        ),
        function(
            "settlement-worker",
            event!("settlement-worker", "partition.json"),
            None,
        ),
        function(
            "admin",
            event!("admin", "start-run.json"),
            Some(Role::Admin),
        ),
    ]
}

/// The options of `bench cold-start`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Rounds; in each, every function is started right after the floor.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Measure only these functions (comma-separated); the results file is written only when
    /// every function ran.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where the release binaries are [default: beside this binary].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// cargo-lambda's packages (`<dir>/<function>/bootstrap.zip`, from `scripts/build-lambdas`)
    /// [default: $CARGO_TARGET_DIR/lambda].
    #[arg(long)]
    pub lambda_dir: Option<PathBuf>,
    /// Local AWS endpoint (moto_server) the functions use.
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:5000"
    )]
    pub aws_endpoint: String,
    #[command(flatten)]
    pub env: Environment,
}

/// One binary's figures.
#[derive(Debug, Serialize)]
struct Figures {
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
}

#[derive(Debug, Serialize)]
struct Targets {
    init_vs_floor_at_most: f64,
    init_ms_at_most: f64,
    zip_bytes_at_most: u64,
    /// Functions whose ratio and time met the targets in most rounds.
    init_pass: BTreeMap<&'static str, bool>,
    zip_pass: BTreeMap<&'static str, bool>,
    all_pass: bool,
}

#[derive(Debug, Serialize)]
struct Results {
    date: String,
    command: String,
    machine: Machine,
    build: &'static str,
    rounds: u32,
    floor: Figures,
    #[serde(flatten)]
    functions: BTreeMap<&'static str, Figures>,
    targets: Targets,
}

/// Every start of one binary.
#[derive(Debug, Default)]
struct Starts {
    runs: Vec<ColdStart>,
}

impl Starts {
    fn answered(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|run| round(run.answered_ms, 2))
            .collect()
    }

    fn ready(&self) -> Vec<f64> {
        self.runs.iter().map(|run| round(run.ready_ms, 2)).collect()
    }

    fn warm(&self) -> Vec<f64> {
        self.runs.iter().map(|run| round(run.warm_ms, 2)).collect()
    }

    fn outcomes(&self) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = Vec::new();
        for run in &self.runs {
            if !outcomes.contains(&run.outcome) {
                outcomes.push(run.outcome.clone());
            }
        }
        outcomes
    }
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let machine = Machine::detect_with_load().await;
    machine.warn_if_busy();
    let all = functions();
    let chosen: Vec<&Function> = all
        .iter()
        .filter(|function| {
            args.only.is_empty() || args.only.iter().any(|name| name == function.name)
        })
        .collect();
    ensure!(
        !chosen.is_empty(),
        "--only names no function of {}",
        names(&all)
    );
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .context("finding this binary")?
            .parent()
            .context("this binary's folder")?
            .to_owned(),
    };
    let binary = |name: &str| -> anyhow::Result<PathBuf> {
        let path = bin_dir.join(name);
        ensure!(
            path.is_file(),
            "{} not found: build the workspace in release mode (`scripts/bench` does) or pass --bin-dir",
            path.display()
        );
        Ok(path)
    };
    let floor_binary = binary(FLOOR)?;
    let binaries = chosen
        .iter()
        .map(|function| binary(function.name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let lambda_dir = args.lambda_dir.clone().or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("lambda"))
    });
    println!(
        "cold start: the floor and {} functions ({}), {} rounds; binaries from {}",
        chosen.len(),
        chosen
            .iter()
            .map(|function| function.name)
            .collect::<Vec<_>>()
            .join(", "),
        args.rounds,
        bin_dir.display()
    );

    let server = args.env.mysql_url.trim_end_matches('/').to_owned();
    prepare_database(&server).await?;
    let outcome = async {
        let bench = Bench::new(args, &server)?;
        bench.measure(&floor_binary, &chosen, &binaries).await
    }
    .await;
    drop_database(&server).await;
    let redis = RedisStore::with_prefix(&args.env.redis_url, REDIS_PREFIX)?;
    flush(&redis).await?;
    let starts = outcome?;

    let mut sizes = BTreeMap::new();
    let zip_work = std::env::temp_dir().join(format!("kicksync-bench-zip-{}", std::process::id()));
    for (name, path) in std::iter::once((FLOOR, &floor_binary))
        .chain(chosen.iter().map(|function| function.name).zip(&binaries))
    {
        let bytes = zipped_bytes(path, &zip_work, name).await?;
        let arm64 = arm64_zip(lambda_dir.as_deref(), name);
        sizes.insert(name, (bytes, arm64.map(|(_, bytes)| bytes)));
    }
    let _ = std::fs::remove_dir_all(&zip_work);

    let figures =
        |starts: &Starts, floor: Option<&Starts>, event: Option<&'static str>, name: &str| {
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
            let (zip_bytes, arm64_zip_bytes) = sizes.get(name).copied().unwrap_or((0, None));
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
            }
        };
    let mut floor_all = Starts::default();
    for (_, floor) in &starts {
        floor_all.runs.extend(floor.runs.iter().cloned());
    }
    let floor = figures(&floor_all, None, None, FLOOR);
    let functions: BTreeMap<&'static str, Figures> = chosen
        .iter()
        .zip(&starts)
        .map(|(function, (own, paired_floor))| {
            (
                function.name,
                figures(
                    own,
                    Some(paired_floor),
                    Some(function.event_file),
                    function.name,
                ),
            )
        })
        .collect();
    let targets = targets(&functions, &floor);
    let results = Results {
        date: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: format!("scripts/bench {NAME} --rounds {}", args.rounds),
        machine,
        build: "host release build (x86_64, the workspace's release profile), not the arm64 \
                build Lambda runs; sizes of cargo-lambda's arm64 zips where present",
        rounds: args.rounds,
        floor,
        functions,
        targets,
    };
    print_table(&results);
    if chosen.len() == all.len() {
        let path = report::write_json(&args.env.results_dir, NAME, &results)?;
        println!("\nwrote {}", path.display());
    } else {
        println!("\nnot every function ran (--only): no results file written");
    }
    Ok(())
}

fn names(functions: &[Function]) -> String {
    functions
        .iter()
        .map(|function| function.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn targets(functions: &BTreeMap<&'static str, Figures>, floor: &Figures) -> Targets {
    let most = |values: &[bool]| values.iter().filter(|met| **met).count() * 2 > values.len();
    let init_pass: BTreeMap<&'static str, bool> = functions
        .iter()
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
        .chain(functions.iter().map(|(name, figures)| (*name, figures)))
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

/// What every start shares: the Runtime API, the environment, the tokens, the logs.
#[derive(Debug)]
struct Bench<'a> {
    args: &'a Args,
    database_url: String,
    codec: TokenCodec,
    log_dir: PathBuf,
}

impl<'a> Bench<'a> {
    fn new(args: &'a Args, server: &str) -> anyhow::Result<Self> {
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
    async fn measure(
        &self,
        floor_binary: &Path,
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
            // Each round's own settlement table and queue (see the module's doc).
            let aws = BenchAws::create(&self.args.aws_endpoint).await?;
            let measured = async {
                for (index, (function, binary)) in functions.iter().zip(binaries).enumerate() {
                    bar.set_message(format!("round {round}: {}", function.name));
                    let floor = self
                        .start(
                            &mut api,
                            floor_binary,
                            FLOOR,
                            FLOOR_EVENT,
                            None,
                            &aws,
                            round,
                        )
                        .await?;
                    bar.inc(1);
                    let own = self
                        .start(
                            &mut api,
                            binary,
                            function.name,
                            function.event,
                            function.role,
                            &aws,
                            round,
                        )
                        .await?;
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

    #[allow(clippy::too_many_arguments, reason = "one start, every argument named")]
    async fn start(
        &self,
        api: &mut RuntimeApi,
        binary: &Path,
        function: &str,
        event: &str,
        role: Option<Role>,
        aws: &BenchAws,
        round: u32,
    ) -> anyhow::Result<ColdStart> {
        let event = match role {
            Some(role) => {
                let token = self
                    .codec
                    .issue(1, role, Utc::now())
                    .map_err(|err| anyhow::anyhow!("signing a token: {err}"))?;
                event.replace("<access token>", &token)
            }
            None => event.to_owned(),
        };
        // Keys of the start's own, so that no start finds another's (a login rate limit).
        let prefix = format!("{REDIS_PREFIX}{round}:{function}:");
        let env = self.environment(function, aws, &prefix);
        let request_id = format!("{function}-{round}-{}", uuid::Uuid::new_v4().simple());
        let log = self.log_dir.join(format!("{NAME}-{function}.log"));
        cold_start(
            api,
            &Launch {
                binary,
                function,
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

/// A fresh, migrated database for the functions.
async fn prepare_database(server: &str) -> anyhow::Result<()> {
    let mut admin = MySqlConnection::connect(server)
        .await
        .with_context(|| format!("connecting to MySQL at {server}"))?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {DATABASE}").as_str())
        .await?;
    admin
        .execute(format!("CREATE DATABASE {DATABASE}").as_str())
        .await?;
    let pool = sqlx::MySqlPool::connect(&format!("{server}/{DATABASE}")).await?;
    shared::adapters::mysql::migrate(&pool)
        .await
        .context("migrating the bench database")?;
    pool.close().await;
    Ok(())
}

async fn drop_database(server: &str) {
    if let Ok(mut admin) = MySqlConnection::connect(server).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {DATABASE}").as_str())
            .await;
    }
}

fn print_table(results: &Results) {
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
