//! After each configuration: the sale as MySQL and Redis recorded it, and the check that
//! exactly the units on sale were sold, none oversold, every record agreeing.

use anyhow::bail;
use shared::adapters::{redis::RedisStore, stock::StockReservations};

use super::{
    MAX_PER_BUYER, Setup,
    configuration::Bench,
    figures::{Audit, Measured},
};
use crate::report::round;

impl Bench<'_> {
    pub(super) async fn audit(&self, redis: &RedisStore) -> anyhow::Result<Audit> {
        let count = |sql: &'static str| {
            let db = self.db.clone();
            async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await }
        };
        Ok(Audit {
            orders: count("SELECT COUNT(*) FROM orders").await?,
            payments: count("SELECT COUNT(*) FROM payments").await?,
            order_items_quantity: sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM order_items \
                 WHERE product_id = ?",
            )
            .bind(self.product_id)
            .fetch_one(&self.db)
            .await?,
            distinct_buyers: count("SELECT COUNT(DISTINCT buyer_id) FROM orders").await?,
            max_units_per_buyer: count(
                "SELECT CAST(COALESCE(MAX(quantity), 0) AS SIGNED) FROM buyer_product_purchases",
            )
            .await?,
            stock_remaining: self.units_left(Setup::Reservation, redis).await?,
            redis_remaining: StockReservations::new(redis.clone())
                .remaining(self.product_id)
                .await?,
            sales_span_s: round(micros_to_s(count(
                "SELECT CAST(COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), MAX(created_at)), 0) \
                 AS SIGNED) FROM orders",
            )
            .await?), 3),
        })
    }
}

#[allow(clippy::cast_precision_loss, reason = "spans of seconds")]
pub(super) fn micros_to_s(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// Exactly `units` sold, none oversold, every record agreeing: anything else is an error.
pub(super) fn check_sale(
    setup: Setup,
    figures: &Measured,
    units: u64,
    redis_left: Option<i64>,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if figures.units_sold != units {
        problems.push(format!(
            "{} units sold, expected {units}",
            figures.units_sold
        ));
    }
    if figures.oversold > 0 {
        problems.push(format!("{} units oversold", figures.oversold));
    }
    if figures.status_counts.created != units {
        problems.push(format!(
            "{} attempts answered 201, expected {units}",
            figures.status_counts.created
        ));
    }
    if let Some(audit) = &figures.audit {
        let sold = i64::try_from(units)?;
        for (what, value) in [
            ("orders", audit.orders),
            ("payments", audit.payments),
            ("units in order_items", audit.order_items_quantity),
            ("distinct buyers", audit.distinct_buyers),
        ] {
            if value != sold {
                problems.push(format!("{value} {what}, expected {sold}"));
            }
        }
        if audit.max_units_per_buyer > i64::from(MAX_PER_BUYER) {
            problems.push(format!(
                "a buyer holds {} units, max_per_buyer is {MAX_PER_BUYER}",
                audit.max_units_per_buyer
            ));
        }
        if audit.stock_remaining != 0 {
            problems.push(format!(
                "stock_remaining is {}, expected 0",
                audit.stock_remaining
            ));
        }
    }
    let expected_redis = match setup {
        Setup::Lock => None,
        Setup::Reservation | Setup::Floor => Some(0),
    };
    if redis_left != expected_redis {
        problems.push(format!(
            "the Redis counter says {redis_left:?}, expected {expected_redis:?}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "{}: the sale is wrong: {}",
            setup.name(),
            problems.join("; ")
        )
    }
}
