//! What every function needs, built once per process (cold start) and shared by reference.

use std::sync::Arc;

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
