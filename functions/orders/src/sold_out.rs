//! This process's memory of a hot product being sold out, for a moment.
//!
//! Once a drop sells out, every further attempt is answered `SOLD_OUT` after a look at the
//! product's counter (`HMGET` in the gate's round trip). On a Redis Cluster that counter lives on
//! one shard, so the crowd that keeps pressing "buy" after the sell-out would load that shard in
//! proportion to its size, whatever the number of shards. When this process has seen a product
//! sold out [`HOT_REFUSALS`] times within [`HOT_WINDOW`], it answers the product's attempts
//! `SOLD_OUT` from memory for the next `SOLD_OUT_MEMO_MS` (100 ms by default) without asking the
//! counter, and asks again after that: one more sold-out answer then remembers it for another
//! period. The product's shard then sees a few looks per process per
//! memo period however many attempts arrive; the buyer's own checks (token, rate limit,
//! idempotency key) still run in Redis for every attempt, in the buyer's slot.
//!
//! What it costs: a unit that comes back (an unpaid order expired, a cancel, a restock) is
//! offered by this process up to one memo period later. Units this process itself gives back
//! clear the memory at once. A product below the threshold (a quiet shop, a test making a few
//! requests) is never remembered, so its answers are always the counter's. Nothing is ever sold
//! from memory: only refusals are.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Sold-out answers from the counter within [`HOT_WINDOW`] that make a product hot.
pub(crate) const HOT_REFUSALS: u32 = 32;
/// The window [`HOT_REFUSALS`] are counted in.
pub(crate) const HOT_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct SoldOutMemo {
    /// How long a hot product's sold-out answer is kept; zero keeps none.
    period: Duration,
    products: Mutex<HashMap<i64, Seen>>,
}

/// What this process saw of one product lately.
#[derive(Debug, Clone, Copy)]
struct Seen {
    window_start: Instant,
    refusals: u32,
    /// Answered from memory until then.
    until: Option<Instant>,
    /// Since when one attempt, after the period, has been looking at the counter for all.
    looking_since: Option<Instant>,
}

impl SoldOutMemo {
    pub(crate) fn new(period: Duration) -> Self {
        Self {
            period,
            products: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the product's attempt at `now` is answered `SOLD_OUT` from memory; `false`
    /// means the attempt looks at the counter.
    ///
    /// When the period ends, the first attempt looks for everyone, and the others are still
    /// answered from memory while it does (one more period at most, in case its answer never
    /// comes). Without that, every attempt in flight at that moment (a thousand, in a drop)
    /// would look at once, and the product's shard would see a crowd every period.
    pub(crate) fn is_sold_out(&self, product_id: i64, now: Instant) -> bool {
        let Ok(mut products) = self.products.lock() else {
            return false;
        };
        let Some(seen) = products.get_mut(&product_id) else {
            return false;
        };
        let Some(until) = seen.until else {
            return false;
        };
        if now < until {
            return true;
        }
        match seen.looking_since {
            Some(since) if now.duration_since(since) < self.period => true,
            _ => {
                seen.looking_since = Some(now);
                false
            }
        }
    }

    /// The counter said the product is sold out (a look, or a reservation refused or taking the
    /// last unit).
    pub(crate) fn saw_sold_out(&self, product_id: i64, now: Instant) {
        if self.period.is_zero() {
            return;
        }
        let Ok(mut products) = self.products.lock() else {
            return;
        };
        // Products neither counted lately nor remembered are dropped: the map holds hot ones only.
        products.retain(|_, seen| {
            now.duration_since(seen.window_start) < HOT_WINDOW * 2
                || seen.until.is_some_and(|until| now < until)
        });
        let seen = products.entry(product_id).or_insert(Seen {
            window_start: now,
            refusals: 0,
            until: None,
            looking_since: None,
        });
        if now.duration_since(seen.window_start) >= HOT_WINDOW {
            seen.window_start = now;
            seen.refusals = 0;
        }
        seen.refusals = seen.refusals.saturating_add(1);
        // A product remembered lately and still sold out at the look after its period is still
        // hot: it is remembered again at once rather than after another window of looks.
        if seen.until.is_some() || seen.refusals >= HOT_REFUSALS {
            seen.until = Some(now + self.period);
            seen.looking_since = None;
        }
    }

    /// A look at the counter found units of the product: if it was remembered sold out, it is
    /// not any more.
    pub(crate) fn saw_units(&self, product_id: i64) {
        if let Ok(mut products) = self.products.lock()
            && products
                .get(&product_id)
                .is_some_and(|seen| seen.until.is_some())
        {
            products.remove(&product_id);
        }
    }

    /// Units of the product came back through this process: its answers are the counter's again.
    pub(crate) fn forget(&self, product_id: i64) {
        if let Ok(mut products) = self.products.lock() {
            products.remove(&product_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(100);

    fn refuse(memo: &SoldOutMemo, product_id: i64, times: u32, now: Instant) {
        for _ in 0..times {
            memo.saw_sold_out(product_id, now);
        }
    }

    #[test]
    fn a_product_is_remembered_only_once_it_is_hot() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS - 1, now);
        assert!(!memo.is_sold_out(1, now));
        memo.saw_sold_out(1, now);
        assert!(memo.is_sold_out(1, now));
        assert!(
            !memo.is_sold_out(2, now),
            "another product is not remembered"
        );
    }

    #[test]
    fn the_memory_lasts_one_period() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, now);
        assert!(memo.is_sold_out(1, now + PERIOD - Duration::from_millis(1)));
        assert!(!memo.is_sold_out(1, now + PERIOD));
        // Still hot within the window: the next sold-out answer remembers it again.
        memo.saw_sold_out(1, now + PERIOD);
        assert!(memo.is_sold_out(1, now + PERIOD));
    }

    #[test]
    fn a_product_still_sold_out_after_its_period_is_remembered_at_the_first_look() {
        let memo = SoldOutMemo::new(PERIOD);
        let start = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, start);
        // A new window: without the earlier memory one look would not be enough.
        let later = start + HOT_WINDOW + PERIOD;
        assert!(!memo.is_sold_out(1, later));
        memo.saw_sold_out(1, later);
        assert!(memo.is_sold_out(1, later));
    }

    #[test]
    fn after_the_period_one_attempt_looks_for_all() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, now);
        let after = now + PERIOD;
        assert!(!memo.is_sold_out(1, after), "the first attempt looks");
        assert!(
            memo.is_sold_out(1, after),
            "the next ones wait for its answer"
        );
        assert!(memo.is_sold_out(1, after + PERIOD - Duration::from_millis(1)));

        // Its answer: still sold out, remembered for another period.
        memo.saw_sold_out(1, after + Duration::from_millis(5));
        assert!(memo.is_sold_out(1, after + PERIOD));
    }

    #[test]
    fn a_look_that_never_answers_is_followed_by_another_one_period_later() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, now);
        assert!(!memo.is_sold_out(1, now + PERIOD));
        assert!(!memo.is_sold_out(1, now + PERIOD * 2), "a new look");
        assert!(memo.is_sold_out(1, now + PERIOD * 2));
    }

    #[test]
    fn a_look_that_finds_units_ends_the_memory() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, now);
        assert!(!memo.is_sold_out(1, now + PERIOD));
        memo.saw_units(1);
        assert!(!memo.is_sold_out(1, now + PERIOD));
        assert!(
            !memo.is_sold_out(1, now + PERIOD),
            "every attempt looks again"
        );
        memo.saw_sold_out(1, now + PERIOD);
        assert!(!memo.is_sold_out(1, now + PERIOD), "the count starts again");
    }

    #[test]
    fn refusals_spread_over_more_than_a_window_do_not_make_a_product_hot() {
        let memo = SoldOutMemo::new(PERIOD);
        let start = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS - 1, start);
        let later = start + HOT_WINDOW;
        memo.saw_sold_out(1, later);
        assert!(!memo.is_sold_out(1, later));
    }

    #[test]
    fn units_given_back_here_end_the_memory() {
        let memo = SoldOutMemo::new(PERIOD);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS, now);
        memo.forget(1);
        assert!(!memo.is_sold_out(1, now));
        memo.saw_sold_out(1, now);
        assert!(!memo.is_sold_out(1, now), "the count starts again");
    }

    #[test]
    fn a_zero_period_remembers_nothing() {
        let memo = SoldOutMemo::new(Duration::ZERO);
        let now = Instant::now();
        refuse(&memo, 1, HOT_REFUSALS * 2, now);
        assert!(!memo.is_sold_out(1, now));
    }
}
