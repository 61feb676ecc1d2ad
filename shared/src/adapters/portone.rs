//! PortOne V2's REST API over HTTP: the one production [`PaymentGateway`].
//!
//! Every call carries `Authorization: PortOne <secret>` and is bounded by `PORTONE_TIMEOUT_MS`.
//! A read is retried on a 5xx or a timeout (it changes nothing); a cancel is sent once, because a
//! cancel that timed out may have gone through: the caller learns the truth from the payment and
//! repeats the cancel only with `currentCancellableAmount`, which PortOne checks.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::{
    config::PortOneConfig,
    ports::{
        BoxFuture, CancelRequest, Cancellation, GatewayError, GatewayPayment, GatewayStatus,
        PaymentGateway,
    },
};

/// Reads are tried this many times in all.
const READ_ATTEMPTS: u32 = 3;
/// Wait before the second read; doubled before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct PortOneClient {
    http: Client,
    base: String,
    authorization: String,
}

impl PortOneClient {
    pub fn new(config: &PortOneConfig) -> Result<Self, reqwest::Error> {
        let http = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()?;
        Ok(Self {
            http,
            base: config.api_base.clone(),
            authorization: format!("PortOne {}", config.api_secret.expose_secret()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_once(&self, payment_id: &str) -> Result<GatewayPayment, GatewayError> {
        let response = self
            .http
            .get(self.url(&format!("/payments/{}", path_segment(payment_id))))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        let body: PaymentBody = read(response).await?;
        Ok(body.into_payment())
    }

    async fn get(&self, payment_id: &str) -> Result<GatewayPayment, GatewayError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.get_once(payment_id).await {
                Err(GatewayError::Unavailable(why)) if attempt < READ_ATTEMPTS => {
                    tracing::warn!(payment_id, attempt, %why, "PortOne read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn cancel(&self, cancel: &CancelRequest) -> Result<Cancellation, GatewayError> {
        let mut body = json!({ "reason": cancel.reason });
        if let Some(amount) = cancel.amount {
            body["amount"] = json!(amount);
        }
        if let Some(cancellable) = cancel.current_cancellable_amount {
            body["currentCancellableAmount"] = json!(cancellable);
        }
        let response = self
            .http
            .post(self.url(&format!(
                "/payments/{}/cancel",
                path_segment(&cancel.payment_id)
            )))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .json(&body)
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        let body: CancelBody = read(response).await?;
        Ok(Cancellation {
            total_amount: body.cancellation.total_amount,
        })
    }
}

impl PaymentGateway for PortOneClient {
    fn get_payment<'a>(
        &'a self,
        payment_id: &'a str,
    ) -> BoxFuture<'a, Result<GatewayPayment, GatewayError>> {
        Box::pin(self.get(payment_id))
    }

    fn cancel_payment<'a>(
        &'a self,
        cancel: &'a CancelRequest,
    ) -> BoxFuture<'a, Result<Cancellation, GatewayError>> {
        Box::pin(self.cancel(cancel))
    }
}

/// Our payment ids are `[A-Za-z0-9_-]`, but an id is escaped all the same before it joins a URL.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn unavailable(err: &reqwest::Error) -> GatewayError {
    GatewayError::Unavailable(if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    })
}

/// PortOne's error body: `{type, message}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// Reads a 2xx body as `T`, or turns PortOne's error answer into a [`GatewayError`].
async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|err| unavailable(&err))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|err| GatewayError::UnexpectedAnswer(err.to_string()));
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(GatewayError::Unavailable(format!("HTTP {status}")));
    }
    let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or(ErrorBody {
        kind: None,
        message: None,
    });
    Err(match error.kind.as_deref() {
        Some("PAYMENT_NOT_FOUND") => GatewayError::NotFound,
        Some("PAYMENT_ALREADY_CANCELLED") => GatewayError::AlreadyCancelled,
        Some("PAYMENT_NOT_PAID") => GatewayError::NotPaid,
        Some("CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN") => GatewayError::CancellableAmountChanged,
        kind => GatewayError::Refused(format!(
            "HTTP {status} {}: {}",
            kind.unwrap_or("unknown"),
            error.message.unwrap_or_default()
        )),
    })
}

/// The fields of PortOne's `Payment` we check; the rest is ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    status: String,
    id: String,
    store_id: Option<String>,
    transaction_id: Option<String>,
    currency: String,
    amount: AmountBody,
}

#[derive(Debug, Deserialize)]
struct AmountBody {
    total: i64,
    #[serde(default)]
    cancelled: i64,
}

impl PaymentBody {
    fn into_payment(self) -> GatewayPayment {
        GatewayPayment {
            status: GatewayStatus::parse(&self.status),
            id: self.id,
            store_id: self.store_id,
            currency: self.currency,
            total: self.amount.total,
            cancelled: self.amount.cancelled,
            transaction_id: self.transaction_id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct CancelBody {
    cancellation: CancellationBody,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancellationBody {
    total_amount: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(path_segment("pay_01H-x"), "pay_01H-x");
        assert_eq!(path_segment("a/../b c"), "a%2F..%2Fb%20c");
    }

    #[test]
    fn reads_portones_payment_shape() {
        let body: PaymentBody = serde_json::from_value(json!({
            "status": "PAID", "id": "pay_1", "storeId": "store-1", "transactionId": "tx",
            "currency": "KRW", "version": "V2",
            "amount": {"total": 1000, "taxFree": 0, "paid": 1000, "cancelled": 0, "discount": 0}
        }))
        .unwrap();
        let payment = body.into_payment();
        assert_eq!(payment.status, GatewayStatus::Paid);
        assert_eq!(payment.total, 1000);
        assert_eq!(payment.cancellable(), 1000);
        assert_eq!(payment.store_id.as_deref(), Some("store-1"));
    }
}
