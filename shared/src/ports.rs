//! Ports: what the use cases need from the outside world, as traits, so that a test or another
//! provider can stand in. One port so far: the payment gateway (PortOne), implemented over HTTP by
//! [`PortOneClient`](crate::adapters::portone::PortOneClient) and, in tests, the same client
//! pointed at the workspace's fake PortOne.

use std::{fmt, future::Future, pin::Pin};

/// A boxed future, so the trait stays usable as `Arc<dyn PaymentGateway>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The payment provider: read a payment as it sees it, and cancel (refund) some or all of it.
pub trait PaymentGateway: fmt::Debug + Send + Sync {
    /// The provider's own record of a payment. Safe to retry.
    fn get_payment<'a>(
        &'a self,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>>;

    /// Cancels `amount` (all that is left when `None`) of a paid payment. Never retried by the
    /// adapter: a cancel that timed out may have gone through, so the caller decides, and
    /// `current_cancellable_amount` makes a repeated cancel fail instead of refunding twice.
    fn cancel_payment<'a>(
        &'a self,
        cancel: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancellation, GatewayError>>;
}

/// A payment's status at the provider (PortOne's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayStatus {
    Ready,
    PayPending,
    VirtualAccountIssued,
    Paid,
    Failed,
    PartialCancelled,
    Cancelled,
    /// A status this code does not know; treated as "not paid yet".
    Other(String),
}

impl GatewayStatus {
    pub fn parse(text: &str) -> Self {
        match text {
            "READY" => Self::Ready,
            "PAY_PENDING" => Self::PayPending,
            "VIRTUAL_ACCOUNT_ISSUED" => Self::VirtualAccountIssued,
            "PAID" => Self::Paid,
            "FAILED" => Self::Failed,
            "PARTIAL_CANCELLED" => Self::PartialCancelled,
            "CANCELLED" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What the provider reports about a payment; only the fields we check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPayment {
    pub id: String,
    pub status: GatewayStatus,
    pub store_id: Option<String>,
    pub currency: String,
    /// `amount.total`: what the buyer was charged.
    pub total: i64,
    /// `amount.cancelled`: what was refunded so far.
    pub cancelled: i64,
    pub transaction_id: Option<String>,
}

impl GatewayPayment {
    /// What can still be refunded.
    pub fn cancellable(&self) -> i64 {
        (self.total - self.cancelled).max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub payment_id: String,
    /// `None` cancels everything still cancellable.
    pub amount: Option<i64>,
    pub reason: String,
    /// What we believe is still cancellable; the provider refuses the cancel when it differs.
    pub current_cancellable_amount: Option<i64>,
}

/// A cancellation the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub total_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("the payment provider knows no such payment")]
    NotFound,
    #[error("the payment is already cancelled in full")]
    AlreadyCancelled,
    #[error("the payment is not paid")]
    NotPaid,
    #[error("the cancellable amount differs from ours")]
    CancellableAmountChanged,
    /// Any other refusal (4xx), with the provider's error type and message.
    #[error("the payment provider refused: {0}")]
    Refused(String),
    /// 5xx, timeout or no connection: nothing is known, try again later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// A 2xx we could not read.
    #[error("unexpected answer from the payment provider: {0}")]
    UnexpectedAnswer(String),
}
