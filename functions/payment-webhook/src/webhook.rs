//! `POST /webhooks/portone`: PortOne says a payment changed.
//!
//! In order, and nothing is read or changed before a step passes:
//! 1. the body is at most 64 KiB and its Standard Webhooks signature, checked on the raw bytes,
//!    is ours and fresh (400 for missing or malformed headers, 401 otherwise);
//! 2. the body names a payment (types other than `Transaction.*` are acknowledged and ignored);
//! 3. the `webhook-id` is claimed in DynamoDB: an id already handled is answered 200 at once,
//!    one being handled right now by another copy is answered 409 so PortOne tries again later;
//! 4. the payment is cross-checked with PortOne and settled; only then is the id marked done.
//!    When that fails half way the claim is given back and we answer 5xx: PortOne retries, and
//!    the retry is handled from the start.

use chrono::Utc;
use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    ApiError,
    adapters::webhook_ids::Claim,
    domain::webhook::{SignatureRefusal, SignedHeaders, verify},
    error::{Problem, ProblemCode},
    http::{MAX_BODY_BYTES, header_str, json},
};
use utoipa::ToSchema;

use crate::Deps;

/// PortOne's webhook body (version 2024-04-25). Only the payment id is used, and only to look
/// the payment up at PortOne; unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// e.g. `Transaction.Paid`, `Transaction.Failed`, `Transaction.Cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl WebhookEvent {
    /// The payment a `Transaction.*` event is about; `None` for other events.
    fn payment_id(&self) -> Result<Option<&str>, ApiError> {
        if !self.kind.starts_with("Transaction.") {
            return Ok(None);
        }
        self.data
            .get("paymentId")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    ProblemCode::MalformedWebhook,
                    "a Transaction webhook must name data.paymentId",
                )
            })
    }
}

/// What we did with a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `HANDLED`, `ALREADY_HANDLED` or `IGNORED` (an event type we do not act on).
    pub status: &'static str,
}

fn answer(status: &'static str) -> Response<Body> {
    json(StatusCode::OK, &WebhookAnswer { status })
}

fn refused(refusal: SignatureRefusal) -> ApiError {
    if refusal.is_malformed() {
        ApiError::bad_request(ProblemCode::MalformedWebhook, refusal.to_string())
    } else {
        ApiError::InvalidSignature(refusal.to_string())
    }
}

#[utoipa::path(post, path = "/webhooks/portone", tag = "payments",
    request_body = WebhookEvent,
    params(
        ("webhook-id" = String, Header),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds; more than 5 minutes off is refused"),
        ("webhook-signature" = String, Header, description = "space-separated `v1,<base64>` signatures")
    ),
    responses(
        (status = 200, description = "handled now or before", body = WebhookAnswer),
        (status = 400, description = "MALFORMED_WEBHOOK", body = Problem),
        (status = 401, description = "INVALID_SIGNATURE", body = Problem),
        (status = 409, description = "WEBHOOK_IN_PROGRESS: another copy is being handled", body = Problem),
        (status = 413, body = Problem),
        (status = 503, description = "PortOne did not answer; retry", body = Problem)))]
pub(crate) async fn webhook(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let headers = req.headers();
    let signed = SignedHeaders {
        id: header_str(headers, "webhook-id"),
        timestamp: header_str(headers, "webhook-timestamp"),
        signature: header_str(headers, "webhook-signature"),
    };
    let now = Utc::now();
    verify(&deps.secret, signed, body, now.timestamp()).map_err(refused)?;
    let webhook_id = signed.id.unwrap_or_default();

    let event: WebhookEvent = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(
            ProblemCode::MalformedWebhook,
            format!("the webhook body is not a PortOne event: {err}"),
        )
    })?;
    let Some(payment_id) = event.payment_id()? else {
        tracing::info!(kind = %event.kind, "webhook type not acted on");
        return Ok(answer("IGNORED"));
    };

    let token = match deps
        .webhook_ids
        .claim(webhook_id, now)
        .await
        .map_err(ApiError::internal)?
    {
        Claim::Done => return Ok(answer("ALREADY_HANDLED")),
        Claim::Busy => {
            return Err(ApiError::conflict(
                ProblemCode::WebhookInProgress,
                "another delivery of this webhook is being handled; retry later",
            ));
        }
        Claim::Ours { token } => token,
    };
    match settle(deps, payment_id).await {
        Ok(()) => {
            // The outcome is committed; should this write fail, a retry runs the guarded
            // transitions again and they change nothing.
            if let Err(err) = deps.webhook_ids.finish(webhook_id, Utc::now()).await {
                tracing::warn!(%err, webhook_id, "handled, but the webhook id was not marked done");
            }
            Ok(answer("HANDLED"))
        }
        Err(err) => {
            if let Err(give_back) = deps.webhook_ids.give_back(webhook_id, &token).await {
                tracing::warn!(%give_back, webhook_id, "claim not given back; it expires with its lease");
            }
            Err(err)
        }
    }
}

/// Cross-checks the payment with PortOne and settles it. A payment we never created changes
/// nothing (it belongs to another system on the same PortOne store, or is forged).
async fn settle(deps: &Deps, payment_id: &str) -> Result<(), ApiError> {
    let Some(payment) = deps.payments.find(payment_id).await? else {
        tracing::info!(payment_id, "webhook for a payment we do not know; ignored");
        return Ok(());
    };
    deps.payments.reconcile(&payment).await?;
    Ok(())
}
