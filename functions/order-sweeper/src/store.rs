//! The sweeper's own MySQL queries; the expiry's are shared ([`shared::adapters::orders`]).

use chrono::{DateTime, Utc};
use shared::{adapters::stock::StockFacts, domain::order::OrderStatus};
use sqlx::MySqlPool;

/// What checkout keeps in Redis of the products released since `since` (and upcoming ones) or
/// changed since then (a sale, a unit given back, an edit: every one touches `updated_at`),
/// newest release first: the ones whose counters may be in use or may have drifted, which the
/// sweeper compares with MySQL. A product released long ago that still sells is among them:
/// its counter can lose a unit as a new drop's can.
pub async fn recent_stock(
    db: &MySqlPool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, StockFacts)>, sqlx::Error> {
    // A UNION rather than an OR, so each half uses its own index.
    let rows: Vec<(i64, i32, DateTime<Utc>, i32, i64, i64)> = sqlx::query_as(
        "SELECT id, stock_remaining, release_at, max_per_buyer, price, partner_id FROM products \
         WHERE release_at >= ? \
         UNION \
         SELECT id, stock_remaining, release_at, max_per_buyer, price, partner_id FROM products \
         WHERE updated_at >= ? \
         ORDER BY release_at DESC, id DESC LIMIT ?",
    )
    .bind(since)
    .bind(since)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, remaining, release_at, max_per_buyer, price, partner_id)| {
                let facts = StockFacts {
                    remaining: remaining.into(),
                    release_at,
                    max_per_buyer: max_per_buyer.into(),
                    price,
                    partner_id,
                };
                (id, facts)
            },
        )
        .collect())
}

/// Confirms every order shipped before `shipped_before`; returns how many.
pub async fn auto_confirm(
    db: &MySqlPool,
    shipped_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE orders SET status = ?, confirmed_at = ? WHERE status = ? AND shipped_at <= ?",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .bind(now)
    .bind(OrderStatus::Shipped.as_str())
    .bind(shipped_before)
    .execute(db)
    .await?;
    Ok(result.rows_affected())
}
