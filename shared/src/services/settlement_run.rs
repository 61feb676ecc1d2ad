//! Starting the settlement of one day: the use case behind the nightly schedule
//! (`settlement-scheduler`) and `POST /admin/settlements/runs` (`admin`). A run:
//!
//! 1. takes the day's lock ([`SettlementRunState::acquire`], by the rule of
//!    [`crate::domain::settlement::lock`]): a second trigger, even at the same instant, finds the
//!    day taken and starts nothing;
//! 2. records the run in MySQL (`settlement_runs`, the history the admin API reads);
//! 3. splits the day into `SETTLEMENT_PARTITIONS` time ranges and enqueues one SQS message per
//!    range with `SendMessageBatch`; `settlement-worker` takes it from there.
//!
//! If the run cannot be recorded or enqueued it is marked FAILED at once, which frees the day;
//! its `error` says only that it failed to start ([`start_failure`]), the cause is logged.

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::MySqlPool;

use crate::{
    Platform,
    adapters::{
        aws,
        dynamodb::{Acquired, RunStateError, SettlementRunState},
        settlements,
        sqs::{self, SendError},
    },
    config::SettlementConfig,
    domain::settlement::{RunStatus, Trigger, partition_tasks},
};

/// What starting a run needs; built once per process.
#[derive(Debug, Clone)]
pub struct RunStarter {
    db: MySqlPool,
    runs: SettlementRunState,
    sqs: aws_sdk_sqs::Client,
    /// `None` when `SETTLEMENT_QUEUE_URL` is unset; starting a run then fails, nothing else does.
    queue_url: Option<String>,
    settings: Arc<SettlementConfig>,
}

impl RunStarter {
    pub fn new(platform: &Platform, sdk: &SdkConfig) -> Self {
        let config = &platform.config;
        Self {
            db: platform.db.clone(),
            runs: SettlementRunState::new(aws::dynamodb(sdk), &config.aws.settlement_runs_table),
            sqs: aws::sqs(sdk),
            queue_url: config.aws.settlement_queue_url.clone(),
            settings: Arc::new(config.settlement.clone()),
        }
    }

    pub fn runs(&self) -> &SettlementRunState {
        &self.runs
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("SETTLEMENT_QUEUE_URL is not set")]
    NoQueue,
    #[error(transparent)]
    RunState(#[from] RunStateError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Enqueue(#[from] SendError),
}

/// A run that was started: what `POST /admin/settlements/runs` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunStarted {
    pub run_id: String,
    pub date: NaiveDate,
    /// How many partitions the day was split into.
    pub partitions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started(RunStarted),
    /// Another run holds the day and is alive.
    Busy {
        run_id: String,
    },
    /// The schedule found the day already settled (admins may re-run it).
    AlreadySettled {
        run_id: String,
    },
}

/// Starts settling `date`, unless a live run holds it (or, for the schedule, it is settled).
pub async fn start_run(
    starter: &RunStarter,
    date: NaiveDate,
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<StartOutcome, StartError> {
    let queue_url = starter.queue_url.as_deref().ok_or(StartError::NoQueue)?;
    let run_id = uuid::Uuid::now_v7().to_string();
    let partitions = starter.settings.partitions;
    let lease = i64::try_from(starter.settings.lease.as_secs()).unwrap_or(i64::MAX);
    let started = std::time::Instant::now();
    let superseded = match starter
        .runs
        .acquire(date, &run_id, partitions, trigger, now, lease)
        .await?
    {
        Acquired::Taken { superseded } => superseded,
        Acquired::AlreadySettled { run_id } => {
            return Ok(StartOutcome::AlreadySettled { run_id });
        }
        Acquired::Busy { run_id } => return Ok(StartOutcome::Busy { run_id }),
    };
    let acquired = started.elapsed();
    let recorded = record_and_enqueue(
        starter,
        queue_url,
        &run_id,
        date,
        partitions,
        superseded.as_deref(),
    )
    .await;
    if let Err(err) = recorded {
        // The detail (driver, SQS or DynamoDB text) goes to the logs only; the run's `error`,
        // which admins read, stays generic and names the run to look for.
        tracing::error!(%date, run_id, error = %err, "could not start the settlement run");
        let reason = start_failure(&run_id);
        if let Err(mark) = starter
            .runs
            .finish(date, &run_id, RunStatus::Failed, Some(&reason))
            .await
        {
            tracing::error!(error = %mark, run_id, "could not mark the run FAILED; its lease will expire");
        }
        if let Ok(mut conn) = starter.db.acquire().await {
            let _ =
                settlements::finish_run(&mut conn, &run_id, RunStatus::Failed, Some(&reason)).await;
        }
        return Err(err);
    }
    tracing::info!(
        %date,
        run_id,
        partitions,
        acquire_ms = acquired.as_secs_f64() * 1_000.0,
        record_enqueue_ms = started.elapsed().saturating_sub(acquired).as_secs_f64() * 1_000.0,
        total_ms = started.elapsed().as_secs_f64() * 1_000.0,
        "settlement run started"
    );
    Ok(StartOutcome::Started(RunStarted {
        run_id,
        date,
        partitions,
    }))
}

/// Marks FAILED in MySQL every run of `date` it still calls RUNNING, with the end DynamoDB
/// recorded for it. The caller holds the day, which no live run gives up, so such a run is dead:
/// one whose start failed after its row was written (the INSERT committed, its answer lost with
/// the connection) and whose FAILED mark was lost too. Without this it would say RUNNING for ever.
async fn end_dead_runs(starter: &RunStarter, date: NaiveDate) -> Result<(), StartError> {
    for dead in settlements::running_runs(&starter.db, date).await? {
        let reason = match starter.runs.run(&dead).await? {
            Some(state) if state.status == RunStatus::Failed => state.error,
            _ => None,
        }
        .unwrap_or_else(|| start_failure(&dead));
        tracing::warn!(%date, run_id = dead, reason, "a dead run was still RUNNING in MySQL; ending it");
        let mut conn = starter.db.acquire().await?;
        settlements::finish_run(&mut conn, &dead, RunStatus::Failed, Some(&reason)).await?;
    }
    Ok(())
}

/// The `error` of a run that could not be started, as admins read it.
pub fn start_failure(run_id: &str) -> String {
    format!("the run failed to start; see the logs for run {run_id}")
}

/// Ends the stalled run we took the day from (if any) in MySQL, then records our run and sends
/// its partitions, in that order: once the stalled run is FAILED there, its finalizer can no
/// longer commit (see `settlement-worker`), and only then does anything of ours start. Any other
/// run of the day MySQL still calls RUNNING is ended there too ([`end_dead_runs`]).
async fn record_and_enqueue(
    starter: &RunStarter,
    queue_url: &str,
    run_id: &str,
    date: NaiveDate,
    partitions: u32,
    superseded: Option<&str>,
) -> Result<(), StartError> {
    if let Some(stalled) = superseded {
        tracing::warn!(%date, stalled, run_id, "took over a settlement run whose lease expired");
        let mut conn = starter.db.acquire().await?;
        let why = format!("lease expired; superseded by run {run_id}");
        if !settlements::finish_run(&mut conn, stalled, RunStatus::Failed, Some(&why)).await? {
            // Its finalizer committed between our takeover and this mark; ours re-settles the day.
            tracing::info!(%date, stalled, run_id, "the stalled run had ended meanwhile");
        }
    }
    end_dead_runs(starter, date).await?;
    settlements::insert_run(&starter.db, run_id, date, partitions).await?;
    let bodies: Vec<String> = partition_tasks(run_id, date, partitions)
        .iter()
        .map(crate::http::json_bytes)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    sqs::send_all(&starter.sqs, queue_url, &bodies).await?;
    Ok(())
}
