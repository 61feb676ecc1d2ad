//! Orders: the status machine, checkout input rules, and splitting a checkout per partner.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{FieldError, cursor, payment::PaymentStatus};

/// Items one checkout may hold: a drop is one or two pairs, not a warehouse order.
pub const MAX_ITEMS: usize = 20;
/// Units of one item per checkout; `max_per_buyer` usually bites long before.
pub const MAX_QUANTITY: i32 = 100;
pub const MIN_IDEMPOTENCY_KEY: usize = 8;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Confirmed,
    Expired,
    Cancelled,
    PaymentFailed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Confirmed,
        OrderStatus::Expired,
        OrderStatus::Cancelled,
        OrderStatus::PaymentFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Paid => "PAID",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::PaymentFailed => "PAYMENT_FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// The payment's status once no order of it awaits payment any more because this order
    /// became `self` without being paid (EXPIRED, CANCELLED or PAYMENT_FAILED).
    pub fn unpaid_payment_status(self) -> PaymentStatus {
        match self {
            OrderStatus::Expired => PaymentStatus::Expired,
            OrderStatus::PaymentFailed => PaymentStatus::Failed,
            _ => PaymentStatus::Cancelled,
        }
    }

    /// The contract's status machine:
    /// `PENDING_PAYMENT → PAID → SHIPPED → CONFIRMED`,
    /// `PENDING_PAYMENT → EXPIRED | CANCELLED | PAYMENT_FAILED`, `PAID → CANCELLED` (refund).
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (PendingPayment, Paid | Expired | Cancelled | PaymentFailed)
                | (Paid, Shipped | Cancelled)
                | (Shipped, Confirmed)
        )
    }

    /// Units of an order in this status are held (counted against stock and the buyer's limit).
    pub fn holds_stock(self) -> bool {
        matches!(
            self,
            OrderStatus::PendingPayment
                | OrderStatus::Paid
                | OrderStatus::Shipped
                | OrderStatus::Confirmed
        )
    }
}

/// The column text, for `#[sqlx(try_from = "String")]` on rows.
impl TryFrom<String> for OrderStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("{text:?} is not an order status"))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the next page of an order history starts: before this order id (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCursor {
    pub before_id: i64,
}

const CURSOR_TAG: &str = "o1";

impl OrderCursor {
    /// Opaque to clients: `o1:<id>` in the [`cursor`] format.
    pub fn encode(&self) -> String {
        cursor::encode(CURSOR_TAG, [self.before_id])
    }

    pub fn decode(text: &str) -> Option<Self> {
        let [before_id] = cursor::decode(CURSOR_TAG, text)?;
        Some(Self { before_id })
    }
}

/// One requested line of a checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckoutItem {
    pub product_id: i64,
    pub quantity: i32,
}

/// Items must be 1..=20 distinct products, each 1..=100 units. Returns them sorted by product
/// id: reservations and row locks are always taken in that order, so two checkouts of the same
/// products can never deadlock.
pub fn validate_items(items: &[CheckoutItem]) -> Result<Vec<CheckoutItem>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if items.is_empty() || items.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            "items",
            format!("must hold 1 to {MAX_ITEMS} items"),
        ));
    }
    for (index, item) in items.iter().enumerate() {
        if item.product_id <= 0 {
            errors.push(FieldError::new(
                format!("items[{index}].product_id"),
                "must be a product id",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
    }
    let mut sorted = items.to_vec();
    sorted.sort_by_key(|item| item.product_id);
    if sorted
        .windows(2)
        .any(|pair| pair[0].product_id == pair[1].product_id)
    {
        errors.push(FieldError::new(
            "items",
            "each product may appear once; raise its quantity instead",
        ));
    }
    if errors.is_empty() {
        Ok(sorted)
    } else {
        Err(errors)
    }
}

/// `Idempotency-Key`: 8..=128 printable ASCII characters.
pub fn is_valid_idempotency_key(key: &str) -> bool {
    (MIN_IDEMPOTENCY_KEY..=MAX_IDEMPOTENCY_KEY).contains(&key.len())
        && key
            .bytes()
            .all(|byte| byte.is_ascii_graphic() || byte == b' ')
}

/// Fingerprint of a checkout's content, stored beside its key: the same key with different items
/// is refused. Items are hashed in their validated (sorted) order, so `[a, b]` and `[b, a]` match.
pub fn request_fingerprint(items: &[CheckoutItem]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        hasher.update(format!("{}x{};", item.product_id, item.quantity));
    }
    hex::encode(hasher.finalize())
}

/// What a checkout needs to know about a product, whichever store it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedItem {
    pub product_id: i64,
    pub partner_id: i64,
    pub quantity: i32,
    pub unit_price: i64,
}

/// One order of a split checkout: one partner's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerOrder {
    pub partner_id: i64,
    pub amount: i64,
    pub items: Vec<PricedItem>,
}

/// Splits a checkout into one order per partner (ascending partner id), each with its amount.
pub fn split_by_partner(items: &[PricedItem]) -> Vec<PartnerOrder> {
    let mut by_partner: BTreeMap<i64, Vec<PricedItem>> = BTreeMap::new();
    for item in items {
        by_partner
            .entry(item.partner_id)
            .or_default()
            .push(item.clone());
    }
    by_partner
        .into_iter()
        .map(|(partner_id, items)| PartnerOrder {
            partner_id,
            amount: items
                .iter()
                .map(|item| item.unit_price * i64::from(item.quantity))
                .sum(),
            items,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(product_id: i64, quantity: i32) -> CheckoutItem {
        CheckoutItem {
            product_id,
            quantity,
        }
    }

    #[test]
    fn the_status_machine_matches_the_contract() {
        use OrderStatus::*;
        let allowed = [
            (PendingPayment, Paid),
            (PendingPayment, Expired),
            (PendingPayment, Cancelled),
            (PendingPayment, PaymentFailed),
            (Paid, Shipped),
            (Paid, Cancelled),
            (Shipped, Confirmed),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("paid"), None);
    }

    #[test]
    fn order_cursors_keep_their_wire_format() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

        let cursor = OrderCursor { before_id: 42 };
        assert_eq!(cursor.encode(), URL_SAFE_NO_PAD.encode("o1:42"));
        assert_eq!(OrderCursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["o1:0", "o1:-1", "o1:x", "o1:1:2", "v1:1:2"] {
            assert_eq!(
                OrderCursor::decode(&URL_SAFE_NO_PAD.encode(bad)),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn items_are_sorted_and_checked() {
        assert_eq!(
            validate_items(&[item(9, 1), item(3, 2)]).unwrap(),
            vec![item(3, 2), item(9, 1)]
        );
        let errors = validate_items(&[item(0, 0), item(5, 101)]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "items[0].product_id",
                "items[0].quantity",
                "items[1].quantity"
            ]
        );
        assert_eq!(validate_items(&[]).unwrap_err()[0].field, "items");
        assert_eq!(
            validate_items(&[item(4, 1), item(4, 2)]).unwrap_err()[0].field,
            "items"
        );
        assert!(validate_items(&vec![item(1, 1); 21]).is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(is_valid_idempotency_key("checkout-2026-11-24-0001"));
        assert!(is_valid_idempotency_key(&"k".repeat(128)));
        for bad in [
            "short",
            "",
            &"k".repeat(129),
            "tab\tinside-key",
            "한글은-안되는-키입니다",
        ] {
            assert!(!is_valid_idempotency_key(bad), "{bad}");
        }
    }

    #[test]
    fn fingerprints_ignore_item_order_but_not_content() {
        let a = validate_items(&[item(1, 1), item(2, 1)]).unwrap();
        let b = validate_items(&[item(2, 1), item(1, 1)]).unwrap();
        let c = validate_items(&[item(1, 2), item(2, 1)]).unwrap();
        assert_eq!(request_fingerprint(&a), request_fingerprint(&b));
        assert_ne!(request_fingerprint(&a), request_fingerprint(&c));
    }

    #[test]
    fn checkouts_split_per_partner() {
        let priced = |product_id, partner_id, quantity, unit_price| PricedItem {
            product_id,
            partner_id,
            quantity,
            unit_price,
        };
        let orders = split_by_partner(&[
            priced(1, 20, 2, 100_000),
            priced(2, 10, 1, 50_000),
            priced(3, 20, 1, 30_000),
        ]);
        assert_eq!(orders.len(), 2);
        assert_eq!(
            (
                orders[0].partner_id,
                orders[0].amount,
                orders[0].items.len()
            ),
            (10, 50_000, 1)
        );
        assert_eq!(
            (
                orders[1].partner_id,
                orders[1].amount,
                orders[1].items.len()
            ),
            (20, 230_000, 2)
        );
    }
}
