//! Payments: the status of the one payment that covers a checkout's orders.

use std::fmt;

use serde::Serialize;

/// A payment's status, as the `payments.status` column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Awaiting the buyer's payment (every checkout starts here).
    Pending,
    Paid,
    /// Some of its orders were refunded.
    PartialCancelled,
    /// Its orders were cancelled before payment (or all refunded).
    Cancelled,
    /// The payment provider reported a failure.
    Failed,
    /// Nobody paid before its orders expired.
    Expired,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Paid,
        PaymentStatus::PartialCancelled,
        PaymentStatus::Cancelled,
        PaymentStatus::Failed,
        PaymentStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::PartialCancelled => "PARTIAL_CANCELLED",
            PaymentStatus::Cancelled => "CANCELLED",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// The column text, for `#[sqlx(try_from = "String")]` on rows.
impl TryFrom<String> for PaymentStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("{text:?} is not a payment status"))
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("pending"), None);
    }
}
