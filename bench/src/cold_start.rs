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
//! the function, back to back ([`rounds`]); the figure is the median of the per-round ratios, and
//! a target is met when most rounds meet it ([`figures`]). Each round has a settlement-runs table and queue of its own,
//! so the scheduler's first invocation starts a run in every round.
//!
//! The binaries are the host's release build (`scripts/bench` builds the workspace): x86_64
//! here, not the arm64 build Lambda runs. Sizes are the host binary zipped as `bootstrap`
//! ([`package`]), and cargo-lambda's arm64 zip when `scripts/build-lambdas` has made one.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod figures;
mod launch;
mod package;
mod rounds;
mod runtime_api;

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context, ensure};
use chrono::Utc;
use shared::{adapters::redis::RedisStore, domain::auth::Role};
use sqlx::{Connection, Executor, MySqlConnection};

use self::{
    figures::{Figures, Results, Sizes, figures, print_table, targets},
    package::{arm64_zip, zipped_bytes},
    rounds::{Bench, Starts},
};
use crate::{args::Environment, keys::flush, machine::Machine, report};

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

/// A row of the table: a function and the event its first invocation gets.
#[derive(Debug)]
struct Function {
    /// The row's name: the function's, or for a second row of one function, the function's
    /// and what its event does.
    name: &'static str,
    /// The function (its binary, and `AWS_LAMBDA_FUNCTION_NAME`).
    binary: &'static str,
    event_file: &'static str,
    event: &'static str,
    /// The role of the access token put in place of `<access token>`.
    role: Option<Role>,
    /// Whether the row counts for the targets; a second row of a function is only reported.
    targeted: bool,
}

impl Function {
    /// The row's name as the start's logs, request ids and Redis keys use it: `auth-login`.
    fn slug(&self) -> String {
        self.name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-")
    }
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
        binary: name,
        event_file,
        event,
        role,
        targeted: true,
    };
    vec![
        // An authenticated request, the common cold path: a login is rare beside it.
        function("auth", event!("auth", "me.json"), Some(Role::Buyer)),
        // A login hashes a password (Argon2) even for an unknown email: its cold start is
        // reported, not held to the targets.
        Function {
            name: "auth (login)",
            binary: "auth",
            targeted: false,
            ..function("auth", event!("auth", "login.json"), None)
        },
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

/// The floor as a row: its binary, invoked with an event it ignores.
fn floor() -> Function {
    Function {
        name: FLOOR,
        binary: FLOOR,
        event_file: "events/auth/health.json",
        event: FLOOR_EVENT,
        role: None,
        targeted: false,
    }
}

/// The options of `bench cold-start`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Rounds; in each, every function is started right after the floor.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Measure only these functions (comma-separated; `auth` names both of its rows); the
    /// results file is written only when every row ran.
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

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let machine = Machine::detect_with_load().await;
    machine.warn_if_busy();
    let all = functions();
    let chosen: Vec<&Function> = all
        .iter()
        .filter(|function| {
            args.only.is_empty()
                || args
                    .only
                    .iter()
                    .any(|name| name == function.name || name == function.binary)
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
        .map(|function| binary(function.binary))
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
        bench
            .measure((&floor(), &floor_binary), &chosen, &binaries)
            .await
    }
    .await;
    drop_database(&server).await;
    let redis = RedisStore::with_prefix(&args.env.redis_url, REDIS_PREFIX)?;
    flush(&redis).await?;
    let starts = outcome?;

    let mut sizes = Sizes::new();
    let zip_work = std::env::temp_dir().join(format!("kicksync-bench-zip-{}", std::process::id()));
    for (name, path) in std::iter::once((FLOOR, &floor_binary))
        .chain(chosen.iter().map(|function| function.binary).zip(&binaries))
    {
        if sizes.contains_key(name) {
            continue;
        }
        let bytes = zipped_bytes(path, &zip_work, name).await?;
        let arm64 = arm64_zip(lambda_dir.as_deref(), name);
        sizes.insert(name, (bytes, arm64.map(|(_, bytes)| bytes)));
    }
    let _ = std::fs::remove_dir_all(&zip_work);
    let zips = |name: &str| sizes.get(name).copied().unwrap_or((0, None));

    let mut floor_all = Starts::default();
    for (_, floor) in &starts {
        floor_all.runs.extend(floor.runs.iter().cloned());
    }
    let floor = figures(&floor_all, None, None, zips(FLOOR), false);
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
                    zips(function.binary),
                    !function.targeted,
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
    // The account of the events' access tokens (user 1), so `GET /auth/me` finds it.
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, name, role) \
         VALUES (1, 'cold-start@bench.invalid', '!', 'Cold start', 'buyer')",
    )
    .execute(&pool)
    .await
    .context("adding the tokens' account")?;
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
