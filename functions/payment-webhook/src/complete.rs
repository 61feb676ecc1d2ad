//! `POST /payments/{payment_id}/complete`: the buyer's browser reports that PortOne's payment
//! window closed. We do not take its word either: the payment is cross-checked with PortOne
//! exactly as a webhook would, so whichever of the two arrives first settles it, and the other
//! finds it settled.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::Serialize;
use shared::{
    ApiError,
    domain::{auth::Role, payment::PaymentStatus},
    error::{Problem, ProblemCode},
    http::{json, path_param},
};
use utoipa::ToSchema;

use crate::Deps;

/// Payment ids are ours (`pay_…`), never longer than the column.
const MAX_PAYMENT_ID: usize = 64;

/// A payment after the cross-check.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: String,
    /// PENDING until PortOne reports it paid; PAID, FAILED, CANCELLED, PARTIAL_CANCELLED or
    /// EXPIRED after.
    pub status: PaymentStatus,
    pub amount: i64,
}

fn payment_not_found() -> ApiError {
    ApiError::NotFound {
        code: ProblemCode::PaymentNotFound,
    }
}

#[utoipa::path(post, path = "/payments/{payment_id}/complete", tag = "payments",
    security(("bearer" = [])),
    params(("payment_id" = String, Path)),
    responses(
        (status = 200, body = PaymentView),
        (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "PAYMENT_NOT_FOUND (also another buyer's payment)", body = Problem),
        (status = 409, description = "AMOUNT_MISMATCH: PortOne's record differs; the payment was cancelled", body = Problem),
        (status = 503, description = "PortOne did not answer; retry", body = Problem)))]
pub(crate) async fn complete(deps: &Deps, req: &Request) -> Result<Response<Body>, ApiError> {
    let principal = deps.platform.authenticator.authenticate(req).await?;
    principal.require(&[Role::Buyer])?;
    let payment_id = path_param(req, "payment_id")
        .filter(|id| !id.is_empty() && id.len() <= MAX_PAYMENT_ID)
        .ok_or_else(payment_not_found)?;
    let payment = deps
        .payments
        .find(&payment_id)
        .await?
        .filter(|payment| payment.buyer_id == principal.user_id)
        .ok_or_else(payment_not_found)?;
    let checked = deps.payments.reconcile(&payment).await?;
    if let Some(why) = checked.mismatch {
        return Err(ApiError::conflict(ProblemCode::AmountMismatch, why));
    }
    Ok(json(
        StatusCode::OK,
        &PaymentView {
            payment_id: checked.payment.id,
            status: checked.payment.status,
            amount: checked.payment.amount,
        },
    ))
}
