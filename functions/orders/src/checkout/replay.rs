//! The same idempotency key again: the first answer for the same items, 422 for different ones.

use lambda_http::{Body, Response, http::StatusCode};
use shared::{ApiError, domain::FieldError, http::json_raw};

use super::{Attempt, CheckoutLine, CheckoutOrder, answer, pending_order};
use crate::{Deps, store};

/// The replay of an earlier checkout under the attempt's key, if there was one. `markers` are
/// the replies of the idempotency markers, asked along with the rate limit.
pub(super) async fn if_used(
    deps: &Deps,
    attempt: &Attempt<'_>,
    markers: Option<(bool, bool)>,
) -> Result<Option<Response<Body>>, ApiError> {
    if deps
        .markers
        .certainly_unused(attempt.buyer_id, attempt.key, markers)
        .await
    {
        return Ok(None);
    }
    if_used_in_mysql(deps, attempt).await
}

/// As [`if_used`], asking MySQL only.
pub(super) async fn if_used_in_mysql(
    deps: &Deps,
    attempt: &Attempt<'_>,
) -> Result<Option<Response<Body>>, ApiError> {
    let Some(prior) =
        store::prior_checkout(&deps.platform.db, attempt.buyer_id, attempt.key).await?
    else {
        return Ok(None);
    };
    if prior.request_hash != attempt.fingerprint() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "Idempotency-Key",
            "was already used for a different checkout (IDEMPOTENCY_KEY_REUSED)",
        )]));
    }
    let body = match prior.response_body {
        Some(body) => body.into_bytes(),
        None => rebuilt_answer(deps, &prior).await?,
    };
    Ok(Some(json_raw(StatusCode::CREATED, body)))
}

/// The first answer of a checkout that did not store it (one line, see
/// [`write`](super::write)), rebuilt from the rows it wrote: the same fields from the same values
/// in the same order, so the same bytes. Its orders were PENDING_PAYMENT then, whatever they are
/// now.
async fn rebuilt_answer(deps: &Deps, payment: &store::PriorCheckout) -> Result<Vec<u8>, ApiError> {
    let mut orders: Vec<CheckoutOrder> = Vec::new();
    for line in store::written_lines(&deps.platform.db, &payment.id).await? {
        let item = CheckoutLine {
            product_id: line.product_id,
            quantity: line.quantity,
            unit_price: line.unit_price,
        };
        match orders.last_mut() {
            Some(order) if order.id == line.order_id => order.items.push(item),
            _ => orders.push(pending_order(
                line.order_id,
                line.partner_id,
                line.order_amount,
                vec![item],
            )),
        }
    }
    if orders.is_empty() {
        return Err(ApiError::internal(
            "a checkout's payment without its orders",
        ));
    }
    Ok(answer(
        &payment.id,
        payment.amount,
        payment.expires_at,
        orders,
    ))
}
