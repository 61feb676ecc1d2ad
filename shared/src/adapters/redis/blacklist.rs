//! The hot copy of the access-token blacklist (MySQL holds the durable one).

use redis::RedisError;

use super::{LOADED_BLACKLIST, RELOAD_CLAIM, RedisStore};

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

    /// Drops the loaded flag, so that every check asks MySQL (and one reloads the list): what a
    /// logout does when Redis did not take its entry. Tried even while Redis is marked down, since
    /// a flag left behind would let the token through once Redis answers again.
    pub async fn forget_loaded(&self) -> Result<(), RedisError> {
        let mut connection = self.redis.connection_despite_breaker().await?;
        redis::cmd("DEL")
            .arg(self.redis.loaded_flag(LOADED_BLACKLIST))
            .query_async::<()>(&mut connection)
            .await
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
