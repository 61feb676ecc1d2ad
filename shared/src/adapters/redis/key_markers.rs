//! Which idempotency keys a buyer has used, remembered in Redis so that a refused attempt (sold
//! out, say) can be answered without asking MySQL whether it is a replay of a finished checkout.
//!
//! MySQL's unique `(buyer_id, idempotency_key)` on `payments` is the record. Redis holds a marker
//! per finished checkout (kept a day), `ck:{u<buyer id>}:<key>`, and per checkout whose write
//! failed (it may have committed before its answer was lost, so its retry must ask MySQL), and the
//! buyer's [`LOADED_MARKERS`] loaded flag (`loaded:{u<buyer id>}:checkout-keys`), set once the
//! buyer's markers of the last day were loaded from MySQL since the buyer's shard last started
//! empty. Without it, or with Redis down, a key is looked up in MySQL; a marker that could not be
//! written clears it.
//!
//! Marker and flag are asked in the round trip that counts the attempt against the buyer's
//! checkout limit (the orders function's `gate`): both sit in the buyer's hash slot, so the counting script itself
//! says whether they exist, and losing the slot's data loses both at once.

use std::time::Duration;

use redis::AsyncCommands;
use sqlx::MySqlPool;

use super::{LOADED_TTL, RedisStore};
use crate::{ApiError, adapters::payments};

/// The loaded flag ([`RedisStore::loaded_flag`]) set once the markers are loaded.
pub const LOADED_MARKERS: &str = "checkout-keys";

/// Replays are honoured from the markers for this long; MySQL answers for older keys.
const MARKER_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone)]
pub struct KeyMarkers {
    redis: RedisStore,
    db: MySqlPool,
}

impl KeyMarkers {
    pub fn new(redis: RedisStore, db: MySqlPool) -> Self {
        Self { redis, db }
    }

    /// The marker of a finished checkout, in the buyer's hash slot (`{u<id>}`). The key itself
    /// is printable ASCII of at most 128 characters, so it goes into the name as it is.
    pub fn marker(&self, buyer_id: i64, key: &[u8]) -> String {
        self.redis.key_of(format_args!(
            "ck:{{u{buyer_id}}}:{}",
            String::from_utf8_lossy(key)
        ))
    }

    /// The buyer's loaded flag, in the buyer's hash slot beside the markers.
    pub fn loaded_flag(&self, buyer_id: i64) -> String {
        self.redis.loaded_flag(LOADED_MARKERS, buyer_id)
    }

    /// True only when this buyer certainly never finished a checkout with `key` (in the last
    /// day): Redis vouched for it (no marker, and the buyer's markers loaded), or, when the
    /// buyer's markers were not loaded, the buyer's keys read from MySQL to load them do not
    /// hold it. `replies` is (marker exists, markers loaded) as Redis answered, `None` when Redis
    /// could not be asked (false: the caller asks MySQL about the key).
    pub async fn certainly_unused(
        &self,
        buyer_id: i64,
        key: &str,
        replies: Option<(bool, bool)>,
    ) -> bool {
        match replies {
            Some((false, true)) => true,
            Some((false, false)) => match self.reload(buyer_id).await {
                Ok(keys) => !keys.iter().any(|used| used == key.as_bytes()),
                Err(err) => {
                    tracing::warn!(%err, "could not read the buyer's idempotency keys");
                    false
                }
            },
            _ => false,
        }
    }

    /// Called after a checkout committed, and after one whose write failed: it may have
    /// committed all the same (the connection lost after the COMMIT), and a marker only means
    /// "ask MySQL".
    pub async fn remember(&self, buyer_id: i64, key: &str) {
        let marker = self.marker(buyer_id, key.as_bytes());
        let written = async {
            let mut connection = self.redis.connection().await?;
            connection
                .set_ex::<_, _, ()>(&marker, 1, MARKER_TTL.as_secs())
                .await
        }
        .await;
        if let Err(err) = written {
            tracing::warn!(%err, "idempotency marker not written; MySQL will be asked instead");
            if let Ok(mut connection) = self.redis.connection().await {
                let _: Result<(), _> = connection.del(self.loaded_flag(buyer_id)).await;
            }
        }
    }

    /// Loads the buyer's markers unless they are loaded: called at login and refresh, so that a
    /// buyer's first checkout of a drop finds them (one `EXISTS` when they are).
    pub async fn warm(&self, buyer_id: i64) -> Result<(), ApiError> {
        let mut connection = self.redis.connection().await?;
        let loaded: bool = connection
            .exists(self.loaded_flag(buyer_id))
            .await
            .map_err(|err| self.redis.noted(err))?;
        if !loaded {
            self.reload(buyer_id).await?;
        }
        Ok(())
    }

    /// Reads the buyer's keys of the last day from MySQL and copies them into Redis, marked
    /// loaded; returns them, so that the request that found the markers missing answers from
    /// them. A MySQL failure is an error; a Redis failure is only logged (the next request tries
    /// again). Concurrent reloads of one buyer write the same markers, so none is claimed.
    async fn reload(&self, buyer_id: i64) -> Result<Vec<Vec<u8>>, ApiError> {
        let keys = payments::recent_idempotency_keys(&self.db, buyer_id).await?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.set_ex(self.marker(buyer_id, key), 1, MARKER_TTL.as_secs())
                .ignore();
        }
        pipe.set_ex(self.loaded_flag(buyer_id), 1, LOADED_TTL.as_secs())
            .ignore();
        let written = async {
            let mut connection = self.redis.connection().await?;
            pipe.query_async::<()>(&mut connection).await
        }
        .await;
        if let Err(err) = written {
            tracing::warn!(%err, buyer_id, "could not load the buyer's idempotency markers into Redis");
        }
        Ok(keys)
    }
}
