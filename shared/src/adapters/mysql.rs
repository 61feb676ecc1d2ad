//! MySQL / MariaDB: the system of record.

use std::{str::FromStr, time::Duration};

use secrecy::ExposeSecret;
use sqlx::{
    MySql, MySqlPool, Transaction,
    migrate::Migrator,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

use crate::config::Config;

/// The schema, embedded at compile time so every binary can migrate without the source tree.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before it fails with a 5xx.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the pool without connecting: Lambda cold starts stay short, and the first query
/// connects. Called once per process.
pub fn pool(config: &Config) -> Result<MySqlPool, sqlx::Error> {
    let options = MySqlConnectOptions::from_str(config.database_url.expose_secret())?
        // Everything we store is UTC; the session agrees so NOW() and DATETIME compare cleanly.
        .timezone(Some(String::from("+00:00")));
    Ok(MySqlPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options))
}

pub async fn migrate(pool: &MySqlPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Ends a transaction by its work's outcome: commit on `Ok`, roll back (before we answer) on an
/// error, so a refused request never leaves rows locked or half-written. Usage:
/// `let mut tx = db.begin().await?; let result = work(&mut tx).await; finish(tx, result).await`.
/// The error is the caller's own (an [`ApiError`](crate::ApiError), or a typed outcome).
pub async fn finish<T, E: From<sqlx::Error>>(
    tx: Transaction<'static, MySql>,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(%rollback, "rollback failed; the connection will be discarded");
            }
            Err(err)
        }
    }
}
