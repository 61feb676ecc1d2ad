//! What every function needs, built once per process (cold start) and shared by reference.

use std::{sync::Arc, time::Duration};

use sqlx::MySqlPool;

use crate::{
    adapters::{mysql, redis::RedisStore},
    auth::{Authenticator, TokenCodec},
    config::Config,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How long [`Platform::connect`] waits for each store before it leaves the store to the first
/// request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The pools, clients and keys shared by every handler. Clones share the same pools.
#[derive(Debug, Clone)]
pub struct Platform {
    pub config: Arc<Config>,
    pub db: MySqlPool,
    pub redis: RedisStore,
    pub tokens: Arc<TokenCodec>,
    pub authenticator: Authenticator,
}

impl Platform {
    /// Builds everything without touching the network: the first request connects.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let db = mysql::pool(&config)?;
        let redis = RedisStore::new(&config)?;
        Ok(Self::from_parts(config, db, redis))
    }

    /// Opens the first MySQL connection and the Redis connection, both at once, each for at most
    /// [`CONNECT_TIMEOUT`]: a Lambda function's `main` calls it before serving, so the two
    /// handshakes overlap (each other, and the AWS SDK's configuration) instead of running one
    /// after the other inside the first request. A store that cannot be reached is logged and
    /// left to the first request that needs it, which tries again: a function still starts
    /// (and takes its fallbacks) while Redis is down.
    pub async fn connect(&self) {
        let mysql = tokio::time::timeout(CONNECT_TIMEOUT, self.db.acquire());
        let redis = tokio::time::timeout(CONNECT_TIMEOUT, self.redis.connect());
        let (mysql, redis) = tokio::join!(mysql, redis);
        match mysql {
            // Back to the pool, open, for the first request.
            Ok(Ok(connection)) => drop(connection),
            Ok(Err(err)) => tracing::warn!(error = %err, "MySQL not reached at start"),
            Err(_) => tracing::warn!(timeout = ?CONNECT_TIMEOUT, "MySQL not reached at start"),
        }
        match redis {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "Redis not reached at start"),
            Err(_) => tracing::warn!(timeout = ?CONNECT_TIMEOUT, "Redis not reached at start"),
        }
    }

    /// For tests and tools that bring their own pool and key prefix.
    pub fn from_parts(config: Config, db: MySqlPool, redis: RedisStore) -> Self {
        let tokens = Arc::new(TokenCodec::new(&config.auth));
        let authenticator = Authenticator::new(tokens.clone(), redis.clone(), db.clone());
        Self {
            config: Arc::new(config),
            db,
            redis,
            tokens,
            authenticator,
        }
    }
}
