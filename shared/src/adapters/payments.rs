//! The `payments` rows in MySQL: one per checkout, covering every partner's order in it. Its
//! status changes go with its orders' in one transaction, orders first (the order in which every
//! other transition takes its locks, so two of them never wait on each other in a circle).

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, Transaction};

use crate::{
    adapters::orders::{self, ORDER_COLUMNS, Order},
    domain::{order::OrderStatus, payment::PaymentStatus},
};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub buyer_id: i64,
    pub amount: i64,
    pub cancelled_amount: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
}

const PAYMENT_COLUMNS: &str = "id, buyer_id, amount, cancelled_amount, currency, status";

pub async fn find(db: &MySqlPool, payment_id: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?"
    ))
    .bind(payment_id)
    .fetch_optional(db)
    .await
}

/// Reads the payment and holds its row until the transaction ends: refunds of one payment's
/// orders take turns, so each sees what the previous one refunded.
pub async fn lock(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ? FOR UPDATE"
    ))
    .bind(payment_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Every order of a payment, with its lines.
pub async fn orders_of(db: &MySqlPool, payment_id: &str) -> Result<Vec<Order>, sqlx::Error> {
    let found: Vec<Order> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE payment_id = ? ORDER BY id"
    ))
    .bind(payment_id)
    .fetch_all(db)
    .await?;
    orders::with_items(db, found).await
}

/// An order's status, its row held until the transaction ends.
pub async fn lock_order_status(
    tx: &mut Transaction<'static, MySql>,
    order_id: i64,
) -> Result<Option<OrderStatus>, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = ? FOR UPDATE")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(status.as_deref().and_then(OrderStatus::parse))
}

/// How [`mark_paid`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkPaid {
    /// The payment and all its orders are PAID now.
    Paid,
    /// Not every order was still awaiting payment (one expired or was cancelled, or another
    /// request marked them first); nothing was written, the caller rolls back.
    NotAllPending,
}

/// PENDING_PAYMENT → PAID for every order of the payment, and the payment PENDING → PAID, or
/// nothing at all.
pub async fn mark_paid(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
    transaction_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<MarkPaid, sqlx::Error> {
    // By the payment's own orders (its index), never a range of the status index: two copies
    // of a webhook for one payment would lock that range from both ends and deadlock (seen by
    // scripts/faults when no order was pending and MariaDB chose `idx_orders_sweeper`).
    let moved = sqlx::query(
        "UPDATE orders FORCE INDEX (idx_orders_payment) SET status = ?, paid_at = ? \
         WHERE payment_id = ? AND status = ?",
    )
    .bind(OrderStatus::Paid.as_str())
    .bind(now)
    .bind(payment_id)
    .bind(OrderStatus::PendingPayment.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE payment_id = ?")
        .bind(payment_id)
        .fetch_one(&mut **tx)
        .await?;
    if moved == 0 || i64::try_from(moved).ok() != Some(total) {
        return Ok(MarkPaid::NotAllPending);
    }
    let paid = sqlx::query(
        "UPDATE payments SET status = ?, paid_at = ?, transaction_id = ? WHERE id = ? AND status = ?",
    )
    .bind(PaymentStatus::Paid.as_str())
    .bind(now)
    .bind(transaction_id)
    .bind(payment_id)
    .bind(PaymentStatus::Pending.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if paid == 1 {
        MarkPaid::Paid
    } else {
        MarkPaid::NotAllPending
    })
}

/// Records that `cancelled_amount` of the payment is refunded in all, and its status after it.
pub async fn record_refund(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
    cancelled_amount: i64,
    status: PaymentStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET cancelled_amount = ?, status = ? WHERE id = ?")
        .bind(cancelled_amount)
        .bind(status.as_str())
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A late payment was refunded in full; its status (EXPIRED, CANCELLED, FAILED) says why.
pub async fn mark_refunded_in_full(db: &MySqlPool, payment_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET cancelled_amount = amount WHERE id = ?")
        .bind(payment_id)
        .execute(db)
        .await?;
    Ok(())
}

/// One buyer's idempotency keys of the last day, which the buyer's Redis markers are loaded from
/// (`uq_payments_buyer_idempotency_key`'s prefix).
pub async fn recent_idempotency_keys(
    db: &MySqlPool,
    buyer_id: i64,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT idempotency_key FROM payments \
         WHERE buyer_id = ? AND created_at > UTC_TIMESTAMP(6) - INTERVAL 1 DAY",
    )
    .bind(buyer_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(key,)| key).collect())
}
