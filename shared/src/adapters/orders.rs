//! The orders' MySQL side shared by several functions: the order row and its lines, and the
//! transitions of [`OrderLifecycle`](crate::services::order_lifecycle::OrderLifecycle). Every
//! status change is a guarded `UPDATE … WHERE status = ?`, so of two racing changes exactly one
//! wins, and only the winner moves stock.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySql, MySqlPool, Transaction};
use utoipa::ToSchema;

use crate::domain::{order::OrderStatus, payment::PaymentStatus};

/// One line of an order.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct OrderItem {
    #[serde(skip)]
    pub order_id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Order {
    pub id: i64,
    pub payment_id: String,
    pub buyer_id: i64,
    pub partner_id: i64,
    /// PENDING_PAYMENT, PAID, SHIPPED, CONFIRMED, EXPIRED, CANCELLED or PAYMENT_FAILED.
    #[sqlx(try_from = "String")]
    #[schema(value_type = String)]
    pub status: OrderStatus,
    pub amount: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub items: Vec<OrderItem>,
}

/// The columns of [`Order`], for `SELECT {ORDER_COLUMNS} FROM orders …`.
pub const ORDER_COLUMNS: &str = "id, payment_id, buyer_id, partner_id, status, amount, created_at, \
     expires_at, paid_at, shipped_at, confirmed_at, cancelled_at";

/// Reads the lines of `orders` into them.
pub async fn with_items(db: &MySqlPool, mut orders: Vec<Order>) -> Result<Vec<Order>, sqlx::Error> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let placeholders = vec!["?"; orders.len()].join(", ");
    let sql = format!(
        "SELECT order_id, product_id, quantity, unit_price FROM order_items \
         WHERE order_id IN ({placeholders}) ORDER BY order_id, product_id"
    );
    let mut query = sqlx::query_as::<_, OrderItem>(&sql);
    for order in &orders {
        query = query.bind(order.id);
    }
    let items = query.fetch_all(db).await?;
    for order in &mut orders {
        order.items = items
            .iter()
            .filter(|item| item.order_id == order.id)
            .cloned()
            .collect();
    }
    Ok(orders)
}

/// Moves an order from `from` to `to` if it is still in `from`, stamping the matching time
/// column. False when someone else changed it first.
pub async fn transition(
    tx: &mut Transaction<'static, MySql>,
    order_id: i64,
    from: OrderStatus,
    to: OrderStatus,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let stamp = match to {
        OrderStatus::Paid => ", paid_at = ?",
        OrderStatus::Shipped => ", shipped_at = ?",
        OrderStatus::Confirmed => ", confirmed_at = ?",
        OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::PaymentFailed => {
            ", cancelled_at = ?"
        }
        OrderStatus::PendingPayment => "",
    };
    // By the primary key, which locks this one row. Left to choose, the optimizer may walk
    // idx_orders_sweeper's range of the status (it does on small tables) and lock every order in
    // it, and the gap after: a checkout inserting its PENDING_PAYMENT order would then wait for
    // this transaction while holding a row it needs, a deadlock.
    let sql = format!(
        "UPDATE orders FORCE INDEX (PRIMARY) SET status = ?{stamp} WHERE id = ? AND status = ?"
    );
    let mut query = sqlx::query(&sql).bind(to.as_str());
    if !stamp.is_empty() {
        query = query.bind(at);
    }
    let result = query
        .bind(order_id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives an order's units back to stock and to the buyer's purchase limit, and, when the buyer
/// gave the order up (`abandoned_at`: cancelled or let expire), stamps when on the buyer's
/// purchase rows: the checkout's rebuy cooldown counts from it. Call only after winning the
/// transition that releases them, inside the same transaction.
///
/// Locks in the checkout's order: the buyer's purchase rows, then the products (both in
/// ascending product id, the order of `order.items`), so a release and a checkout of the same
/// buyer and product wait for each other instead of deadlocking.
pub async fn return_stock(
    tx: &mut Transaction<'static, MySql>,
    order: &Order,
    abandoned_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    for item in &order.items {
        sqlx::query(
            "UPDATE buyer_product_purchases \
             SET quantity = quantity - ?, abandoned_at = COALESCE(?, abandoned_at) \
             WHERE buyer_id = ? AND product_id = ?",
        )
        .bind(item.quantity)
        .bind(abandoned_at)
        .bind(order.buyer_id)
        .bind(item.product_id)
        .execute(&mut **tx)
        .await?;
    }
    for item in &order.items {
        sqlx::query("UPDATE products SET stock_remaining = stock_remaining + ? WHERE id = ?")
            .bind(item.quantity)
            .bind(item.product_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Marks the payment `status` when it is still pending and none of its orders awaits payment
/// any more.
pub async fn close_payment_if_settled(
    tx: &mut Transaction<'static, MySql>,
    payment_id: &str,
    status: PaymentStatus,
) -> Result<(), sqlx::Error> {
    // The subquery reads (and, in an UPDATE, locks) the payment's own orders only: through the
    // status index it would lock every unpaid order and the gap after them (see `transition`).
    sqlx::query(
        "UPDATE payments SET status = ? WHERE id = ? AND status = ? AND NOT EXISTS \
         (SELECT 1 FROM orders FORCE INDEX (idx_orders_payment) WHERE payment_id = ? AND status = ?)",
    )
    .bind(status.as_str())
    .bind(payment_id)
    .bind(PaymentStatus::Pending.as_str())
    .bind(payment_id)
    .bind(OrderStatus::PendingPayment.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Unpaid orders whose time ran out, oldest first.
pub async fn expired_unpaid(
    db: &MySqlPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let orders: Vec<Order> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE status = ? AND expires_at <= ? \
         ORDER BY expires_at LIMIT ?"
    ))
    .bind(OrderStatus::PendingPayment.as_str())
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    with_items(db, orders).await
}
