//! Drop stock in Redis: the in-memory answer to "is there a unit left?", and, for comparison,
//! the per-product lock the system we replace used.
//!
//! # Reservations
//!
//! Each product has one hash `stock:{p<id>}` holding the units left and the facts a checkout
//! checks (release time, purchase limit, price, partner). One Lua script checks them and takes
//! the units in a single round trip, so thousands of buyers racing for one product are answered
//! in memory, and once a product is sold out nobody reaches MySQL for it again.
//!
//! MySQL stays the authority: every reservation is followed, in the order's transaction, by a
//! guarded `UPDATE … WHERE stock_remaining >= ?` under the product row's lock, where the row also
//! decides the price, the release time and the limit (the facts here only pre-filter), and a
//! failure anywhere after the reservation gives the units back. Redis keeps nothing on disk in our deployments: a missing
//! hash means "not loaded", and the checkout loads it from MySQL (`HSET` only if still absent)
//! before trusting it.
//!
//! # One buyer's attempts in flight
//!
//! A reservation is judged against the product's limit per buyer twice: here, against the units
//! the buyer has *in flight* (reserved by checkouts not yet written, in `stock:{p<id>}:b<buyer>`),
//! and in MySQL, against what the buyer already holds. Without the first, a buyer who sends a
//! hundred checkouts at once reserves a hundred units for the moment MySQL takes to refuse 99 of
//! them, and other buyers are told `SOLD_OUT` while they are out. An attempt beyond the limit in
//! flight takes nothing here and goes to MySQL alone, which replays it if it is a retry of one of
//! them and otherwise judges it against what the buyer holds. The in-flight count drops when
//! the checkout is written or gives its units back, is deleted when Redis fails to take it down
//! then, and expires after [`IN_FLIGHT_TTL`] should a process die in between.
//!
//! # Sharding
//!
//! The `{p<id>}` hash tag puts every key of one product in one Redis Cluster slot, and different
//! products spread over all slots: a hot drop loads one shard, as any single counter must. A
//! checkout of several products reserves them one script call per product, in ascending product
//! id, and gives back what it took if a later one fails, so no script ever spans two slots.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use redis::{Pipeline, RedisError, Script};

use super::redis::RedisStore;
use crate::domain::stock::{Offer, StockRefusal};

/// What Redis knows about a product for checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockFacts {
    pub remaining: i64,
    pub release_at: DateTime<Utc>,
    pub max_per_buyer: i64,
    pub price: i64,
    pub partner_id: i64,
}

/// The outcome of one reservation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The units are taken; `facts.remaining` is what is left after them.
    Reserved(StockFacts),
    /// Nothing taken, by the [`stock`](crate::domain::stock) rule.
    Refused(StockRefusal),
    /// No counter in Redis yet (first use, or Redis restarted): load it from MySQL.
    NotLoaded,
    /// Nothing taken: the buyer's checkouts in flight already hold as many units of the product
    /// as the limit allows. MySQL decides this one (a retry of one of them is replayed there,
    /// anything else is over the limit or waits its turn behind them).
    BuyerBusy,
}

#[derive(Debug, Clone)]
pub struct StockReservations {
    redis: RedisStore,
    reserve: Arc<Script>,
    load: Arc<Script>,
    release: Arc<Script>,
    give_back: Arc<Script>,
    written: Arc<Script>,
    reconcile: Arc<Script>,
}

/// How long a buyer's reservation counts as in flight if its checkout never says it ended (the
/// process died between the reservation and the write): far longer than any checkout's write.
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);

/// Lua, the end of the scripts that give units back: `ARGV[1]` units into the product's counter
/// (`KEYS[1]`) only if it is loaded, since a missing one is rebuilt from MySQL, which already has
/// them. Returns the units left, or -1.
const UNITS_BACK: &str = r"
    if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
    return redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[1])
";

/// Lua, `in_flight_down(key)`: `ARGV[1]` units off a buyer's in-flight count, which is deleted at
/// zero and never created.
const IN_FLIGHT_DOWN: &str = r"
    local function in_flight_down(key)
        if redis.call('EXISTS', key) == 1 and redis.call('DECRBY', key, ARGV[1]) <= 0 then
            redis.call('DEL', key)
        end
    end
";

impl StockReservations {
    pub fn new(redis: RedisStore) -> Self {
        // The rule of `domain::stock` (`Offer::check_take`), in its order: it cannot run in here.
        let reserve = Script::new(
            r"
            local facts = redis.call('HMGET', KEYS[1], 'remaining', 'release_at_ms', 'max_per_buyer', 'price', 'partner_id')
            if not facts[1] then return {-2} end
            if tonumber(ARGV[2]) < tonumber(facts[2]) then return {-3} end
            local quantity = tonumber(ARGV[1])
            if quantity > tonumber(facts[3]) then return {-4, tonumber(facts[3])} end
            local remaining = tonumber(facts[1])
            if remaining < quantity then return {-1, remaining} end
            local in_flight = tonumber(redis.call('GET', KEYS[2]) or '0')
            if in_flight + quantity > tonumber(facts[3]) then return {-5} end
            redis.call('INCRBY', KEYS[2], quantity)
            redis.call('PEXPIRE', KEYS[2], ARGV[3])
            remaining = redis.call('HINCRBY', KEYS[1], 'remaining', -quantity)
            return {remaining, tonumber(facts[2]), tonumber(facts[3]), tonumber(facts[4]), tonumber(facts[5])}
            ",
        );
        let load = Script::new(
            r"
            if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
            redis.call('HSET', KEYS[1], 'remaining', ARGV[1], 'release_at_ms', ARGV[2],
                'max_per_buyer', ARGV[3], 'price', ARGV[4], 'partner_id', ARGV[5])
            return 1
            ",
        );
        let release = Script::new(UNITS_BACK);
        // A checkout's units back, and its buyer's in-flight count down with them.
        let give_back =
            Script::new(&[IN_FLIGHT_DOWN, "in_flight_down(KEYS[2])", UNITS_BACK].concat());
        let written = Script::new(&[IN_FLIGHT_DOWN, "in_flight_down(KEYS[1])\nreturn 0"].concat());
        // Facts (release time, limit, price) that are not MySQL's were loaded before an edit
        // whose eviction failed, or by a load that raced it: no sale changes them, so they are
        // dropped at once. A counter that differs from MySQL by the same pair of figures at two
        // checks in a row saw no sale in between, so no reservation was in flight: it leaked (a
        // give-back that failed, or sales through MySQL alone while Redis was thought down).
        // Dropping either is always safe: the next checkout reloads it from MySQL.
        let reconcile = Script::new(
            r"
            local facts = redis.call('HMGET', KEYS[1], 'remaining', 'release_at_ms', 'max_per_buyer', 'price')
            local left = facts[1]
            if not left then return 0 end
            if tonumber(facts[2]) ~= tonumber(ARGV[2]) or tonumber(facts[3]) ~= tonumber(ARGV[3])
                or tonumber(facts[4]) ~= tonumber(ARGV[4]) then
                redis.call('DEL', KEYS[1])
                return 1
            end
            if tonumber(left) == tonumber(ARGV[1]) then
                redis.call('HDEL', KEYS[1], 'differs')
                return 0
            end
            local pair = left .. ':' .. ARGV[1]
            if redis.call('HGET', KEYS[1], 'differs') == pair then
                redis.call('DEL', KEYS[1])
                return 1
            end
            redis.call('HSET', KEYS[1], 'differs', pair)
            return 0
            ",
        );
        Self {
            redis,
            reserve: Arc::new(reserve),
            load: Arc::new(load),
            release: Arc::new(release),
            give_back: Arc::new(give_back),
            written: Arc::new(written),
            reconcile: Arc::new(reconcile),
        }
    }

    fn key(&self, product_id: i64) -> String {
        self.redis.key_of(format_args!("stock:{{p{product_id}}}"))
    }

    /// The units `buyer_id` has in flight for the product, in the product's slot.
    fn in_flight_key(&self, product_id: i64, buyer_id: i64) -> String {
        self.redis
            .key_of(format_args!("stock:{{p{product_id}}}:b{buyer_id}"))
    }

    /// Takes `quantity` units for `buyer_id`'s checkout, if the product's facts and the buyer's
    /// units in flight allow it. The checkout then calls [`StockReservations::written`] or
    /// [`StockReservations::give_back_reserved`].
    pub async fn reserve(
        &self,
        product_id: i64,
        buyer_id: i64,
        quantity: i32,
        now: DateTime<Utc>,
    ) -> Result<Reservation, RedisError> {
        let mut connection = self.redis.connection().await?;
        let reply: Vec<i64> = self
            .reserve
            .key(self.key(product_id))
            .key(self.in_flight_key(product_id, buyer_id))
            .arg(quantity)
            .arg(now.timestamp_millis())
            .arg(u64::try_from(IN_FLIGHT_TTL.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.redis.noted(err))?;
        Ok(match reply.as_slice() {
            [-2] => Reservation::NotLoaded,
            [-5] => Reservation::BuyerBusy,
            [-3] => Reservation::Refused(StockRefusal::NotOnSale),
            [-4, max_per_buyer] => Reservation::Refused(StockRefusal::OverLimit {
                max_per_buyer: *max_per_buyer,
            }),
            [-1, remaining] => Reservation::Refused(StockRefusal::Insufficient {
                remaining: *remaining,
            }),
            [remaining, release_at_ms, max_per_buyer, price, partner_id] => {
                Reservation::Reserved(StockFacts {
                    remaining: *remaining,
                    release_at: DateTime::from_timestamp_millis(*release_at_ms).unwrap_or_default(),
                    max_per_buyer: *max_per_buyer,
                    price: *price,
                    partner_id: *partner_id,
                })
            }
            _ => Reservation::NotLoaded,
        })
    }

    /// Adds a read of the product's counter and the facts the reservation checks to `pipe`, so a
    /// checkout can look before it reserves in the round trip it makes anyway;
    /// [`StockReservations::refusal`] judges the reply.
    pub fn peek(&self, pipe: &mut Pipeline, product_id: i64) {
        pipe.cmd("HMGET")
            .arg(self.key(product_id))
            .arg("remaining")
            .arg("release_at_ms")
            .arg("max_per_buyer");
    }

    /// What the reservation script would refuse, judged from a [`StockReservations::peek`] reply
    /// by the same rule, or `None` when it might reserve (or the counter is not loaded). Only
    /// the script takes units; this spares a sold-out drop's attempts the round trip to it.
    pub fn refusal(
        peeked: &(Option<i64>, Option<i64>, Option<i64>),
        quantity: i32,
        now: DateTime<Utc>,
    ) -> Option<StockRefusal> {
        let (Some(remaining), Some(release_at_ms), Some(max_per_buyer)) = *peeked else {
            return None;
        };
        let offer = Offer {
            remaining,
            release_at: DateTime::from_timestamp_millis(release_at_ms)?,
            max_per_buyer,
        };
        offer.check_take(quantity, now).err()
    }

    /// Stores MySQL's view of a product unless another request loaded it first.
    pub async fn load(&self, product_id: i64, facts: &StockFacts) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        let _: i64 = self
            .load
            .key(self.key(product_id))
            .arg(facts.remaining)
            .arg(facts.release_at.timestamp_millis())
            .arg(facts.max_per_buyer)
            .arg(facts.price)
            .arg(facts.partner_id)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Gives units back; returns what is left now, or `None` if the counter is not loaded.
    pub async fn release(&self, product_id: i64, quantity: i32) -> Result<Option<i64>, RedisError> {
        let left = self
            .move_units(&self.release, &[self.key(product_id)], quantity)
            .await?;
        Ok((left >= 0).then_some(left))
    }

    /// Gives units back after MySQL did not keep them (or returned them). Should Redis fail, the
    /// counter is lower than MySQL's: it is forgotten instead, so the next checkout reloads it.
    /// Never fails: the units are MySQL's either way.
    pub async fn give_back(&self, product_id: i64, quantity: i32) {
        if let Err(err) = self.release(product_id, quantity).await {
            tracing::warn!(%err, product_id, "could not give units back to Redis; its counter is reloaded");
            let _ = self.forget(product_id).await;
        }
    }

    /// Gives back the units a checkout reserved and did not write, and takes them off its buyer's
    /// units in flight. Should Redis fail, both the counter and the buyer's in-flight count are
    /// dropped instead ([`StockReservations::forget_reserved`]).
    pub async fn give_back_reserved(&self, product_id: i64, buyer_id: i64, quantity: i32) {
        let keys = [
            self.key(product_id),
            self.in_flight_key(product_id, buyer_id),
        ];
        if let Err(err) = self.move_units(&self.give_back, &keys, quantity).await {
            tracing::warn!(%err, product_id, "could not give units back to Redis; its counter is reloaded");
            let _ = self.forget_reserved(product_id, buyer_id).await;
        }
    }

    /// The checkout that reserved these units wrote them in MySQL: they are no longer in flight
    /// (MySQL counts them against the buyer's limit from now on). Should Redis fail, the buyer's
    /// in-flight count is deleted instead, or failing that expires after [`IN_FLIGHT_TTL`]; until
    /// then it holds the buyer to fewer attempts at once, never anyone else.
    pub async fn written(&self, product_id: i64, buyer_id: i64, quantity: i32) {
        let in_flight = [self.in_flight_key(product_id, buyer_id)];
        if let Err(err) = self.move_units(&self.written, &in_flight, quantity).await {
            tracing::debug!(%err, product_id, "could not take units off a buyer's units in flight; dropping the count");
            let _ = self.delete(&in_flight).await;
        }
    }

    /// Compares the counter and its facts with MySQL's (`mysql`); drops it when a fact differs,
    /// or when the units differed by the same figures at the previous check too (see the
    /// script). True when it was dropped.
    pub async fn reconcile(&self, product_id: i64, mysql: &StockFacts) -> Result<bool, RedisError> {
        let mut connection = self.redis.connection().await?;
        let dropped: i64 = self
            .reconcile
            .key(self.key(product_id))
            .arg(mysql.remaining)
            .arg(mysql.release_at.timestamp_millis())
            .arg(mysql.max_per_buyer)
            .arg(mysql.price)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.redis.noted(err))?;
        Ok(dropped == 1)
    }

    /// Forgets a product's counter and facts (after a product edit); the next checkout reloads them.
    pub async fn forget(&self, product_id: i64) -> Result<(), RedisError> {
        self.delete(&[self.key(product_id)]).await
    }

    /// Forgets the product's counter and `buyer_id`'s units in flight of it, after a give-back
    /// that failed: the script may have run in full, in part (a script that fails part-way
    /// keeps what it did) or not at all (Redis out of memory refuses its first write, and still
    /// lets a delete through), so neither figure can be trusted. Kept, the counter could show
    /// fewer units than MySQL has, and the in-flight count would send the buyer's next attempts
    /// to MySQL as if still busy. Both start again: the counter from MySQL at the next checkout,
    /// the count at the buyer's next reservation.
    async fn forget_reserved(&self, product_id: i64, buyer_id: i64) -> Result<(), RedisError> {
        // Both in the product's slot, so one DEL on a Redis Cluster too.
        self.delete(&[
            self.key(product_id),
            self.in_flight_key(product_id, buyer_id),
        ])
        .await
    }

    /// Runs one of the scripts that move a checkout's units (`ARGV[1]`) on `keys`.
    async fn move_units(
        &self,
        script: &Script,
        keys: &[String],
        quantity: i32,
    ) -> Result<i64, RedisError> {
        let mut connection = self.redis.connection().await?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(quantity).invoke_async(&mut connection).await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await
    }

    /// Units left according to Redis, if loaded (tests and the benchmark compare it with MySQL).
    pub async fn remaining(&self, product_id: i64) -> Result<Option<i64>, RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("HGET")
            .arg(self.key(product_id))
            .arg("remaining")
            .query_async(&mut connection)
            .await
    }
}

/// The strategy of the system we replace, kept for comparison: one lock per product (acquired
/// with a wait and a lease, like Redisson's `tryLock(wait, lease)`), then the whole checkout in
/// MySQL, then unlock.
#[derive(Debug, Clone)]
pub struct ProductLocks {
    redis: RedisStore,
    unlock: Arc<Script>,
}

/// How long a waiting request sleeps between attempts to take a busy lock.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// A held lock: its key and the token that proves we hold it.
#[derive(Debug)]
pub struct HeldLock {
    key: String,
    token: String,
}

impl ProductLocks {
    pub fn new(redis: RedisStore) -> Self {
        // Delete only our own lock: after a lease ran out, the key may be someone else's.
        let unlock = Script::new(
            r"
            if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
            return 0
            ",
        );
        Self {
            redis,
            unlock: Arc::new(unlock),
        }
    }

    /// Waits up to `wait` for the product's lock; `None` if it stayed busy.
    pub async fn acquire(
        &self,
        product_id: i64,
        wait: Duration,
        lease: Duration,
    ) -> Result<Option<HeldLock>, RedisError> {
        let key = self.redis.key_of(format_args!("lock:{{p{product_id}}}"));
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + wait;
        let mut connection = self.redis.connection().await?;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX))
                .query_async(&mut connection)
                .await?;
            if taken.is_some() {
                return Ok(Some(HeldLock { key, token }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(LOCK_RETRY).await;
        }
    }

    pub async fn release(&self, lock: HeldLock) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        let _: i64 = self
            .unlock
            .key(&lock.key)
            .arg(&lock.token)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }
}
