//! The sweeper's own MySQL queries; the expiry's are shared ([`shared::adapters::orders`]).

use chrono::{DateTime, Utc};
use shared::domain::order::OrderStatus;
use sqlx::MySqlPool;

/// Units left of the products released since `since` (and upcoming ones), newest first: the
/// ones a drop may be selling, whose Redis counters the sweeper compares with MySQL.
pub async fn recent_stock(
    db: &MySqlPool,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, stock_remaining FROM products WHERE release_at >= ? \
         ORDER BY release_at DESC, id DESC LIMIT ?",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(db)
    .await
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
