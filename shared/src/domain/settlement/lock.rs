//! The day lock's rule: whether a trigger may start a run for a day, given who holds it.
//!
//! A running run keeps its day while its lease lasts (workers renew it as partitions finish, so
//! only a run that stopped making progress loses it); a completed day is re-run only by an
//! admin, since EventBridge may deliver a nightly fire twice; a failed day may always be retried.
//! The DynamoDB adapter ([`crate::adapters::dynamodb`]) reads the lock, asks [`decide`], and
//! writes the outcome conditionally.

use chrono::{DateTime, Utc};

use super::RunStatus;

/// Who asked for a run: the rule treats a settled day differently for each (see above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Admin,
}

/// The day lock as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayLock {
    pub run_id: String,
    pub status: RunStatus,
    pub lease_until: i64,
}

/// What a trigger may do with a day, given its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    Take,
    /// A live run holds the day.
    Busy {
        run_id: String,
    },
    /// The schedule found the day already settled.
    AlreadySettled {
        run_id: String,
    },
}

/// The rule of the day lock, as the module documentation states it.
pub fn decide(lock: Option<&DayLock>, trigger: Trigger, now: DateTime<Utc>) -> LockDecision {
    match lock {
        None => LockDecision::Take,
        Some(lock) => match lock.status {
            RunStatus::Running if lock.lease_until >= now.timestamp() => LockDecision::Busy {
                run_id: lock.run_id.clone(),
            },
            RunStatus::Completed if trigger == Trigger::Schedule => LockDecision::AlreadySettled {
                run_id: lock.run_id.clone(),
            },
            _ => LockDecision::Take,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn lock(status: RunStatus, lease_until: i64) -> DayLock {
        DayLock {
            run_id: "old".into(),
            status,
            lease_until,
        }
    }

    #[test]
    fn a_free_day_is_taken() {
        assert_eq!(decide(None, Trigger::Schedule, at(100)), LockDecision::Take);
    }

    #[test]
    fn a_live_run_keeps_its_day_until_its_lease_ends() {
        let running = lock(RunStatus::Running, 200);
        let busy = LockDecision::Busy {
            run_id: "old".into(),
        };
        assert_eq!(decide(Some(&running), Trigger::Admin, at(200)), busy);
        assert_eq!(decide(Some(&running), Trigger::Schedule, at(150)), busy);
        assert_eq!(
            decide(Some(&running), Trigger::Admin, at(201)),
            LockDecision::Take
        );
    }

    #[test]
    fn only_admins_re_run_a_settled_day() {
        let completed = lock(RunStatus::Completed, 0);
        assert_eq!(
            decide(Some(&completed), Trigger::Schedule, at(100)),
            LockDecision::AlreadySettled {
                run_id: "old".into()
            }
        );
        assert_eq!(
            decide(Some(&completed), Trigger::Admin, at(100)),
            LockDecision::Take
        );
    }

    #[test]
    fn a_failed_day_may_be_retried_by_anyone() {
        let failed = lock(RunStatus::Failed, 10_000);
        assert_eq!(
            decide(Some(&failed), Trigger::Schedule, at(100)),
            LockDecision::Take
        );
    }
}
