//! Pure rules: no I/O, no HTTP, no Lambda. Each module is unit-tested on its own.

pub mod auth;
pub mod cursor;
pub mod dates;
pub mod order;
pub mod payment;
pub mod payment_check;
pub mod product;
pub mod settlement;
pub mod stock;
pub mod webhook;

use serde::Serialize;

/// One field that failed validation, as listed in a 422 problem's `errors`. The rules produce
/// these; the HTTP boundary ([`ApiError::Validation`](crate::error::ApiError)) only carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
