//! The one error type at the HTTP boundary and its problem+json rendering (RFC 9457).
//!
//! Handlers return `Result<_, ApiError>`. Causes from the stores convert with `?`; they are logged
//! with their context and the client only sees an opaque 5xx problem with a stable `code`.

use lambda_http::{
    Body, Response,
    http::{StatusCode, header},
};
use serde::Serialize;

use crate::domain::FieldError;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every `code` a problem+json answer can carry: a closed set, so that no handler invents one and
/// the OpenAPI document lists them all (the `Problem` schema's `code` enum). Clients switch on
/// these; they never change once published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemCode {
    // 400
    MalformedJson,
    MalformedPath,
    BadRequestBody,
    IdempotencyKeyRequired,
    MalformedWebhook,
    // 401 and 403
    Unauthenticated,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    InvalidSignature,
    Forbidden,
    // 404
    ProductNotFound,
    OrderNotFound,
    PartnerNotFound,
    RunNotFound,
    PaymentNotFound,
    ScheduleNotFound,
    RouteNotFound,
    // 409
    EmailTaken,
    SoldOut,
    InsufficientStock,
    PurchaseLimit,
    NotOnSale,
    PriceChanged,
    TooManyUnpaidOrders,
    RebuyCooldown,
    LockTimeout,
    InvalidState,
    ProductInUse,
    RunInProgress,
    AmountMismatch,
    WebhookInProgress,
    // 413, 415, 422, 429
    PayloadTooLarge,
    UnsupportedMediaType,
    Validation,
    RateLimited,
    // 5xx
    Unavailable,
    Internal,
    // The local runner's own answers (not Lambda routes): 404, 405 and 500
    BenchFloorEmpty,
    MethodNotAllowed,
    FunctionNotRegistered,
    HandlerFailed,
}

impl ProblemCode {
    /// The upper-snake text clients see, e.g. `SOLD_OUT`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "MALFORMED_JSON",
            Self::MalformedPath => "MALFORMED_PATH",
            Self::BadRequestBody => "BAD_REQUEST_BODY",
            Self::IdempotencyKeyRequired => "IDEMPOTENCY_KEY_REQUIRED",
            Self::MalformedWebhook => "MALFORMED_WEBHOOK",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::Forbidden => "FORBIDDEN",
            Self::ProductNotFound => "PRODUCT_NOT_FOUND",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::PartnerNotFound => "PARTNER_NOT_FOUND",
            Self::RunNotFound => "RUN_NOT_FOUND",
            Self::PaymentNotFound => "PAYMENT_NOT_FOUND",
            Self::ScheduleNotFound => "SCHEDULE_NOT_FOUND",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::EmailTaken => "EMAIL_TAKEN",
            Self::SoldOut => "SOLD_OUT",
            Self::InsufficientStock => "INSUFFICIENT_STOCK",
            Self::PurchaseLimit => "PURCHASE_LIMIT",
            Self::NotOnSale => "NOT_ON_SALE",
            Self::PriceChanged => "PRICE_CHANGED",
            Self::TooManyUnpaidOrders => "TOO_MANY_UNPAID_ORDERS",
            Self::RebuyCooldown => "REBUY_COOLDOWN",
            Self::LockTimeout => "LOCK_TIMEOUT",
            Self::InvalidState => "INVALID_STATE",
            Self::ProductInUse => "PRODUCT_IN_USE",
            Self::RunInProgress => "RUN_IN_PROGRESS",
            Self::AmountMismatch => "AMOUNT_MISMATCH",
            Self::WebhookInProgress => "WEBHOOK_IN_PROGRESS",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Validation => "VALIDATION",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::BenchFloorEmpty => "BENCH_FLOOR_EMPTY",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::FunctionNotRegistered => "FUNCTION_NOT_REGISTERED",
            Self::HandlerFailed => "HANDLER_FAILED",
        }
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("unknown, expired or revoked refresh token")]
    InvalidRefreshToken,
    #[error("this refresh token was already used; its whole session is now revoked")]
    RefreshTokenReused,
    /// A webhook whose signature or timestamp we cannot trust.
    #[error("{0}")]
    InvalidSignature(String),
    #[error("this role may not do that")]
    Forbidden,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// `code` names the missing thing, e.g. `PRODUCT_NOT_FOUND`.
    #[error("{code}")]
    NotFound { code: ProblemCode },
    /// `retry_after_secs`: when the conflict ends by itself (a cooldown), sent as `Retry-After`.
    #[error("{detail}")]
    Conflict {
        code: ProblemCode,
        detail: String,
        retry_after_secs: Option<u64>,
    },
    #[error("{detail}")]
    BadRequest { code: ProblemCode, detail: String },
    #[error("too many requests, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A service we depend on (PortOne) failed or was too slow; retrying later may work.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// The problem+json document; `errors` only on validation problems.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ProblemCode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    /// A conflict that ends by itself in `retry_after_secs` (answered with `Retry-After`).
    pub fn conflict_until(
        code: ProblemCode,
        detail: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
            retry_after_secs: Some(retry_after_secs),
        }
    }

    pub fn bad_request(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_)
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::RefreshTokenReused
            | Self::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound { .. } | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // Redis is hot state: when it is down the request may succeed on retry.
            Self::Redis(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, upper-snake code clients switch on.
    pub fn code(&self) -> ProblemCode {
        match self {
            Self::Unauthenticated(_) => ProblemCode::Unauthenticated,
            Self::InvalidCredentials => ProblemCode::InvalidCredentials,
            Self::InvalidRefreshToken => ProblemCode::InvalidRefreshToken,
            Self::RefreshTokenReused => ProblemCode::RefreshTokenReused,
            Self::InvalidSignature(_) => ProblemCode::InvalidSignature,
            Self::Forbidden => ProblemCode::Forbidden,
            Self::Validation(_) => ProblemCode::Validation,
            Self::NotFound { code }
            | Self::Conflict { code, .. }
            | Self::BadRequest { code, .. } => *code,
            Self::RateLimited { .. } => ProblemCode::RateLimited,
            Self::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            Self::RouteNotFound(_) => ProblemCode::RouteNotFound,
            Self::Redis(_) | Self::Unavailable(_) => ProblemCode::Unavailable,
            Self::Database(_) | Self::Internal(_) => ProblemCode::Internal,
        }
    }

    fn detail(&self) -> String {
        match self {
            // Never leak SQL, connection strings or stack traces.
            Self::Database(_) | Self::Redis(_) | Self::Internal(_) => {
                "something went wrong on our side; please retry".to_owned()
            }
            Self::Unavailable(_) => {
                "a service we depend on did not answer in time; nothing was changed, please retry"
                    .to_owned()
            }
            Self::NotFound { .. } => "no such resource".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let code = self.code();
        Problem {
            kind: problem_type(code.as_str()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            code,
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Renders the problem, logging server-side causes with their detail first.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code().as_str(), "request failed");
        } else {
            tracing::debug!(error = %self, code = self.code().as_str(), "request refused");
        }
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, PROBLEM_JSON);
        if let Self::RateLimited { retry_after_secs }
        | Self::Conflict {
            retry_after_secs: Some(retry_after_secs),
            ..
        } = self
        {
            builder = builder.header(header::RETRY_AFTER, retry_after_secs.to_string());
        }
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_else(|err| {
            tracing::error!(%err, "could not serialize a problem");
            b"{}".to_vec()
        });
        builder
            .body(Body::Binary(body))
            .unwrap_or_else(|_| Response::new(Body::Empty))
    }
}

/// `urn:kicksync:problem:<code in lower case, dashes for underscores>`, in one allocation.
pub fn problem_type(code: &str) -> String {
    const PREFIX: &str = "urn:kicksync:problem:";
    let mut kind = String::with_capacity(PREFIX.len() + code.len());
    kind.push_str(PREFIX);
    kind.extend(code.chars().map(|c| match c {
        '_' => '-',
        c => c.to_ascii_lowercase(),
    }));
    kind
}

/// Whether MySQL refused a write because a unique key already holds the value.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Maps a unique-constraint violation to the given conflict; the single place where a violation
/// becomes an answer.
pub trait UniqueViolation<T> {
    fn on_unique_violation(self, conflict: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> UniqueViolation<T> for Result<T, sqlx::Error> {
    fn on_unique_violation(self, conflict: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|err| {
            if is_unique_violation(&err) {
                conflict()
            } else {
                ApiError::Database(err)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn validation_problem_lists_fields() {
        let response = ApiError::validation("email", "must be an email address").into_response();
        assert_eq!(response.status(), 422);
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
        let body = body_json(&response);
        assert_eq!(body["code"], "VALIDATION");
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["type"], "urn:kicksync:problem:validation");
    }

    #[test]
    fn server_errors_are_opaque() {
        let response =
            ApiError::internal("SELECT * FROM users failed at db-1:3306").into_response();
        assert_eq!(response.status(), 500);
        let text = String::from_utf8(response.body().as_ref().to_vec()).unwrap();
        assert!(!text.contains("SELECT"), "{text}");
        assert!(!text.contains("3306"), "{text}");
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let response = ApiError::RateLimited {
            retry_after_secs: 42,
        }
        .into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "42");
        assert_eq!(body_json(&response)["code"], "RATE_LIMITED");
    }

    #[test]
    fn a_conflict_that_ends_by_itself_carries_retry_after_and_others_do_not() {
        let cooling =
            ApiError::conflict_until(ProblemCode::RebuyCooldown, "wait", 120).into_response();
        assert_eq!(cooling.status(), 409);
        assert_eq!(cooling.headers()["retry-after"], "120");
        let sold_out = ApiError::conflict(ProblemCode::SoldOut, "gone").into_response();
        assert!(sold_out.headers().get("retry-after").is_none());
    }
}
