//! DynamoDB: the settlement run state (`SETTLEMENT_RUNS_TABLE`, hash key `pk`, TTL `expires_at`).
//!
//! Two kinds of item:
//!
//! - the **day lock** `day#<date>`: the run that owns the date, its status and `lease_until`
//!   (Unix seconds), which workers push forward as partitions finish. Whether a trigger may
//!   take it is the domain's rule ([`crate::domain::settlement::lock`]); it takes it with a
//!   conditional write that names the state it read (or its absence), so of two triggers at the
//!   same instant exactly one wins.
//! - the **run** `run#<run_id>`: its date, partition count, status, and `done`, the *set* of
//!   finished partition numbers. Adding a number to a set twice leaves one copy, so a duplicate
//!   or redelivered partition is counted once however often it is marked.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::{DisplayErrorContext, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update},
};
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::settlement::{DayLock, LockDecision, RunStatus, Trigger, decide};

/// Run state outlives any run by far; the TTL only keeps the table from growing forever.
const KEEP_SECONDS: i64 = 35 * 24 * 60 * 60;

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation}: {message}")]
pub struct RunStateError {
    pub operation: &'static str,
    pub message: String,
}

impl RunStateError {
    fn new(operation: &'static str, err: impl std::error::Error) -> Self {
        Self {
            operation,
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

/// A run as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub run_id: String,
    pub date: NaiveDate,
    pub partitions: u32,
    /// Finished partitions, each once.
    pub done: u32,
    pub status: RunStatus,
    pub error: Option<String>,
}

impl RunState {
    pub fn all_done(&self) -> bool {
        self.done >= self.partitions
    }
}

/// The outcome of trying to take a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The day is ours; `superseded` names the stalled run we took it from.
    Taken { superseded: Option<String> },
    /// A live run holds the day.
    Busy { run_id: String },
    /// The schedule found the day already settled.
    AlreadySettled { run_id: String },
}

#[derive(Debug, Clone)]
pub struct SettlementRunState {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn lock_key(date: NaiveDate) -> String {
    format!("day#{date}")
}

fn run_key(run_id: &str) -> String {
    format!("run#{run_id}")
}

type Item = HashMap<String, AttributeValue>;

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|raw| raw.parse().ok())
}

fn status_of(item: &Item) -> RunStatus {
    text(item, "status")
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Failed)
}

impl SettlementRunState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn lock(&self, date: NaiveDate) -> Result<Option<DayLock>, RunStateError> {
        let item = self.get(lock_key(date)).await?;
        Ok(item.map(|item| DayLock {
            run_id: text(&item, "run_id").unwrap_or_default().to_owned(),
            status: status_of(&item),
            lease_until: number(&item, "lease_until").unwrap_or(0),
        }))
    }

    pub async fn run(&self, run_id: &str) -> Result<Option<RunState>, RunStateError> {
        let item = self.get(run_key(run_id)).await?;
        Ok(item.map(|item| run_state(run_id, &item)))
    }

    async fn get(&self, pk: String) -> Result<Option<Item>, RunStateError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| RunStateError::new("GetItem", err))?;
        Ok(output.item)
    }

    /// Takes `date` for a new run, or says who holds it. One transaction writes the lock (on
    /// condition that it is still exactly as read), the new run, and, when taking over a stalled
    /// run, that run's failure, so no reader sees half of it.
    pub async fn acquire(
        &self,
        date: NaiveDate,
        run_id: &str,
        partitions: u32,
        trigger: Trigger,
        now: DateTime<Utc>,
        lease_seconds: i64,
    ) -> Result<Acquired, RunStateError> {
        let previous = self.lock(date).await?;
        match decide(previous.as_ref(), trigger, now) {
            LockDecision::Take => {}
            LockDecision::Busy { run_id } => return Ok(Acquired::Busy { run_id }),
            LockDecision::AlreadySettled { run_id } => {
                return Ok(Acquired::AlreadySettled { run_id });
            }
        }
        let expires_at = now.timestamp() + KEEP_SECONDS;
        let mut lock = Put::builder()
            .table_name(&self.table)
            .item("pk", s(lock_key(date)))
            .item("run_id", s(run_id))
            .item("status", s(RunStatus::Running.as_str()))
            .item("lease_until", n(now.timestamp() + lease_seconds))
            .item("expires_at", n(expires_at));
        lock = match &previous {
            None => lock.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => lock
                .condition_expression(
                    "run_id = :previous_run AND #status = :previous_status AND lease_until = :previous_lease",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":previous_run", s(&previous.run_id))
                .expression_attribute_values(":previous_status", s(previous.status.as_str()))
                .expression_attribute_values(":previous_lease", n(previous.lease_until)),
        };
        let run = Put::builder()
            .table_name(&self.table)
            .item("pk", s(run_key(run_id)))
            .item("date", s(date.to_string()))
            .item("partitions", n(partitions))
            .item("status", s(RunStatus::Running.as_str()))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk)");
        let mut items = vec![
            TransactWriteItem::builder()
                .put(lock.build().map_err(|err| RunStateError::new("Put", err))?)
                .build(),
            TransactWriteItem::builder()
                .put(run.build().map_err(|err| RunStateError::new("Put", err))?)
                .build(),
        ];
        let superseded = previous
            .filter(|previous| previous.status == RunStatus::Running)
            .map(|previous| previous.run_id);
        if let Some(stalled) = &superseded {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(run_key(stalled)))
                .update_expression("SET #status = :failed, #error = :why")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":failed", s(RunStatus::Failed.as_str()))
                .expression_attribute_values(
                    ":why",
                    s(format!("lease expired; superseded by run {run_id}")),
                )
                .build()
                .map_err(|err| RunStateError::new("Update", err))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match written {
            Ok(_) => Ok(Acquired::Taken { superseded }),
            // Another trigger changed the lock since we read it: it won.
            Err(SdkError::ServiceError(err))
                if matches!(
                    err.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let holder = self.lock(date).await?;
                Ok(Acquired::Busy {
                    run_id: holder.map(|lock| lock.run_id).unwrap_or_default(),
                })
            }
            Err(err) => Err(RunStateError::new("TransactWriteItems", err)),
        }
    }

    /// Marks `partition` of `run_id` finished and returns the run as it now stands. A set holds
    /// each number once, so marking a partition again changes nothing.
    pub async fn mark_done(&self, run_id: &str, partition: u32) -> Result<RunState, RunStateError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_key(run_id)))
            .update_expression("ADD done :partition")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":partition",
                AttributeValue::Ss(vec![partition.to_string()]),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|err| RunStateError::new("UpdateItem", err))?;
        Ok(run_state(run_id, &output.attributes.unwrap_or_default()))
    }

    /// Pushes the day's lease forward while `run_id` still holds it and runs.
    pub async fn renew(
        &self,
        date: NaiveDate,
        run_id: &str,
        now: DateTime<Utc>,
        lease_seconds: i64,
    ) -> Result<(), RunStateError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lock_key(date)))
            .update_expression("SET lease_until = :until")
            .condition_expression("run_id = :run AND #status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":until", n(now.timestamp() + lease_seconds))
            .expression_attribute_values(":run", s(run_id))
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .send()
            .await;
        // Not ours any more (superseded): nothing to renew.
        unless_condition_failed(result)
    }

    /// Records the end of a run, on the run and, if it still holds it, on the day's lock.
    pub async fn finish(
        &self,
        date: NaiveDate,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), RunStateError> {
        let mut run = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(run_key(run_id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()));
        run = match error {
            Some(error) => run
                .update_expression("SET #status = :status, #error = :error")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(error)),
            None => run
                .update_expression("SET #status = :status REMOVE #error")
                .expression_attribute_names("#error", "error"),
        };
        run.send()
            .await
            .map_err(|err| RunStateError::new("UpdateItem", err))?;
        let lock = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lock_key(date)))
            .update_expression("SET #status = :status")
            .condition_expression("run_id = :run")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        // Another run holds the day now: its lock is not ours to change.
        unless_condition_failed(lock)
    }
}

fn run_state(run_id: &str, item: &Item) -> RunState {
    let done = item
        .get("done")
        .and_then(|value| value.as_ss().ok())
        .map_or(0, Vec::len);
    RunState {
        run_id: run_id.to_owned(),
        date: text(item, "date")
            .and_then(|date| date.parse().ok())
            .unwrap_or_default(),
        partitions: number(item, "partitions").unwrap_or(0),
        done: u32::try_from(done).unwrap_or(u32::MAX),
        status: status_of(item),
        error: text(item, "error").map(str::to_owned),
    }
}

/// An update whose condition failed changed nothing, which is all these callers need; any other
/// failure is an error.
fn unless_condition_failed(
    result: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<(), RunStateError> {
    match result {
        Err(SdkError::ServiceError(err)) if err.err().is_conditional_check_failed_exception() => {
            Ok(())
        }
        other => other
            .map(|_| ())
            .map_err(|err| RunStateError::new("UpdateItem", err)),
    }
}
