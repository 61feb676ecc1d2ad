//! Payments: settling a payment's fate once PortOne has spoken, and refunding a paid order.
//!
//! [`Payments::reconcile`] is what the webhook and the buyer's "complete" call both run: it asks
//! PortOne for its own record (the webhook body is never trusted), lets
//! [`judge`](crate::domain::payment_check::judge) decide, and carries the verdict out. Every step
//! is a guarded transition, so a webhook, its copies and a "complete" racing each other change
//! the state once, and a step that fails half way is safe to run again (PortOne retries).
//!
//! [`Payments::refund_order`] cancels one order's amount at PortOne while the order and payment
//! rows are locked, then marks the order CANCELLED in the same transaction. A refund is never
//! paid out twice: every cancel carries `currentCancellableAmount`, so when an earlier attempt's
//! cancel went through but its answer (or our commit) was lost, PortOne refuses the repeat and
//! its record shows the refund done, which we then record without cancelling again.

use std::sync::Arc;

use chrono::Utc;
use sqlx::{MySql, MySqlPool, Transaction};

use crate::{
    ApiError, Platform,
    adapters::{
        mysql::finish,
        orders::{self, Order},
        payments::{self, MarkPaid, PaymentRow},
    },
    domain::{
        order::OrderStatus,
        payment::PaymentStatus,
        payment_check::{OurPayment, Verdict, judge, mismatch},
    },
    ports::{CancelRequest, GatewayError, GatewayPayment, PaymentGateway},
    services::order_lifecycle::OrderLifecycle,
};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<PaymentError> for ApiError {
    fn from(err: PaymentError) -> Self {
        match err {
            PaymentError::Gateway(err) => ApiError::Unavailable(err.to_string()),
            PaymentError::Database(err) => ApiError::Database(err),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// Only a PAID order (not yet shipped) can be refunded.
    #[error("the order is {0}")]
    NotRefundable(OrderStatus),
    /// PortOne refused or did not answer; nothing was changed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// PortOne's record of the refunds differs from ours in a way no retry of ours explains.
    #[error("PortOne has refunded {theirs} of this payment, we expected {expected}")]
    Disagrees { theirs: i64, expected: i64 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A payment after the cross-check: our row as it stands now, and why PortOne's record did
/// not match it, if it did not.
#[derive(Debug, Clone)]
pub struct Checked {
    pub payment: PaymentRow,
    pub mismatch: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Payments {
    db: MySqlPool,
    gateway: Arc<dyn PaymentGateway>,
    lifecycle: OrderLifecycle,
    store_id: String,
}

impl Payments {
    pub fn new(platform: &Platform, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self {
            db: platform.db.clone(),
            gateway,
            lifecycle: OrderLifecycle::of(platform),
            store_id: platform.config.portone.store_id.clone(),
        }
    }

    pub async fn find(&self, payment_id: &str) -> Result<Option<PaymentRow>, sqlx::Error> {
        payments::find(&self.db, payment_id).await
    }

    /// Asks PortOne how `payment` stands and acts on it. A payment PortOne does not know yet
    /// (the buyer never opened the payment window) changes nothing.
    pub async fn reconcile(&self, payment: &PaymentRow) -> Result<Checked, PaymentError> {
        let theirs = match self.gateway.get_payment(&payment.id).await {
            Ok(theirs) => theirs,
            Err(GatewayError::NotFound) => {
                return Ok(Checked {
                    payment: payment.clone(),
                    mismatch: None,
                });
            }
            Err(err) => return Err(err.into()),
        };
        let ours = OurPayment {
            amount: payment.amount,
            currency: payment.currency.clone(),
            status: payment.status,
            cancelled_amount: payment.cancelled_amount,
            store_id: self.store_id.clone(),
        };
        let verdict = judge(&ours, &theirs);
        tracing::info!(payment_id = %payment.id, ?verdict, "payment cross-checked with PortOne");
        match verdict {
            Verdict::MarkPaid => self.mark_paid(payment, &theirs).await?,
            Verdict::CancelMismatch { why } => {
                tracing::warn!(payment_id = %payment.id, %why, "payment does not match; cancelling it");
                self.cancel_in_full(&theirs, "the payment does not match the order")
                    .await?;
                self.end_unpaid(&payment.id, OrderStatus::PaymentFailed)
                    .await?;
            }
            Verdict::RefundLate => self.refund_late(payment, &theirs).await?,
            Verdict::MarkFailed => {
                self.end_unpaid(&payment.id, OrderStatus::PaymentFailed)
                    .await?;
            }
            Verdict::MarkCancelled => self.end_unpaid(&payment.id, OrderStatus::Cancelled).await?,
            Verdict::Nothing => {}
        }
        let now = payments::find(&self.db, &payment.id)
            .await?
            .unwrap_or_else(|| payment.clone());
        Ok(Checked {
            payment: now,
            mismatch: mismatch(&ours, &theirs),
        })
    }

    /// The payment and all its orders become PAID in one transaction. When an order ended
    /// meanwhile (expired, cancelled), the money is returned instead: a drop's units are not
    /// held for a buyer who paid too late.
    async fn mark_paid(
        &self,
        payment: &PaymentRow,
        theirs: &GatewayPayment,
    ) -> Result<(), PaymentError> {
        let mut tx = self.db.begin().await?;
        let marked = payments::mark_paid(
            &mut tx,
            &payment.id,
            theirs.transaction_id.as_deref(),
            Utc::now(),
        )
        .await;
        match marked {
            Ok(MarkPaid::Paid) => {
                tx.commit().await?;
                return Ok(());
            }
            // Some orders may have moved before the count told us not all did: roll back.
            Ok(MarkPaid::NotAllPending) => tx.rollback().await?,
            Err(err) => {
                finish::<(), _>(tx, Err(err)).await?;
            }
        }
        let now = payments::find(&self.db, &payment.id).await?;
        // PAID now means a racing webhook or "complete" marked it first: done.
        if now.is_some_and(|row| row.status != PaymentStatus::Paid) {
            self.refund_late(payment, theirs).await?;
        }
        Ok(())
    }

    /// Returns a late payment in full, then ends whatever of it still awaits payment.
    async fn refund_late(
        &self,
        payment: &PaymentRow,
        theirs: &GatewayPayment,
    ) -> Result<(), PaymentError> {
        tracing::warn!(payment_id = %payment.id, "paid after its orders ended; refunding it");
        self.cancel_in_full(theirs, "paid after the order expired or was cancelled")
            .await?;
        self.end_unpaid(&payment.id, OrderStatus::Cancelled).await?;
        payments::mark_refunded_in_full(&self.db, &payment.id).await?;
        Ok(())
    }

    async fn cancel_in_full(
        &self,
        theirs: &GatewayPayment,
        reason: &str,
    ) -> Result<(), PaymentError> {
        if theirs.cancellable() == 0 {
            return Ok(());
        }
        let cancel = CancelRequest {
            payment_id: theirs.id.clone(),
            amount: None,
            reason: reason.to_owned(),
            current_cancellable_amount: Some(theirs.cancellable()),
        };
        match self.gateway.cancel_payment(&cancel).await {
            Ok(_) | Err(GatewayError::AlreadyCancelled) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Every order of the payment still awaiting payment becomes `to`, its units back.
    async fn end_unpaid(&self, payment_id: &str, to: OrderStatus) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        for order in payments::orders_of(&self.db, payment_id).await? {
            if order.status == OrderStatus::PendingPayment {
                self.lifecycle.release(&order, to, now).await?;
            }
        }
        Ok(())
    }

    /// Refunds one PAID order: its amount is cancelled at PortOne, then it becomes CANCELLED
    /// and its units come back. On any error nothing was changed.
    pub async fn refund_order(&self, order: &Order) -> Result<(), RefundError> {
        let mut tx = self.db.begin().await?;
        let result = self.refund_in(&mut tx, order).await;
        finish(tx, result).await?;
        self.lifecycle.after_release(order).await;
        Ok(())
    }

    async fn refund_in(
        &self,
        tx: &mut Transaction<'static, MySql>,
        order: &Order,
    ) -> Result<(), RefundError> {
        let status = payments::lock_order_status(tx, order.id).await?;
        if status != Some(OrderStatus::Paid) {
            return Err(RefundError::NotRefundable(status.unwrap_or(order.status)));
        }
        let Some(payment) = payments::lock(tx, &order.payment_id).await? else {
            return Err(RefundError::Database(sqlx::Error::RowNotFound));
        };
        let refunded_after = payment.cancelled_amount + order.amount;
        let cancel = CancelRequest {
            payment_id: payment.id.clone(),
            amount: Some(order.amount),
            reason: format!("order {} cancelled by the buyer", order.id),
            current_cancellable_amount: Some(payment.amount - payment.cancelled_amount),
        };
        match self.gateway.cancel_payment(&cancel).await {
            Ok(_) => {}
            Err(GatewayError::AlreadyCancelled | GatewayError::CancellableAmountChanged) => {
                // An earlier attempt's cancel went through, then its answer or our commit was
                // lost: PortOne's record shows this refund done, and we only record it.
                let theirs = self.gateway.get_payment(&payment.id).await?;
                if theirs.cancelled != refunded_after {
                    return Err(RefundError::Disagrees {
                        theirs: theirs.cancelled,
                        expected: refunded_after,
                    });
                }
                tracing::info!(
                    order_id = order.id,
                    "refund found done at PortOne; recording it"
                );
            }
            Err(err) => return Err(err.into()),
        }
        let now = Utc::now();
        orders::transition(tx, order.id, OrderStatus::Paid, OrderStatus::Cancelled, now).await?;
        // The buyer gave the order up: the rebuy cooldown counts from now, as after a cancel.
        orders::return_stock(tx, order, Some(now)).await?;
        let status = if refunded_after >= payment.amount {
            PaymentStatus::Cancelled
        } else {
            PaymentStatus::PartialCancelled
        };
        payments::record_refund(tx, &payment.id, refunded_after, status).await?;
        Ok(())
    }
}
