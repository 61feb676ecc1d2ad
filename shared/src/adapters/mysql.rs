//! MySQL / MariaDB: the system of record.

use std::{str::FromStr, time::Duration};

use secrecy::ExposeSecret;
use sqlx::{
    Connection, MySql, MySqlPool, Transaction,
    migrate::Migrator,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
};

use crate::config::Config;

/// The schema, embedded at compile time so every binary can migrate without the source tree.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before it fails with a 5xx.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// A pooled connection idle longer than this is pinged before it is handed out. A Lambda
/// environment frozen between requests may find its connection closed by the server; one put
/// back a moment ago (the previous step of the same request) is not worth a round trip.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Builds the pool without connecting: Lambda cold starts stay short, and the first query
/// connects. Called once per process; its size is `DATABASE_MAX_CONNECTIONS` (README
/// "Connection budget").
pub fn pool(config: &Config) -> Result<MySqlPool, sqlx::Error> {
    let mut options = MySqlConnectOptions::from_str(config.database_url.expose_secret())?
        // Everything we store is UTC; the session agrees so NOW() and DATETIME compare cleanly.
        .timezone(Some(String::from("+00:00")));
    if let Some(password) = &config.database_password {
        options = options.password(password.expose_secret());
    }
    Ok(MySqlPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    // A dead connection fails the ping: the pool closes it and opens another.
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use sqlx::{Connection, Executor, MySqlConnection};

    use super::*;

    /// `DATABASE_PASSWORD` reaches the server as it is: characters a URL would have to escape
    /// (`@ : / # ?` and spaces) need no encoding.
    #[tokio::test]
    async fn the_password_variable_replaces_the_urls_password() {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned());
        let user = format!(
            "kst_pw_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let password = "p@ss:/w#rd? 1";
        let mut admin = MySqlConnection::connect(&server).await.unwrap();
        for host in ["%", "localhost", "127.0.0.1"] {
            admin
                .execute(
                    format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'").as_str(),
                )
                .await
                .unwrap();
        }
        let host = server.rsplit('@').next().unwrap();
        let config = |with_password: bool| {
            let mut vars = HashMap::from([
                (
                    "DATABASE_URL".to_owned(),
                    format!("mysql://{user}:wrong@{host}"),
                ),
                ("JWT_SECRET".to_owned(), "x".repeat(32)),
            ]);
            if with_password {
                vars.insert("DATABASE_PASSWORD".to_owned(), password.to_owned());
            }
            Config::from_vars(vars).unwrap()
        };
        let with = pool(&config(true)).unwrap();
        let who: (String,) = sqlx::query_as("SELECT CURRENT_USER()")
            .fetch_one(&with)
            .await
            .unwrap();
        assert!(who.0.starts_with(&format!("{user}@")), "{}", who.0);
        with.close().await;
        let without = pool(&config(false)).unwrap();
        assert!(sqlx::query("SELECT 1").execute(&without).await.is_err());
        without.close().await;
        for host in ["%", "localhost", "127.0.0.1"] {
            admin
                .execute(format!("DROP USER '{user}'@'{host}'").as_str())
                .await
                .unwrap();
        }
    }
}
