//! Payments and cancellations as PortOne's JSON shows them (`PaidPayment`, `CancelledPayment`,
//! `SucceededPaymentCancellation`, … in PortOne's schema): camelCase, RFC 3339 times, the
//! fields each status carries. Only what a client could reasonably read is filled in; the rest of
//! PortOne's optional fields are left out.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::state::{Cancellation, StoredPayment};

const MERCHANT_ID: &str = "merchant-fake";

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The payment as `GET /payments/{paymentId}` answers it.
pub(crate) fn payment(payment: &StoredPayment) -> Value {
    let status = payment.api_status();
    let paid = payment.was_paid();
    let recorded = time(payment.recorded_at);
    let changed = time(payment.status_changed_at());
    let mut view = json!({
        "status": status,
        "id": payment.id,
        "transactionId": payment.transaction_id,
        "merchantId": MERCHANT_ID,
        "storeId": payment.store_id,
        "channel": {
            "type": "TEST",
            "id": "channel-fake",
            "key": "channel-key-fake",
            "name": "fake PortOne",
            "pgProvider": "TOSSPAYMENTS",
            "pgMerchantId": "pg-merchant-fake",
        },
        "version": "V2",
        "requestedAt": recorded,
        "updatedAt": changed,
        "statusChangedAt": changed,
        "orderName": format!("KickSync order {}", payment.id),
        "amount": {
            "total": payment.total,
            "taxFree": 0,
            "vat": 0,
            "supply": payment.total,
            "discount": 0,
            "paid": if paid { payment.total } else { 0 },
            "cancelled": payment.cancelled(),
            "cancelledTaxFree": 0,
        },
        "currency": payment.currency,
        "customer": {},
    });
    if paid {
        view["paidAt"] = recorded.clone().into();
        view["pgTxId"] = format!("pg-{}", payment.transaction_id).into();
    }
    if matches!(status, "PARTIAL_CANCELLED" | "CANCELLED") {
        let cancellations: Vec<Value> = payment.cancellations.iter().map(cancellation).collect();
        view["cancellations"] = cancellations.into();
        view["cancelledAt"] = changed.into();
    }
    if status == "FAILED" {
        view["failedAt"] = recorded.into();
        view["failure"] = json!({
            "reason": "the buyer's card was declined",
            "pgCode": "REJECT_CARD_COMPANY",
            "pgMessage": "declined (fake)",
        });
    }
    view
}

/// A cancel that succeeded, as the cancel answer and the payment's `cancellations` show it.
pub(crate) fn cancellation(cancel: &Cancellation) -> Value {
    json!({
        "status": "SUCCEEDED",
        "id": cancel.id,
        "pgCancellationId": cancel.pg_cancellation_id,
        "totalAmount": cancel.amount,
        "taxFreeAmount": 0,
        "vatAmount": 0,
        "reason": cancel.reason,
        "cancelledAt": time(cancel.at),
        "requestedAt": time(cancel.at),
    })
}

/// A time as the control routes' logs show it (RFC 3339, like the API).
pub(crate) fn logged_at(at: DateTime<Utc>) -> String {
    time(at)
}

/// A PortOne-shaped error body: `{"type": "...", "message": "..."}`.
pub(crate) fn error(kind: &str, message: impl Into<String>) -> Value {
    json!({ "type": kind, "message": message.into() })
}
