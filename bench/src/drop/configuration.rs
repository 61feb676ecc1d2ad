//! One configuration of `bench drop` from scratch: the data and tokens every configuration
//! shares, then for each a reset, a fresh runner, phase A, the sold-out check, phase B and the
//! audit.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use kicksync_local::bench_floor::DROP_FLOOR_KEY;
use redis::AsyncCommands;
use shared::{
    Config,
    adapters::redis::{KeyMarkers, RedisStore},
    auth::{Authenticator, TokenCodec},
    domain::auth::Role,
};
use sqlx::{MySqlConnection, MySqlPool, mysql::MySqlPoolOptions};

use super::{
    Args, DATABASE, JWT_SECRET, NAME, Setup, TOKEN_TTL,
    audit::check_sale,
    database::{StatementCounter, insert_buyers, insert_drop, reset, runner_database_url},
    figures::{Measured, combine},
    phase::WRK_SCRIPT,
    phases,
    shard::{HotShard, KeySample, Monitor, ProductKey, SAMPLE_END},
    table::{print_hot_shard, print_phase},
    usage::Pids,
};
use crate::{
    keys::flush,
    report::{latency, rate, thousands},
    runner::{Launch, Runner},
};

/// The runner fires `order-sweeper` (`rate(1 minute)`) this long after it starts, and then again
/// every period; a sweep issues a few MySQL statements of its own.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// The bench's own connections on the bench database (setup, audits, loading the buyers).
const POOL_CONNECTIONS: u32 = 8;
/// Buyers loaded into Redis at once before a drop (as their logins would have).
const LOADS_AT_ONCE: usize = 32;

/// The temporary directory holding the tokens, the wrk script and the threads' done files.
#[derive(Debug)]
pub(super) struct WorkDir(PathBuf);

impl WorkDir {
    pub(super) fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("kicksync-bench-drop-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub(super) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything the configurations share: the data, the tokens, the paths.
#[derive(Debug)]
pub(super) struct Bench<'a> {
    pub(super) args: &'a Args,
    pub(super) db: MySqlPool,
    pub(super) product_id: i64,
    pub(super) runner_binary: &'a Path,
    pub(super) runner_database_url: String,
    pub(super) tokens_file: PathBuf,
    /// The first buyer's token, for the warm-up attempt.
    pub(super) warm_up_token: String,
    pub(super) buyer_ids: Vec<i64>,
    pub(super) codec: Arc<TokenCodec>,
    pub(super) script_file: PathBuf,
    pub(super) work: &'a WorkDir,
    pub(super) jwt_verify_us: f64,
    pub(super) client: reqwest::Client,
    /// The bench's own Redis server, every configuration's.
    pub(super) redis_url: String,
    pub(super) redis_addr: SocketAddr,
}

impl<'a> Bench<'a> {
    pub(super) async fn prepare(
        args: &'a Args,
        server: &str,
        runner_binary: &'a Path,
        work: &'a WorkDir,
        redis_addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let db = MySqlPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect(&format!("{server}/{DATABASE}"))
            .await?;
        shared::adapters::mysql::migrate(&db)
            .await
            .context("migrating the bench database")?;
        let product_id = insert_drop(&db, args.units).await?;
        let buyer_ids = insert_buyers(&db, args.buyers).await?;

        let config = Config::from_vars(
            [
                ("DATABASE_URL", format!("{server}/{DATABASE}")),
                ("JWT_SECRET", JWT_SECRET.to_owned()),
                ("ACCESS_TOKEN_TTL_SECONDS", TOKEN_TTL.as_secs().to_string()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        )?;
        let codec = Arc::new(TokenCodec::new(&config.auth));
        let now = Utc::now();
        let tokens = buyer_ids
            .iter()
            .map(|id| codec.issue(*id, Role::Buyer, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("signing the buyers' tokens: {err}"))?;
        let started = Instant::now();
        for token in &tokens {
            codec
                .verify(token)
                .map_err(|err| anyhow::anyhow!("a fresh token did not verify: {err}"))?;
        }
        #[allow(clippy::cast_precision_loss, reason = "thousands of tokens")]
        let jwt_verify_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;

        let tokens_file = work.join("tokens.txt");
        std::fs::write(&tokens_file, tokens.join("\n") + "\n")?;
        let warm_up_token = tokens.first().context("no buyer tokens")?.clone();
        let script_file = work.join("drop.lua");
        std::fs::write(&script_file, WRK_SCRIPT)?;
        println!(
            "database {DATABASE} ready: product {product_id} with {} units, {} buyers with tokens",
            thousands(u64::from(args.units)),
            thousands(u64::from(args.buyers))
        );
        Ok(Self {
            args,
            db,
            product_id,
            runner_binary,
            runner_database_url: runner_database_url(server)?,
            tokens_file,
            warm_up_token,
            buyer_ids,
            codec,
            script_file,
            work,
            jwt_verify_us,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            redis_url: format!("redis://{redis_addr}"),
            redis_addr,
        })
    }

    /// A drop opens on buyers who logged in before it: each login loaded the buyer's logout
    /// blacklist and idempotency markers into Redis, in the buyer's hash slot. The bench signs
    /// its tokens itself and flushed Redis, so it does for every buyer what login does
    /// ([`Authenticator::warm`], [`KeyMarkers::warm`]); otherwise phase A would measure every
    /// buyer's first attempt asking MySQL instead of the drop. (That case has its own tests: a
    /// Redis restart mid-drop.) Then one attempt at a product that does not exist opens the
    /// runner's connections and sells nothing. The floor has neither.
    async fn warm_up(&self, setup: Setup, url: &str, redis: &RedisStore) -> anyhow::Result<()> {
        if setup == Setup::Floor {
            return Ok(());
        }
        let started = Instant::now();
        let authenticator = Authenticator::new(self.codec.clone(), redis.clone(), self.db.clone());
        let markers = KeyMarkers::new(redis.clone(), self.db.clone());
        futures::stream::iter(self.buyer_ids.iter().copied())
            .map(|buyer| {
                let (authenticator, markers) = (&authenticator, &markers);
                async move {
                    authenticator.warm(buyer).await?;
                    markers.warm(buyer).await
                }
            })
            .buffer_unordered(LOADS_AT_ONCE)
            .try_collect::<()>()
            .await
            .map_err(|err| anyhow::anyhow!("loading the buyers as their logins would: {err}"))?;
        println!(
            "  {}: {} buyers' blacklists and idempotency markers loaded, as at their logins ({:.1} s)",
            setup.name(),
            thousands(self.buyer_ids.len() as u64),
            started.elapsed().as_secs_f64()
        );
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.warm_up_token)
            .header("idempotency-key", "bench-warm-up")
            .json(&serde_json::json!({"items": [{"product_id": self.product_id + 1_000_000, "quantity": 1}]}))
            .send()
            .await?;
        ensure!(
            response.status() == reqwest::StatusCode::NOT_FOUND,
            "{}: the warm-up attempt answered {}, not 404",
            setup.name(),
            response.status()
        );
        Ok(())
    }

    /// One configuration from scratch: reset, fresh runner, phase A, sold out?, phase B, audit.
    pub(super) async fn measure(
        &self,
        setup: Setup,
        admin: &mut MySqlConnection,
        counter: StatementCounter,
    ) -> anyhow::Result<Measured> {
        let args = self.args;
        reset(&self.db, self.product_id, args.units).await?;
        let redis = RedisStore::with_prefix(&self.redis_url, &setup.redis_prefix())?;
        flush(&redis).await?;
        if setup == Setup::Floor {
            let mut connection = redis.connection().await?;
            let () = connection
                .set(redis.key(DROP_FLOOR_KEY), args.units)
                .await?;
        }
        let runner = self.start_runner(setup).await?;
        let runner_started = Instant::now();
        let url = runner.url(setup.path());
        let pids = Pids::find(&redis, admin, runner.pid()).await;
        let (phase_a, phase_b) = phases(args);
        self.warm_up(setup, &url, &redis).await?;

        let a = self
            .phase(setup, "A", &url, 0, phase_a, &pids, &redis)
            .await?;
        let left = self.units_left(setup, &redis).await?;
        ensure!(
            left == 0,
            "{}: phase A ({} attempts) left {left} units unsold; raise --sell-out-percent",
            setup.name(),
            thousands(phase_a)
        );

        counter.counting(admin, true).await?;
        let before = counter.read(admin).await?;
        let b_from = runner_started.elapsed();
        let b = self
            .phase(setup, "B", &url, phase_a, phase_b, &pids, &redis)
            .await?;
        let b_to = runner_started.elapsed();
        let after = counter.read(admin).await?;
        counter.counting(admin, false).await?;
        let hot_shard = match setup {
            Setup::Lock => None,
            _ => {
                self.hot_shard(setup, &url, phase_a + phase_b, &pids, &redis, &b)
                    .await?
            }
        };
        runner
            .stop()
            .await
            .with_context(|| format!("{}: the runner", setup.name()))?;

        let audit = match setup {
            Setup::Floor => None,
            _ => Some(self.audit(&redis).await?),
        };
        let redis_left = match setup {
            Setup::Floor => Some(self.units_left(setup, &redis).await?),
            _ => audit.as_ref().and_then(|audit| audit.redis_remaining),
        };
        flush(&redis).await?;
        let mut figures = combine(
            setup,
            u64::from(args.units),
            a,
            b,
            audit,
            (setup != Setup::Floor).then(|| counter.between(before, after)),
            sweeps_between(b_from, b_to),
        );
        figures.hot_shard = hot_shard;
        check_sale(setup, &figures, u64::from(args.units), redis_left)?;
        for (label, phase) in [("A", &figures.phase_a), ("B", &figures.phase_b)] {
            print_phase(&format!("{} {label}", setup.name()), phase);
        }
        if let Some(shard) = &figures.hot_shard {
            print_hot_shard(setup.name(), shard);
        }
        if let Some(audit) = &figures.audit {
            println!(
                "  {} sales took {:.2} s in MySQL, first order to last",
                thousands(u64::try_from(audit.orders).unwrap_or(0)),
                audit.sales_span_s
            );
        }
        println!(
            "{:>12}: {} attempts/s, p50 {}, p99 {}; sold {}, oversold {}{}",
            setup.name(),
            rate(figures.attempts_per_s),
            latency(figures.p50_ms),
            latency(figures.p99_ms),
            thousands(figures.units_sold),
            thousands(figures.oversold),
            figures
                .mysql_statements_after_sellout
                .map(|count| format!("; {} MySQL statements after the sell-out", thousands(count)))
                .unwrap_or_default()
        );
        Ok(figures)
    }

    async fn start_runner(&self, setup: Setup) -> anyhow::Result<Runner> {
        let args = self.args;
        let mut env = vec![
            ("DATABASE_URL", self.runner_database_url.clone()),
            ("DATABASE_MAX_CONNECTIONS", args.db_connections.to_string()),
            ("REDIS_URL", self.redis_url.clone()),
            ("REDIS_KEY_PREFIX", setup.redis_prefix()),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("ACCESS_TOKEN_TTL_SECONDS", TOKEN_TTL.as_secs().to_string()),
            ("CHECKOUT_LIMIT_PER_MINUTE", args.checkout_limit.to_string()),
            // No SQS poller: the settlement worker has no part in a drop.
            ("SETTLEMENT_QUEUE_URL", String::new()),
            // Only warnings and errors: a log line per request would be part of the measurement.
            ("RUST_LOG", "warn".to_owned()),
        ];
        if let Some(strategy) = setup.stock_strategy() {
            env.push(("STOCK_STRATEGY", strategy.to_owned()));
        }
        Runner::start(
            Launch {
                binary: self.runner_binary,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
                env: &env,
                bench: NAME,
                configuration: setup.name(),
                log_dir: &args.env.log_dir,
                floor: setup == Setup::Floor,
            },
            &self.client,
        )
        .await
    }

    /// The hot-shard figures: `--shard-sample` more attempts (the drop is sold out) under
    /// MONITOR, their keys placed by slot, costed with phase B's Redis counters (see
    /// [`super::shard`]). `None` when the sample is switched off.
    async fn hot_shard(
        &self,
        setup: Setup,
        url: &str,
        first: u64,
        pids: &Pids,
        redis: &RedisStore,
        phase_b: &super::figures::PhaseFigures,
    ) -> anyhow::Result<Option<HotShard>> {
        let count = self.args.shard_sample;
        if count == 0 {
            return Ok(None);
        }
        let monitor = Monitor::start(self.redis_addr).await?;
        self.phase(setup, "sample", url, first, count, pids, redis)
            .await?;
        let mut connection = redis.connection().await?;
        let _: String = redis::cmd("ECHO")
            .arg(SAMPLE_END)
            .query_async(&mut connection)
            .await?;
        let lines = monitor.finish().await?;
        let product = ProductKey {
            key: match setup {
                Setup::Floor => redis.key(DROP_FLOOR_KEY),
                _ => redis.key_of(format_args!("stock:{{p{}}}", self.product_id)),
            },
        };
        let sample = KeySample::count(&lines, count, &product, redis.prefix());
        Ok(Some(HotShard::new(
            sample,
            &phase_b.where_time_goes,
            phase_b.attempts,
        )))
    }

    /// Units left: MySQL's `stock_remaining`, or the floor's Redis counter.
    pub(super) async fn units_left(&self, setup: Setup, redis: &RedisStore) -> anyhow::Result<i64> {
        if setup == Setup::Floor {
            let mut connection = redis.connection().await?;
            let left: Option<i64> = connection.get(redis.key(DROP_FLOOR_KEY)).await?;
            return left.context("the floor's counter is gone");
        }
        let left: i32 = sqlx::query_scalar("SELECT stock_remaining FROM products WHERE id = ?")
            .bind(self.product_id)
            .fetch_one(&self.db)
            .await?;
        Ok(i64::from(left))
    }
}

/// Sweeps the runner fired between `from` and `to` after it started.
pub(super) fn sweeps_between(from: Duration, to: Duration) -> u64 {
    let period = SWEEP_PERIOD.as_secs_f64();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "whole periods of a run that lasts minutes"
    )]
    let fired = |at: Duration| (at.as_secs_f64() / period).floor() as u64;
    fired(to) - fired(from)
}
