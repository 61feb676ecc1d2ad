//! The connection every Redis adapter shares: one per process, its key prefix, the breaker that
//! sends callers to their fallback while Redis is down, and the `{loaded}` flags of sets that
//! are reloaded from MySQL after Redis restarts empty.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use redis::{
    Client, ErrorKind, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::config::Config;

/// A request never waits longer than this for Redis before taking its fallback path.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// After a connection failure, Redis is left alone this long before it is tried again.
const DOWN_FOR: Duration = Duration::from_millis(500);

/// One multiplexed, self-reconnecting connection per process, opened on first use so that a
/// process can start (and serve its MySQL fallbacks) while Redis is down.
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    connection: Arc<OnceCell<ConnectionManager>>,
    prefix: Arc<str>,
    /// Unix milliseconds until which Redis counts as down (see [`RedisStore::mark_down`]).
    down_until_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    pub fn new(config: &Config) -> Result<Self, RedisError> {
        Self::with_prefix(config.redis_url.expose_secret(), &config.redis_key_prefix)
    }

    pub fn with_prefix(url: &str, prefix: &str) -> Result<Self, RedisError> {
        Ok(Self {
            client: Client::open(url)?,
            connection: Arc::new(OnceCell::new()),
            prefix: Arc::from(prefix),
            down_until_ms: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The shared connection; cheap to clone. While Redis is marked down this fails at once,
    /// so every request takes its fallback path without waiting on connection attempts.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        if chrono::Utc::now().timestamp_millis() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::from((
                ErrorKind::IoError,
                "Redis marked down after a recent failure",
            )));
        }
        self.connection_despite_breaker().await
    }

    /// The shared connection even while Redis is marked down: for the rare write that must be
    /// tried (a logout that could not be recorded drops the blacklist's loaded flag).
    pub async fn connection_despite_breaker(&self) -> Result<ConnectionManager, RedisError> {
        let manager = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_connection_timeout(CONNECTION_TIMEOUT)
                    .set_number_of_retries(0);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .inspect_err(|_| self.mark_down())?;
        Ok(manager.clone())
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

    /// The flag key saying that `set` was loaded (see [`LOADED_BLACKLIST`]).
    pub fn loaded_flag(&self, set: &str) -> String {
        self.key_of(format_args!("{{loaded}}:{set}"))
    }

    /// Claims `name` for `ttl` unless another caller holds it (`SET NX PX`), so that of the many
    /// requests that find a set missing after a Redis restart, one reloads it from MySQL and the
    /// others go on without a reload (they ask MySQL for their own answer meanwhile).
    pub async fn claim(&self, name: &str, ttl: Duration) -> Result<bool, RedisError> {
        let mut connection = self.connection().await?;
        let claimed: Option<String> = redis::cmd("SET")
            .arg(self.key(name))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut connection)
            .await
            .map_err(|err| self.noted(err))?;
        Ok(claimed.is_some())
    }
}

/// How long one reload of a lost set may take before another request may try again.
pub const RELOAD_CLAIM: Duration = Duration::from_secs(10);

/// Which sets were loaded from MySQL since Redis last started empty: one flag key per set,
/// `{loaded}:<set>` ([`LOADED_BLACKLIST`], the orders' idempotency markers). The flags share the
/// `{loaded}` hash tag, so one `EXISTS` of several answers for all of them, on a cluster too.
pub const LOADED_BLACKLIST: &str = "blacklist";

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
