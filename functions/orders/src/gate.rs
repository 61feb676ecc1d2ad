//! Everything Redis must say about a checkout attempt before a unit is taken, asked in one
//! pipelined round trip of (at most) two kinds of command:
//!
//! 1. the buyer's checkout rate limit script, which counts the attempt and, in the same call, says
//!    whether the caller's token is on the logout blacklist, whether the idempotency key's marker
//!    exists, and whether the buyer's blacklist entries and markers are loaded (their two loaded
//!    flags): the counter, the entry, the marker and the flags all live in the buyer's hash slot
//!    (`{u<id>}`);
//! 2. a look at each product's stock counter and facts (`HMGET`), when the items are valid and
//!    the reservation strategy is on. A missing hash is the product's own "not loaded".
//!
//! Once a drop sells out, that one round trip answers an attempt (SOLD_OUT). Nothing here takes
//! a unit: the reservation script alone does, atomically, and the look only spares it hopeless
//! calls. A product this process has seen sold out many times a second is not looked at for a
//! moment ([`SoldOutMemo`](crate::sold_out::SoldOutMemo)): its attempts are refused from memory
//! after the buyer's checks.
//!
//! The attempt is counted before the blacklist is judged, so attempts with a logged-out token
//! count against their buyer's limit too; they come with a valid signature, so whoever sends them
//! could as well have sent attempts with the token before its logout.
//!
//! On a Redis Cluster the commands go to the buyer's slot and each product's; the connection
//! splits the pipeline by slot and sends the parts at once (still one round trip of latency),
//! and no command needs another slot's keys. No key is read by every attempt: a product's slot
//! sees one `HMGET` per attempt on it (and the reservation script while units are left) until
//! the product is sold out and hot, then a few per process per memo period; a buyer's slot one
//! script call per attempt of that buyer.

use std::time::Instant;

use chrono::{DateTime, Utc};
use redis::{FromRedisValue, Value};
use shared::{
    adapters::{
        redis::{BlacklistAnswer, RateDecision},
        stock::StockReservations,
    },
    auth::SignedToken,
    config::StockStrategy,
    domain::{order::CheckoutItem, stock::StockRefusal},
};

use crate::{CHECKOUT_WINDOW, Deps};

/// What the round trip answered. Every part is `None` when Redis could not be asked: the
/// checkout then asks MySQL where it must, and the rate limit is this process's own count.
#[derive(Debug)]
pub(crate) struct Gate {
    pub blacklist: Option<BlacklistAnswer>,
    pub rate: RateDecision,
    /// Replies for [`shared::adapters::redis::KeyMarkers::certainly_unused`]; `None` without a valid key.
    pub markers: Option<(bool, bool)>,
    /// What the reservation script would refuse for the first item it would refuse.
    pub refusal: Option<StockRefusal>,
}

impl Gate {
    fn unanswered() -> Self {
        Self {
            blacklist: None,
            rate: RateDecision::Allowed,
            markers: None,
            refusal: None,
        }
    }
}

/// Sends the round trip. `key` only when valid, `items` only when the body was.
pub(crate) async fn ask(
    deps: &Deps,
    token: &SignedToken,
    key: Option<&str>,
    items: Option<&[CheckoutItem]>,
    now: DateTime<Utc>,
) -> Gate {
    let buyer_id = token.claimed().user_id;
    // The comparison strategy does what the replaced system did: no look at any counter.
    let looked_at: &[CheckoutItem] = match deps.platform.config.orders.stock_strategy {
        StockStrategy::Reservation => items.unwrap_or_default(),
        StockStrategy::Lock => &[],
    };
    let clock = Instant::now();
    let remembered: Vec<bool> = looked_at
        .iter()
        .map(|item| deps.sold_out.is_sold_out(item.product_id, clock))
        .collect();
    let peeked = || {
        looked_at
            .iter()
            .zip(&remembered)
            .filter(|(_, remembered)| !**remembered)
            .map(|(item, _)| item)
    };
    // Keys of the buyer's slot whose existence the counting script reports, in this order: the
    // token's blacklist entry and the buyer's blacklist flag, then (with a key) the key's marker
    // and the buyer's markers flag.
    let authenticator = &deps.platform.authenticator;
    let mut exist = Vec::with_capacity(4);
    exist.push(authenticator.blacklist_key(token));
    exist.push(authenticator.blacklist_loaded_key(token));
    if let Some(key) = key {
        exist.push(deps.markers.marker(buyer_id, key.as_bytes()));
        exist.push(deps.markers.loaded_flag(buyer_id));
    }
    let counter = format!("checkout:{{u{buyer_id}}}");
    let limit = deps.platform.config.orders.checkout_limit_per_minute;
    let asked = deps
        .limiter
        .hit_and_read::<Vec<Value>>(&counter, limit, CHECKOUT_WINDOW, &exist, |pipe| {
            for item in peeked() {
                deps.reservations.peek(pipe, item.product_id);
            }
        })
        .await;
    let (rate, existing, replies) = match asked {
        Ok(answered) => answered,
        Err(err) => {
            tracing::warn!(%err, "Redis unavailable; checkout limited by this process's count");
            return Gate {
                rate: deps.limiter.hit_locally(&counter, limit, CHECKOUT_WINDOW),
                ..Gate::unanswered()
            };
        }
    };
    let pair = |at: usize| Some((*existing.get(at)?, *existing.get(at + 1)?));
    let blacklist = pair(0).map(BlacklistAnswer::from_replies);
    let markers = key.and_then(|_| pair(2));
    // The replies come in the order the reads were added; one that cannot be read counts as
    // unanswered, which only ever sends the checkout the slower, MySQL-checked way.
    let mut replies = replies.iter();
    let refusal = looked_at
        .iter()
        .zip(&remembered)
        .find_map(|(item, remembered)| {
            if *remembered {
                return Some(StockRefusal::Insufficient { remaining: 0 });
            }
            let peek = FromRedisValue::from_redis_value(replies.next()?).ok()?;
            let refusal = StockReservations::refusal(&peek, item.quantity, now);
            match refusal {
                Some(refusal) if refusal.is_sold_out() => {
                    deps.sold_out.saw_sold_out(item.product_id, clock);
                }
                _ => deps.sold_out.saw_units(item.product_id),
            }
            refusal
        });
    Gate {
        blacklist,
        rate,
        markers,
        refusal,
    }
}
