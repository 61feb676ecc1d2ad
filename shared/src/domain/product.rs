//! Catalogue rules: what a valid product is, and the opaque keyset cursor of the newest-first list.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::{FieldError, cursor, dates};

pub const DEFAULT_PAGE_SIZE: u32 = 40;
pub const MAX_PAGE_SIZE: u32 = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_BRAND_CHARS: usize = 100;
/// 100 million KRW: nothing on a sneaker marketplace costs more; a typo with extra zeros does.
pub const MAX_PRICE: i64 = 100_000_000;
pub const MAX_STOCK: i32 = 1_000_000;
/// A release may be listed up to a year ahead...
pub const MAX_RELEASE_AHEAD: Duration = Duration::days(365);
/// ...and back-dated by a day at most (a listing fixed up just after its drop).
pub const MAX_RELEASE_BEHIND: Duration = Duration::days(1);

/// Where the next page starts: after (release_at, id) in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub release_at: DateTime<Utc>,
    pub id: i64,
}

const CURSOR_TAG: &str = "v1";

impl Cursor {
    /// Opaque to clients: `v1:<release_at micros>:<id>` in the [`cursor`] format.
    pub fn encode(&self) -> String {
        cursor::encode(CURSOR_TAG, [self.release_at.timestamp_micros(), self.id])
    }

    /// `None` for anything we did not issue, including a release time MySQL cannot hold (no
    /// product has one, and the query would fail on it).
    pub fn decode(text: &str) -> Option<Self> {
        let [micros, id] = cursor::decode(CURSOR_TAG, text)?;
        let release_at = DateTime::from_timestamp_micros(micros)
            .filter(|release_at| dates::is_storable_instant(*release_at))?;
        Some(Self { release_at, id })
    }
}

/// One page of the list: how many, and after which product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The page served from the cache: the first page at the default size.
    pub fn is_cached_first_page(&self) -> bool {
        self.after.is_none() && self.size == DEFAULT_PAGE_SIZE
    }
}

/// `size` is 1..=100 (default 40); an absent or empty `cursor` means the first page.
pub fn parse_page(
    size: Option<&str>,
    cursor: Option<&str>,
) -> Result<PageRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let size = match size.map(str::trim).filter(|text| !text.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "size",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                ));
                DEFAULT_PAGE_SIZE
            }
        },
    };
    let after = match cursor.map(str::trim).filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => {
            let decoded = Cursor::decode(text);
            if decoded.is_none() {
                errors.push(cursor::invalid_cursor());
            }
            decoded
        }
    };
    if errors.is_empty() {
        Ok(PageRequest { size, after })
    } else {
        Err(errors)
    }
}

/// A product's editable fields, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductFields {
    pub name: String,
    pub brand: String,
    pub price: i64,
    pub release_at: DateTime<Utc>,
    pub stock: i32,
    pub max_per_buyer: i32,
}

/// Checks every field and returns every failure. `now` bounds the release time; on an update
/// an unchanged release time is accepted even if it has passed.
pub fn validate_fields(
    fields: &ProductFields,
    now: DateTime<Utc>,
    unchanged_release_at: Option<DateTime<Utc>>,
) -> Result<ProductFields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = fields.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let brand = fields.brand.trim().to_owned();
    if brand.is_empty() || brand.chars().count() > MAX_BRAND_CHARS {
        errors.push(FieldError::new(
            "brand",
            format!("must be 1 to {MAX_BRAND_CHARS} characters"),
        ));
    }
    if !(1..=MAX_PRICE).contains(&fields.price) {
        errors.push(FieldError::new(
            "price",
            format!("must be 1 to {MAX_PRICE} KRW"),
        ));
    }
    if unchanged_release_at != Some(fields.release_at)
        && (fields.release_at < now - MAX_RELEASE_BEHIND
            || fields.release_at > now + MAX_RELEASE_AHEAD)
    {
        errors.push(FieldError::new(
            "release_at",
            "must be between a day ago and a year from now",
        ));
    }
    if !(1..=MAX_STOCK).contains(&fields.stock) {
        errors.push(FieldError::new(
            "stock",
            format!("must be 1 to {MAX_STOCK}"),
        ));
    }
    // A per-buyer cap, not a share of the stock: it may exceed the stock (the last pairs of a
    // drop, or stock lowered after listing), and the stock rule refuses what is not there.
    if fields.max_per_buyer < 1 {
        errors.push(FieldError::new("max_per_buyer", "must be at least 1"));
    }
    if errors.is_empty() {
        Ok(ProductFields {
            name,
            brand,
            price: fields.price,
            release_at: fields.release_at,
            stock: fields.stock,
            max_per_buyer: fields.max_per_buyer,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn fields(now: DateTime<Utc>) -> ProductFields {
        ProductFields {
            name: " Air Jordan 1 Retro High OG 'Chicago' ".into(),
            brand: "Nike".into(),
            price: 219_000,
            release_at: now + Duration::hours(2),
            stock: 100,
            max_per_buyer: 1,
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let cursor = Cursor {
            release_at: DateTime::from_timestamp_micros(1_795_428_930_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        let before_1970 = Cursor {
            release_at: DateTime::from_timestamp_micros(-1).unwrap(),
            id: 7,
        };
        assert_eq!(Cursor::decode(&before_1970.encode()), Some(before_1970));
        for bad in [
            "",
            "abc",
            "djE6MQ",
            &URL_SAFE_NO_PAD.encode("v2:1:1"),
            &URL_SAFE_NO_PAD.encode("v1:1:-4"),
            // Year 1969 is fine, years -1 and 10000 are not MySQL's.
            &URL_SAFE_NO_PAD.encode("v1:-62198755200000000:1"),
            &URL_SAFE_NO_PAD.encode("v1:253402300800000000:1"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn page_sizes() {
        assert_eq!(parse_page(None, None).unwrap().size, 40);
        assert!(parse_page(None, Some("")).unwrap().is_cached_first_page());
        assert_eq!(parse_page(Some("100"), None).unwrap().size, 100);
        for bad in ["0", "101", "-1", "ten", "4.5"] {
            let errors = parse_page(Some(bad), None).unwrap_err();
            assert_eq!(errors[0].field, "size", "{bad}");
        }
        let errors = parse_page(Some("0"), Some("garbage")).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn valid_fields_are_trimmed() {
        let now = Utc::now();
        let valid = validate_fields(&fields(now), now, None).unwrap();
        assert_eq!(valid.name, "Air Jordan 1 Retro High OG 'Chicago'");
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let now = Utc::now();
        let bad = ProductFields {
            name: "".into(),
            brand: "x".repeat(101),
            price: 0,
            release_at: now + Duration::days(400),
            stock: 0,
            max_per_buyer: 0,
        };
        let errors = validate_fields(&bad, now, None).unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "name",
                "brand",
                "price",
                "release_at",
                "stock",
                "max_per_buyer"
            ]
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let now = Utc::now();
        let mut edge = fields(now);
        edge.price = MAX_PRICE;
        edge.stock = 3;
        edge.max_per_buyer = 1;
        assert!(validate_fields(&edge, now, None).is_ok());
        edge.max_per_buyer = 0;
        assert!(validate_fields(&edge, now, None).is_err());
        edge.max_per_buyer = 1;
        edge.price = MAX_PRICE + 1;
        assert!(validate_fields(&edge, now, None).is_err());
    }

    #[test]
    fn the_purchase_limit_may_exceed_the_stock() {
        let now = Utc::now();
        let mut last_pairs = fields(now);
        last_pairs.stock = 1;
        last_pairs.max_per_buyer = 4;
        assert_eq!(
            validate_fields(&last_pairs, now, None)
                .unwrap()
                .max_per_buyer,
            4
        );
        last_pairs.max_per_buyer = i32::MAX;
        assert!(validate_fields(&last_pairs, now, None).is_ok());
    }

    #[test]
    fn a_past_release_time_may_stay_on_update() {
        let now = Utc::now();
        let mut old = fields(now);
        old.release_at = now - Duration::days(30);
        assert!(validate_fields(&old, now, None).is_err());
        assert!(validate_fields(&old, now, Some(old.release_at)).is_ok());
    }
}
