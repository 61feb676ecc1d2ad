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

use anyhow::{Context, bail, ensure};
use redis::AsyncCommands;
use serde::Serialize;
use shared::adapters::redis::RedisStore;
use sqlx::{MySqlPool, Row};

use crate::{
    catalogue,
    cli::ProductsListArgs,
    report::{self, Machine, latency, rate, round, thousands},
    runner::{Launch, Runner},
    wrk::{Load, SocketErrors},
};

/// The results file: `bench/results/products-list.json`.
const NAME: &str = "products-list";
/// Every Redis key of the bench starts with this; flushed before each configuration.
const REDIS_PREFIX: &str = "bench:";
/// The key (after the prefix) `GET /_bench/floor` reads; see `kicksync_local::bench_floor`.
const FLOOR_KEY: &str = "bench:floor";
const FLOOR_PATH: &str = "/_bench/floor";
const LIST_PATH: &str = "/products";
const INDEX: &str = "idx_products_newest_release";
/// The runner's token key; the bench signs nothing, but the runner will not start without one.
const JWT_SECRET: &str = "kicksync-bench-jwt-secret-not-for-production";
/// Sequential requests before each load run: they open the pools and fill the cache.
const WARMUP_REQUESTS: usize = 20;
/// Page 1 as the handler reads it (functions/products/src/store.rs), here only for EXPLAIN.
const PAGE_ONE_QUERY: &str = "SELECT id, name, brand, price, release_at, partner_id, \
     stock_remaining FROM products ORDER BY release_at DESC, id DESC LIMIT 41";

/// Targets, as ratios of requests/s measured in the same run.
const TARGET_CACHE_VS_FLOOR: f64 = 0.5;
const TARGET_CACHE_VS_NO_INDEX: f64 = 24.0;

/// The published figures of the system KickSync replaces (not measured here).
const REPLACED: Replaced = Replaced {
    note: "published figures of the system KickSync replaces; not measured by this benchmark",
    no_index_rps: 98.9,
    index_rps: 322.5,
    cache_rps: 2_406.0,
    no_index_mean_ms: 9_200.0,
    index_mean_ms: 2_800.0,
    cache_mean_ms: 365.0,
};

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

/// One configuration's figures.
#[derive(Debug, Serialize)]
struct Measured {
    /// As wrk reports it: every completed response per second, error responses included.
    rps: f64,
    mean_ms: f64,
    p99_ms: f64,
    /// Socket errors (connect, read, write, timeout) plus responses with status ≥ 400.
    errors: u64,
    p50_ms: f64,
    requests: u64,
    non_2xx: u64,
    socket_errors: SocketErrors,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_cache: Option<&'static str>,
    /// EXPLAIN of the page-1 query in this configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    query_plan: Option<QueryPlan>,
}

#[derive(Debug, Serialize)]
struct QueryPlan {
    key: Option<String>,
    extra: Option<String>,
}

#[derive(Debug, Serialize)]
struct Ratios {
    cache_vs_floor: f64,
    cache_vs_no_index: f64,
    index_vs_no_index: f64,
}

#[derive(Debug, Serialize)]
struct Targets {
    cache_vs_floor_at_least: f64,
    cache_without_errors: bool,
    cache_vs_floor_pass: bool,
    cache_vs_no_index_at_least: f64,
    cache_vs_no_index_pass: bool,
}

#[derive(Debug, Serialize)]
struct Replaced {
    note: &'static str,
    no_index_rps: f64,
    index_rps: f64,
    cache_rps: f64,
    no_index_mean_ms: f64,
    index_mean_ms: f64,
    cache_mean_ms: f64,
}

#[derive(Debug, Serialize)]
struct Results {
    date: String,
    command: String,
    machine: Machine,
    products: u32,
    connections: u32,
    threads: u32,
    duration_s: u64,
    database_max_connections: u32,
    /// The load generator's command line (URL per configuration).
    wrk: String,
    page_bytes: usize,
    no_index: Measured,
    index: Measured,
    cache: Measured,
    floor: Measured,
    ratios: Ratios,
    targets: Targets,
    baseline_replaced_system: Replaced,
}

pub async fn run(args: &ProductsListArgs) -> anyhow::Result<()> {
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
    let migrated_index = index_definition(&db).await?;
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
                sqlx::query(&format!("ALTER TABLE products DROP INDEX {INDEX}"))
                    .execute(&db)
                    .await?;
                Some(explain(&db).await?)
            }
            Setup::Index => {
                sqlx::query(&format!(
                    "ALTER TABLE products ADD INDEX {INDEX} (release_at DESC, id DESC)"
                ))
                .execute(&db)
                .await?;
                let recreated = index_definition(&db).await?;
                ensure!(
                    recreated == migrated_index,
                    "the re-created index differs from the migration's: {recreated:?} vs {migrated_index:?}"
                );
                Some(explain(&db).await?)
            }
            Setup::Cache => Some(explain(&db).await?),
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
fn command(args: &ProductsListArgs) -> String {
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
    args: &ProductsListArgs,
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
    let flags: &[&str] = if setup == Setup::Floor {
        &["--bench-floor"]
    } else {
        &[]
    };
    Runner::start(
        Launch {
            binary,
            addr,
            args: flags,
            env: &env,
            log: args
                .env
                .log_dir
                .join(format!("{NAME}-{}.runner.log", setup.name())),
        },
        client,
    )
    .await
    .with_context(|| format!("{}: starting the runner", setup.name()))
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

/// Deletes every key with the store's prefix (`bench drop` uses it too).
pub(crate) async fn flush(redis: &RedisStore) -> anyhow::Result<()> {
    let mut connection = redis.connection().await?;
    let keys: Vec<String> = {
        let mut iter = connection
            .scan_match::<_, String>(format!("{}*", redis.prefix()))
            .await?;
        let mut keys = Vec::new();
        while let Some(key) = iter.next_item().await {
            keys.push(key);
        }
        keys
    };
    if !keys.is_empty() {
        let () = connection.del(keys).await?;
    }
    Ok(())
}

/// The index's line of `SHOW CREATE TABLE products`, to check that the re-created index is
/// exactly the migration's.
async fn index_definition(db: &MySqlPool) -> anyhow::Result<String> {
    let row = sqlx::query("SHOW CREATE TABLE products")
        .fetch_one(db)
        .await?;
    let ddl: String = row.try_get(1)?;
    ddl.lines()
        .map(|line| line.trim().trim_end_matches(',').to_owned())
        .find(|line| line.contains(INDEX))
        .with_context(|| format!("no {INDEX} in SHOW CREATE TABLE products"))
}

async fn explain(db: &MySqlPool) -> anyhow::Result<QueryPlan> {
    let row = sqlx::query(&format!("EXPLAIN {PAGE_ONE_QUERY}"))
        .fetch_one(db)
        .await?;
    Ok(QueryPlan {
        key: text_column(&row, "key"),
        extra: text_column(&row, "Extra"),
    })
}

/// EXPLAIN's text columns come back as text or as bytes depending on the server.
fn text_column(row: &sqlx::mysql::MySqlRow, name: &str) -> Option<String> {
    row.try_get::<Option<String>, _>(name)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<Vec<u8>>, _>(name)
                .ok()
                .flatten()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        })
}

fn print_table(results: &Results) {
    let rows = [
        ("no-index", &results.no_index),
        ("index", &results.index),
        ("cache", &results.cache),
        ("floor", &results.floor),
    ];
    println!(
        "\n{:<9} {:>11} {:>10} {:>10} {:>9} {:>11} {:>9}",
        "config", "req/s", "mean", "p99", "errors", "vs no-index", "vs floor"
    );
    for (name, figures) in rows {
        println!(
            "{name:<9} {:>11} {:>10} {:>10} {:>9} {:>10.1}x {:>8.3}x",
            rate(figures.rps),
            latency(figures.mean_ms),
            latency(figures.p99_ms),
            thousands(figures.errors),
            figures.rps / results.no_index.rps,
            figures.rps / results.floor.rps,
        );
    }
    let replaced = &results.baseline_replaced_system;
    println!(
        "\nreplaced system (published, not measured here): {} → {} → {} req/s, mean {} → {} → {}",
        rate(replaced.no_index_rps),
        rate(replaced.index_rps),
        rate(replaced.cache_rps),
        latency(replaced.no_index_mean_ms),
        latency(replaced.index_mean_ms),
        latency(replaced.cache_mean_ms),
    );
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let targets = &results.targets;
    println!(
        "{}  cache ≥ {}x floor req/s with no errors: {:.3}x, {} errors",
        verdict(targets.cache_vs_floor_pass),
        targets.cache_vs_floor_at_least,
        results.ratios.cache_vs_floor,
        thousands(results.cache.errors),
    );
    println!(
        "{}  cache ≥ {}x no-index req/s: {:.1}x",
        verdict(targets.cache_vs_no_index_pass),
        targets.cache_vs_no_index_at_least,
        results.ratios.cache_vs_no_index,
    );
}
