//! The `/_fake/*` routes scripts, tests in other processes and the demo drive the fake with:
//! record a payment (and send its webhook), inject faults, read back the cancels and requests.
//! They need no PortOne secret; nothing real ever listens there.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    Fake,
    faults::{ActiveFault, Fault, FaultTarget},
    state::{FakePayment, FakeStatus},
    view,
};

/// A `slow` fault's delay when none is given.
const DEFAULT_SLOW: Duration = Duration::from_secs(5);
/// A `timeout` fault's delay when none is given: longer than any caller should wait.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// More copies of one webhook than any test needs is a mistake in the request.
const MAX_COPIES: u32 = 100;

pub(crate) fn routes() -> Router<Arc<Fake>> {
    Router::new()
        .route("/_fake/health", get(health))
        .route("/_fake/payments", post(record_payment))
        .route(
            "/_fake/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_fake/cancels", get(cancels))
        .route("/_fake/requests", get(requests))
        .route("/_fake/reset", post(reset))
}

fn invalid(message: impl Into<String>) -> Response {
    let body = view::error("INVALID_REQUEST", message);
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|err| format!("invalid body: {err}"))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecordBody {
    payment_id: String,
    amount: i64,
    status: Option<FakeStatus>,
    reported_amount: Option<i64>,
    currency: Option<String>,
    store_id: Option<String>,
    webhook: Option<bool>,
    webhook_copies: Option<u32>,
}

/// Records (or replaces) a payment, then sends its webhook and waits for the receiver's answers.
async fn record_payment(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let body: RecordBody = match parse(&body) {
        Ok(body) => body,
        Err(message) => return invalid(message),
    };
    if body.payment_id.trim().is_empty() {
        return invalid("paymentId must not be empty");
    }
    let copies = body.webhook_copies.unwrap_or(1);
    if copies > MAX_COPIES {
        return invalid(format!("webhookCopies is at most {MAX_COPIES}"));
    }
    let payment = FakePayment {
        id: body.payment_id,
        amount: body.amount,
        status: body.status.unwrap_or(FakeStatus::Paid),
        reported_amount: body.reported_amount,
        currency: body.currency.unwrap_or_else(|| "KRW".to_owned()),
        store_id: body.store_id,
    };
    let status = payment.status;
    let stored = fake.record(payment);
    let webhook = if body.webhook.unwrap_or(true) {
        let kind = crate::webhooks::kind_for(status);
        let signed = fake.sign(kind, &stored.id);
        let deliveries = fake.deliver(&signed, copies).await;
        json!({
            "id": signed.id,
            "timestamp": signed.timestamp,
            "signature": signed.signature,
            "body": signed.body,
            "deliveries": deliveries,
        })
    } else {
        Value::Null
    };
    let answer = json!({
        "paymentId": stored.id,
        "status": stored.api_status(),
        "webhook": webhook,
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultBody {
    kind: String,
    times: Option<u32>,
    delay_ms: Option<u64>,
    path: Option<FaultTarget>,
}

fn fault_from(body: &FaultBody) -> Result<Fault, String> {
    if body.times == Some(0) {
        return Err("times must be at least 1 (leave it out for unlimited)".to_owned());
    }
    let (times, on) = (body.times, body.path.unwrap_or_default());
    let delay = |default: Duration| body.delay_ms.map_or(default, Duration::from_millis);
    match body.kind.as_str() {
        "server-error" => Ok(Fault::ServerError { times, on }),
        "slow" => Ok(Fault::Slow {
            delay: delay(DEFAULT_SLOW),
            times,
            on,
        }),
        // A timeout is a delay no caller waits out; it is listed as `slow`.
        "timeout" => Ok(Fault::Slow {
            delay: delay(DEFAULT_TIMEOUT),
            times,
            on,
        }),
        other => Err(format!(
            "kind must be server-error, slow or timeout, not {other:?}"
        )),
    }
}

async fn add_fault(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let fault = match parse(&body).and_then(|body| fault_from(&body)) {
        Ok(fault) => fault,
        Err(message) => return invalid(message),
    };
    let active = ActiveFault::new(fault);
    let described = active.describe();
    fake.lock().faults.push(active);
    tracing::info!(fault = %described, "fault injected");
    (StatusCode::CREATED, Json(described)).into_response()
}

async fn list_faults(State(fake): State<Arc<Fake>>) -> Json<Value> {
    let state = fake.lock();
    Json(state.faults.iter().map(ActiveFault::describe).collect())
}

async fn clear_faults(State(fake): State<Arc<Fake>>) -> Json<Value> {
    let cleared = std::mem::take(&mut fake.lock().faults).len();
    Json(json!({ "cleared": cleared }))
}

async fn cancels(State(fake): State<Arc<Fake>>) -> Json<Value> {
    let state = fake.lock();
    let listed = state.cancels.iter().map(|cancel| {
        json!({
            "paymentId": cancel.record.payment_id,
            "amount": cancel.record.amount,
            "reason": cancel.record.reason,
            "at": view::logged_at(cancel.at),
        })
    });
    Json(listed.collect())
}

async fn requests(State(fake): State<Arc<Fake>>) -> Json<Value> {
    let state = fake.lock();
    let listed = state.requests.iter().map(|request| {
        json!({
            "method": request.record.method,
            "path": request.record.path,
            "at": view::logged_at(request.at),
            "answered": request.record.status,
        })
    });
    Json(listed.collect())
}

async fn reset(State(fake): State<Arc<Fake>>) -> Json<Value> {
    fake.lock().reset();
    tracing::info!("reset");
    Json(json!({ "reset": true }))
}
