//! Whether a buyer may take units of a product: the one rule behind every stock check.
//!
//! Checked in this order: the release time, the purchase limit, then the units left. The
//! reservation script in Redis ([`StockReservations`](crate::adapters::stock::StockReservations))
//! applies the same rule inside Redis, where Rust cannot run; a test runs it on the table of
//! `cases` and asserts the outcomes the rule gives.

use chrono::{DateTime, Utc};

/// What a product offers a buyer at the moment of a checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Units not yet sold.
    pub remaining: i64,
    pub release_at: DateTime<Utc>,
    /// Units one buyer may ever hold.
    pub max_per_buyer: i64,
}

/// Why units cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockRefusal {
    /// Before the release time.
    NotOnSale,
    /// More units than one buyer may ever hold.
    OverLimit { max_per_buyer: i64 },
    /// Fewer units left than asked for; `remaining` 0 is sold out.
    Insufficient { remaining: i64 },
}

impl StockRefusal {
    /// Nothing left at all, as opposed to fewer units than asked for.
    pub fn is_sold_out(self) -> bool {
        matches!(self, Self::Insufficient { remaining } if remaining <= 0)
    }
}

impl Offer {
    /// May `quantity` units be taken at `now`? Only the check; taking them is the stores' job.
    pub fn check_take(&self, quantity: i32, now: DateTime<Utc>) -> Result<(), StockRefusal> {
        let quantity = i64::from(quantity);
        if now < self.release_at {
            Err(StockRefusal::NotOnSale)
        } else if quantity > self.max_per_buyer {
            Err(StockRefusal::OverLimit {
                max_per_buyer: self.max_per_buyer,
            })
        } else if self.remaining < quantity {
            Err(StockRefusal::Insufficient {
                remaining: self.remaining,
            })
        } else {
            Ok(())
        }
    }
}

/// The rule's table of cases, for the tests of the rule and of the script that repeats it.
#[cfg(any(test, feature = "testing"))]
pub mod cases {
    use chrono::{DateTime, Utc};

    use super::{Offer, StockRefusal};

    /// One case of the rule, as a table both the Rust rule and the Redis script are tested on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TakeCase {
        pub remaining: i64,
        /// Whether the release time has passed.
        pub released: bool,
        pub max_per_buyer: i64,
        pub quantity: i32,
        pub expected: Result<(), StockRefusal>,
    }

    const fn case(
        remaining: i64,
        released: bool,
        max_per_buyer: i64,
        quantity: i32,
        expected: Result<(), StockRefusal>,
    ) -> TakeCase {
        TakeCase {
            remaining,
            released,
            max_per_buyer,
            quantity,
            expected,
        }
    }

    /// The rule's cases: each refusal, their precedence, and the edges of each bound.
    pub const TAKE_CASES: [TakeCase; 10] = [
        case(5, true, 2, 1, Ok(())),
        case(2, true, 2, 2, Ok(())),
        case(5, false, 2, 1, Err(StockRefusal::NotOnSale)),
        case(0, false, 1, 3, Err(StockRefusal::NotOnSale)),
        case(
            5,
            true,
            2,
            3,
            Err(StockRefusal::OverLimit { max_per_buyer: 2 }),
        ),
        case(
            0,
            true,
            1,
            2,
            Err(StockRefusal::OverLimit { max_per_buyer: 1 }),
        ),
        case(
            1,
            true,
            2,
            2,
            Err(StockRefusal::Insufficient { remaining: 1 }),
        ),
        case(
            0,
            true,
            2,
            1,
            Err(StockRefusal::Insufficient { remaining: 0 }),
        ),
        case(
            0,
            true,
            1,
            1,
            Err(StockRefusal::Insufficient { remaining: 0 }),
        ),
        case(1, true, 1, 1, Ok(())),
    ];

    impl TakeCase {
        /// The case's offer, released a minute before or after `now`.
        pub fn offer(&self, now: DateTime<Utc>) -> Offer {
            let minute = chrono::Duration::minutes(1);
            Offer {
                remaining: self.remaining,
                release_at: if self.released {
                    now - minute
                } else {
                    now + minute
                },
                max_per_buyer: self.max_per_buyer,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cases::TAKE_CASES, *};

    #[test]
    fn the_rule_decides_every_case_of_the_table() {
        let now = Utc::now();
        for case in TAKE_CASES {
            assert_eq!(
                case.offer(now).check_take(case.quantity, now),
                case.expected,
                "{case:?}"
            );
        }
    }

    #[test]
    fn the_release_time_itself_is_on_sale() {
        let now = Utc::now();
        let offer = Offer {
            remaining: 1,
            release_at: now,
            max_per_buyer: 1,
        };
        assert_eq!(offer.check_take(1, now), Ok(()));
    }
}
