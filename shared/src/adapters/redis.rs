//! Redis: hot state. Nothing here is the only copy of anything that matters; Redis keeps
//! nothing on disk in our deployments, and every reader copes with it being empty or down.
//!
//! Keys carry the deployment's prefix (`REDIS_KEY_PREFIX`, tests use their own). Keys that must
//! be touched together by one script share a `{hash tag}` so they stay in one Redis Cluster slot.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use redis::{
    AsyncCommands, Client, ErrorKind, FromRedisValue, Pipeline, RedisError, Script, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::config::Config;

/// A request never waits longer than this for Redis before taking its fallback path.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failure, Redis is left alone this long before it is tried again.
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

    /// Passes a command's error through, marking Redis down when the error means it is
    /// unreachable (not, say, a script error).
    pub fn noted(&self, err: RedisError) -> RedisError {
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
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

/// Fixed one-minute windows counted with INCR; the first hit of a window sets its expiry.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    redis: RedisStore,
    script: Arc<Script>,
}

/// The outcome of one counted attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after_secs: u64 },
}

impl RateLimiter {
    pub fn new(redis: RedisStore) -> Self {
        let script = Script::new(
            r"
            local count = redis.call('INCR', KEYS[1])
            if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
            local retry_after = 0
            if count > tonumber(ARGV[2]) then
                retry_after = redis.call('TTL', KEYS[1])
                if retry_after < 1 then retry_after = 1 end
            end
            -- One integer: retry_after, then one bit per further key (1: it exists), in order.
            local answer = retry_after
            if #KEYS > 1 then
                -- Usually none of them exists, and one call says so for all.
                local any = redis.call('EXISTS', unpack(KEYS, 2))
                for i = 2, #KEYS do
                    local found = 0
                    if any > 0 then found = redis.call('EXISTS', KEYS[i]) end
                    answer = answer * 2 + found
                end
            end
            return answer
            ",
        );
        Self {
            redis,
            script: Arc::new(script),
        }
    }

    /// Counts one attempt under `name` (e.g. `login:email:kim@x.kr`) against `limit` per `window`.
    pub async fn hit(
        &self,
        name: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, RedisError> {
        let (decision, _, ()) = self.hit_and_read(name, limit, window, &[], |_| {}).await?;
        Ok(decision)
    }

    /// Counts one attempt like [`RateLimiter::hit`] and, in the same round trip:
    ///
    /// - tells whether each of the keys `exist` exists (inside the counting script, so they must
    ///   share the counter's hash slot: give `name` and them the same `{tag}`);
    /// - runs the commands `reads` adds to the pipeline, returning their replies (as `T`).
    ///
    /// Both run whatever the decision, so `reads` must change nothing. The checkout's gate asks
    /// the buyer's blacklist entry and idempotency marker and reads the loaded flags and the
    /// stock counters this way.
    pub async fn hit_and_read<T: FromRedisValue>(
        &self,
        name: &str,
        limit: u32,
        window: Duration,
        exist: &[String],
        reads: impl FnOnce(&mut Pipeline),
    ) -> Result<(RateDecision, Vec<bool>, T), RedisError> {
        let mut connection = self.redis.connection().await?;
        let mut invocation = self
            .script
            .key(self.redis.key_of(format_args!("rl:{name}")));
        for key in exist {
            invocation.key(key);
        }
        invocation.arg(window.as_secs().max(1)).arg(limit);
        let mut pipe = redis::pipe();
        pipe.invoke_script(&invocation);
        reads(&mut pipe);
        let replies: Vec<Value> = match pipe.query_async(&mut connection).await {
            // Redis lost its scripts (a restart): the attempt was not counted; load and send again.
            Err(err) if err.kind() == ErrorKind::NoScriptError => {
                match invocation.load_async(&mut connection).await {
                    Ok(_) => pipe.query_async(&mut connection).await,
                    Err(err) => Err(err),
                }
            }
            replies => replies,
        }
        .map_err(|err| self.redis.noted(err))?;
        let mut replies = replies.into_iter();
        let Some(counted) = replies.next() else {
            return Err(RedisError::from((
                ErrorKind::TypeError,
                "no reply to the rate limit script",
            )));
        };
        // One integer (a reply of one value is the cheapest to read): the seconds to wait, then
        // one bit per key of `exist`, the last key in the lowest bit.
        let mut packed = u64::from_owned_redis_value(counted)?;
        let mut existing = vec![false; exist.len()];
        for found in existing.iter_mut().rev() {
            *found = packed & 1 == 1;
            packed >>= 1;
        }
        let retry_after = packed;
        let decision = match retry_after {
            0 => RateDecision::Allowed,
            secs => RateDecision::Limited {
                retry_after_secs: secs,
            },
        };
        let read = T::from_owned_redis_value(Value::Array(replies.collect()))?;
        Ok((decision, existing, read))
    }
}

/// Refresh tokens: one key per token (`rt:{family}:<sha256 of secret>` → user id, or
/// `spent:<user id>` once used) and one per family (`rtf:{family}` → `live` | `revoked`).
#[derive(Debug, Clone)]
pub struct RefreshTokenStore {
    redis: RedisStore,
    rotate: Arc<Script>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live; it is now spent and the new one is stored.
    Rotated { user_id: i64 },
    /// Unknown, expired, or of a revoked family.
    Invalid,
    /// The token had been spent before: its family is now revoked.
    Reused,
}

impl RefreshTokenStore {
    pub fn new(redis: RedisStore) -> Self {
        // One script so that two concurrent uses of one token cannot both succeed.
        let rotate = Script::new(
            r"
            local family = redis.call('GET', KEYS[2])
            if family ~= 'live' then return {'invalid'} end
            local holder = redis.call('GET', KEYS[1])
            if not holder then return {'invalid'} end
            if string.sub(holder, 1, 6) == 'spent:' then
                redis.call('SET', KEYS[2], 'revoked', 'KEEPTTL')
                return {'reused'}
            end
            redis.call('SET', KEYS[1], 'spent:' .. holder, 'KEEPTTL')
            redis.call('SET', KEYS[3], holder, 'EX', ARGV[1])
            redis.call('SET', KEYS[2], 'live', 'EX', ARGV[1])
            return {'rotated', holder}
            ",
        );
        Self {
            redis,
            rotate: Arc::new(rotate),
        }
    }

    fn token_key(&self, family: &str, secret_hash: &str) -> String {
        self.redis
            .key_of(format_args!("rt:{{{family}}}:{secret_hash}"))
    }

    fn family_key(&self, family: &str) -> String {
        self.redis.key_of(format_args!("rtf:{{{family}}}"))
    }

    /// Stores the first token of a new family.
    pub async fn issue(
        &self,
        family: &str,
        secret_hash: &str,
        user_id: i64,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::pipe()
            .atomic()
            .set_ex(self.family_key(family), "live", ttl.as_secs())
            .ignore()
            .set_ex(self.token_key(family, secret_hash), user_id, ttl.as_secs())
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }

    /// Spends the presented token and stores its successor, or says why not.
    pub async fn rotate(
        &self,
        family: &str,
        presented_hash: &str,
        next_hash: &str,
        ttl: Duration,
    ) -> Result<Rotation, RedisError> {
        let mut connection = self.redis.connection().await?;
        let reply: Vec<String> = self
            .rotate
            .key(self.token_key(family, presented_hash))
            .key(self.family_key(family))
            .key(self.token_key(family, next_hash))
            .arg(ttl.as_secs())
            .invoke_async(&mut connection)
            .await?;
        Ok(match reply.as_slice() {
            [outcome, holder] if outcome == "rotated" => match holder.parse() {
                Ok(user_id) => Rotation::Rotated { user_id },
                Err(_) => Rotation::Invalid,
            },
            [outcome] if outcome == "reused" => Rotation::Reused,
            _ => Rotation::Invalid,
        })
    }

    /// The user a token (live or spent) was issued to.
    pub async fn owner(&self, family: &str, secret_hash: &str) -> Result<Option<i64>, RedisError> {
        let mut connection = self.redis.connection().await?;
        let holder: Option<String> = connection.get(self.token_key(family, secret_hash)).await?;
        Ok(holder.and_then(|text| text.strip_prefix("spent:").unwrap_or(&text).parse().ok()))
    }

    /// Every token of the family is refused from now on.
    pub async fn revoke_family(&self, family: &str) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("SET")
            .arg(self.family_key(family))
            .arg("revoked")
            .arg("XX")
            .arg("KEEPTTL")
            .query_async::<()>(&mut connection)
            .await
    }
}

/// Access tokens refused after logout: `bl:{u<user id>}:<jti>` until the token would have
/// expired anyway, in the user's hash slot so that a script counting the user's attempts can look
/// the token up too. The [`LOADED_BLACKLIST`] flag ([`RedisStore::loaded_flag`]) marks that the
/// list was loaded from MySQL since Redis last started empty.
#[derive(Debug, Clone)]
pub struct BlacklistCache {
    redis: RedisStore,
}

/// What the Redis copy of the blacklist can tell about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlacklistAnswer {
    Listed,
    NotListed,
    /// Redis restarted since the list was last loaded: ask MySQL, then reload.
    NotLoaded,
}

impl BlacklistAnswer {
    /// From what Redis said: (the token's entry exists, the list is loaded).
    pub fn from_replies((listed, loaded): (bool, bool)) -> Self {
        match (listed, loaded) {
            (true, _) => Self::Listed,
            (false, true) => Self::NotListed,
            (false, false) => Self::NotLoaded,
        }
    }
}

impl BlacklistCache {
    pub fn new(redis: RedisStore) -> Self {
        Self { redis }
    }

    /// The token's entry, in the user's hash slot (`{u<id>}`).
    pub fn entry_key(&self, user_id: i64, jti: &str) -> String {
        self.redis.key_of(format_args!("bl:{{u{user_id}}}:{jti}"))
    }

    pub async fn check(&self, user_id: i64, jti: &str) -> Result<BlacklistAnswer, RedisError> {
        let mut connection = self.redis.connection().await?;
        let replies: (bool, bool) = redis::pipe()
            .exists(self.entry_key(user_id, jti))
            .exists(self.redis.loaded_flag(LOADED_BLACKLIST))
            .query_async(&mut connection)
            .await
            .map_err(|err| self.redis.noted(err))?;
        Ok(BlacklistAnswer::from_replies(replies))
    }

    /// True for the one caller that should reload the list now (see [`RedisStore::claim`]).
    pub async fn claim_reload(&self) -> Result<bool, RedisError> {
        self.redis.claim("bl:loading", RELOAD_CLAIM).await
    }

    /// Adds entries (user id, jti, seconds left); `mark_loaded` also sets the loaded flag.
    pub async fn add(
        &self,
        entries: &[(i64, String, u64)],
        mark_loaded: bool,
    ) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        let mut pipe = redis::pipe();
        for (user_id, jti, seconds_left) in entries {
            pipe.set_ex(self.entry_key(*user_id, jti), 1, (*seconds_left).max(1))
                .ignore();
        }
        if mark_loaded {
            pipe.set(self.redis.loaded_flag(LOADED_BLACKLIST), 1)
                .ignore();
        }
        pipe.query_async::<()>(&mut connection).await
    }
}

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
