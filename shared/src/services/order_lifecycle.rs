//! Transitions that give units back: cancel, expiry and payment failure (a refund, which also
//! gives units back, is [`Payments`](crate::services::payments::Payments)' and ends with
//! [`OrderLifecycle::after_release`]). Each is a guarded
//! `PENDING_PAYMENT → …` update; only the request (or sweeper) whose update wins returns the
//! units, in the same transaction, so two overlapping sweepers return them exactly once.

use chrono::{DateTime, Utc};
use sqlx::{MySql, MySqlPool, Transaction};

use crate::{
    Platform,
    adapters::{
        mysql::finish,
        orders::{self, Order},
        redis::ProductPageCache,
        stock::StockReservations,
    },
    domain::order::OrderStatus,
    services::catalogue::evict_page_one,
};

/// The stock-returning transitions, for any function that ends unpaid orders.
#[derive(Debug, Clone)]
pub struct OrderLifecycle {
    db: MySqlPool,
    reservations: StockReservations,
    page_cache: ProductPageCache,
}

impl OrderLifecycle {
    pub fn new(
        db: MySqlPool,
        reservations: StockReservations,
        page_cache: ProductPageCache,
    ) -> Self {
        Self {
            db,
            reservations,
            page_cache,
        }
    }

    /// With the platform's own stores.
    pub fn of(platform: &Platform) -> Self {
        let redis = platform.redis.clone();
        Self::new(
            platform.db.clone(),
            StockReservations::new(redis.clone()),
            ProductPageCache::new(redis, platform.config.products.list_cache_ttl),
        )
    }

    /// Moves an unpaid order to `to` (EXPIRED, CANCELLED or PAYMENT_FAILED) and returns its units
    /// to MySQL, then Redis. False when the order was no longer awaiting payment.
    pub async fn release(
        &self,
        order: &Order,
        to: OrderStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let result = release_in(&mut tx, order, to, now).await;
        let won = finish(tx, result).await?;
        if won {
            self.after_release(order).await;
        }
        Ok(won)
    }

    /// Once a transaction that returned an order's units to MySQL committed: the same units go
    /// back to the Redis counters, and page 1 is evicted (the product may have been sold out
    /// until now). Neither can fail the request: a counter that cannot be updated is dropped
    /// and reloaded from MySQL.
    pub async fn after_release(&self, order: &Order) {
        for item in &order.items {
            self.reservations
                .give_back(item.product_id, item.quantity)
                .await;
        }
        evict_page_one(&self.page_cache).await;
    }

    /// Expires unpaid orders whose time ran out, `batch` at a time; returns how many it expired.
    pub async fn expire_due(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, sqlx::Error> {
        let mut expired = 0;
        loop {
            let due = orders::expired_unpaid(&self.db, now, batch).await?;
            let found = due.len();
            for order in &due {
                if self.release(order, OrderStatus::Expired, now).await? {
                    expired += 1;
                }
            }
            if i64::try_from(found).unwrap_or(i64::MAX) < batch {
                return Ok(expired);
            }
        }
    }
}

async fn release_in(
    tx: &mut Transaction<'static, MySql>,
    order: &Order,
    to: OrderStatus,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    if !orders::transition(tx, order.id, OrderStatus::PendingPayment, to, now).await? {
        return Ok(false);
    }
    // A buyer who cancelled, or let the order expire, gave it up: the rebuy cooldown starts.
    // A failed payment is not the buyer giving up.
    let abandoned = matches!(to, OrderStatus::Cancelled | OrderStatus::Expired).then_some(now);
    orders::return_stock(tx, order, abandoned).await?;
    orders::close_payment_if_settled(tx, &order.payment_id, to.unpaid_payment_status()).await?;
    Ok(true)
}
