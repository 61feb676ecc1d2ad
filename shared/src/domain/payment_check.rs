//! What to do with a payment once PortOne has told us how it stands: the cross-check that the
//! webhook and the buyer's "complete" call both run. Pure: our row and PortOne's record in, a
//! [`Verdict`] out. PortOne's record is the truth about money; ours is the truth about what was
//! sold, for how much, in which store.

use crate::{
    domain::payment::PaymentStatus,
    ports::{GatewayPayment, GatewayStatus},
};

/// The only currency we sell in.
pub const CURRENCY: &str = "KRW";

/// Our side of a payment, as the `payments` row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurPayment {
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// What we refunded so far.
    pub cancelled_amount: i64,
    /// Our PortOne store, from configuration.
    pub store_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Paid as agreed: the payment and its orders become PAID.
    MarkPaid,
    /// Paid, but not what we asked for (amount, currency or store): cancel it in full at
    /// PortOne, then its unpaid orders become PAYMENT_FAILED and their units come back.
    CancelMismatch { why: String },
    /// Paid after its orders ended (expired or cancelled): refund it in full.
    RefundLate,
    /// PortOne reports a failure: the unpaid orders become PAYMENT_FAILED.
    MarkFailed,
    /// Cancelled at PortOne before it was paid: the unpaid orders become CANCELLED.
    MarkCancelled,
    /// Not paid yet (READY, PAY_PENDING, a virtual account issued), or already handled.
    Nothing,
}

/// Why PortOne's record does not describe the payment we asked for; `None` when it does.
pub fn mismatch(ours: &OurPayment, theirs: &GatewayPayment) -> Option<String> {
    if theirs.total != ours.amount {
        return Some(format!(
            "PortOne reports {} {}, the checkout asked for {} {}",
            theirs.total, theirs.currency, ours.amount, ours.currency
        ));
    }
    if theirs.currency != ours.currency {
        return Some(format!(
            "PortOne reports the currency {}, the checkout asked for {}",
            theirs.currency, ours.currency
        ));
    }
    if theirs.store_id.as_deref() != Some(ours.store_id.as_str()) {
        return Some("PortOne reports the payment in another store".to_owned());
    }
    None
}

pub fn judge(ours: &OurPayment, theirs: &GatewayPayment) -> Verdict {
    let pending = ours.status == PaymentStatus::Pending;
    let wrong = mismatch(ours, theirs);
    match theirs.status {
        GatewayStatus::Paid => match wrong {
            Some(why) => Verdict::CancelMismatch { why },
            None if pending => Verdict::MarkPaid,
            // Its orders ended unpaid, and none of the money was refunded yet.
            None if ours.cancelled_amount == 0
                && matches!(
                    ours.status,
                    PaymentStatus::Expired | PaymentStatus::Cancelled | PaymentStatus::Failed
                ) =>
            {
                Verdict::RefundLate
            }
            None => Verdict::Nothing,
        },
        GatewayStatus::Failed if pending => Verdict::MarkFailed,
        // A mismatching payment we cancelled, whose orders we had not ended yet.
        GatewayStatus::Cancelled | GatewayStatus::PartialCancelled
            if pending && wrong.is_some() =>
        {
            Verdict::MarkFailed
        }
        GatewayStatus::Cancelled | GatewayStatus::PartialCancelled if pending => {
            Verdict::MarkCancelled
        }
        _ => Verdict::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(status: PaymentStatus) -> OurPayment {
        OurPayment {
            amount: 1000,
            currency: CURRENCY.to_owned(),
            status,
            cancelled_amount: 0,
            store_id: "store-1".to_owned(),
        }
    }

    fn theirs(status: GatewayStatus, total: i64) -> GatewayPayment {
        GatewayPayment {
            id: "pay".to_owned(),
            status,
            store_id: Some("store-1".to_owned()),
            currency: CURRENCY.to_owned(),
            total,
            cancelled: 0,
            transaction_id: None,
        }
    }

    #[test]
    fn a_matching_payment_is_marked_paid_once() {
        let paid = theirs(GatewayStatus::Paid, 1000);
        assert_eq!(
            judge(&ours(PaymentStatus::Pending), &paid),
            Verdict::MarkPaid
        );
        assert_eq!(judge(&ours(PaymentStatus::Paid), &paid), Verdict::Nothing);
    }

    #[test]
    fn amount_currency_and_store_must_all_match() {
        let pending = ours(PaymentStatus::Pending);
        let short = theirs(GatewayStatus::Paid, 999);
        assert!(matches!(
            judge(&pending, &short),
            Verdict::CancelMismatch { .. }
        ));

        let mut dollars = theirs(GatewayStatus::Paid, 1000);
        dollars.currency = "USD".to_owned();
        assert!(matches!(
            judge(&pending, &dollars),
            Verdict::CancelMismatch { .. }
        ));

        let mut elsewhere = theirs(GatewayStatus::Paid, 1000);
        elsewhere.store_id = Some("store-2".to_owned());
        assert!(matches!(
            judge(&pending, &elsewhere),
            Verdict::CancelMismatch { .. }
        ));
        elsewhere.store_id = None;
        assert!(mismatch(&pending, &elsewhere).is_some());
    }

    #[test]
    fn not_yet_paid_changes_nothing() {
        let pending = ours(PaymentStatus::Pending);
        for status in [
            GatewayStatus::Ready,
            GatewayStatus::PayPending,
            GatewayStatus::VirtualAccountIssued,
            GatewayStatus::Other("NEW".to_owned()),
        ] {
            assert_eq!(judge(&pending, &theirs(status, 1000)), Verdict::Nothing);
        }
    }

    #[test]
    fn late_payments_are_refunded_once() {
        let paid = theirs(GatewayStatus::Paid, 1000);
        for status in [
            PaymentStatus::Expired,
            PaymentStatus::Cancelled,
            PaymentStatus::Failed,
        ] {
            assert_eq!(judge(&ours(status), &paid), Verdict::RefundLate);
        }
        let mut refunded = ours(PaymentStatus::Cancelled);
        refunded.cancelled_amount = 1000;
        assert_eq!(judge(&refunded, &paid), Verdict::Nothing);
    }

    #[test]
    fn failures_and_cancellations_end_pending_orders_only() {
        let failed = theirs(GatewayStatus::Failed, 1000);
        assert_eq!(
            judge(&ours(PaymentStatus::Pending), &failed),
            Verdict::MarkFailed
        );
        assert_eq!(
            judge(&ours(PaymentStatus::Expired), &failed),
            Verdict::Nothing
        );

        let cancelled = theirs(GatewayStatus::Cancelled, 1000);
        assert_eq!(
            judge(&ours(PaymentStatus::Pending), &cancelled),
            Verdict::MarkCancelled
        );
        let cancelled_mismatch = theirs(GatewayStatus::Cancelled, 5);
        assert_eq!(
            judge(&ours(PaymentStatus::Pending), &cancelled_mismatch),
            Verdict::MarkFailed
        );
        assert_eq!(
            judge(&ours(PaymentStatus::Paid), &cancelled),
            Verdict::Nothing
        );
    }
}
