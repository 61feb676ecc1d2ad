//! The settlement bench's data: partners, and a day's orders generated inside MariaDB; and the
//! check that the settlement's reads of them use the covering index alone.

use anyhow::Context;
use chrono::NaiveDate;
use shared::domain::settlement::day_range;
use sqlx::{Executor, MySqlPool, Row};

use super::PARTNERS;
use crate::progress;

/// Orders generated per INSERT … SELECT: one tick of the progress bar.
const GENERATE_CHUNK: u64 = 100_000;

/// Shows how MySQL answers the settlement's two reads of orders (a partition's GROUP BY and the
/// invariant's COUNT/SUM) and fails unless both use the covering index alone.
pub(super) async fn explain(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<()> {
    let (from, to) = day_range(day);
    for (what, select) in [
        (
            "partition GROUP BY",
            "SELECT partner_id, COUNT(*), SUM(amount) FROM orders FORCE INDEX (idx_orders_settlement_covering) \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ? GROUP BY partner_id",
        ),
        (
            "invariant COUNT/SUM",
            "SELECT COUNT(*), SUM(amount) FROM orders FORCE INDEX (idx_orders_settlement_covering) \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ?",
        ),
    ] {
        let row = sqlx::query(&format!("EXPLAIN {select}"))
            .bind(from)
            .bind(to)
            .fetch_one(db)
            .await?;
        let key: Option<String> = row.try_get("key")?;
        let access: Option<String> = row.try_get("type")?;
        let extra: Option<String> = row.try_get("Extra")?;
        println!(
            "EXPLAIN {what}: type={} key={} extra={}",
            access.as_deref().unwrap_or("-"),
            key.as_deref().unwrap_or("-"),
            extra.as_deref().unwrap_or("-")
        );
        anyhow::ensure!(
            key.as_deref() == Some("idx_orders_settlement_covering")
                && extra
                    .as_deref()
                    .is_some_and(|extra| extra.contains("Using index")),
            "{what} does not read idx_orders_settlement_covering alone"
        );
    }
    Ok(())
}

/// The partners (users + profiles), one buyer and one payment all orders point to.
pub(super) async fn seed_partners(db: &MySqlPool) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT IGNORE INTO users (id, email, password_hash, name, role) \
         SELECT seq, CONCAT('partner', seq, '@bench.kicksync'), 'x', 'Bench Partner', 'partner' \
         FROM seq_1_to_{PARTNERS}"
    ))
    .execute(db)
    .await?;
    sqlx::query(&format!(
        "INSERT IGNORE INTO partner_profiles (partner_id, business_name) \
         SELECT seq, CONCAT('Shop ', seq) FROM seq_1_to_{PARTNERS}"
    ))
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT IGNORE INTO users (id, email, password_hash, name, role) \
         VALUES (1000001, 'buyer@bench.kicksync', 'x', 'Bench Buyer', 'buyer')",
    )
    .execute(db)
    .await?;
    sqlx::query(
        "INSERT IGNORE INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at) \
         VALUES ('bench', 1000001, 1, 'PAID', 'bench', REPEAT('0', 64), UTC_TIMESTAMP(6))",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// `count` orders spread evenly over `day`, one in ten SHIPPED (not yet confirmed), generated
/// by MariaDB's SEQUENCE engine in chunks of [`GENERATE_CHUNK`].
pub(super) async fn generate(db: &MySqlPool, day: NaiveDate, count: u64) -> anyhow::Result<()> {
    let (from, to) = day_range(day);
    let day_micros = (to - from).num_microseconds().context("day length")?;
    let bar = progress::bar(
        count,
        "{msg:>22} [{bar:40}] {human_pos}/{human_len} ({per_sec})",
    );
    bar.set_message(format!("orders on {day}"));
    let mut conn = db.acquire().await?;
    // Which days are complete, so `--reuse-data` regenerates only what is missing or partial.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_generated (day DATE PRIMARY KEY, orders BIGINT NOT NULL)",
    )
    .await?;
    let done: Option<(i64,)> = sqlx::query_as("SELECT orders FROM bench_generated WHERE day = ?")
        .bind(day)
        .fetch_optional(&mut *conn)
        .await?;
    if done.is_some_and(|(orders,)| u64::try_from(orders).ok() == Some(count)) {
        bar.finish_with_message(format!("orders on {day} (reused)"));
        return Ok(());
    }
    // A partial or different earlier generation of this day (its orders were created 3 days
    // before their confirmation).
    sqlx::query("DELETE FROM bench_generated WHERE day = ?")
        .bind(day)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM orders WHERE created_at >= ? - INTERVAL 3 DAY AND created_at < ? - INTERVAL 3 DAY")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    // The rows reference a partner and the one payment that exist; checking each is pointless.
    conn.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        .await?;
    let mut start = 0;
    while start < count {
        let end = (start + GENERATE_CHUNK).min(count) - 1;
        sqlx::query(&format!(
            "INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, created_at, expires_at, confirmed_at) \
             SELECT 'bench', 1000001, 1 + seq % {PARTNERS}, IF(seq % 10 = 9, 'SHIPPED', 'CONFIRMED'), \
                    1000 + (seq * 7919) % 499000, t - INTERVAL 3 DAY, t - INTERVAL 3 DAY, IF(seq % 10 = 9, NULL, t) \
             FROM (SELECT seq, ? + INTERVAL (seq * {day_micros} DIV {count}) MICROSECOND AS t \
                   FROM seq_{start}_to_{end}) s"
        ))
        .bind(from)
        .execute(&mut *conn)
        .await?;
        bar.inc(end + 1 - start);
        start = end + 1;
    }
    conn.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        .await?;
    sqlx::query("INSERT INTO bench_generated (day, orders) VALUES (?, ?)")
        .bind(day)
        .bind(i64::try_from(count)?)
        .execute(&mut *conn)
        .await?;
    bar.finish();
    Ok(())
}
