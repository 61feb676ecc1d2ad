//! The webhooks PortOne sends when a payment changes: Standard Webhooks (version 2024-04-25),
//! signed with the same code KickSync verifies them with. The same message can be delivered
//! several times, as PortOne does when it retries, so tests can prove the receiver is idempotent.

use std::{error::Error, time::Duration};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use shared::domain::webhook::WebhookSecret;
use uuid::Uuid;

use crate::state::{FakeStatus, StoredPayment};

/// How long one delivery may take before it counts as failed.
pub(crate) const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A signed webhook: the three `webhook-*` headers' values and the exact body they sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedWebhook {
    /// `webhook-id`, e.g. `msg_<uuid>`.
    pub id: String,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: i64,
    /// `webhook-signature`, `v1,<base64>`.
    pub signature: String,
    /// The JSON body, byte for byte as signed.
    pub body: String,
}

/// The outcome of one delivery: the receiver's status, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Delivery {
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The webhook type PortOne sends when a payment reaches `status`.
pub(crate) fn kind_for(status: FakeStatus) -> &'static str {
    match status {
        FakeStatus::Ready => "Transaction.Ready",
        FakeStatus::PayPending => "Transaction.PayPending",
        FakeStatus::VirtualAccountIssued => "Transaction.VirtualAccountIssued",
        FakeStatus::Paid => "Transaction.Paid",
        FakeStatus::Failed => "Transaction.Failed",
        FakeStatus::Cancelled => "Transaction.Cancelled",
    }
}

/// Signs a `kind` webhook about `payment_id`, now. A payment the fake does not know still gets a
/// well-formed webhook (the configured store, a fresh transaction id), for tests of unknown ids.
pub(crate) fn sign(
    key: &WebhookSecret,
    kind: &str,
    payment_id: &str,
    payment: Option<&StoredPayment>,
    default_store: &str,
) -> SignedWebhook {
    let now = Utc::now();
    let mut data = serde_json::json!({
        "paymentId": payment_id,
        "storeId": payment.map_or(default_store, |p| p.store_id.as_str()),
        "transactionId": payment.map_or_else(
            || Uuid::new_v4().to_string(),
            |p| p.transaction_id.clone(),
        ),
    });
    // Cancel webhooks name the cancellation they are about.
    if kind.ends_with("Cancelled")
        && let Some(last) = payment.and_then(|p| p.cancellations.last())
    {
        data["cancellationId"] = last.id.clone().into();
    }
    let body = serde_json::json!({
        "type": kind,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    let id = format!("msg_{}", Uuid::new_v4().simple());
    let timestamp = now.timestamp();
    let signature = key.sign(&id, timestamp, body.as_bytes());
    SignedWebhook {
        id,
        timestamp,
        signature,
        body,
    }
}

/// POSTs `webhook` to `url` `copies` times, one after another, and reports each answer.
pub(crate) async fn deliver(
    http: &reqwest::Client,
    url: &str,
    webhook: &SignedWebhook,
    copies: u32,
) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for _ in 0..copies {
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &webhook.id)
            .header("webhook-timestamp", webhook.timestamp.to_string())
            .header("webhook-signature", &webhook.signature)
            .body(webhook.body.clone())
            .send()
            .await;
        let delivery = match sent {
            Ok(response) => Delivery {
                status: Some(response.status().as_u16()),
                error: None,
            },
            Err(err) => Delivery {
                status: None,
                error: Some(with_causes(&err)),
            },
        };
        tracing::info!(id = %webhook.id, url, status = ?delivery.status, "webhook delivered");
        deliveries.push(delivery);
    }
    deliveries
}

/// The error and its causes on one line ("error sending request: … : Connection refused").
fn with_causes(err: &(dyn Error + 'static)) -> String {
    std::iter::successors(Some(err), |err| (*err).source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
