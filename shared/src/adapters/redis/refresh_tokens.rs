//! Refresh-token families and their rotation.

use std::{sync::Arc, time::Duration};

use redis::{AsyncCommands, RedisError, Script};

use super::RedisStore;

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
