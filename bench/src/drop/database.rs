//! The drop's MySQL side: a fresh bench database and the runner's own MySQL user on it, how
//! the runner's statements are counted, the partner, the product and the buyers, and the reset
//! between configurations.

use anyhow::{Context, ensure};
use chrono::{TimeDelta, Utc};
use sqlx::{Executor, MySqlConnection, MySqlPool, QueryBuilder};

use super::{DATABASE, MAX_PER_BUYER};
use crate::progress;

/// The MySQL account the runner connects as, so that its statements are counted apart from
/// everyone else's; created for the loopback hosts, dropped at the end.
const RUNNER_USER: &str = "kicksync_bench";
const RUNNER_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "::1"];
const PRICE: i64 = 199_000;
const RELEASED_AGO: TimeDelta = TimeDelta::minutes(1);
/// Buyers per multi-row INSERT (4 values each).
const INSERT_BATCH_ROWS: usize = 2_000;

/// How the runner's MySQL statements are counted.
#[derive(Debug, Clone, Copy)]
pub(super) enum StatementCounter {
    /// MariaDB's per-user counters; `was_on` is restored at the end.
    UserStat { was_on: bool },
    /// The server's global `Questions`: everyone's statements, the bench's own reads included.
    Questions,
}

impl StatementCounter {
    pub(super) async fn enable(admin: &mut MySqlConnection) -> Self {
        let was_on: Result<i64, _> = sqlx::query_scalar("SELECT CAST(@@GLOBAL.userstat AS SIGNED)")
            .fetch_one(&mut *admin)
            .await;
        let Ok(was_on) = was_on else {
            println!("note: no userstat on this server; counting global Questions instead");
            return Self::Questions;
        };
        match admin.execute("SET GLOBAL userstat = ON").await {
            Ok(_) => Self::UserStat {
                was_on: was_on != 0,
            },
            Err(err) => {
                println!(
                    "note: cannot turn userstat on ({err}); counting global Questions instead"
                );
                Self::Questions
            }
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::UserStat { .. } => {
                "userstat (on during phase B only): SELECT_COMMANDS + UPDATE_COMMANDS + \
                 OTHER_COMMANDS of the runner's own MySQL user in information_schema.USER_STATISTICS"
            }
            Self::Questions => {
                "global Questions (userstat unavailable): every client's statements, so an upper bound"
            }
        }
    }

    /// Counts only while asked to: userstat costs every statement some work under a global
    /// mutex, so it is on for phase B, where the count is taken, and off for the sell-out.
    /// Left alone when the server had it on before the bench, or counts global Questions.
    pub(super) async fn counting(
        self,
        admin: &mut MySqlConnection,
        on: bool,
    ) -> anyhow::Result<()> {
        if let Self::UserStat { was_on: false } = self {
            let statement = if on {
                "SET GLOBAL userstat = ON"
            } else {
                "SET GLOBAL userstat = OFF"
            };
            admin.execute(statement).await?;
        }
        Ok(())
    }

    pub(super) async fn read(self, admin: &mut MySqlConnection) -> anyhow::Result<u64> {
        match self {
            Self::UserStat { .. } => {
                let count: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS), 0) \
                     AS SIGNED) FROM information_schema.USER_STATISTICS WHERE USER = ?",
                )
                .bind(RUNNER_USER)
                .fetch_one(&mut *admin)
                .await?;
                Ok(u64::try_from(count)?)
            }
            Self::Questions => {
                let (_, value): (String, String) =
                    sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Questions'")
                        .fetch_one(&mut *admin)
                        .await?;
                Ok(value.parse()?)
            }
        }
    }

    /// Statements between two readings; `Questions` counts the second reading itself.
    pub(super) fn between(self, before: u64, after: u64) -> u64 {
        let own_reads = match self {
            Self::UserStat { .. } => 0,
            Self::Questions => 1,
        };
        after.saturating_sub(before).saturating_sub(own_reads)
    }
}

/// A fresh `kicksync_bench_drop` and the runner's own user on it.
pub(super) async fn create_database(admin: &mut MySqlConnection) -> anyhow::Result<()> {
    let mut statements = vec![
        format!("DROP DATABASE IF EXISTS `{DATABASE}`"),
        format!("CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    ];
    for host in RUNNER_HOSTS {
        statements.push(format!(
            "CREATE USER IF NOT EXISTS '{RUNNER_USER}'@'{host}'"
        ));
        statements.push(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `{DATABASE}`.* TO '{RUNNER_USER}'@'{host}'"
        ));
    }
    for statement in statements {
        admin.execute(statement.as_str()).await?;
    }
    Ok(())
}

/// Drops the database and the runner's user and puts `userstat` back; reports, never fails.
pub(super) async fn clean_up(admin: &mut MySqlConnection, counter: StatementCounter) {
    let mut statements = vec![format!("DROP DATABASE IF EXISTS `{DATABASE}`")];
    statements.extend(
        RUNNER_HOSTS
            .iter()
            .map(|host| format!("DROP USER IF EXISTS '{RUNNER_USER}'@'{host}'")),
    );
    if let StatementCounter::UserStat { was_on: false } = counter {
        statements.push("SET GLOBAL userstat = OFF".to_owned());
    }
    for statement in statements {
        if let Err(err) = admin.execute(statement.as_str()).await {
            eprintln!("clean-up: {statement}: {err}");
        }
    }
}

/// `mysql://kicksync_bench@<host:port of the server URL>/kicksync_bench_drop`.
pub(super) fn runner_database_url(server_url: &str) -> anyhow::Result<String> {
    let rest = server_url
        .strip_prefix("mysql://")
        .or_else(|| server_url.strip_prefix("mariadb://"))
        .with_context(|| format!("not a mysql:// URL: {server_url}"))?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.split(['/', '?']).next().unwrap_or_default();
    ensure!(!host.is_empty(), "no host in {server_url}");
    Ok(format!("mysql://{RUNNER_USER}@{host}/{DATABASE}"))
}

/// The partner and the drop: one product, released a minute ago. Returns its id.
pub(super) async fn insert_drop(db: &MySqlPool, units: u32) -> anyhow::Result<i64> {
    let partner_id = sqlx::query(
        "INSERT INTO users (email, password_hash, name, role) VALUES (?, ?, ?, 'partner')",
    )
    .bind("drop-partner@bench.kicksync.local")
    // Nobody logs in as a bench user; this is not a valid Argon2 hash on purpose.
    .bind("bench-user-cannot-log-in")
    .bind("Bench Drop Partner")
    .execute(db)
    .await?
    .last_insert_id();
    let partner_id = i64::try_from(partner_id)?;
    sqlx::query("INSERT INTO partner_profiles (partner_id, business_name) VALUES (?, ?)")
        .bind(partner_id)
        .bind("Seongsu Drop Lab")
        .execute(db)
        .await?;
    let product_id = sqlx::query(
        "INSERT INTO products \
         (partner_id, name, brand, price, release_at, stock, stock_remaining, max_per_buyer) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(partner_id)
    .bind("Air Jordan 1 High OG 'Bench Drop'")
    .bind("Jordan")
    .bind(PRICE)
    .bind(Utc::now() - RELEASED_AGO)
    .bind(units)
    .bind(units)
    .bind(MAX_PER_BUYER)
    .execute(db)
    .await?
    .last_insert_id();
    Ok(i64::try_from(product_id)?)
}

/// `count` buyers in multi-row INSERTs; returns their ids in order.
pub(super) async fn insert_buyers(db: &MySqlPool, count: u32) -> anyhow::Result<Vec<i64>> {
    let bar = progress::bar(
        u64::from(count),
        "{msg:>12} [{bar:40}] {human_pos}/{human_len} buyers ({per_sec}, {eta} left)",
    );
    bar.set_message("inserting");
    let numbers: Vec<u32> = (1..=count).collect();
    for chunk in numbers.chunks(INSERT_BATCH_ROWS) {
        let mut insert = QueryBuilder::new("INSERT INTO users (email, password_hash, name, role) ");
        insert.push_values(chunk, |mut row, n| {
            row.push_bind(format!("buyer{n:06}@bench.kicksync.local"))
                .push_bind("bench-user-cannot-log-in")
                .push_bind(format!("Bench Buyer {n:06}"))
                .push_bind("buyer");
        });
        insert.build().execute(db).await?;
        bar.inc(u64::try_from(chunk.len())?);
    }
    bar.finish_and_clear();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE role = 'buyer' ORDER BY id")
        .fetch_all(db)
        .await?;
    ensure!(
        ids.len() == usize::try_from(count)?,
        "inserted {count} buyers, found {}",
        ids.len()
    );
    Ok(ids)
}

/// Every order gone and every unit back, so each configuration sells the same units from scratch.
pub(super) async fn reset(db: &MySqlPool, product_id: i64, units: u32) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    for statement in [
        "DELETE FROM order_items",
        "DELETE FROM orders",
        "DELETE FROM payments",
        "DELETE FROM buyer_product_purchases",
    ] {
        tx.execute(statement).await?;
    }
    sqlx::query("UPDATE products SET stock = ?, stock_remaining = ? WHERE id = ?")
        .bind(units)
        .bind(units)
        .bind(product_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
