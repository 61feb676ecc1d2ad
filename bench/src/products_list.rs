//! `bench products-list`: page 1 of `GET /products` at high concurrency, in four
//! configurations measured in one run against the release local runner:
//!
//! | configuration | database | `PRODUCT_LIST_CACHE` | URL |
//! |---|---|---|---|
//! | `no-index` | `idx_products_newest_release` dropped | `false` | `/products` |
//! | `index` | the index re-created exactly as the migration defines it | `false` | `/products` |
//! | `cache` | index | `true` (page 1 from Redis) | `/products` |
//! | `floor` | index | — | `/_bench/floor`: one Redis GET of the same bytes, nothing else |
//!
//! Before each load run the runner is started fresh, the bench's Redis keys are flushed, a few
//! requests warm it up, and the answer is checked: every configuration must send the very same
//! page-1 bytes (the floor sends what the first configuration sent), the cached configuration
//! must answer `x-cache: hit` and the others `bypass`. Targets (same run): cached page 1 at
//! least 0.5× the floor's requests/s with no errors, and at least 24× the no-index one.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::net::{Ipv4Addr, SocketAddr};

mod args;
mod catalogue;
mod index;
mod results;

use anyhow::{Context, bail, ensure};
use redis::AsyncCommands;
use shared::adapters::redis::RedisStore;

pub use self::args::Args;
use self::results::{Measured, REPLACED, Ratios, Results, Targets, print_table};
use crate::{
    keys::flush,
    machine::Machine,
    report::{self, latency, rate, round, thousands},
    runner::{Launch, Runner},
    wrk::Load,
};

/// The results file: `bench/results/products-list.json`.
const NAME: &str = "products-list";
/// Every Redis key of the bench starts with this; flushed before each configuration.
const REDIS_PREFIX: &str = "bench:";
/// The key (after the prefix) `GET /_bench/floor` reads; see `kicksync_local::bench_floor`.
const FLOOR_KEY: &str = "bench:floor";
const FLOOR_PATH: &str = "/_bench/floor";
const LIST_PATH: &str = "/products";
/// The runner's token key; the bench signs nothing, but the runner will not start without one.
const JWT_SECRET: &str = "kicksync-bench-jwt-secret-not-for-production";
/// Sequential requests before each load run: they open the pools and fill the cache.
const WARMUP_REQUESTS: usize = 20;

/// Targets, as ratios of requests/s measured in the same run.
const TARGET_CACHE_VS_FLOOR: f64 = 0.5;
const TARGET_CACHE_VS_NO_INDEX: f64 = 24.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    NoIndex,
    Index,
    Cache,
    Floor,
}

impl Setup {
    const ALL: [Self; 4] = [Self::NoIndex, Self::Index, Self::Cache, Self::Floor];

    fn name(self) -> &'static str {
        match self {
            Self::NoIndex => "no-index",
            Self::Index => "index",
            Self::Cache => "cache",
            Self::Floor => "floor",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Floor => FLOOR_PATH,
            _ => LIST_PATH,
        }
    }

    /// What the list's `x-cache` header must say once warm.
    fn x_cache(self) -> Option<&'static str> {
        match self {
            Self::NoIndex | Self::Index => Some("bypass"),
            Self::Cache => Some("hit"),
            Self::Floor => None,
        }
    }

    fn list_cache(self) -> bool {
        matches!(self, Self::Cache | Self::Floor)
    }
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    ensure!(
        args.connections >= args.threads && args.threads > 0,
        "--connections must be at least --threads, and --threads at least 1"
    );
    ensure!(args.products > 0, "--products must be at least 1");
    let runner_binary = args.env.runner_binary()?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let redis = RedisStore::with_prefix(&args.env.redis_url, REDIS_PREFIX)?;
    let machine = Machine::detect_with_load().await;
    machine.warn_if_busy();

    println!(
        "products-list: {} products, {} connections, {} per configuration, wrk -t{}",
        thousands(u64::from(args.products)),
        thousands(u64::from(args.connections)),
        args.duration,
        args.threads
    );
    let db = catalogue::create(&args.env.mysql_url, args.products).await?;
    let migrated_index = index::definition(&db).await?;
    println!(
        "database {} ready: {} products of {} partners",
        catalogue::DATABASE,
        thousands(u64::from(args.products)),
        catalogue::PARTNERS
    );

    let mut page: Option<Vec<u8>> = None;
    let mut measured = Vec::with_capacity(Setup::ALL.len());
    for setup in Setup::ALL {
        let query_plan = match setup {
            Setup::NoIndex => {
                index::drop(&db).await?;
                Some(index::explain(&db).await?)
            }
            Setup::Index => {
                index::recreate(&db, &migrated_index).await?;
                Some(index::explain(&db).await?)
            }
            Setup::Cache => Some(index::explain(&db).await?),
            Setup::Floor => None,
        };
        flush(&redis).await?;
        if setup == Setup::Floor {
            let bytes = page
                .as_deref()
                .context("no page-1 bytes to serve as the floor")?;
            let mut connection = redis.connection().await?;
            let () = connection.set(redis.key(FLOOR_KEY), bytes).await?;
        }

        let runner = start_runner(args, &runner_binary, addr, setup, &client).await?;
        let url = runner.url(setup.path());
        let body = warm_up(&client, &url, setup).await?;
        match &page {
            None => page = Some(body),
            Some(expected) => ensure!(
                *expected == body,
                "{}: {url} answered other bytes than the first configuration ({} vs {} bytes)",
                setup.name(),
                body.len(),
                expected.len()
            ),
        }

        let load = Load {
            threads: args.threads,
            connections: args.connections,
            duration: args.duration,
            url: url.clone(),
        };
        let (wrk_report, raw) = load.run(setup.name()).await?;
        runner.stop().await.with_context(|| setup.name())?;
        let raw_path = args
            .env
            .log_dir
            .join(format!("{NAME}-{}.wrk.txt", setup.name()));
        std::fs::write(&raw_path, format!("$ {}\n{raw}", load.command_line()))
            .with_context(|| format!("writing {}", raw_path.display()))?;

        let result = Measured {
            rps: round(wrk_report.requests_per_sec, 2),
            mean_ms: round(wrk_report.latency_mean_ms, 3),
            p99_ms: round(wrk_report.latency_p99_ms, 3),
            errors: wrk_report.errors(),
            p50_ms: round(wrk_report.latency_p50_ms, 3),
            requests: wrk_report.requests,
            non_2xx: wrk_report.non_2xx,
            socket_errors: wrk_report.socket_errors,
            url,
            x_cache: setup.x_cache(),
            query_plan,
        };
        println!(
            "{:>9}: {} req/s, mean {}, p99 {}, {} errors",
            setup.name(),
            rate(result.rps),
            latency(result.mean_ms),
            latency(result.p99_ms),
            thousands(result.errors)
        );
        measured.push(result);
    }

    flush(&redis).await?;
    db.close().await;
    catalogue::drop(&args.env.mysql_url).await?;

    let [no_index, index, cache, floor]: [Measured; 4] = measured
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected one result per configuration"))?;
    let ratios = Ratios {
        cache_vs_floor: round(cache.rps / floor.rps, 3),
        cache_vs_no_index: round(cache.rps / no_index.rps, 1),
        index_vs_no_index: round(index.rps / no_index.rps, 2),
    };
    let targets = Targets {
        cache_vs_floor_at_least: TARGET_CACHE_VS_FLOOR,
        cache_without_errors: cache.errors == 0,
        cache_vs_floor_pass: ratios.cache_vs_floor >= TARGET_CACHE_VS_FLOOR && cache.errors == 0,
        cache_vs_no_index_at_least: TARGET_CACHE_VS_NO_INDEX,
        cache_vs_no_index_pass: ratios.cache_vs_no_index >= TARGET_CACHE_VS_NO_INDEX,
    };
    let results = Results {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: command(args),
        machine,
        products: args.products,
        connections: args.connections,
        threads: args.threads,
        duration_s: args.duration.0,
        database_max_connections: args.db_connections,
        wrk: Load {
            threads: args.threads,
            connections: args.connections,
            duration: args.duration,
            url: "URL".to_owned(),
        }
        .command_line(),
        page_bytes: page.as_ref().map_or(0, Vec::len),
        no_index,
        index,
        cache,
        floor,
        ratios,
        targets,
        baseline_replaced_system: REPLACED,
    };
    print_table(&results);
    let path = report::write_json(&args.env.results_dir, NAME, &results)?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// The command that reproduces this run, every option spelled out.
fn command(args: &Args) -> String {
    format!(
        "scripts/bench {NAME} --products {} --connections {} --duration {} --threads {} --port {} --db-connections {}",
        args.products,
        args.connections,
        args.duration,
        args.threads,
        args.port,
        args.db_connections
    )
}

async fn start_runner(
    args: &Args,
    binary: &std::path::Path,
    addr: SocketAddr,
    setup: Setup,
    client: &reqwest::Client,
) -> anyhow::Result<Runner> {
    let env = [
        ("DATABASE_URL", catalogue::database_url(&args.env.mysql_url)),
        ("DATABASE_MAX_CONNECTIONS", args.db_connections.to_string()),
        ("REDIS_URL", args.env.redis_url.clone()),
        ("REDIS_KEY_PREFIX", REDIS_PREFIX.to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("PRODUCT_LIST_CACHE", setup.list_cache().to_string()),
        // Only warnings and errors: a log line per request would be part of the measurement.
        ("RUST_LOG", "warn".to_owned()),
    ];
    Runner::start(
        Launch {
            binary,
            addr,
            env: &env,
            bench: NAME,
            configuration: setup.name(),
            log_dir: &args.env.log_dir,
            floor: setup == Setup::Floor,
        },
        client,
    )
    .await
}

/// A few sequential requests; returns the last body after checking the status, the content
/// type and, for the list, that `x-cache` says what this configuration should.
async fn warm_up(client: &reqwest::Client, url: &str, setup: Setup) -> anyhow::Result<Vec<u8>> {
    let mut last = None;
    for _ in 0..WARMUP_REQUESTS {
        let response = client.get(url).send().await?;
        let status = response.status();
        let x_cache = response
            .headers()
            .get("x-cache")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "{}: {url} answered {status}: {}",
                setup.name(),
                String::from_utf8_lossy(&body)
            );
        }
        ensure!(
            content_type == "application/json",
            "{}: {url} answered content-type {content_type:?}",
            setup.name()
        );
        last = Some((body, x_cache));
    }
    let (body, x_cache) = last.context("no warm-up request was made")?;
    if let Some(expected) = setup.x_cache() {
        ensure!(
            x_cache.as_deref() == Some(expected),
            "{}: once warm, {url} should answer x-cache: {expected}, answered {x_cache:?}",
            setup.name()
        );
    }
    // The page must be page 1 of the generated catalogue, not an empty list.
    let page: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("{}: {url} did not answer JSON", setup.name()))?;
    ensure!(
        page["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()),
        "{}: {url} answered a page without items",
        setup.name()
    );
    Ok(body.to_vec())
}
