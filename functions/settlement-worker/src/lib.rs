//! The `settlement-worker` function: settles the partitions a started run enqueued
//! ([`shared::services::settlement_run`]).
//!
//! For each SQS message (one partition: a time range of one day of one run):
//!
//! 1. skip it if its run is no longer RUNNING (finished, failed, or superseded after its lease
//!    expired): a late or duplicate message changes nothing;
//! 2. aggregate the range's CONFIRMED orders per partner through the covering index;
//! 3. replace the partition's partials in MySQL (`settlement_partials`, keyed by run, partition
//!    and partner, so doing it twice leaves one copy);
//! 4. add the partition to the run's `done` *set* in DynamoDB (a set counts each partition once)
//!    and renew the day's lease;
//! 5. if that made every partition done, finalize: apply each partner's commission policy in
//!    force on the day, replace the day's settlements in one transaction, and compare their
//!    totals with a direct query of the day's orders before committing. Equal: COMPLETED;
//!    different: rolled back and FAILED with both sides in the reason. The COMPLETED mark is a
//!    guarded update in that same transaction (`... WHERE id = ? AND status = 'RUNNING'`): a
//!    run taken over after its last check (the takeover marks it FAILED in MySQL before the new
//!    run starts) changes no row, and everything is rolled back.
//!
//! A crash between any two steps is repaired by redelivery: steps 2–4 are idempotent, and a
//! redelivered message of a run whose partitions are all done (but which is not finished)
//! finalizes it. Messages that fail are reported in `batchItemFailures`, so only they come back;
//! after three receives SQS moves them to the dead-letter queue.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::Utc;
use futures::future::join_all;
use shared::{
    Platform,
    adapters::{
        aws,
        dynamodb::{RunState, RunStateError, SettlementRunState},
        settlements::{self, SettlementRow},
    },
    config::SettlementConfig,
    domain::settlement::{CommissionPolicy, PartitionTask, RunStatus, settle},
};
use sqlx::MySqlPool;

/// Duplicates of one message handled at the same moment write the same rows and may deadlock;
/// the loser retries here, a little later, instead of waiting for SQS to redeliver.
const LOCK_CONFLICT_ATTEMPTS: u32 = 4;
const LOCK_CONFLICT_BACKOFF: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct Deps {
    db: MySqlPool,
    runs: SettlementRunState,
    settings: Arc<SettlementConfig>,
}

impl Deps {
    pub fn new(platform: &Platform, sdk: &SdkConfig) -> Self {
        let config = &platform.config;
        Self {
            db: platform.db.clone(),
            runs: SettlementRunState::new(aws::dynamodb(sdk), &config.aws.settlement_runs_table),
            settings: Arc::new(config.settlement.clone()),
        }
    }

    fn default_policy(&self) -> CommissionPolicy {
        CommissionPolicy {
            rate_bps: self.settings.default_rate_bps,
            fixed_fee: self.settings.default_fixed_fee,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("message body is not a partition task: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("run {0} is unknown to the run state table")]
    UnknownRun(String),
    #[error(transparent)]
    RunState(#[from] RunStateError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What handling one partition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The run was not RUNNING any more; nothing was touched.
    Skipped(RunStatus),
    /// Counted; `done` of the run's partitions are finished.
    Counted { done: u32, partitions: u32 },
    /// This partition was the last; the run ended with this status.
    Finalized(RunStatus),
}

/// The SQS handler: every record of the batch concurrently; the failed ones are reported so that
/// only they are redelivered.
pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.iter().map(|record| async move {
        let result = process(deps, record).await;
        (record, result)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in outcomes {
        if let Err(err) = result {
            let id = record.message_id.clone().unwrap_or_default();
            tracing::error!(message_id = id, error = %err, "partition failed; it will be redelivered");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn process(deps: &Deps, record: &SqsMessage) -> Result<Progress, WorkerError> {
    let task: PartitionTask = serde_json::from_str(record.body.as_deref().unwrap_or_default())?;
    settle_partition(deps, &task).await
}

/// Steps 1–5 of the crate documentation for one partition.
///
/// The run's status is read while the range is aggregated (both are reads; a stale message
/// only wastes its read), and the done-mark and the lease renewal go out together, so a
/// partition costs one MySQL read, one MySQL transaction and two DynamoDB round trips in a row.
pub async fn settle_partition(deps: &Deps, task: &PartitionTask) -> Result<Progress, WorkerError> {
    let started = Instant::now();
    let (run, totals) = tokio::join!(
        deps.runs.run(&task.run_id),
        settlements::aggregate_range(&deps.db, task.from, task.to)
    );
    let run = run?.ok_or_else(|| WorkerError::UnknownRun(task.run_id.clone()))?;
    if run.status != RunStatus::Running {
        return Ok(Progress::Skipped(run.status));
    }
    let totals = totals?;
    let aggregated = Instant::now();
    retry_lock_conflicts(|| async {
        settlements::replace_partials(&deps.db, &task.run_id, task.partition, &totals).await
    })
    .await?;
    let upserted = Instant::now();
    let lease = i64::try_from(deps.settings.lease.as_secs()).unwrap_or(i64::MAX);
    let (run, ()) = tokio::try_join!(
        deps.runs.mark_done(&task.run_id, task.partition),
        deps.runs.renew(task.date, &task.run_id, Utc::now(), lease),
    )?;
    settlements::set_partitions_done(&deps.db, &task.run_id, run.done).await?;
    tracing::info!(
        run_id = task.run_id,
        partition = task.partition,
        partners = totals.len(),
        aggregate_ms = millis(aggregated - started),
        partials_ms = millis(upserted - aggregated),
        marks_ms = millis(upserted.elapsed()),
        done = run.done,
        "partition counted"
    );
    if run.all_done() && run.status == RunStatus::Running {
        let status = retry_lock_conflicts(|| async {
            match finalize(deps, &run).await {
                Err(WorkerError::Database(err)) => Err(err),
                other => Ok(other),
            }
        })
        .await??;
        return Ok(Progress::Finalized(status));
    }
    Ok(Progress::Counted {
        done: run.done,
        partitions: run.partitions,
    })
}

/// A duration in milliseconds, for the step timings in the logs.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

async fn retry_lock_conflicts<T, Work, Attempt>(mut work: Work) -> Result<T, sqlx::Error>
where
    Work: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(err) if settlements::is_lock_conflict(&err) && attempt < LOCK_CONFLICT_ATTEMPTS => {
                tracing::info!(attempt, error = %err, "lock conflict; retrying");
                tokio::time::sleep(LOCK_CONFLICT_BACKOFF * attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Turns a run's partials into the day's settlements, checks them against the orders, and ends
/// the run. Safe to repeat: it replaces the day's rows and writes the same end.
///
/// Two steps: [`prepare_finalize`] writes the settlements in a transaction it leaves open and
/// checks that the run still holds the day; [`commit_finalize`] compares and commits.
pub async fn finalize(deps: &Deps, run: &RunState) -> Result<RunStatus, WorkerError> {
    match prepare_finalize(deps, run).await? {
        Some(prepared) => commit_finalize(deps, run, prepared).await,
        None => Ok(RunStatus::Failed),
    }
}

/// The day's settlements of a run, written in a transaction not yet committed, and what they
/// are compared with.
#[derive(Debug)]
pub struct PreparedFinal {
    tx: sqlx::Transaction<'static, sqlx::MySql>,
    partners: usize,
    settled: settlements::DayTotals,
    direct: settlements::DayTotals,
    started: Instant,
    write_time: Duration,
    check_time: Duration,
}

/// The first step of [`finalize`]: the settlements written (uncommitted) and the direct totals
/// of the day's orders; `None` (everything rolled back) if the run was taken over meanwhile.
///
/// The direct query of the day's orders runs on its own connections while the settlements are
/// written in the transaction: the two sides are independent reads, and both are complete
/// before they are compared and before anything commits.
pub async fn prepare_finalize(
    deps: &Deps,
    run: &RunState,
) -> Result<Option<PreparedFinal>, WorkerError> {
    let started = Instant::now();
    let direct = async {
        let result = settlements::day_totals(&deps.db, run.date).await;
        (result, started.elapsed())
    };
    let written = async {
        let mut tx = settlements::begin_read_committed(&deps.db).await?;
        let totals = settlements::run_totals(&mut tx, &run.run_id).await?;
        let policies = settlements::policies_in_force(&mut tx, run.date).await?;
        let rows: Vec<SettlementRow> = totals
            .iter()
            .map(|total| {
                let policy = policies
                    .get(&total.partner_id)
                    .copied()
                    .unwrap_or_else(|| deps.default_policy());
                let payout = settle(total.order_count, total.gross_amount, policy);
                SettlementRow::new(total.partner_id, run.date, &run.run_id, payout)
            })
            .collect();
        settlements::replace_settlements(&mut tx, run.date, &rows).await?;
        let settled = settlements::settled_totals(&mut tx, run.date).await?;
        Ok::<_, sqlx::Error>((tx, rows.len(), settled, started.elapsed()))
    };
    let ((direct, check_time), written) = tokio::join!(direct, written);
    let direct = direct?;
    let (tx, partners, settled, write_time) = written?;

    // Taken over while we worked: the newer run owns the day's results.
    let current = deps.runs.run(&run.run_id).await?;
    if current.is_none_or(|current| current.status != RunStatus::Running) {
        tx.rollback().await?;
        return Ok(None);
    }
    Ok(Some(PreparedFinal {
        tx,
        partners,
        settled,
        direct,
        started,
        write_time,
        check_time,
    }))
}

/// The second step of [`finalize`]: equal totals commit the settlements and COMPLETED; different
/// ones roll back and FAIL the run.
pub async fn commit_finalize(
    deps: &Deps,
    run: &RunState,
    prepared: PreparedFinal,
) -> Result<RunStatus, WorkerError> {
    let PreparedFinal {
        mut tx,
        partners,
        settled,
        direct,
        started,
        write_time,
        check_time,
    } = prepared;
    if settled != direct {
        tx.rollback().await?;
        let reason = format!(
            "invariant violated: settlements count {} orders for {} KRW, the day's confirmed orders are {} for {} KRW",
            settled.order_count, settled.gross_amount, direct.order_count, direct.gross_amount
        );
        tracing::error!(run_id = run.run_id, date = %run.date, reason, "settlement run failed");
        let mut conn = deps.db.acquire().await?;
        settlements::finish_run(&mut conn, &run.run_id, RunStatus::Failed, Some(&reason)).await?;
        deps.runs
            .finish(run.date, &run.run_id, RunStatus::Failed, Some(&reason))
            .await?;
        return Ok(RunStatus::Failed);
    }
    let compared = Instant::now();
    // The run may have been taken over since `prepare_finalize` looked: only a run still
    // RUNNING in MySQL, under the row lock this update takes, commits its settlements.
    if !settlements::finish_run(&mut tx, &run.run_id, RunStatus::Completed, None).await? {
        tx.rollback().await?;
        return ended_elsewhere(deps, run).await;
    }
    tx.commit().await?;
    let committed = Instant::now();
    deps.runs
        .finish(run.date, &run.run_id, RunStatus::Completed, None)
        .await?;
    tracing::info!(
        run_id = run.run_id,
        date = %run.date,
        partners,
        orders = settled.order_count,
        gross = settled.gross_amount,
        write_ms = millis(write_time),
        check_ms = millis(check_time),
        run_state_ms = millis((compared - started).saturating_sub(check_time.max(write_time))),
        commit_ms = millis(committed - compared),
        finish_ms = millis(committed.elapsed()),
        "settlement run completed"
    );
    Ok(RunStatus::Completed)
}

/// A finalizer found its run ended when it came to commit, and rolled back. Either a takeover
/// FAILED it (the newer run owns the day; nothing of ours was written), or an earlier finalizer
/// of this same run committed the same rows and then stopped before recording the end in
/// DynamoDB (a redelivered last partition), which is recorded now.
async fn ended_elsewhere(deps: &Deps, run: &RunState) -> Result<RunStatus, WorkerError> {
    let ended = settlements::find_run(&deps.db, &run.run_id)
        .await?
        .map(|row| row.status);
    if ended == Some(RunStatus::Completed) {
        deps.runs
            .finish(run.date, &run.run_id, RunStatus::Completed, None)
            .await?;
        return Ok(RunStatus::Completed);
    }
    tracing::warn!(
        run_id = run.run_id,
        date = %run.date,
        "the run was taken over before its settlements were committed; they were rolled back"
    );
    Ok(RunStatus::Failed)
}

#[cfg(test)]
mod tests;
