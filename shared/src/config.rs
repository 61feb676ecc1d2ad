//! Configuration, read once from the environment at cold start.
//!
//! Every variable is documented in the README's configuration table. Secrets are held in
//! [`SecretString`] so that `Debug` output and logs never show them.

use std::{collections::HashMap, fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};

/// The shortest HS256 key we accept: 256 bits, as RFC 7518 asks.
const MIN_JWT_SECRET_BYTES: usize = 32;
/// The most unpaid orders per buyer a deployment may allow (a limit, not a wish).
const MAX_UNPAID_ORDERS: u32 = 1_000;
/// The longest rebuy cooldown: a year.
const MAX_REBUY_COOLDOWN: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// The longest a process may answer a hot product `SOLD_OUT` from memory: units that come back
/// must not wait longer than this to be offered again.
const MAX_SOLD_OUT_MEMO: Duration = Duration::from_secs(5);

/// Where a process runs, which decides how many MySQL connections it may open (README
/// "Connection budget"). A Lambda environment serves one request at a time, so its pool is
/// tiny; the local runner serves every request of the stack from one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The local runner, the benchmarks and the tests: `DATABASE_MAX_CONNECTIONS` defaults to 10.
    Process,
    /// A Lambda binary: `DATABASE_MAX_CONNECTIONS` defaults to 2 and may be 1 or 2.
    Lambda,
}

impl Host {
    /// The pool size when `DATABASE_MAX_CONNECTIONS` is not set.
    pub const fn default_pool_size(self) -> u32 {
        match self {
            Self::Process => 10,
            Self::Lambda => LAMBDA_MAX_POOL_SIZE,
        }
    }
}

/// The largest MySQL pool a Lambda environment may open: a handler uses at most two connections
/// at once (the settlement worker's finalizer reads the orders beside its open transaction).
pub const LAMBDA_MAX_POOL_SIZE: u32 = 2;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    /// Replaces the password of `database_url` when set, taken as it is (no URL escaping), so a
    /// password from Secrets Manager needs no encoding.
    pub database_password: Option<SecretString>,
    pub database_max_connections: u32,
    pub redis_url: SecretString,
    /// `REDIS_URL` lists seed nodes of a Redis Cluster (comma-separated), reached with the
    /// cluster client.
    pub redis_cluster: bool,
    /// PEM file of the CA certificates a `rediss://` server's certificate must chain to, instead
    /// of the public roots (a private CA; ElastiCache needs none).
    pub redis_tls_ca_file: Option<String>,
    /// Prefix of every Redis key this deployment writes; tests give each run its own.
    pub redis_key_prefix: String,
    pub aws: AwsConfig,
    pub auth: AuthConfig,
    pub products: ProductsConfig,
    pub settlement: SettlementConfig,
    pub orders: OrdersConfig,
    pub portone: PortOneConfig,
}

/// PortOne V2: where its API is, how we authenticate, and how its webhooks are signed.
#[derive(Clone)]
pub struct PortOneConfig {
    /// `https://api.portone.io` in production; the fake PortOne locally.
    pub api_base: String,
    pub api_secret: SecretString,
    pub store_id: String,
    /// `whsec_…`, the Standard Webhooks secret from PortOne's console.
    pub webhook_secret: SecretString,
    /// How long one call to PortOne may take before we give up on it.
    pub timeout: Duration,
}

impl fmt::Debug for PortOneConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortOneConfig")
            .field("api_base", &self.api_base)
            .field("api_secret", &"[redacted]")
            .field("store_id", &self.store_id)
            .field("webhook_secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The local stack's PortOne values (the fake PortOne uses the same). They apply only while
/// `PORTONE_API_BASE` points at this machine, so a deployment can never run on them.
pub mod local_portone {
    pub const API_BASE: &str = "http://127.0.0.1:3100";
    pub const API_SECRET: &str = "local-portone-secret";
    pub const STORE_ID: &str = "store-local";
    pub const WEBHOOK_SECRET: &str = "whsec_a1wPPpGi1HcI47Fcap8tQMjhezpfCdLm";
}

fn is_local_address(base: &str) -> bool {
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    matches!(host, "127.0.0.1" | "localhost")
}

/// How a checkout decides that a unit exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockStrategy {
    /// An atomic Redis reservation, then a guarded MySQL update (ours).
    Reservation,
    /// A per-product Redis lock around a MySQL transaction (the replaced system's; for comparison).
    Lock,
}

impl std::str::FromStr for StockStrategy {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "reservation" => Ok(Self::Reservation),
            "lock" => Ok(Self::Lock),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// Unpaid orders expire after this.
    pub payment_timeout: Duration,
    /// Shipped orders are confirmed automatically after this.
    pub auto_confirm_after: Duration,
    /// Checkout attempts allowed per buyer per minute.
    pub checkout_limit_per_minute: u32,
    /// Unpaid orders (awaiting payment, not yet expired) one buyer may hold at once; at least 1.
    pub max_unpaid_orders_per_buyer: u32,
    /// How long a buyer who cancelled or let expire an unpaid order of a product waits before
    /// buying that product again; zero is no wait.
    pub rebuy_cooldown: Duration,
    pub stock_strategy: StockStrategy,
    /// How long a process answers a product it saw sold out many times a second `SOLD_OUT`
    /// without asking Redis; zero never does (the `orders` function's `sold_out` module).
    pub sold_out_memo: Duration,
    /// Lock strategy only: how long to wait for a product's lock, and how long it may be held.
    pub lock_wait: Duration,
    pub lock_lease: Duration,
}
#[derive(Debug, Clone)]
pub struct SettlementConfig {
    /// How many SQS messages (time ranges) a day is split into.
    pub partitions: u32,
    /// How long a run holds its day's lock without progress before another trigger may take over.
    pub lease: Duration,
    /// The commission of partners without a policy of their own.
    pub default_rate_bps: i64,
    pub default_fixed_fee: i64,
}

#[derive(Debug, Clone)]
pub struct ProductsConfig {
    /// Serve page 1 of the list from Redis. Off only to measure what the cache buys.
    pub list_cache: bool,
    pub list_cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// Set only locally (moto_server or LocalStack); in AWS the SDK finds the real endpoints.
    pub endpoint_url: Option<String>,
    pub region: String,
    pub idempotency_table: String,
    pub settlement_runs_table: String,
    pub settlement_queue_url: Option<String>,
}

#[derive(Clone)]
pub struct AuthConfig {
    pub jwt_secret: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Login attempts allowed per email per minute.
    pub login_limit_per_email: u32,
    /// Login attempts allowed per client address per minute.
    pub login_limit_per_address: u32,
    /// Sign-up attempts allowed per client address per minute.
    pub signup_limit_per_address: u32,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("login_limit_per_email", &self.login_limit_per_email)
            .field("login_limit_per_address", &self.login_limit_per_address)
            .field("signup_limit_per_address", &self.signup_limit_per_address)
            .finish()
    }
}

/// Everything that was missing or malformed, reported together so one restart fixes all of it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment (the local runner and tools).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Reads the process environment of a Lambda binary: a pool of at most
    /// [`LAMBDA_MAX_POOL_SIZE`] connections.
    pub fn from_lambda_env() -> Result<Self, ConfigError> {
        Self::from_vars_on(Host::Lambda, std::env::vars().collect())
    }

    /// Reads the given variables; tests use this instead of mutating the process environment.
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_vars_on(Host::Process, vars)
    }

    /// Reads the given variables as a process running on `host` would.
    pub fn from_vars_on(host: Host, vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env {
            vars,
            problems: Vec::new(),
        };
        let config = Config {
            database_url: env.secret("DATABASE_URL", None),
            database_password: env
                .vars
                .get("DATABASE_PASSWORD")
                .filter(|password| !password.is_empty())
                .map(|password| SecretString::from(password.as_str())),
            database_max_connections: env
                .parsed("DATABASE_MAX_CONNECTIONS", host.default_pool_size()),
            redis_url: env.secret("REDIS_URL", Some("redis://127.0.0.1:6379")),
            redis_cluster: env.parsed("REDIS_CLUSTER", false),
            redis_tls_ca_file: env.optional("REDIS_TLS_CA_FILE"),
            redis_key_prefix: env.text("REDIS_KEY_PREFIX", Some("ks:")),
            aws: AwsConfig {
                endpoint_url: env.optional("AWS_ENDPOINT_URL"),
                region: env.text("AWS_REGION", Some("ap-northeast-2")),
                idempotency_table: env.text("IDEMPOTENCY_TABLE", Some("kicksync-idempotency")),
                settlement_runs_table: env
                    .text("SETTLEMENT_RUNS_TABLE", Some("kicksync-settlement-runs")),
                settlement_queue_url: env.optional("SETTLEMENT_QUEUE_URL"),
            },
            auth: AuthConfig {
                jwt_secret: env.secret("JWT_SECRET", None),
                issuer: env.text("JWT_ISSUER", Some("kicksync")),
                audience: env.text("JWT_AUDIENCE", Some("kicksync-api")),
                access_token_ttl: Duration::from_secs(
                    env.parsed("ACCESS_TOKEN_TTL_SECONDS", 15 * 60),
                ),
                refresh_token_ttl: Duration::from_secs(
                    env.parsed("REFRESH_TOKEN_TTL_SECONDS", 14 * 24 * 60 * 60),
                ),
                login_limit_per_email: env.parsed("LOGIN_LIMIT_PER_EMAIL", 10),
                login_limit_per_address: env.parsed("LOGIN_LIMIT_PER_ADDRESS", 60),
                signup_limit_per_address: env.parsed("SIGNUP_LIMIT_PER_ADDRESS", 20),
            },
            products: ProductsConfig {
                list_cache: env.parsed("PRODUCT_LIST_CACHE", true),
                list_cache_ttl: Duration::from_secs(
                    env.parsed("PRODUCT_LIST_CACHE_TTL_SECONDS", 600),
                ),
            },
            orders: OrdersConfig {
                payment_timeout: Duration::from_secs(
                    env.parsed("ORDER_PAYMENT_TIMEOUT_SECONDS", 600),
                ),
                auto_confirm_after: Duration::from_secs(
                    env.parsed::<u64>("AUTO_CONFIRM_AFTER_DAYS", 7) * 24 * 60 * 60,
                ),
                checkout_limit_per_minute: env.parsed("CHECKOUT_LIMIT_PER_MINUTE", 30),
                max_unpaid_orders_per_buyer: env.parsed("MAX_UNPAID_ORDERS_PER_BUYER", 3),
                rebuy_cooldown: Duration::from_secs(env.parsed("REBUY_COOLDOWN_SECONDS", 300)),
                stock_strategy: env.parsed("STOCK_STRATEGY", StockStrategy::Reservation),
                sold_out_memo: Duration::from_millis(env.parsed("SOLD_OUT_MEMO_MS", 100)),
                lock_wait: Duration::from_millis(env.parsed("STOCK_LOCK_WAIT_MS", 5_000)),
                lock_lease: Duration::from_millis(env.parsed("STOCK_LOCK_LEASE_MS", 3_000)),
            },
            settlement: SettlementConfig {
                partitions: env.parsed("SETTLEMENT_PARTITIONS", 8),
                lease: Duration::from_secs(env.parsed("SETTLEMENT_LEASE_SECONDS", 15 * 60)),
                default_rate_bps: env.parsed("DEFAULT_COMMISSION_RATE_BPS", 1_000),
                default_fixed_fee: env.parsed("DEFAULT_COMMISSION_FIXED_FEE", 0),
            },
            portone: portone_config(&mut env),
        };
        if config.auth.jwt_secret.expose_secret().len() < MIN_JWT_SECRET_BYTES
            && env.vars.contains_key("JWT_SECRET")
        {
            env.problems.push(format!(
                "JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes"
            ));
        }
        let pool_size = config.database_max_connections;
        match host {
            Host::Process if pool_size == 0 => env
                .problems
                .push("DATABASE_MAX_CONNECTIONS must be at least 1".to_owned()),
            Host::Lambda if !(1..=LAMBDA_MAX_POOL_SIZE).contains(&pool_size) => {
                env.problems.push(format!(
                    "DATABASE_MAX_CONNECTIONS must be 1 to {LAMBDA_MAX_POOL_SIZE} in a Lambda function"
                ));
            }
            Host::Process | Host::Lambda => {}
        }
        let orders = &config.orders;
        if !(1..=MAX_UNPAID_ORDERS).contains(&orders.max_unpaid_orders_per_buyer) {
            env.problems.push(format!(
                "MAX_UNPAID_ORDERS_PER_BUYER must be 1 to {MAX_UNPAID_ORDERS}"
            ));
        }
        if orders.rebuy_cooldown > MAX_REBUY_COOLDOWN {
            env.problems.push(format!(
                "REBUY_COOLDOWN_SECONDS must be 0 to {}",
                MAX_REBUY_COOLDOWN.as_secs()
            ));
        }
        if orders.sold_out_memo > MAX_SOLD_OUT_MEMO {
            env.problems.push(format!(
                "SOLD_OUT_MEMO_MS must be 0 to {}",
                MAX_SOLD_OUT_MEMO.as_millis()
            ));
        }
        let settlement = &config.settlement;
        if !(1..=crate::domain::settlement::MAX_PARTITIONS).contains(&settlement.partitions) {
            env.problems
                .push("SETTLEMENT_PARTITIONS must be 1 to 1000".to_owned());
        }
        if !(0..=crate::domain::settlement::BPS_DENOMINATOR).contains(&settlement.default_rate_bps)
            || settlement.default_fixed_fee < 0
        {
            env.problems.push(
                "DEFAULT_COMMISSION_RATE_BPS must be 0 to 10000 and DEFAULT_COMMISSION_FIXED_FEE ≥ 0"
                    .to_owned(),
            );
        }
        if env.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                problems: env.problems,
            })
        }
    }
}

fn portone_config(env: &mut Env) -> PortOneConfig {
    use local_portone as local;
    let api_base = env.text("PORTONE_API_BASE", Some(local::API_BASE));
    let is_local = is_local_address(&api_base);
    let local_default = |value: &'static str| is_local.then_some(value);
    let config = PortOneConfig {
        api_secret: env.secret("PORTONE_API_SECRET", local_default(local::API_SECRET)),
        store_id: env.text("PORTONE_STORE_ID", local_default(local::STORE_ID)),
        webhook_secret: env.secret(
            "PORTONE_WEBHOOK_SECRET",
            local_default(local::WEBHOOK_SECRET),
        ),
        timeout: Duration::from_millis(env.parsed("PORTONE_TIMEOUT_MS", 5_000)),
        api_base: api_base.trim_end_matches('/').to_owned(),
    };
    let secret = config.webhook_secret.expose_secret();
    if !secret.is_empty() && crate::domain::webhook::WebhookSecret::new(secret).is_err() {
        env.problems.push(
            "PORTONE_WEBHOOK_SECRET must be base64, optionally prefixed with whsec_".to_owned(),
        );
    }
    config
}

/// A variable reader that remembers every problem instead of stopping at the first.
struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl Env {
    fn optional(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn text(&mut self, name: &str, default: Option<&str>) -> String {
        match (self.optional(name), default) {
            (Some(value), _) => value,
            (None, Some(default)) => default.to_owned(),
            (None, None) => {
                self.problems.push(format!("{name} is required"));
                String::new()
            }
        }
    }

    fn secret(&mut self, name: &str, default: Option<&str>) -> SecretString {
        SecretString::from(self.text(name, default))
    }

    fn parsed<T: std::str::FromStr + Copy>(&mut self, name: &str, default: T) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.problems
                    .push(format!("{name} has an invalid value: {raw:?}"));
                default
            }),
        }
    }
}

#[cfg(test)]
mod tests;
