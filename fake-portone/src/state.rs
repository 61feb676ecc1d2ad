//! What the fake remembers: the payments it was told about, the cancels it accepted and every API
//! request it received. Tests read these back to check what the code under test actually did.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::faults::ActiveFault;

/// A payment's status when it is recorded. Partial cancellation is not here: it only comes from a
/// cancel the code under test makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FakeStatus {
    Ready,
    PayPending,
    VirtualAccountIssued,
    Paid,
    Failed,
    /// Paid, then cancelled in full before the test looked.
    Cancelled,
}

/// A payment to record, as the buyer's checkout would have left it at PortOne.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePayment {
    pub id: String,
    pub amount: i64,
    pub status: FakeStatus,
    /// What the API reports as `amount.total` instead of `amount` (a tampered or wrong payment).
    /// Cancels are checked against this reported amount too, as PortOne would.
    pub reported_amount: Option<i64>,
    pub currency: String,
    /// Another store than the configured one (a payment made to someone else's store).
    pub store_id: Option<String>,
}

impl FakePayment {
    /// A paid KRW payment of `amount` to the configured store.
    pub fn paid(id: impl Into<String>, amount: i64) -> Self {
        Self {
            id: id.into(),
            amount,
            status: FakeStatus::Paid,
            reported_amount: None,
            currency: "KRW".to_owned(),
            store_id: None,
        }
    }

    pub fn status(mut self, status: FakeStatus) -> Self {
        self.status = status;
        self
    }

    /// Makes the API report `amount` as the payment's total.
    pub fn reporting(mut self, amount: i64) -> Self {
        self.reported_amount = Some(amount);
        self
    }

    pub fn currency(mut self, currency: impl Into<String>) -> Self {
        self.currency = currency.into();
        self
    }

    pub fn store(mut self, store_id: impl Into<String>) -> Self {
        self.store_id = Some(store_id.into());
        self
    }
}

/// One cancel the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelRecord {
    pub payment_id: String,
    pub amount: i64,
    pub reason: String,
}

/// One PortOne API request the fake received; `status` is `None` while it is still being answered
/// (a slow fault is sleeping on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
}

/// A payment as stored: the recorded facts plus the cancels made since.
#[derive(Debug, Clone)]
pub(crate) struct StoredPayment {
    pub id: String,
    pub status: FakeStatus,
    /// The total every API answer uses (the reported amount when one was given).
    pub total: i64,
    pub currency: String,
    pub store_id: String,
    pub transaction_id: String,
    pub recorded_at: DateTime<Utc>,
    pub cancellations: Vec<Cancellation>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cancellation {
    pub id: String,
    pub pg_cancellation_id: String,
    pub amount: i64,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Cancellation {
    pub fn new(amount: i64, reason: String, at: DateTime<Utc>) -> Self {
        Self {
            id: format!("cancel-{}", Uuid::new_v4().simple()),
            pg_cancellation_id: format!("pg-cancel-{}", Uuid::new_v4().simple()),
            amount,
            reason,
            at,
        }
    }
}

impl StoredPayment {
    pub fn new(payment: FakePayment, default_store: &str, now: DateTime<Utc>) -> Self {
        let total = payment.reported_amount.unwrap_or(payment.amount);
        let mut stored = Self {
            id: payment.id,
            status: payment.status,
            total,
            currency: payment.currency,
            store_id: payment.store_id.unwrap_or_else(|| default_store.to_owned()),
            transaction_id: Uuid::new_v4().to_string(),
            recorded_at: now,
            cancellations: Vec::new(),
        };
        if payment.status == FakeStatus::Cancelled {
            // A cancelled payment was paid first: it carries the cancel that emptied it.
            stored.status = FakeStatus::Paid;
            let reason = "cancelled before the test".to_owned();
            stored
                .cancellations
                .push(Cancellation::new(total, reason, now));
        }
        stored
    }

    pub fn cancelled(&self) -> i64 {
        self.cancellations.iter().map(|c| c.amount).sum()
    }

    /// Whether money was taken (so it can be cancelled).
    pub fn was_paid(&self) -> bool {
        self.status == FakeStatus::Paid
    }

    /// The status PortOne would report now, cancels included.
    pub fn api_status(&self) -> &'static str {
        match self.status {
            FakeStatus::Ready => "READY",
            FakeStatus::PayPending => "PAY_PENDING",
            FakeStatus::VirtualAccountIssued => "VIRTUAL_ACCOUNT_ISSUED",
            FakeStatus::Failed => "FAILED",
            FakeStatus::Paid | FakeStatus::Cancelled => match self.cancelled() {
                0 => "PAID",
                cancelled if cancelled < self.total => "PARTIAL_CANCELLED",
                _ => "CANCELLED",
            },
        }
    }

    /// When the status last changed: the last cancel, or when it was recorded.
    pub fn status_changed_at(&self) -> DateTime<Utc> {
        self.cancellations
            .last()
            .map_or(self.recorded_at, |last| last.at)
    }
}

/// A cancel as the control route lists it.
#[derive(Debug, Clone)]
pub(crate) struct LoggedCancel {
    pub record: CancelRecord,
    pub at: DateTime<Utc>,
}

/// A request as the control route lists it; `seq` finds it again once it is answered.
#[derive(Debug, Clone)]
pub(crate) struct LoggedRequest {
    pub seq: u64,
    pub record: RequestRecord,
    /// The payment a `GET /payments/{id}` asked for (decoded), for `lookups`.
    pub lookup_of: Option<String>,
    pub at: DateTime<Utc>,
}

/// Everything behind the fake's one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub payments: HashMap<String, StoredPayment>,
    pub faults: Vec<ActiveFault>,
    pub cancels: Vec<LoggedCancel>,
    pub requests: Vec<LoggedRequest>,
    pub next_seq: u64,
}

impl State {
    /// Logs a request on arrival; the returned number answers it later.
    pub fn request_arrived(&mut self, method: &str, path: &str, lookup_of: Option<String>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.requests.push(LoggedRequest {
            seq,
            record: RequestRecord {
                method: method.to_owned(),
                path: path.to_owned(),
                status: None,
            },
            lookup_of,
            at: Utc::now(),
        });
        seq
    }

    pub fn request_answered(&mut self, seq: u64, status: u16) {
        // A reset while the request was pending removed it; nothing to update then.
        if let Some(logged) = self.requests.iter_mut().find(|r| r.seq == seq) {
            logged.record.status = Some(status);
        }
    }

    pub fn reset(&mut self) {
        self.payments.clear();
        self.faults.clear();
        self.cancels.clear();
        self.requests.clear();
    }
}
