//! Bounded fuzzing (proptest) of the parsers that face the network: the webhook signature check,
//! the paging cursors and the JSON body reader. Each property runs a few hundred generated cases
//! in every `scripts/test` run: none may panic, nothing unsigned may verify, nothing malformed
//! may be answered with a 5xx, and what we issue must read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use lambda_http::{Body, Request, http};
use proptest::prelude::*;
use serde::Deserialize;
use shared::{
    domain::{
        cursor,
        order::OrderCursor,
        product::Cursor,
        webhook::{SignedHeaders, WebhookSecret, verify},
    },
    http::json_body,
};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const NOW: i64 = 1_800_000_000;

fn secret() -> WebhookSecret {
    WebhookSecret::new(SECRET).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever arrives in the three headers and the body, the check answers and never panics;
    /// only a message signed with our secret at a fresh time passes.
    #[test]
    fn arbitrary_webhooks_never_verify(
        id in proptest::option::of(".{0,40}"),
        timestamp in proptest::option::of(".{0,20}"),
        signature in proptest::option::of(".{0,120}"),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let headers = SignedHeaders {
            id: id.as_deref(),
            timestamp: timestamp.as_deref(),
            signature: signature.as_deref(),
        };
        prop_assert!(verify(&secret(), headers, &body, NOW).is_err());
    }

    /// A message we signed verifies; changing any one byte of its body, or its id, breaks it.
    #[test]
    fn a_signed_webhook_verifies_and_any_change_breaks_it(
        id in "[a-zA-Z0-9_]{1,40}",
        body in proptest::collection::vec(any::<u8>(), 1..256),
        skew in -299_i64..=299,
        flip in any::<proptest::sample::Index>(),
        bit in 0_u8..8,
    ) {
        let timestamp = NOW + skew;
        let signature = secret().sign(&id, timestamp, &body);
        let stamp = timestamp.to_string();
        let headers = SignedHeaders { id: Some(&id), timestamp: Some(&stamp), signature: Some(&signature) };
        prop_assert!(verify(&secret(), headers, &body, NOW).is_ok());

        let mut tampered = body.clone();
        let at = flip.index(tampered.len());
        tampered[at] ^= 1 << bit;
        prop_assert!(verify(&secret(), headers, &tampered, NOW).is_err());

        let other_id = format!("{id}x");
        let renamed = SignedHeaders { id: Some(&other_id), ..headers };
        prop_assert!(verify(&secret(), renamed, &body, NOW).is_err());
    }

    /// Any text as a cursor decodes or is refused, without panicking; a decoded catalogue
    /// cursor always names a time MySQL can hold and a positive id.
    #[test]
    fn arbitrary_cursors_are_refused_or_sane(text in ".{0,80}") {
        if let Some(decoded) = Cursor::decode(&text) {
            prop_assert!(decoded.id > 0);
            prop_assert!(shared::domain::dates::is_storable_instant(decoded.release_at));
        }
        if let Some(decoded) = OrderCursor::decode(&text) {
            prop_assert!(decoded.before_id > 0);
        }
        let _ = cursor::decode::<3>("v1", &text);
    }

    /// What we issue reads back exactly.
    #[test]
    fn issued_cursors_read_back(
        micros in 0_i64..253_402_300_799_000_000,
        id in 1_i64..=i64::MAX,
    ) {
        let release_at: DateTime<Utc> = DateTime::from_timestamp_micros(micros).unwrap();
        let issued = Cursor { release_at, id };
        if shared::domain::dates::is_storable_instant(release_at) {
            prop_assert_eq!(Cursor::decode(&issued.encode()), Some(issued));
        }
        let page = OrderCursor { before_id: id };
        prop_assert_eq!(OrderCursor::decode(&page.encode()), Some(page));
    }

    /// Any bytes as a JSON body are read or refused with a 4xx problem, never a panic or 5xx.
    #[test]
    fn arbitrary_bodies_are_read_or_refused_with_a_4xx(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            ".{0,256}".prop_map(String::into_bytes),
            json_ish().prop_map(String::into_bytes),
        ],
        content_type in prop_oneof![
            Just("application/json"),
            Just("application/problem+json; charset=utf-8"),
            Just("text/plain"),
        ],
    ) {
        let req: Request = http::Request::builder()
            .header("content-type", content_type)
            .body(Body::Binary(bytes))
            .unwrap();
        if let Err(err) = json_body::<Checkout>(&req) {
            prop_assert!(err.status().is_client_error(), "{err:?}");
        }
    }
}

/// A body shape like the checkout's, so that generated JSON reaches field validation.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Checkout {
    items: Vec<Line>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Line {
    product_id: i64,
    quantity: i32,
}

/// JSON-looking text: objects and arrays of numbers, strings, nulls and booleans, nested.
fn json_ish() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "[a-z_]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e400".to_owned()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec(("[a-z_]{1,10}", inner), 0..4).prop_map(|fields| {
                let body: Vec<String> = fields
                    .into_iter()
                    .map(|(name, value)| format!("\"{name}\":{value}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}
