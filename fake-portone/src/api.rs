//! The PortOne V2 API routes the code under test calls: look a payment up and cancel (part of)
//! it, with PortOne's authentication, error types and status codes. Every request passes the
//! gate first, which logs it, applies injected faults and checks the API secret.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::Deserialize;

use crate::{
    Fake,
    faults::{self, Applied, CallKind},
    state::{CancelRecord, Cancellation, LoggedCancel},
    view,
};

/// `GET /payments/{paymentId}` and `POST /payments/{paymentId}/cancel`, behind the gate.
pub(crate) fn routes(fake: Arc<Fake>) -> Router<Arc<Fake>> {
    Router::new()
        .route("/payments/{payment_id}", get(get_payment))
        .route("/payments/{payment_id}/cancel", post(cancel_payment))
        .layer(middleware::from_fn_with_state(fake, gate))
}

fn answer(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, Json(view::error(kind, message))).into_response()
}

/// Runs the request in its own task, so a caller that gives up (a timeout during a slow fault)
/// does not stop it: the cancel still happens and the log still gets its answer, as at PortOne.
async fn gate(State(fake): State<Arc<Fake>>, request: Request, next: Next) -> Response {
    match tokio::spawn(handle(fake, request, next)).await {
        Ok(response) => response,
        Err(err) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            format!("fake PortOne: the request failed: {err}"),
        ),
    }
}

async fn handle(fake: Arc<Fake>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let (call, payment_id) = classify(&method, &path);
    let lookup_of = (call == CallKind::Get).then_some(payment_id).flatten();
    let (seq, applied) = {
        let mut state = fake.lock();
        let seq = state.request_arrived(&method, &path, lookup_of);
        (seq, faults::take(&mut state.faults, call))
    };
    let response = match applied {
        Some(Applied::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(faults::server_error_body(code))).into_response()
        }
        Some(Applied::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            authorized(&fake, request, next).await
        }
        None => authorized(&fake, request, next).await,
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "PortOne API");
    fake.lock()
        .request_answered(seq, response.status().as_u16());
    response
}

async fn authorized(fake: &Fake, request: Request, next: Next) -> Response {
    if accepts(request.headers(), &fake.config.api_secret) {
        next.run(request).await
    } else {
        answer(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "expected the header Authorization: PortOne <api secret>",
        )
    }
}

fn accepts(headers: &HeaderMap, secret: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("PortOne "))
        .is_some_and(|given| given.trim() == secret)
}

/// Which API call a request is, and the (decoded) payment id it names.
fn classify(method: &str, path: &str) -> (CallKind, Option<String>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["payments", id]) => (CallKind::Get, Some(decode(id))),
        ("POST", ["payments", id, "cancel"]) => (CallKind::Cancel, Some(decode(id))),
        _ => (CallKind::Other, None),
    }
}

/// Percent-decodes a path segment (payment ids are usually plain, but need not be).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        });
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoreQuery {
    store_id: Option<String>,
}

fn not_found(payment_id: &str) -> Response {
    answer(
        StatusCode::NOT_FOUND,
        "PAYMENT_NOT_FOUND",
        format!("no payment {payment_id}"),
    )
}

async fn get_payment(
    State(fake): State<Arc<Fake>>,
    Path(payment_id): Path<String>,
    Query(query): Query<StoreQuery>,
) -> Response {
    let state = fake.lock();
    let found = state
        .payments
        .get(&payment_id)
        .filter(|payment| (query.store_id.as_ref()).is_none_or(|store| *store == payment.store_id));
    match found {
        Some(payment) => Json(view::payment(payment)).into_response(),
        None => not_found(&payment_id),
    }
}

/// `CancelPaymentBody`: only the fields the fake acts on; PortOne's others are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody {
    reason: String,
    amount: Option<i64>,
    store_id: Option<String>,
    current_cancellable_amount: Option<i64>,
}

fn parse_cancel(body: &[u8]) -> Result<CancelBody, String> {
    let parsed: CancelBody =
        serde_json::from_slice(body).map_err(|err| format!("invalid body: {err}"))?;
    if parsed.reason.trim().is_empty() {
        return Err("reason must not be empty".to_owned());
    }
    if parsed.amount.is_some_and(|amount| amount <= 0) {
        return Err("amount must be positive".to_owned());
    }
    Ok(parsed)
}

async fn cancel_payment(
    State(fake): State<Arc<Fake>>,
    Path(payment_id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match parse_cancel(&body) {
        Ok(body) => body,
        Err(message) => return answer(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message),
    };
    let conflict = |kind: &str, message: String| answer(StatusCode::CONFLICT, kind, message);
    let mut guard = fake.lock();
    let state = &mut *guard;
    let found = state
        .payments
        .get_mut(&payment_id)
        .filter(|payment| (body.store_id.as_ref()).is_none_or(|store| *store == payment.store_id));
    let Some(payment) = found else {
        return not_found(&payment_id);
    };
    if !payment.was_paid() {
        let status = payment.api_status();
        return conflict("PAYMENT_NOT_PAID", format!("the payment is {status}"));
    }
    let cancellable = payment.total - payment.cancelled();
    if cancellable <= 0 {
        let message = "the payment is already cancelled".to_owned();
        return conflict("PAYMENT_ALREADY_CANCELLED", message);
    }
    if let Some(expected) = body.current_cancellable_amount
        && expected != cancellable
    {
        let message = format!("cancellable amount is {cancellable}, not {expected}");
        return conflict("CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN", message);
    }
    let amount = body.amount.unwrap_or(cancellable);
    if amount > cancellable {
        let message = format!("cannot cancel {amount}: only {cancellable} is cancellable");
        return conflict("CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT", message);
    }
    let at = Utc::now();
    let cancellation = Cancellation::new(amount, body.reason.clone(), at);
    let answer = view::cancellation(&cancellation);
    payment.cancellations.push(cancellation);
    state.cancels.push(LoggedCancel {
        record: CancelRecord {
            payment_id: payment_id.clone(),
            amount,
            reason: body.reason,
        },
        at,
    });
    tracing::info!(%payment_id, amount, "payment cancelled");
    Json(serde_json::json!({ "cancellation": answer })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_two_calls_and_decodes_ids() {
        assert_eq!(
            classify("GET", "/payments/pay%2D1"),
            (CallKind::Get, Some("pay-1".to_owned()))
        );
        assert_eq!(
            classify("POST", "/payments/pay-1/cancel"),
            (CallKind::Cancel, Some("pay-1".to_owned()))
        );
        assert_eq!(classify("POST", "/payments/pay-1"), (CallKind::Other, None));
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn the_secret_must_follow_the_portone_scheme() {
        let mut headers = HeaderMap::new();
        assert!(!accepts(&headers, "s3cret"));
        headers.insert(AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(!accepts(&headers, "s3cret"));
        headers.insert(AUTHORIZATION, "PortOne s3cret".parse().unwrap());
        assert!(accepts(&headers, "s3cret"));
    }
}
