//! Login and checkout attempt counting, with reads that ride in the same round trip.

use std::{sync::Arc, time::Duration};

use redis::{ErrorKind, FromRedisValue, Pipeline, RedisError, Script, Value};

use super::RedisStore;

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
