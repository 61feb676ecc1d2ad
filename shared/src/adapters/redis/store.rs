//! The connection every Redis adapter shares: one per process, its key prefix, the breaker that
//! sends callers to their fallback while Redis is down, and the loaded flags of sets that are
//! reloaded from MySQL after Redis (or one shard of it) restarts empty.
//!
//! ## One Redis or a Redis Cluster
//!
//! `REDIS_CLUSTER=true` makes [`RedisStore`] use redis-rs's cluster client (`REDIS_URL` then
//! lists one or more seed nodes, comma-separated); otherwise it holds one self-reconnecting
//! connection to one server. Callers never see which: [`RedisStore::connection`] hands out a
//! [`RedisConnection`], which runs commands, scripts and pipelines on either.
//!
//! On a cluster a script or multi-key command must name keys of one hash slot, which the key
//! design ensures with `{hash tags}`. A pipeline may mix slots: redis-rs's cluster client would
//! refuse it (it sends a pipeline to one node), so [`RedisConnection`] splits it by slot, sends
//! the parts at once (one round trip of latency) and puts the replies back in order. A
//! `CROSSSLOT` answer is a bug in the key design: it is logged, counted
//! ([`cross_slot_errors`]) and, in debug builds (the tests), a panic.
//!
//! ## TLS
//!
//! A `rediss://` URL (ElastiCache with in-transit encryption) connects over TLS, to one server
//! or to every node of a cluster (the cluster client takes TLS from its first seed, so the seeds
//! must agree). The server's certificate is checked against the public roots compiled in
//! (webpki-roots; ElastiCache's chain to Amazon's public roots), or against only the CA
//! certificates of `REDIS_TLS_CA_FILE` when that is set (a private CA).
//!
//! redis-rs builds its rustls configuration from the process's default crypto provider, and
//! rustls cannot pick one itself here (both ring and aws-lc-rs are compiled in, for reqwest/sqlx
//! and the AWS SDK), so opening a TLS store installs ring as the default if none is installed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt, future::try_join_all};
use redis::{
    Arg, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, TlsCertificates,
    Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::config::Config;

/// A request never waits longer than this for Redis before taking its fallback path.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// After a connection failure, Redis is left alone this long before it is tried again.
const DOWN_FOR: Duration = Duration::from_millis(500);
/// A cluster client follows `MOVED`/`ASK` redirections (a resharding) by retrying; a few quick
/// retries suffice, and a shard that is down must not hold a request for long.
const CLUSTER_RETRIES: u32 = 2;
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (10, 100);

/// How a [`RedisStore`] reaches Redis.
#[derive(Clone)]
enum Backend {
    Single(Client),
    Cluster(ClusterClient),
}

/// One multiplexed, self-reconnecting connection per process (to one server or to every node of
/// a cluster), opened on first use so that a process can start (and serve its MySQL fallbacks)
/// while Redis is down.
#[derive(Clone)]
pub struct RedisStore {
    backend: Backend,
    connection: Arc<OnceCell<RedisConnection>>,
    prefix: Arc<str>,
    /// Unix milliseconds until which Redis counts as down (see [`RedisStore::mark_down`]).
    down_until_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Reads `REDIS_TLS_CA_FILE` when set (at cold start, once).
    pub fn new(config: &Config) -> Result<Self, RedisError> {
        let ca_pem = match &config.redis_tls_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|err| {
                RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "REDIS_TLS_CA_FILE cannot be read",
                    format!("{path}: {err}"),
                ))
            })?),
            None => None,
        };
        Self::open_trusting(
            config.redis_url.expose_secret(),
            config.redis_cluster,
            &config.redis_key_prefix,
            ca_pem.as_deref(),
        )
    }

    /// One Redis server at `url`, keys under `prefix`.
    pub fn with_prefix(url: &str, prefix: &str) -> Result<Self, RedisError> {
        Self::open(url, false, prefix)
    }

    /// `cluster`: `urls` is a comma-separated list of seed nodes of a Redis Cluster (one is
    /// enough; the client learns the others from it). Otherwise `urls` is one server's URL.
    pub fn open(urls: &str, cluster: bool, prefix: &str) -> Result<Self, RedisError> {
        Self::open_trusting(urls, cluster, prefix, None)
    }

    /// As [`RedisStore::open`]; with `ca_pem` (PEM CA certificates), a `rediss://` server's
    /// certificate must chain to one of them instead of to a public root.
    pub fn open_trusting(
        urls: &str,
        cluster: bool,
        prefix: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, RedisError> {
        let seeds: Vec<&str> = if cluster {
            urls.split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .collect()
        } else {
            vec![urls.trim()]
        };
        let tls = seeds.iter().filter(|url| is_tls_url(url)).count();
        if tls > 0 && tls < seeds.len() {
            return Err(invalid_config(
                "REDIS_URL mixes rediss:// and redis:// seed nodes",
            ));
        }
        if tls == 0 && ca_pem.is_some() {
            return Err(invalid_config(
                "REDIS_TLS_CA_FILE is set but REDIS_URL is not a rediss:// URL",
            ));
        }
        if tls > 0 {
            install_crypto_provider();
        }
        let certificates = ca_pem.map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        });
        let backend = if cluster {
            let (min_wait, max_wait) = CLUSTER_RETRY_WAIT_MS;
            let mut builder = ClusterClientBuilder::new(seeds)
                .connection_timeout(CONNECTION_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(min_wait)
                .max_retry_wait(max_wait);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            Backend::Cluster(builder.build()?)
        } else {
            let url = seeds.first().copied().unwrap_or_default();
            Backend::Single(match certificates {
                Some(certificates) => Client::build_with_tls(url, certificates)?,
                None => Client::open(url)?,
            })
        };
        Ok(Self {
            backend,
            connection: Arc::new(OnceCell::new()),
            prefix: Arc::from(prefix),
            down_until_ms: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// The shared connection; cheap to clone. While Redis is marked down this fails at once,
    /// so every request takes its fallback path without waiting on connection attempts.
    pub async fn connection(&self) -> Result<RedisConnection, RedisError> {
        if chrono::Utc::now().timestamp_millis() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::from((
                ErrorKind::IoError,
                "Redis marked down after a recent failure",
            )));
        }
        self.connection_despite_breaker().await
    }

    /// The shared connection even while Redis is marked down: for the rare write that must be
    /// tried (a logout that could not be recorded drops its user's blacklist loaded flag).
    pub async fn connection_despite_breaker(&self) -> Result<RedisConnection, RedisError> {
        let connection = self
            .shared_connection()
            .await
            .inspect_err(|_| self.mark_down())?;
        Ok(connection.clone())
    }

    /// Opens the shared connection now instead of at the first command: `Platform::connect`
    /// does it at cold start. A failure does not mark Redis down, so the first command tries
    /// again at once.
    pub async fn connect(&self) -> Result<(), RedisError> {
        self.shared_connection().await.map(|_| ())
    }

    async fn shared_connection(&self) -> Result<&RedisConnection, RedisError> {
        self.connection
            .get_or_try_init(|| async {
                match &self.backend {
                    Backend::Single(client) => {
                        let config = ConnectionManagerConfig::new()
                            .set_response_timeout(RESPONSE_TIMEOUT)
                            .set_connection_timeout(CONNECTION_TIMEOUT)
                            .set_number_of_retries(0);
                        ConnectionManager::new_with_config(client.clone(), config)
                            .await
                            .map(RedisConnection::Single)
                    }
                    Backend::Cluster(client) => client
                        .get_async_connection()
                        .await
                        .map(RedisConnection::Cluster),
                }
            })
            .await
    }

    /// Called by fallbacks when a Redis command failed: for the next [`DOWN_FOR`] every caller
    /// goes straight to its fallback (MySQL), then one request tries Redis again.
    pub fn mark_down(&self) {
        let until = chrono::Utc::now().timestamp_millis()
            + i64::try_from(DOWN_FOR.as_millis()).unwrap_or(i64::MAX);
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// Passes a command's error through, marking Redis down when the error means it cannot be
    /// reached: the connection was refused, dropped or failed.
    ///
    /// A reply that came too late does not: under a burst of work on our own few cores (Argon2,
    /// say) replies from a healthy Redis can pass [`RESPONSE_TIMEOUT`], and marking it down
    /// then would send every request to its fallback at once, turning a slowdown into failures.
    /// That request takes its own fallback; the next one tries Redis again.
    pub fn noted(&self, err: RedisError) -> RedisError {
        if !err.is_timeout()
            && (err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal())
        {
            self.mark_down();
        }
        err
    }

    /// `prefix + name`.
    pub fn key(&self, name: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + name.len());
        key.push_str(&self.prefix);
        key.push_str(name);
        key
    }

    /// `prefix + name` for a formatted name (`format_args!`), built in one allocation: hot paths
    /// name several keys per request.
    pub fn key_of(&self, name: std::fmt::Arguments<'_>) -> String {
        use std::fmt::Write;
        let mut key = String::with_capacity(self.prefix.len() + 48);
        key.push_str(&self.prefix);
        // Writing into a String cannot fail.
        let _ = key.write_fmt(name);
        key
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The flag saying that user `user_id`'s part of `set` was loaded from MySQL (see
    /// [`LOADED_BLACKLIST`]): `loaded:{u<id>}:<set>`, in the user's hash slot, beside the entries
    /// it vouches for.
    pub fn loaded_flag(&self, set: &str, user_id: i64) -> String {
        self.key_of(format_args!("loaded:{{u{user_id}}}:{set}"))
    }
}

fn is_tls_url(url: &str) -> bool {
    url.get(..TLS_SCHEME.len())
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(TLS_SCHEME))
}

const TLS_SCHEME: &str = "rediss://";

fn invalid_config(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what))
}

/// Makes ring the process's default rustls crypto provider unless one is installed already (see
/// the module's "TLS"); redis-rs's TLS connections need one.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile: theirs is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// How long a loaded flag vouches for its user's part of a set; then that part is reloaded
/// (one indexed MySQL query). It bounds the flags Redis holds to the users of the last day.
pub const LOADED_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Which users' parts of a set were loaded from MySQL since their slot's shard last started
/// empty: one flag key per user and set ([`RedisStore::loaded_flag`]), e.g. the access-token
/// blacklist ([`LOADED_BLACKLIST`]) or the orders' idempotency markers.
///
/// The flag sits in the hash slot of the entries it vouches for (`{u<id>}`), so whatever loses
/// the entries (a shard restarting empty, a `FLUSHALL` of one node) loses the flag with them: a
/// flag on one shard never vouches for entries lost on another. And no flag is read by every
/// request: each request reads its own user's, in the round trip it makes to that slot anyway.
pub const LOADED_BLACKLIST: &str = "blacklist";

/// The connection [`RedisStore::connection`] hands out: to one server or to a cluster. Cheap to
/// clone (both are multiplexed); use it with redis-rs's commands, scripts and pipelines.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "RedisConnection::Single",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        async move {
            let answer = match self {
                Self::Single(connection) => connection.req_packed_command(cmd).await,
                Self::Cluster(connection) => connection.req_packed_command(cmd).await,
            };
            answer.inspect_err(watch_for_cross_slot)
        }
        .boxed()
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        async move {
            let answers = match self {
                Self::Single(connection) => {
                    connection
                        .req_packed_commands(pipeline, offset, count)
                        .await
                }
                Self::Cluster(connection) => {
                    pipeline_by_slot(connection, pipeline, offset, count).await
                }
            };
            let answers = answers.inspect_err(watch_for_cross_slot)?;
            for answer in &answers {
                if let Value::ServerError(err) = answer {
                    watch_for_cross_slot(&RedisError::from(err.clone()));
                }
            }
            Ok(answers)
        }
        .boxed()
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Sends a pipeline whose commands may name keys of several slots: one sub-pipeline per slot,
/// all at once, the replies put back in the pipeline's order. A pipeline of one slot (the usual
/// case) and a transaction (`MULTI`, which must stay whole) go as they are.
async fn pipeline_by_slot(
    connection: &mut ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    let parts = split_by_slot(pipeline);
    if pipeline.is_transaction() || parts.len() <= 1 || offset != 0 || count != pipeline.len() {
        return connection
            .req_packed_commands(pipeline, offset, count)
            .await;
    }
    let sent = parts.into_iter().map(|(indices, part)| {
        let mut connection = connection.clone();
        async move {
            let answers = connection.req_packed_commands(&part, 0, part.len()).await?;
            Ok::<_, RedisError>((indices, answers))
        }
    });
    let mut ordered: Vec<Value> = vec![Value::Nil; pipeline.len()];
    for (indices, answers) in try_join_all(sent).await? {
        for (index, answer) in indices.into_iter().zip(answers) {
            if let Some(slot) = ordered.get_mut(index) {
                *slot = answer;
            }
        }
    }
    Ok(ordered)
}

/// The pipeline's commands grouped by the hash slot of their first key, in order of first
/// appearance; each group is (the commands' positions in the pipeline, a pipeline of them).
/// Commands without a key join the first group.
fn split_by_slot(pipeline: &Pipeline) -> Vec<(Vec<usize>, Pipeline)> {
    let mut groups: Vec<(Option<u16>, Vec<usize>, Pipeline)> = Vec::new();
    for (index, cmd) in pipeline.cmd_iter().enumerate() {
        let slot = first_key(cmd).map(key_slot);
        let group = groups
            .iter()
            .position(|(group_slot, _, _)| match (group_slot, slot) {
                (Some(group_slot), Some(slot)) => *group_slot == slot,
                _ => true,
            });
        let group = match group {
            Some(found) => found,
            None => {
                groups.push((slot, Vec::new(), Pipeline::new()));
                groups.len() - 1
            }
        };
        if let Some((group_slot, indices, part)) = groups.get_mut(group) {
            if group_slot.is_none() {
                *group_slot = slot;
            }
            indices.push(index);
            part.add_command(cmd.clone());
        }
    }
    groups
        .into_iter()
        .map(|(_, indices, part)| (indices, part))
        .collect()
}

/// The first key a command names: `EVAL`/`EVALSHA`'s first key, or the argument after the
/// command's name (every keyed command the adapters pipeline: GET, SET, EXISTS, HMGET, DEL …).
fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        Arg::Cursor => None,
    });
    let name = args.next()?;
    if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let _script = args.next()?;
        if args.next()? == b"0" {
            return None;
        }
    }
    args.next()
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the
/// first `{` and the next `}`, when not empty) or of the whole key, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let rest = key.get(open + 1..)?;
            let close = rest.iter().position(|&byte| byte == b'}')?;
            (close > 0).then(|| rest.get(..close)).flatten()
        })
        .unwrap_or(key);
    crc16_xmodem(tagged) % 16_384
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

static CROSS_SLOT_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many `CROSSSLOT` errors (a script or command naming keys of two slots) this process got.
pub fn cross_slot_errors() -> u64 {
    CROSS_SLOT_ERRORS.load(Ordering::Relaxed)
}

/// A cross-slot error is never Redis's fault but a key that lost its hash tag: logged and
/// counted, and in debug builds (the tests, which swallow Redis errors into their MySQL
/// fallbacks otherwise) a panic, so that a cluster run of the tests cannot pass with one.
fn watch_for_cross_slot(err: &RedisError) {
    let cross_slot = err.kind() == ErrorKind::CrossSlot
        || err.code() == Some("CROSSSLOT")
        || err.to_string().contains("non local key");
    if !cross_slot {
        return;
    }
    CROSS_SLOT_ERRORS.fetch_add(1, Ordering::Relaxed);
    tracing::error!(%err, "Redis Cluster: a command named keys of several hash slots");
    if cfg!(debug_assertions) {
        panic!("CROSSSLOT: {err}");
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::testing::PrivateRedis;

    async fn ping(store: &RedisStore) -> Result<String, RedisError> {
        let mut connection = store.connection().await?;
        redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|err| store.noted(err))
    }

    #[tokio::test]
    async fn a_late_reply_does_not_mark_redis_down() {
        let server = PrivateRedis::start();
        let store = RedisStore::with_prefix(&server.url(), "t:").unwrap();
        assert_eq!(ping(&store).await.unwrap(), "PONG");
        // Redis answers nothing for 700 ms, as when the machine is busy, then answers again.
        server.command(&["CLIENT", "PAUSE", "700", "ALL"]);
        assert!(ping(&store).await.unwrap_err().is_timeout());
        // The next request waits for Redis instead of being sent to its fallback.
        assert_eq!(ping(&store).await.expect("not marked down"), "PONG");
    }

    #[tokio::test]
    async fn a_refused_connection_marks_redis_down() {
        let mut server = PrivateRedis::start();
        let store = RedisStore::with_prefix(&server.url(), "t:").unwrap();
        assert_eq!(ping(&store).await.unwrap(), "PONG");
        server.stop();
        assert!(ping(&store).await.is_err());
        let started = std::time::Instant::now();
        let err = ping(&store).await.unwrap_err();
        assert!(err.to_string().contains("marked down"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
