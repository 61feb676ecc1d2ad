//! Login, sign-up and checkout attempt counting, with reads that ride in the same round trip.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use redis::{ErrorKind, FromRedisValue, Pipeline, RedisError, Script, Value};

use super::RedisStore;

/// Fixed one-minute windows counted with INCR; the first hit of a window sets its expiry.
///
/// [`RateLimiter::hit`] also counts every attempt in the process ([`LocalWindows`]), and when
/// Redis cannot answer, that count decides, with the same limit: a limiter that cannot reach
/// Redis never lets everything through. The local count is the process's own (each Lambda
/// instance has one), so while Redis is down a limit holds per instance rather than overall.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    redis: RedisStore,
    script: Arc<Script>,
    local: Arc<LocalWindows>,
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
            local: Arc::new(LocalWindows::default()),
        }
    }

    /// Counts one attempt under `name` (e.g. `login:ip:198.51.100.7`) against `limit` per
    /// `window`: in Redis, which decides for every process, and in this process, whose count
    /// decides when Redis cannot answer.
    pub async fn hit(&self, name: &str, limit: u32, window: Duration) -> RateDecision {
        let local = self.local.hit(name, limit, window, Instant::now());
        match self.hit_and_read(name, limit, window, &[], |_| {}).await {
            Ok((decision, _, ())) => decision,
            Err(err) => {
                tracing::warn!(%err, name, "Redis unavailable; attempt limited by this process's count");
                local
            }
        }
    }

    /// Counts one attempt in this process only: the fallback of a caller whose
    /// [`RateLimiter::hit_and_read`] failed because Redis could not answer. Unlike
    /// [`RateLimiter::hit`], nothing was counted here while Redis answered, so each process lets
    /// at most `limit` attempts per window through while Redis is away: a limit, never none.
    pub fn hit_locally(&self, name: &str, limit: u32, window: Duration) -> RateDecision {
        self.local.hit(name, limit, window, Instant::now())
    }

    /// Counts one attempt like [`RateLimiter::hit`] and, in the same round trip:
    ///
    /// - tells whether each of the keys `exist` exists (inside the counting script, so they must
    ///   share the counter's hash slot: give `name` and them the same `{tag}`);
    /// - runs the commands `reads` adds to the pipeline, returning their replies (as `T`).
    ///
    /// Both run whatever the decision, so `reads` must change nothing. The checkout's gate asks
    /// the buyer's blacklist entry, idempotency marker and loaded flags, and reads the stock
    /// counters (other slots: on a cluster the pipeline is split by slot), this way.
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

/// A process's own fixed windows, the fallback of [`RateLimiter::hit`] while Redis cannot
/// answer. Every attempt is counted here as well, so that when Redis fails the count already
/// holds this process's recent attempts.
///
/// Expired windows are dropped once the table holds [`LocalWindows::PRUNE_AT`] names (at most
/// once a second); it never holds more than [`LocalWindows::MAX_NAMES`]: a name that does not
/// fit is refused if this count has to decide, never let through.
#[derive(Debug, Default)]
struct LocalWindows {
    table: Mutex<LocalTable>,
}

#[derive(Debug, Default)]
struct LocalTable {
    windows: HashMap<String, LocalWindow>,
    next_prune: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct LocalWindow {
    started: Instant,
    length: Duration,
    count: u64,
}

impl LocalWindows {
    const PRUNE_AT: usize = 10_000;
    const MAX_NAMES: usize = 200_000;

    fn hit(&self, name: &str, limit: u32, window: Duration, now: Instant) -> RateDecision {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.windows.len() >= Self::PRUNE_AT && table.next_prune.is_none_or(|at| now >= at) {
            table
                .windows
                .retain(|_, kept| now.duration_since(kept.started) < kept.length);
            table.next_prune = Some(now + Duration::from_secs(1));
        }
        let full = table.windows.len() >= Self::MAX_NAMES;
        let counted = match table.windows.get_mut(name) {
            Some(counted) => counted,
            None if full => {
                return RateDecision::Limited {
                    retry_after_secs: window.as_secs().max(1),
                };
            }
            None => table.windows.entry(name.to_owned()).or_insert(LocalWindow {
                started: now,
                length: window,
                count: 0,
            }),
        };
        if now.duration_since(counted.started) >= counted.length {
            *counted = LocalWindow {
                started: now,
                length: window,
                count: 0,
            };
        }
        counted.count += 1;
        if counted.count <= u64::from(limit) {
            return RateDecision::Allowed;
        }
        let left = counted
            .length
            .saturating_sub(now.duration_since(counted.started));
        RateDecision::Limited {
            retry_after_secs: u64::try_from(left.as_millis().div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_local_count_refuses_past_the_limit_until_the_window_ends() {
        let local = LocalWindows::default();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                local.hit("login:ip:a", 3, MINUTE, start),
                RateDecision::Allowed
            );
        }
        assert_eq!(
            local.hit("login:ip:a", 3, MINUTE, start + Duration::from_secs(15)),
            RateDecision::Limited {
                retry_after_secs: 45
            }
        );
        // Other names have their own count.
        assert_eq!(
            local.hit("login:ip:b", 3, MINUTE, start),
            RateDecision::Allowed
        );
        // A new window starts afresh.
        assert_eq!(
            local.hit("login:ip:a", 3, MINUTE, start + MINUTE),
            RateDecision::Allowed
        );
    }

    #[test]
    fn expired_windows_are_dropped_and_a_full_table_refuses_new_names() {
        let local = LocalWindows::default();
        let start = Instant::now();
        for n in 0..LocalWindows::PRUNE_AT {
            local.hit(&format!("old:{n}"), 10, MINUTE, start);
        }
        local.hit("new", 10, MINUTE, start + MINUTE);
        assert_eq!(local.table.lock().unwrap().windows.len(), 1);

        let mut table = local.table.lock().unwrap();
        for n in 0..LocalWindows::MAX_NAMES {
            table.windows.insert(
                format!("live:{n}"),
                LocalWindow {
                    started: start + MINUTE,
                    length: MINUTE,
                    count: 1,
                },
            );
        }
        drop(table);
        assert!(matches!(
            local.hit("one-more", 10, MINUTE, start + MINUTE),
            RateDecision::Limited { .. }
        ));
        assert_eq!(
            local.hit("live:7", 10, MINUTE, start + MINUTE),
            RateDecision::Allowed
        );
    }
}
