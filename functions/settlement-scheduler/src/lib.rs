//! The `settlement-scheduler` function: starts the settlement of one day.
//!
//! EventBridge fires it at 04:00 Asia/Seoul to settle yesterday. What starting a run does (the
//! day's lock, the run's record, the partitions' messages) is
//! [`shared::services::settlement_run`], which `POST /admin/settlements/runs` uses too.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{NaiveDate, Utc};
use serde::Serialize;
use shared::{
    domain::settlement::{Trigger, default_date},
    services::settlement_run::{RunStarter, StartError, StartOutcome, start_run},
};

/// The scheduled entry needs nothing but the run starter.
pub type Deps = RunStarter;

/// What a scheduled fire reports (the function's output, visible in its logs and `fire NAME`).
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FireReport {
    Started {
        run_id: String,
        date: NaiveDate,
        partitions: u32,
    },
    Busy {
        date: NaiveDate,
        run_id: String,
    },
    AlreadySettled {
        date: NaiveDate,
        run_id: String,
    },
}

/// The EventBridge handler: settles yesterday (Asia/Seoul) relative to the scheduled time.
pub async fn handle(deps: &Deps, event: EventBridgeEvent) -> Result<FireReport, StartError> {
    let now = Utc::now();
    let date = default_date(event.time.unwrap_or(now));
    Ok(match start_run(deps, date, Trigger::Schedule, now).await? {
        StartOutcome::Started(run) => FireReport::Started {
            run_id: run.run_id,
            date: run.date,
            partitions: run.partitions,
        },
        StartOutcome::Busy { run_id } => FireReport::Busy { date, run_id },
        StartOutcome::AlreadySettled { run_id } => FireReport::AlreadySettled { date, run_id },
    })
}

#[cfg(test)]
mod tests;
