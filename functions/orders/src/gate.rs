//! Everything Redis must say about a checkout attempt before a unit is taken, asked in one
//! pipelined round trip:
//!
//! 1. the logout blacklist for the caller's token (two `EXISTS`),
//! 2. the buyer's checkout rate limit (the limiter's script, which counts the attempt),
//! 3. the idempotency markers of the key, when the key is valid (two `EXISTS`),
//! 4. a look at each product's stock counter and facts (`HMGET`), when the items are valid and
//!    the reservation strategy is on.
//!
//! Once a drop sells out, that one round trip answers an attempt (SOLD_OUT) where four were
//! needed before (blacklist, limit with markers, reservation script). Nothing here takes a unit:
//! the reservation script alone does, atomically, and the look only spares it hopeless calls.
//!
//! The attempt is counted before the blacklist is judged, so attempts with a logged-out token
//! count against their buyer's limit too; they come with a valid signature, so whoever sends them
//! could as well have sent attempts with the token before its logout.
//!
//! On a Redis Cluster the pipeline's keys live in different slots (the token's, the buyer's, each
//! product's); a cluster client splits it per node and sends the parts at once, still one round
//! trip of latency, and no command in it needs another's keys.

use chrono::{DateTime, Utc};
use redis::{FromRedisValue, Value};
use shared::{
    adapters::{
        redis::{BlacklistAnswer, RateDecision},
        stock::{Reservation, StockReservations},
    },
    auth::SignedToken,
    config::StockStrategy,
    domain::order::CheckoutItem,
};

use crate::{CHECKOUT_WINDOW, Deps};

/// What the round trip answered. Every part is `None` (and the rate limit allows) when Redis
/// could not be asked: the checkout then asks MySQL where it must and is not rate limited.
#[derive(Debug)]
pub(crate) struct Gate {
    pub blacklist: Option<BlacklistAnswer>,
    pub rate: RateDecision,
    /// Replies for [`crate::markers::KeyMarkers::certainly_unused`]; `None` without a valid key.
    pub markers: Option<(bool, bool)>,
    /// What the reservation script would refuse for the first item it would refuse.
    pub refusal: Option<Reservation>,
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
    let peeked: &[CheckoutItem] = match deps.platform.config.orders.stock_strategy {
        StockStrategy::Reservation => items.unwrap_or_default(),
        StockStrategy::Lock => &[],
    };
    let asked = deps
        .limiter
        .hit_and_read::<Vec<Value>>(
            &format!("checkout:{buyer_id}"),
            deps.platform.config.orders.checkout_limit_per_minute,
            CHECKOUT_WINDOW,
            |pipe| {
                deps.platform.authenticator.ask_blacklist(pipe, token);
                if let Some(key) = key {
                    deps.markers.ask(pipe, buyer_id, key);
                }
                for item in peeked {
                    deps.reservations.peek(pipe, item.product_id);
                }
            },
        )
        .await;
    let (rate, replies) = match asked {
        Ok(answered) => answered,
        Err(err) => {
            tracing::warn!(%err, "Redis unavailable; checkout not rate limited");
            return Gate::unanswered();
        }
    };
    // The replies come in the order the reads were added; one that cannot be read counts as
    // unanswered, which only ever sends the checkout the slower, MySQL-checked way.
    let mut replies = replies.iter();
    let blacklist = both(replies.next(), replies.next()).map(BlacklistAnswer::from_replies);
    let markers = key.and_then(|_| both(replies.next(), replies.next()));
    let refusal = peeked.iter().find_map(|item| {
        let peek = FromRedisValue::from_redis_value(replies.next()?).ok()?;
        StockReservations::refusal(&peek, item.quantity, now)
    });
    Gate {
        blacklist,
        rate,
        markers,
        refusal,
    }
}

/// Two `EXISTS` replies as one pair.
fn both(first: Option<&Value>, second: Option<&Value>) -> Option<(bool, bool)> {
    Some((
        bool::from_redis_value(first?).ok()?,
        bool::from_redis_value(second?).ok()?,
    ))
}
