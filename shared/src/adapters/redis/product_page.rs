//! The cached first page of the product list.

use std::{sync::Arc, time::Duration};

use redis::{AsyncCommands, RedisError, Script};

use super::RedisStore;

/// Page 1 of the newest-first product list, stored as the exact response bytes.
///
/// - `products:page1` holds the fresh copy (TTL), `products:page1:stale` the last copy ever built
///   (no TTL), served to requests that arrive while one request rebuilds the page.
/// - `products:page1:version` is bumped by every eviction. A rebuild reads it before querying
///   MySQL and stores its result only if it is unchanged, so a write that lands during a rebuild
///   can never be hidden behind an older page for ten minutes.
/// - `products:page1:lock` (short expiry) elects the one request that rebuilds.
///
/// All four keys share the `{page1}` hash tag, so the scripts work on a Redis Cluster.
#[derive(Debug, Clone)]
pub struct ProductPageCache {
    redis: RedisStore,
    ttl: Duration,
    fill: Arc<Script>,
}

/// How long a rebuild may hold the lock before another request may try.
const PAGE_LOCK_TTL: Duration = Duration::from_secs(2);

impl ProductPageCache {
    pub fn new(redis: RedisStore, ttl: Duration) -> Self {
        let fill = Script::new(
            r"
            local current = redis.call('GET', KEYS[1]) or '0'
            if current ~= ARGV[1] then return 0 end
            redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
            redis.call('SET', KEYS[3], ARGV[2])
            return 1
            ",
        );
        Self {
            redis,
            ttl,
            fill: Arc::new(fill),
        }
    }

    fn key(&self, suffix: &str) -> String {
        self.redis
            .key_of(format_args!("products:{{page1}}{suffix}"))
    }

    /// The fresh page, if cached. The hot path: one GET.
    pub async fn fresh(&self) -> Result<Option<Vec<u8>>, RedisError> {
        let mut connection = self.redis.connection().await?;
        connection
            .get(self.key(""))
            .await
            .map_err(|err| self.redis.noted(err))
    }

    /// The last page ever built, however old.
    pub async fn stale(&self) -> Result<Option<Vec<u8>>, RedisError> {
        let mut connection = self.redis.connection().await?;
        connection.get(self.key(":stale")).await
    }

    /// Tries to become the one request that rebuilds; returns the version to rebuild against.
    pub async fn try_lock(&self) -> Result<Option<u64>, RedisError> {
        let mut connection = self.redis.connection().await?;
        let (locked, version): (Option<String>, Option<u64>) = redis::pipe()
            .cmd("SET")
            .arg(self.key(":lock"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(PAGE_LOCK_TTL.as_millis()).unwrap_or(2_000))
            .get(self.key(":version"))
            .query_async(&mut connection)
            .await?;
        Ok(locked.map(|_| version.unwrap_or(0)))
    }

    /// Stores a rebuilt page unless an eviction happened since `version` was read; unlocks.
    pub async fn fill(&self, version: u64, page: &[u8]) -> Result<bool, RedisError> {
        let mut connection = self.redis.connection().await?;
        let stored: i64 = self
            .fill
            .key(self.key(":version"))
            .key(self.key(""))
            .key(self.key(":stale"))
            .arg(version)
            .arg(page)
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(600_000))
            .invoke_async(&mut connection)
            .await?;
        let _: () = connection.del(self.key(":lock")).await?;
        Ok(stored == 1)
    }

    /// Called after every write that changes page 1 (create, update, delete, sold-out change).
    pub async fn evict(&self) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::pipe()
            .atomic()
            .incr(self.key(":version"), 1)
            .ignore()
            .del(self.key(""))
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }
}
