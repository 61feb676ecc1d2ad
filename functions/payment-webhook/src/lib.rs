//! The `payment-webhook` function: how a checkout gets paid.
//!
//! - `POST /webhooks/portone` (PortOne): a signed notice that a payment changed. See [`webhook`].
//! - `POST /payments/{payment_id}/complete` (the buyer's browser, after PortOne's payment
//!   window closes): the same cross-check, answered with the payment's status. See [`complete`].
//!
//! Both end in [`Payments::reconcile`]: PortOne's own record of the payment is fetched (what a
//! webhook says is never trusted) and compared with ours, and the payment's fate is settled once,
//! however many webhooks and "complete" calls race each other.

mod complete;
mod webhook;

use std::{sync::Arc, time::Duration};

use lambda_http::{Body, Request, Response};
use secrecy::ExposeSecret;
use shared::{
    ApiError, Platform,
    adapters::webhook_ids::WebhookIds,
    domain::webhook::{InvalidSecret, WebhookSecret},
    error::Problem,
    http::{respond, route_key},
    ports::PaymentGateway,
    services::payments::Payments,
};
use utoipa::OpenApi;

pub use complete::PaymentView;
pub use webhook::{WebhookAnswer, WebhookEvent};

/// How long one handler keeps a webhook id to itself. Longer than a handler can run (the Lambda
/// timeout is 25 s, and every PortOne and MySQL call is bounded), short enough that PortOne's
/// retry of a webhook whose handler died is handled.
pub const WEBHOOK_CLAIM_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Deps {
    platform: Platform,
    payments: Payments,
    webhook_ids: WebhookIds,
    secret: WebhookSecret,
}

impl Deps {
    /// `gateway` is PortOne (the HTTP client in production, pointed at the fake PortOne in tests);
    /// `dynamodb` holds the webhook ids, in `IDEMPOTENCY_TABLE`.
    pub fn new(
        platform: &Platform,
        gateway: Arc<dyn PaymentGateway>,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Result<Self, InvalidSecret> {
        let config = &platform.config;
        Ok(Self {
            platform: platform.clone(),
            payments: Payments::new(platform, gateway),
            webhook_ids: WebhookIds::new(
                dynamodb,
                config.aws.idempotency_table.clone(),
                WEBHOOK_CLAIM_LEASE,
            ),
            secret: WebhookSecret::new(config.portone.webhook_secret.expose_secret())?,
        })
    }
}

/// Each handler's future is boxed: it nests PortOne, DynamoDB and MySQL calls deep enough that,
/// unboxed, the compiler's layout queries for the callers' futures run out of depth.
pub async fn handle(deps: &Deps, req: Request) -> Response<Body> {
    let result = match route_key(&req) {
        Some("POST /webhooks/portone") => Box::pin(webhook::webhook(deps, &req)).await,
        Some("POST /payments/{payment_id}/complete") => {
            Box::pin(complete::complete(deps, &req)).await
        }
        other => Err(ApiError::RouteNotFound(
            other.unwrap_or_default().to_owned(),
        )),
    };
    respond(result)
}

#[derive(Debug, OpenApi)]
#[openapi(
    paths(webhook::webhook, complete::complete),
    components(schemas(WebhookEvent, WebhookAnswer, PaymentView, Problem))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests;
