//! The hot copy of the access-token blacklist (MySQL holds the durable one).

use redis::RedisError;

use super::{LOADED_BLACKLIST, LOADED_TTL, RedisStore};

/// Access tokens refused after logout: `bl:{u<user id>}:<jti>` until the token would have
/// expired anyway, in the user's hash slot so that a script counting the user's attempts can look
/// the token up too. Each user's [`LOADED_BLACKLIST`] flag ([`RedisStore::loaded_flag`]), in the
/// same slot, marks that the user's entries were loaded from MySQL since that slot's shard last
/// started empty.
#[derive(Debug, Clone)]
pub struct BlacklistCache {
    redis: RedisStore,
}

/// What the Redis copy of the blacklist can tell about one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlacklistAnswer {
    Listed,
    NotListed,
    /// The user's entries are not loaded (their shard restarted, or the flag expired): ask
    /// MySQL, then reload them.
    NotLoaded,
}

impl BlacklistAnswer {
    /// From what Redis said: (the token's entry exists, the user's entries are loaded).
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

    /// The user's loaded flag, beside the user's entries.
    pub fn loaded_key(&self, user_id: i64) -> String {
        self.redis.loaded_flag(LOADED_BLACKLIST, user_id)
    }

    /// Two `EXISTS` of one slot (the entry, the user's flag), in one round trip.
    pub async fn check(&self, user_id: i64, jti: &str) -> Result<BlacklistAnswer, RedisError> {
        let mut connection = self.redis.connection().await?;
        let replies: (bool, bool) = redis::pipe()
            .exists(self.entry_key(user_id, jti))
            .exists(self.loaded_key(user_id))
            .query_async(&mut connection)
            .await
            .map_err(|err| self.redis.noted(err))?;
        Ok(BlacklistAnswer::from_replies(replies))
    }

    /// Whether the user's entries are loaded (the user's flag exists).
    pub async fn is_loaded(&self, user_id: i64) -> Result<bool, RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("EXISTS")
            .arg(self.loaded_key(user_id))
            .query_async(&mut connection)
            .await
            .map_err(|err| self.redis.noted(err))
    }

    /// Drops the user's loaded flag, so that every check of the user's tokens asks MySQL (and
    /// one reloads them): what a logout does when Redis did not take its entry. Tried even while
    /// Redis is marked down, since a flag left behind would let the token through once Redis
    /// answers again.
    pub async fn forget_loaded(&self, user_id: i64) -> Result<(), RedisError> {
        let mut connection = self.redis.connection_despite_breaker().await?;
        redis::cmd("DEL")
            .arg(self.loaded_key(user_id))
            .query_async::<()>(&mut connection)
            .await
    }

    /// Adds entries of one user (jti, seconds left); `mark_loaded` also sets the user's loaded
    /// flag (for [`LOADED_TTL`]). One slot, one round trip.
    pub async fn add(
        &self,
        user_id: i64,
        entries: &[(String, u64)],
        mark_loaded: bool,
    ) -> Result<(), RedisError> {
        let mut connection = self.redis.connection().await?;
        let mut pipe = redis::pipe();
        for (jti, seconds_left) in entries {
            pipe.set_ex(self.entry_key(user_id, jti), 1, (*seconds_left).max(1))
                .ignore();
        }
        if mark_loaded {
            pipe.set_ex(self.loaded_key(user_id), 1, LOADED_TTL.as_secs())
                .ignore();
        }
        pipe.query_async::<()>(&mut connection).await
    }
}
