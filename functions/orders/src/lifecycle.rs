//! Transitions that give units back: cancel, expiry and payment failure. Each is a guarded
//! `PENDING_PAYMENT → …` update; only the request (or sweeper) whose update wins returns the
//! units, in the same transaction, so two overlapping sweepers return them exactly once.

use chrono::{DateTime, Utc};
use shared::{
    ApiError,
    adapters::{mysql::finish, redis::ProductPageCache, stock::StockReservations},
    domain::order::OrderStatus,
};
use sqlx::{MySql, MySqlPool, Transaction};

use crate::store::{self, Order};

#[derive(Debug)]
pub struct Lifecycle<'a> {
    pub(crate) db: &'a MySqlPool,
    pub(crate) reservations: &'a StockReservations,
    pub(crate) page_cache: &'a ProductPageCache,
}

impl Lifecycle<'_> {
    /// Moves an unpaid order to `to` (EXPIRED, CANCELLED or PAYMENT_FAILED) and returns its units
    /// to MySQL, then Redis. False when the order was no longer awaiting payment.
    pub async fn release(
        &self,
        order: &Order,
        to: OrderStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, ApiError> {
        let mut tx = self.db.begin().await?;
        let result = release_in(&mut tx, order, to, now).await;
        let won = finish(tx, result).await?;
        if won {
            for item in &order.items {
                if let Err(err) = self
                    .reservations
                    .release(item.product_id, item.quantity)
                    .await
                {
                    tracing::warn!(%err, product_id = item.product_id, "units returned in MySQL only; Redis reloads them");
                    let _ = self.reservations.forget(item.product_id).await;
                }
            }
            // The product may have been sold out until now.
            if let Err(err) = self.page_cache.evict().await {
                tracing::warn!(%err, "could not evict the product list page");
            }
        }
        Ok(won)
    }

    /// Expires unpaid orders whose time ran out, `batch` at a time; returns how many it expired.
    pub async fn expire_due(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, ApiError> {
        let mut expired = 0;
        loop {
            let due = store::expired_unpaid(self.db, now, batch).await?;
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

    /// Compares the Redis counters of the products released since `since` with MySQL and drops
    /// the ones that leaked (see [`StockReservations::reconcile`]); returns how many it dropped.
    /// Redis trouble ends the pass quietly: the next sweep tries again.
    pub async fn reconcile_counters(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, ApiError> {
        let mut dropped = 0;
        for (product_id, left) in store::recent_stock(self.db, since, limit).await? {
            match self.reservations.reconcile(product_id, left.into()).await {
                Ok(true) => {
                    tracing::warn!(
                        product_id,
                        "stock counter drifted from MySQL; dropped for a reload"
                    );
                    dropped += 1;
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(%err, "Redis unavailable; counters not reconciled this time");
                    break;
                }
            }
        }
        Ok(dropped)
    }

    /// Confirms orders shipped at least `after` ago; returns how many.
    pub async fn auto_confirm(
        &self,
        now: DateTime<Utc>,
        after: chrono::Duration,
    ) -> Result<u64, ApiError> {
        Ok(store::auto_confirm(self.db, now - after, now).await?)
    }
}

async fn release_in(
    tx: &mut Transaction<'static, MySql>,
    order: &Order,
    to: OrderStatus,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    if !store::transition(tx, order.id, OrderStatus::PendingPayment, to, now).await? {
        return Ok(false);
    }
    store::return_stock(tx, order).await?;
    let payment_status = match to {
        OrderStatus::Expired => "EXPIRED",
        OrderStatus::PaymentFailed => "FAILED",
        _ => "CANCELLED",
    };
    store::close_payment_if_settled(tx, &order.payment_id, payment_status).await?;
    Ok(true)
}
