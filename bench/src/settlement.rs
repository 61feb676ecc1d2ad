//! `bench settlement`: the nightly settlement, end to end, against its floor and the naive
//! approach the replaced system started from, all in one run on the same data.
//!
//! - **data**: `--orders` orders (default 1,000,000) confirmed over one Asia/Seoul day for 1,000
//!   partners, about 90 % CONFIRMED, generated inside MariaDB from its SEQUENCE engine in chunks
//!   (a progress bar shows them), in a fresh database `kicksync_bench_settlement`;
//! - **end to end**: from calling the scheduler's `start_run` to the run being COMPLETED, through
//!   real SQS (moto_server) and the worker's handler, fed by the local runner's own SQS poller;
//! - **floor**: one `GROUP BY partner_id` of the same day over the same covering index;
//! - **naive** (100k orders on another day, labelled as such): OFFSET pages ordered by id, each
//!   row added up in the application, each settlement inserted by its own statement;
//! - **sweep** of the partition count, and the same end to end on 10M orders;
//! - **bulk insert**: 100,000 settlement rows written by the worker's batched insert against
//!   one INSERT statement per row.
//!
//! Figures go to `bench/results/settlement.json` (DESIGN.md section 6).
#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Args;
use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use kicksync_local::{
    functions::{SETTLEMENT_WORKER_BATCH_SIZE, SETTLEMENT_WORKER_CONCURRENCY},
    queues::{Poller, QueueBinding},
};
use serde_json::json;
use shared::{
    Config, Platform,
    adapters::{
        aws,
        dynamodb::Trigger,
        settlements::{self, SettlementRow},
    },
    domain::settlement::{Payout, day_range},
};
use sqlx::{Connection, Executor, MySqlConnection, MySqlPool, Row};
use tokio::task::JoinSet;

use crate::{cli::Environment, report, timeline::Timeline};

const DATABASE: &str = "kicksync_bench_settlement";
const PARTNERS: u32 = 1_000;
/// Orders generated per INSERT … SELECT: one tick of the progress bar.
const GENERATE_CHUNK: u64 = 100_000;
const NAIVE_PAGE: i64 = 1_000;
/// The days the data sets are generated on.
const DAY_1M: &str = "2026-03-15";
const DAY_NAIVE: &str = "2026-03-16";
const DAY_10M: &str = "2026-03-17";
/// How often the bench looks whether the run has finished.
const STATUS_POLL: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Args)]
pub struct SettlementArgs {
    /// Orders of the main day.
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: u64,
    /// Partitions of the main end-to-end figure.
    #[arg(long, default_value_t = 8)]
    pub partitions: u32,
    /// Orders of the naive approach's day.
    #[arg(long, default_value_t = 100_000)]
    pub naive_orders: u64,
    /// Settlement rows of the bulk-insert comparison.
    #[arg(long, default_value_t = 100_000)]
    pub bulk_rows: u32,
    /// Skip the sweep of partition counts.
    #[arg(long)]
    pub no_sweep: bool,
    /// Skip the 10M-order run (its data takes a few minutes to generate).
    #[arg(long)]
    pub no_10m: bool,
    /// Only the floor and the end-to-end figure (no naive, bulk-insert, sweep or 10M runs):
    /// for iterating on the pipeline. Writes no results file.
    #[arg(long)]
    pub quick: bool,
    /// Keep the bench database afterwards and reuse the orders already generated in it.
    #[arg(long)]
    pub reuse_data: bool,
    /// Messages per worker invocation (template.yaml's `BatchSize`, as the local runner binds it).
    #[arg(long, default_value_t = SETTLEMENT_WORKER_BATCH_SIZE)]
    pub batch_size: i32,
    /// Worker invocations at once (template.yaml's `MaximumConcurrency`).
    #[arg(long, default_value_t = SETTLEMENT_WORKER_CONCURRENCY)]
    pub concurrency: usize,
    /// Local AWS endpoint (moto_server).
    #[arg(
        long,
        env = "AWS_ENDPOINT_URL",
        default_value = "http://127.0.0.1:5000"
    )]
    pub aws_endpoint: String,
    #[command(flatten)]
    pub env: Environment,
}

pub async fn run(args: &SettlementArgs) -> anyhow::Result<()> {
    let server = args.env.mysql_url.trim_end_matches('/').to_owned();
    let db_url = format!("{server}/{DATABASE}");
    let mut admin = MySqlConnection::connect(&server)
        .await
        .context("connecting to MySQL")?;
    if !args.reuse_data {
        admin
            .execute(format!("DROP DATABASE IF EXISTS {DATABASE}").as_str())
            .await?;
    }
    admin
        .execute(format!("CREATE DATABASE IF NOT EXISTS {DATABASE}").as_str())
        .await?;
    let buffer_pool = BufferPool::enlarge(&mut admin).await?;
    let aws = BenchAws::create(&args.aws_endpoint).await?;
    let bench = Bench {
        db_url: db_url.clone(),
        aws,
        timeline: Timeline::install(),
        batch_size: args.batch_size,
        concurrency: args.concurrency,
    };
    let result = measure(&bench, args).await;
    bench.aws.delete().await;
    buffer_pool.restore(&mut admin).await;
    if !args.reuse_data {
        admin
            .execute(format!("DROP DATABASE IF EXISTS {DATABASE}").as_str())
            .await?;
    }
    let figures = result?;
    if args.quick {
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(());
    }
    let path = report::write_json(&args.env.results_dir, "settlement", &figures)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    println!("written to {}", path.display());
    Ok(())
}

/// InnoDB's buffer pool is 128 MiB by default, which a production MySQL never runs with (RDS
/// gives it three quarters of the memory). 10M orders' index range does not fit in 128 MiB, and
/// the 10M figure would measure the disk cache instead of the pipeline. The bench raises the pool
/// for its run (MariaDB and MySQL resize it online) and puts the old size back afterwards.
struct BufferPool {
    previous: u64,
}

/// What the bench runs with: enough for 10M orders' covering index with room to spare.
const BENCH_BUFFER_POOL_BYTES: u64 = 4 * 1024 * 1024 * 1024;

impl BufferPool {
    async fn enlarge(admin: &mut MySqlConnection) -> anyhow::Result<Self> {
        let (previous,): (u64,) = sqlx::query_as("SELECT @@innodb_buffer_pool_size")
            .fetch_one(&mut *admin)
            .await?;
        if previous < BENCH_BUFFER_POOL_BYTES {
            admin
                .execute(
                    format!("SET GLOBAL innodb_buffer_pool_size = {BENCH_BUFFER_POOL_BYTES}")
                        .as_str(),
                )
                .await
                .context("raising innodb_buffer_pool_size for the benchmark")?;
            println!(
                "innodb_buffer_pool_size raised from {} MiB to {} MiB for this run",
                previous / (1024 * 1024),
                BENCH_BUFFER_POOL_BYTES / (1024 * 1024)
            );
        }
        Ok(Self { previous })
    }

    async fn restore(&self, admin: &mut MySqlConnection) {
        if self.previous < BENCH_BUFFER_POOL_BYTES {
            let restored = admin
                .execute(format!("SET GLOBAL innodb_buffer_pool_size = {}", self.previous).as_str())
                .await;
            if let Err(err) = restored {
                eprintln!("could not put innodb_buffer_pool_size back: {err}");
            }
        }
    }
}

async fn measure(bench: &Bench, args: &SettlementArgs) -> anyhow::Result<serde_json::Value> {
    let platform = bench.platform(args.partitions)?;
    let db = &platform.db;
    shared::adapters::mysql::migrate(db).await?;
    seed_partners(db).await?;
    let day: NaiveDate = DAY_1M.parse()?;
    generate(db, day, args.orders).await?;
    explain(db, day).await?;

    // Warm the index into the buffer pool once, so neither figure pays for the first read.
    floor(db, day).await?;
    let floor_s = best_of(3, || floor(db, day)).await?;
    println!(
        "floor (one GROUP BY, {} orders): {floor_s:.3} s",
        args.orders
    );
    let main = bench.best_end_to_end(3, day, args.partitions).await?;
    let end_to_end_s = main.seconds;
    println!(
        "end to end, N={}: {end_to_end_s:.3} s ({:.2}x the floor)",
        args.partitions,
        end_to_end_s / floor_s
    );
    println!(
        "where the time went:\n{}",
        serde_json::to_string_pretty(&main.breakdown)?
    );
    if args.quick {
        return Ok(json!({
            "floor_s": round(floor_s),
            "end_to_end_s": round(end_to_end_s),
            "end_to_end_over_floor": round(end_to_end_s / floor_s),
        }));
    }

    let mut sweep = serde_json::Map::new();
    if !args.no_sweep {
        for partitions in [1, 2, 4, 8, 16, 32] {
            let seconds = bench.best_end_to_end(2, day, partitions).await?.seconds;
            println!("sweep N={partitions}: {seconds:.3} s");
            sweep.insert(partitions.to_string(), json!(round(seconds)));
        }
    }

    generate(db, DAY_NAIVE.parse()?, args.naive_orders).await?;
    let naive_s = naive(db, DAY_NAIVE.parse()?).await?;
    println!(
        "naive (OFFSET paging, row by row), {} orders: {naive_s:.3} s",
        args.naive_orders
    );

    let (bulk_s, one_by_one_s) = bulk_insert(db, args.bulk_rows).await?;
    println!(
        "{} settlement rows: batched {bulk_s:.3} s, one by one {one_by_one_s:.3} s",
        args.bulk_rows
    );

    let (orders_10m_s, floor_10m_s) = if args.no_10m {
        (None, None)
    } else {
        let day_10m: NaiveDate = DAY_10M.parse()?;
        generate(db, day_10m, 10 * args.orders).await?;
        floor(db, day_10m).await?;
        let floor_10m = best_of(2, || floor(db, day_10m)).await?;
        println!("floor, {} orders: {floor_10m:.3} s", 10 * args.orders);
        let seconds = bench
            .best_end_to_end(1, day_10m, args.partitions)
            .await?
            .seconds;
        println!("end to end, {} orders: {seconds:.3} s", 10 * args.orders);
        (Some(seconds), Some(floor_10m))
    };

    let ratios = json!({
        "end_to_end_over_floor": round(end_to_end_s / floor_s),
        "orders_10m_over_1m": orders_10m_s.map(|s| round(s / end_to_end_s)),
        "one_by_one_over_bulk": round(one_by_one_s / bulk_s),
        "naive_100k_over_end_to_end_1m": round(naive_s / end_to_end_s),
    });
    let targets = json!({
        "end_to_end_within_2x_floor": {"target": "end_to_end_s <= 2 x floor_s", "met": end_to_end_s <= 2.0 * floor_s},
        "orders_10m_within_10x_1m": {"target": "orders_10m_end_to_end_s <= 10 x end_to_end_s", "met": orders_10m_s.map(|s| s <= 10.0 * end_to_end_s)},
        "bulk_insert_30x_faster": {"target": "one_by_one_100k_s >= 30 x bulk_insert_100k_s", "met": one_by_one_s >= 30.0 * bulk_s},
    });
    Ok(json!({
        "date": Utc::now().to_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": report::Machine::detect(),
        "orders": args.orders,
        "partitions": args.partitions,
        "worker": {"batch_size": args.batch_size, "concurrency": args.concurrency},
        "end_to_end_s": round(end_to_end_s),
        "floor_s": round(floor_s),
        "naive_100k_s": round(naive_s),
        "naive_orders": args.naive_orders,
        "sweep": sweep,
        "orders_10m_end_to_end_s": orders_10m_s.map(round),
        "floor_10m_s": floor_10m_s.map(round),
        "bulk_insert_100k_s": round(bulk_s),
        "one_by_one_100k_s": round(one_by_one_s),
        "bulk_rows": args.bulk_rows,
        "ratios": ratios,
        "targets": targets,
        "breakdown_ms": main.breakdown,
        "old_system_published": {
            "one_by_one_100k_s": 20.2,
            "bulk_insert_100k_s": 0.67,
            "speedup": 30,
        },
    }))
}

fn round(seconds: f64) -> f64 {
    report::round(seconds, 4)
}

async fn best_of<F, Fut>(times: u32, mut measure: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<f64>>,
{
    let mut best = f64::INFINITY;
    for _ in 0..times {
        best = best.min(measure().await?);
    }
    Ok(best)
}

struct Bench {
    db_url: String,
    aws: BenchAws,
    timeline: Timeline,
    batch_size: i32,
    concurrency: usize,
}

/// One end-to-end run: its time and where the time went.
struct Measured {
    seconds: f64,
    breakdown: serde_json::Value,
}

impl Bench {
    fn platform(&self, partitions: u32) -> anyhow::Result<Platform> {
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", self.db_url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "24"),
            ("JWT_SECRET", "bench-secret-bench-secret-bench-secret!"),
            ("AWS_ENDPOINT_URL", self.aws.endpoint.as_str()),
            ("SETTLEMENT_RUNS_TABLE", self.aws.table.as_str()),
            ("SETTLEMENT_QUEUE_URL", self.aws.queue_url.as_str()),
            ("SETTLEMENT_PARTITIONS", &partitions.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Ok(Platform::new(Config::from_vars(vars)?)?)
    }

    /// The fastest of `times` end-to-end runs.
    async fn best_end_to_end(
        &self,
        times: u32,
        day: NaiveDate,
        partitions: u32,
    ) -> anyhow::Result<Measured> {
        let mut best: Option<Measured> = None;
        for _ in 0..times {
            let run = self.end_to_end(day, partitions).await?;
            if best.as_ref().is_none_or(|best| run.seconds < best.seconds) {
                best = Some(run);
            }
        }
        best.context("no run")
    }

    /// Seconds from `start_run` to COMPLETED, with `partitions` partitions.
    async fn end_to_end(&self, day: NaiveDate, partitions: u32) -> anyhow::Result<Measured> {
        let platform = self.platform(partitions)?;
        let scheduler = settlement_scheduler::Deps::new(&platform, &self.aws.sdk);
        let worker = Arc::new(settlement_worker::Deps::new(&platform, &self.aws.sdk));
        // Connect the pool before the clock starts, as a warm Lambda would be.
        sqlx::query("SELECT 1").execute(&platform.db).await?;
        let timeline = self.timeline.clone();
        let binding = Arc::new(QueueBinding {
            name: "settlement-worker".into(),
            queue_url: self.aws.queue_url.clone(),
            handler: Arc::new(move |event| {
                let worker = Arc::clone(&worker);
                timeline.mark("received");
                async move { settlement_worker::handle(&worker, event).await }.boxed()
            }),
            batch_size: self.batch_size,
            concurrency: self.concurrency,
        });
        let poller = Poller::new(aws::sqs(&self.aws.sdk), binding).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut pollers = JoinSet::new();
        for _ in 0..self.concurrency.min(partitions as usize).max(1) {
            let (poller, stop) = (poller.clone(), Arc::clone(&stop));
            pollers.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(err) = poller.poll_once().await {
                        eprintln!("poll failed: {err}");
                    }
                }
            });
        }

        self.timeline.clear();
        let started = Instant::now();
        let outcome =
            settlement_scheduler::start_run(&scheduler, day, Trigger::Admin, Utc::now()).await?;
        let settlement_scheduler::StartOutcome::Started(run) = outcome else {
            anyhow::bail!("the run did not start: {outcome:?}");
        };
        let status = loop {
            let row = settlements::find_run(&platform.db, &run.run_id)
                .await?
                .context("run row")?;
            if row.status != "RUNNING" {
                break row;
            }
            tokio::time::sleep(STATUS_POLL).await;
        };
        let completed = Instant::now();
        let elapsed = (completed - started).as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        while pollers.join_next().await.is_some() {}
        anyhow::ensure!(
            status.status == "COMPLETED",
            "run {} ended {}: {:?}",
            run.run_id,
            status.status,
            status.error
        );
        // The finalizer logs its timings after the commit the loop above saw.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Measured {
            seconds: elapsed,
            breakdown: self.timeline.breakdown(started, completed),
        })
    }
}

/// Seconds of one GROUP BY of the day over the covering index: what settling cannot beat.
async fn floor(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<f64> {
    let (from, to) = day_range(day);
    let started = Instant::now();
    let rows = settlements::aggregate_range(db, from, to).await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(!rows.is_empty(), "no orders on {day}");
    Ok(elapsed)
}

/// Shows how MySQL answers the settlement's two reads of orders (a partition's GROUP BY and the
/// invariant's COUNT/SUM) and fails unless both use the covering index alone.
async fn explain(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<()> {
    let (from, to) = day_range(day);
    for (what, select) in [
        (
            "partition GROUP BY",
            "SELECT partner_id, COUNT(*), SUM(amount) FROM orders FORCE INDEX (idx_orders_settlement_covering) \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ? GROUP BY partner_id",
        ),
        (
            "invariant COUNT/SUM",
            "SELECT COUNT(*), SUM(amount) FROM orders FORCE INDEX (idx_orders_settlement_covering) \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ?",
        ),
    ] {
        let row = sqlx::query(&format!("EXPLAIN {select}"))
            .bind(from)
            .bind(to)
            .fetch_one(db)
            .await?;
        let key: Option<String> = row.try_get("key")?;
        let access: Option<String> = row.try_get("type")?;
        let extra: Option<String> = row.try_get("Extra")?;
        println!(
            "EXPLAIN {what}: type={} key={} extra={}",
            access.as_deref().unwrap_or("-"),
            key.as_deref().unwrap_or("-"),
            extra.as_deref().unwrap_or("-")
        );
        anyhow::ensure!(
            key.as_deref() == Some("idx_orders_settlement_covering")
                && extra
                    .as_deref()
                    .is_some_and(|extra| extra.contains("Using index")),
            "{what} does not read idx_orders_settlement_covering alone"
        );
    }
    Ok(())
}

/// The partners (users + profiles), one buyer and one payment all orders point to.
async fn seed_partners(db: &MySqlPool) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT IGNORE INTO users (id, email, password_hash, name, role) \
         SELECT seq, CONCAT('partner', seq, '@bench.kicksync'), 'x', 'Bench Partner', 'partner' \
         FROM seq_1_to_{PARTNERS}"
    ))
    .execute(db)
    .await?;
    sqlx::query(&format!(
        "INSERT IGNORE INTO partner_profiles (partner_id, business_name) \
         SELECT seq, CONCAT('Shop ', seq) FROM seq_1_to_{PARTNERS}"
    ))
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT IGNORE INTO users (id, email, password_hash, name, role) \
         VALUES (1000001, 'buyer@bench.kicksync', 'x', 'Bench Buyer', 'buyer')",
    )
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT IGNORE INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at) \
         VALUES ('bench', 1000001, 1, 'PAID', 'bench', REPEAT('0', 64), UTC_TIMESTAMP(6))",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// `count` orders spread evenly over `day`, one in ten SHIPPED (not yet confirmed), generated
/// by MariaDB's SEQUENCE engine in chunks of [`GENERATE_CHUNK`].
async fn generate(db: &MySqlPool, day: NaiveDate, count: u64) -> anyhow::Result<()> {
    let (from, to) = day_range(day);
    let day_micros = (to - from).num_microseconds().context("day length")?;
    let bar = ProgressBar::new(count).with_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {human_pos}/{human_len} ({per_sec})")?
            .progress_chars("=> "),
    );
    bar.set_message(format!("orders on {day}"));
    let mut conn = db.acquire().await?;
    // Which days are complete, so `--reuse-data` regenerates only what is missing or partial.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_generated (day DATE PRIMARY KEY, orders BIGINT NOT NULL)",
    )
    .await?;
    let done: Option<(i64,)> = sqlx::query_as("SELECT orders FROM bench_generated WHERE day = ?")
        .bind(day)
        .fetch_optional(&mut *conn)
        .await?;
    if done.is_some_and(|(orders,)| u64::try_from(orders).ok() == Some(count)) {
        bar.finish_with_message(format!("orders on {day} (reused)"));
        return Ok(());
    }
    // A partial or different earlier generation of this day (its orders were created 3 days
    // before their confirmation).
    sqlx::query("DELETE FROM bench_generated WHERE day = ?")
        .bind(day)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM orders WHERE created_at >= ? - INTERVAL 3 DAY AND created_at < ? - INTERVAL 3 DAY")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    // The rows reference a partner and the one payment that exist; checking each is pointless.
    conn.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        .await?;
    let mut start = 0;
    while start < count {
        let end = (start + GENERATE_CHUNK).min(count) - 1;
        sqlx::query(&format!(
            "INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, created_at, expires_at, confirmed_at) \
             SELECT 'bench', 1000001, 1 + seq % {PARTNERS}, IF(seq % 10 = 9, 'SHIPPED', 'CONFIRMED'), \
                    1000 + (seq * 7919) % 499000, t - INTERVAL 3 DAY, t - INTERVAL 3 DAY, IF(seq % 10 = 9, NULL, t) \
             FROM (SELECT seq, ? + INTERVAL (seq * {day_micros} DIV {count}) MICROSECOND AS t \
                   FROM seq_{start}_to_{end}) s"
        ))
        .bind(from)
        .execute(&mut *conn)
        .await?;
        bar.inc(end + 1 - start);
        start = end + 1;
    }
    conn.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        .await?;
    sqlx::query("INSERT INTO bench_generated (day, orders) VALUES (?, ?)")
        .bind(day)
        .bind(i64::try_from(count)?)
        .execute(&mut *conn)
        .await?;
    bar.finish();
    Ok(())
}

/// The old system's first version: OFFSET pages, each row added up by the application, each
/// partner's settlement written by its own statement.
async fn naive(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<f64> {
    let (from, to) = day_range(day);
    let started = Instant::now();
    let mut totals: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut offset = 0;
    loop {
        let page: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, partner_id, amount FROM orders \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ? \
             ORDER BY id LIMIT ? OFFSET ?",
        )
        .bind(from)
        .bind(to)
        .bind(NAIVE_PAGE)
        .bind(offset)
        .fetch_all(db)
        .await?;
        if page.is_empty() {
            break;
        }
        for (_, partner_id, amount) in &page {
            let entry = totals.entry(*partner_id).or_default();
            entry.0 += 1;
            entry.1 += amount;
        }
        offset += NAIVE_PAGE;
    }
    for (partner_id, (count, gross)) in &totals {
        let commission = gross / 10;
        sqlx::query(
            "INSERT INTO settlements (partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id) \
             VALUES (?, ?, ?, ?, ?, ?, 'naive')",
        )
        .bind(partner_id)
        .bind(day)
        .bind(count)
        .bind(gross)
        .bind(commission)
        .bind(gross - commission)
        .execute(db)
        .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// `rows` settlement rows (1,000 partners × `rows / 1000` days in 2001): the worker's batched
/// insert in one transaction, then, after deleting them, one autocommitted INSERT per row.
async fn bulk_insert(db: &MySqlPool, rows: u32) -> anyhow::Result<(f64, f64)> {
    let first: NaiveDate = "2001-01-01".parse()?;
    let settlement_rows: Vec<SettlementRow> = (0..rows)
        .map(|n| {
            let gross = 10_000 + i64::from(n % 977) * 100;
            SettlementRow::new(
                i64::from(n % PARTNERS + 1),
                first + chrono::Days::new(u64::from(n / PARTNERS)),
                "bulk",
                Payout {
                    order_count: 1,
                    gross_amount: gross,
                    commission: gross / 10,
                    payout: gross - gross / 10,
                },
            )
        })
        .collect();
    let clear = || async {
        sqlx::query("DELETE FROM settlements WHERE run_id = 'bulk'")
            .execute(db)
            .await
    };

    let started = Instant::now();
    let mut tx = db.begin().await?;
    settlements::insert_settlements(&mut tx, &settlement_rows).await?;
    tx.commit().await?;
    let bulk = started.elapsed().as_secs_f64();
    clear().await?;

    let bar = ProgressBar::new(u64::from(rows)).with_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {human_pos}/{human_len} ({per_sec})")?
            .progress_chars("=> "),
    );
    bar.set_message("one by one");
    let mut conn = db.acquire().await?;
    let started = Instant::now();
    for (index, row) in settlement_rows.iter().enumerate() {
        sqlx::query(
            "INSERT INTO settlements (partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.partner_id)
        .bind(row.settlement_date)
        .bind(row.order_count)
        .bind(row.gross_amount)
        .bind(row.commission)
        .bind(row.payout)
        .bind(&row.run_id)
        .execute(&mut *conn)
        .await?;
        if index % 1_000 == 0 {
            bar.set_position(index as u64);
        }
    }
    let one_by_one = started.elapsed().as_secs_f64();
    bar.finish();
    clear().await?;
    Ok((bulk, one_by_one))
}

/// A settlement table and queue of the bench's own on the local AWS endpoint.
struct BenchAws {
    endpoint: String,
    sdk: aws_config::SdkConfig,
    table: String,
    queue_url: String,
}

impl BenchAws {
    async fn create(endpoint: &str) -> anyhow::Result<Self> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let config = shared::config::AwsConfig {
            endpoint_url: Some(endpoint.to_owned()),
            region: "ap-northeast-2".into(),
            idempotency_table: String::new(),
            settlement_runs_table: String::new(),
            settlement_queue_url: None,
        };
        let sdk = aws::sdk_config(&config).await;
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let table = format!("bench-settlement-runs-{suffix}");
        aws::dynamodb(&sdk)
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| {
                format!("creating a DynamoDB table on {endpoint} (is moto_server up?)")
            })?;
        let queue_url = aws::sqs(&sdk)
            .create_queue()
            .queue_name(format!("bench-settlement-{suffix}"))
            .send()
            .await?
            .queue_url
            .context("queue url")?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            sdk,
            table,
            queue_url,
        })
    }

    async fn delete(&self) {
        let _ = aws::dynamodb(&self.sdk)
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
        let _ = aws::sqs(&self.sdk)
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
    }
}
