//! Settlement rules: which instants belong to a settlement day, how a day splits into partitions,
//! the commission arithmetic, the message that carries one partition to a worker, and who may
//! take a day ([`lock`]).
//!
//! Days are Asia/Seoul calendar days; `confirmed_at` is stored in UTC, so a day is the half-open
//! UTC range `[Seoul midnight, next Seoul midnight)`. Every confirmed order falls in exactly one
//! day, and in exactly one partition of it, however late it was confirmed.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::{Asia::Seoul, Tz};
use serde::{Deserialize, Serialize};

use crate::domain::{FieldError, dates};

pub mod lock;
pub use lock::{DayLock, LockDecision, Trigger, decide};

/// The timezone whose calendar days are settled.
pub const SETTLEMENT_TZ: Tz = Seoul;
/// Basis points in 100 %.
pub const BPS_DENOMINATOR: i64 = 10_000;
/// A day split into more pieces than this gains nothing and floods the queue.
pub const MAX_PARTITIONS: u32 = 1_000;

/// The UTC instant at which `date` starts in Asia/Seoul.
pub fn day_start(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Seoul has had no DST since 1988, so local midnight always exists exactly once; `earliest`
    // still gives a defined answer for a zone where it would not.
    SETTLEMENT_TZ
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |local| local.with_timezone(&Utc))
}

/// `[start, end)` of `date` in UTC.
pub fn day_range(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (day_start(date), day_start(next))
}

/// The Asia/Seoul date of an instant: the day an order confirmed then is settled on.
pub fn settlement_date_of(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&SETTLEMENT_TZ).date_naive()
}

/// The date a run settles when none is given: yesterday in Asia/Seoul.
pub fn default_date(now: DateTime<Utc>) -> NaiveDate {
    let today = settlement_date_of(now);
    today.pred_opt().unwrap_or(today)
}

/// Whether `date` has ended in Asia/Seoul at `now`: its next midnight has passed, so no order
/// can be confirmed on it any more.
pub fn has_ended(date: NaiveDate, now: DateTime<Utc>) -> bool {
    date < settlement_date_of(now)
}

/// The date an admin asked to settle, if it may be settled at `now`: a day MySQL can hold
/// whole (its first and last instants too), which has ended in Asia/Seoul. Settling a day before
/// it ends would mark it COMPLETED with the orders confirmed so far, and the nightly run leaves
/// a COMPLETED day alone: the rest would never be paid out.
pub fn check_run_date(date: NaiveDate, now: DateTime<Utc>) -> Result<NaiveDate, FieldError> {
    let date = dates::check_date("date", date)?;
    let (start, end) = day_range(date);
    if !(dates::is_storable_instant(start) && dates::is_storable_instant(end)) {
        return Err(FieldError::new(
            "date",
            "must be a day from 1000-01-02 on (whose hours MySQL can hold)",
        ));
    }
    if !has_ended(date, now) {
        return Err(FieldError::new(
            "date",
            format!(
                "must be a day that has ended in Asia/Seoul ({} or earlier)",
                default_date(now)
            ),
        ));
    }
    Ok(date)
}

/// Splits `date` into `partitions` contiguous, non-overlapping `[start, end)` UTC ranges of
/// (nearly) equal length that together cover the day exactly.
pub fn partition_ranges(date: NaiveDate, partitions: u32) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let (start, end) = day_range(date);
    let partitions = i64::from(partitions.clamp(1, MAX_PARTITIONS));
    let total_micros = (end - start).num_microseconds().unwrap_or(0);
    let boundary = |index: i64| start + Duration::microseconds(total_micros * index / partitions);
    (0..partitions)
        .map(|index| (boundary(index), boundary(index + 1)))
        .collect()
}

/// One partition of one run, as it travels through SQS to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTask {
    pub run_id: String,
    pub date: NaiveDate,
    /// 0-based.
    pub partition: u32,
    pub partitions: u32,
    /// Inclusive.
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
}

/// Every partition task of a run.
pub fn partition_tasks(run_id: &str, date: NaiveDate, partitions: u32) -> Vec<PartitionTask> {
    let ranges = partition_ranges(date, partitions);
    let count = u32::try_from(ranges.len()).unwrap_or(partitions);
    ranges
        .into_iter()
        .zip(0..)
        .map(|((from, to), partition)| PartitionTask {
            run_id: run_id.to_owned(),
            date,
            partition,
            partitions: count,
            from,
            to,
        })
        .collect()
}

/// Where a run is; the strings are what MySQL, DynamoDB and the API say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "RUNNING" => Some(Self::Running),
            "COMPLETED" => Some(Self::Completed),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// For rows that store the status as text.
impl TryFrom<String> for RunStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text).ok_or_else(|| format!("unknown run status {text:?}"))
    }
}

/// A partner's commission terms: a rate on the day's gross plus a fee per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionPolicy {
    /// 0..=10000 (100 %).
    pub rate_bps: i64,
    /// KRW per order, ≥ 0.
    pub fixed_fee: i64,
}

impl CommissionPolicy {
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(0..=BPS_DENOMINATOR).contains(&self.rate_bps) {
            errors.push(FieldError::new(
                "rate_bps",
                "must be 0 to 10000 basis points",
            ));
        }
        if self.fixed_fee < 0 {
            errors.push(FieldError::new("fixed_fee", "must not be negative"));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// One partner's money for one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout {
    pub order_count: i64,
    pub gross_amount: i64,
    pub commission: i64,
    pub payout: i64,
}

/// commission = floor(gross × rate_bps / 10000) + fixed_fee × order_count; payout = gross − commission.
///
/// The product is taken in 128 bits, so no realistic day overflows; a payout may be negative
/// when fixed fees exceed the gross (the partner then owes the platform), which the books record
/// as it is rather than clamping it away.
pub fn settle(order_count: i64, gross_amount: i64, policy: CommissionPolicy) -> Payout {
    let rate_part = (i128::from(gross_amount) * i128::from(policy.rate_bps))
        .div_euclid(i128::from(BPS_DENOMINATOR));
    let commission = rate_part + i128::from(policy.fixed_fee) * i128::from(order_count);
    let commission = i64::try_from(commission).unwrap_or(i64::MAX);
    Payout {
        order_count,
        gross_amount,
        commission,
        payout: gross_amount - commission,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_day_is_seoul_midnight_to_midnight_in_utc() {
        let (start, end) = day_range(date("2026-03-15"));
        assert_eq!(start, utc("2026-03-14T15:00:00Z"));
        assert_eq!(end, utc("2026-03-15T15:00:00Z"));
    }

    #[test]
    fn instants_belong_to_their_seoul_date() {
        assert_eq!(
            settlement_date_of(utc("2026-03-14T14:59:59.999999Z")),
            date("2026-03-14")
        );
        assert_eq!(
            settlement_date_of(utc("2026-03-14T15:00:00Z")),
            date("2026-03-15")
        );
    }

    #[test]
    fn the_default_date_is_yesterday_in_seoul() {
        // 04:00 in Seoul on the 16th is 19:00 UTC on the 15th.
        assert_eq!(
            default_date(utc("2026-03-15T19:00:00Z")),
            date("2026-03-15")
        );
        // 08:00 in Seoul on the 16th (23:00 UTC on the 15th): still the 15th.
        assert_eq!(
            default_date(utc("2026-03-15T23:00:00Z")),
            date("2026-03-15")
        );
        // 23:00 in Seoul on the 15th: the 14th.
        assert_eq!(
            default_date(utc("2026-03-15T14:00:00Z")),
            date("2026-03-14")
        );
    }

    #[test]
    fn only_a_day_that_has_ended_in_seoul_may_be_run() {
        // 00:30 on the 16th in Seoul: the 15th has just ended, the 16th has not.
        let now = utc("2026-03-15T15:30:00Z");
        assert!(has_ended(date("2026-03-15"), now));
        assert!(!has_ended(date("2026-03-16"), now));
        assert_eq!(
            check_run_date(date("2026-03-15"), now),
            Ok(date("2026-03-15"))
        );
        assert_eq!(
            check_run_date(date("1000-01-02"), now),
            Ok(date("1000-01-02"))
        );
        // 23:59:59 on the 15th in Seoul: the 15th has not ended.
        assert!(check_run_date(date("2026-03-15"), utc("2026-03-15T14:59:59Z")).is_err());
        for refused in [
            "2026-03-16",
            "2026-03-17",
            "9999-12-31",
            "1000-01-01",
            "0001-01-01",
        ] {
            let error = check_run_date(date(refused), now).unwrap_err();
            assert_eq!(error.field, "date", "{refused}");
        }
        let error = check_run_date(date("2026-03-16"), now).unwrap_err();
        assert!(
            error.message.contains("2026-03-15 or earlier"),
            "{}",
            error.message
        );
    }

    #[test]
    fn partitions_cover_the_day_exactly_without_overlap() {
        for partitions in [1, 2, 3, 7, 8, 32, 1000] {
            let ranges = partition_ranges(date("2026-01-01"), partitions);
            let (start, end) = day_range(date("2026-01-01"));
            assert_eq!(ranges.len(), partitions as usize);
            assert_eq!(ranges[0].0, start);
            assert_eq!(ranges.last().unwrap().1, end);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "contiguous");
                assert!(pair[0].0 < pair[0].1, "non-empty");
            }
        }
    }

    #[test]
    fn partition_counts_are_clamped() {
        assert_eq!(partition_ranges(date("2026-01-01"), 0).len(), 1);
        assert_eq!(
            partition_ranges(date("2026-01-01"), 5000).len(),
            MAX_PARTITIONS as usize
        );
    }

    #[test]
    fn tasks_number_their_partitions() {
        let tasks = partition_tasks("run-1", date("2026-01-01"), 4);
        assert_eq!(
            tasks.iter().map(|t| t.partition).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(
            tasks
                .iter()
                .all(|t| t.partitions == 4 && t.run_id == "run-1")
        );
        let json = serde_json::to_string(&tasks[1]).unwrap();
        assert_eq!(
            serde_json::from_str::<PartitionTask>(&json).unwrap(),
            tasks[1]
        );
    }

    #[test]
    fn commission_floors_the_rate_and_adds_fixed_fees() {
        let policy = CommissionPolicy {
            rate_bps: 1_050,
            fixed_fee: 300,
        };
        // 10.5 % of 12,345 = 1,296.225 → 1,296; plus 3 × 300.
        let payout = settle(3, 12_345, policy);
        assert_eq!(payout.commission, 1_296 + 900);
        assert_eq!(payout.payout, 12_345 - 2_196);
        assert_eq!(payout.payout, payout.gross_amount - payout.commission);
    }

    #[test]
    fn commission_is_exact_for_large_days() {
        let policy = CommissionPolicy {
            rate_bps: 9_999,
            fixed_fee: 0,
        };
        let gross = 9_000_000_000_000_000;
        assert_eq!(settle(1, gross, policy).commission, 8_999_100_000_000_000);
    }

    #[test]
    fn policies_are_validated() {
        assert!(
            CommissionPolicy {
                rate_bps: 10_000,
                fixed_fee: 0
            }
            .validate()
            .is_ok()
        );
        let errors = CommissionPolicy {
            rate_bps: 10_001,
            fixed_fee: -1,
        }
        .validate()
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rate_bps", "fixed_fee"]);
    }

    #[test]
    fn run_statuses_round_trip() {
        for status in [RunStatus::Running, RunStatus::Completed, RunStatus::Failed] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RunStatus::parse("DONE"), None);
    }
}
