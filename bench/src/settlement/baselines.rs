//! What the end-to-end figure is measured against: the floor (one GROUP BY), the naive
//! approach the replaced system started from, and the batched insert against one INSERT a row.

use std::{collections::HashMap, time::Instant};

use chrono::NaiveDate;
use shared::{
    adapters::settlements::{self, SettlementRow},
    domain::settlement::{Payout, day_range},
};
use sqlx::MySqlPool;

use super::PARTNERS;
use crate::progress;

const NAIVE_PAGE: i64 = 1_000;

/// Seconds of one GROUP BY of the day over the covering index: what settling cannot beat.
pub(super) async fn floor(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<f64> {
    let (from, to) = day_range(day);
    let started = Instant::now();
    let rows = settlements::aggregate_range(db, from, to).await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(!rows.is_empty(), "no orders on {day}");
    Ok(elapsed)
}

/// The old system's first version: OFFSET pages, each row added up by the application, each
/// partner's settlement written by its own statement.
pub(super) async fn naive(db: &MySqlPool, day: NaiveDate) -> anyhow::Result<f64> {
    let (from, to) = day_range(day);
    let started = Instant::now();
    let mut totals: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut offset = 0;
    loop {
        let page: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, partner_id, amount FROM orders \
             WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ? \
             ORDER BY id LIMIT ? OFFSET ?",
        )
        .bind(from)
        .bind(to)
        .bind(NAIVE_PAGE)
        .bind(offset)
        .fetch_all(db)
        .await?;
        if page.is_empty() {
            break;
        }
        for (_, partner_id, amount) in &page {
            let entry = totals.entry(*partner_id).or_default();
            entry.0 += 1;
            entry.1 += amount;
        }
        offset += NAIVE_PAGE;
    }
    for (partner_id, (count, gross)) in &totals {
        let commission = gross / 10;
        sqlx::query(
            "INSERT INTO settlements (partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id) \
             VALUES (?, ?, ?, ?, ?, ?, 'naive')",
        )
        .bind(partner_id)
        .bind(day)
        .bind(count)
        .bind(gross)
        .bind(commission)
        .bind(gross - commission)
        .execute(db)
        .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// `rows` settlement rows (1,000 partners × `rows / 1000` days in 2001): the worker's batched
/// insert in one transaction, then, after deleting them, one autocommitted INSERT per row.
pub(super) async fn bulk_insert(db: &MySqlPool, rows: u32) -> anyhow::Result<(f64, f64)> {
    let first: NaiveDate = "2001-01-01".parse()?;
    let settlement_rows: Vec<SettlementRow> = (0..rows)
        .map(|n| {
            let gross = 10_000 + i64::from(n % 977) * 100;
            SettlementRow::new(
                i64::from(n % PARTNERS + 1),
                first + chrono::Days::new(u64::from(n / PARTNERS)),
                "bulk",
                Payout {
                    order_count: 1,
                    gross_amount: gross,
                    commission: gross / 10,
                    payout: gross - gross / 10,
                },
            )
        })
        .collect();
    let clear = || async {
        sqlx::query("DELETE FROM settlements WHERE run_id = 'bulk'")
            .execute(db)
            .await
    };

    let started = Instant::now();
    let mut tx = db.begin().await?;
    settlements::insert_settlements(&mut tx, &settlement_rows).await?;
    tx.commit().await?;
    let bulk = started.elapsed().as_secs_f64();
    clear().await?;

    let bar = progress::bar(
        u64::from(rows),
        "{msg:>22} [{bar:40}] {human_pos}/{human_len} ({per_sec})",
    );
    bar.set_message("one by one");
    let mut conn = db.acquire().await?;
    let started = Instant::now();
    for (index, row) in settlement_rows.iter().enumerate() {
        sqlx::query(
            "INSERT INTO settlements (partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.partner_id)
        .bind(row.settlement_date)
        .bind(row.order_count)
        .bind(row.gross_amount)
        .bind(row.commission)
        .bind(row.payout)
        .bind(&row.run_id)
        .execute(&mut *conn)
        .await?;
        if index % 1_000 == 0 {
            bar.set_position(index as u64);
        }
    }
    let one_by_one = started.elapsed().as_secs_f64();
    bar.finish();
    clear().await?;
    Ok((bulk, one_by_one))
}
