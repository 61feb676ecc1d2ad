//! The settlement's MySQL side: run history (mirrored from DynamoDB), per-partition partials,
//! the day's settlements, commission policies, and the direct query the invariant compares with.
//!
//! Every read of orders goes through `idx_orders_settlement_covering (status, confirmed_at,
//! partner_id, amount)`: a range on `(status, confirmed_at)` whose rows carry the partner and
//! amount, so the table itself is never touched.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use sqlx::{MySql, MySqlConnection, MySqlPool, QueryBuilder};

use crate::domain::settlement::{CommissionPolicy, Payout, RunStatus, partition_ranges};

/// Rows per multi-row INSERT: 4,000 × 8 columns stays far below MySQL's 65,535 placeholders,
/// and larger statements gain nothing measurable.
pub const INSERT_CHUNK_ROWS: usize = 4_000;
/// Concurrent range queries of the invariant's direct sum of the day.
const CHECK_PARALLELISM: u32 = 4;
/// Partitions write their partials at the same moment, to neighbouring key ranges. Under
/// REPEATABLE READ a DELETE that finds nothing locks the gap it searched, and two such gaps
/// block each other's INSERTs (a deadlock); READ COMMITTED locks only the rows it touches.
const BEGIN_READ_COMMITTED: &str =
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; START TRANSACTION";

/// InnoDB chose this transaction as a deadlock victim (or a lock wait timed out): the same work
/// retried a moment later succeeds.
pub fn is_lock_conflict(err: &sqlx::Error) -> bool {
    /// ER_LOCK_DEADLOCK and ER_LOCK_WAIT_TIMEOUT.
    const LOCK_ERRORS: [u16; 2] = [1213, 1205];
    err.as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|db| LOCK_ERRORS.contains(&db.number()))
}

/// A transaction that locks rows, not gaps: see [`BEGIN_READ_COMMITTED`].
pub async fn begin_read_committed(
    db: &MySqlPool,
) -> Result<sqlx::Transaction<'static, MySql>, sqlx::Error> {
    db.begin_with(BEGIN_READ_COMMITTED).await
}

/// What one partner sold in some time range (a partition, or a whole run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct PartnerTotal {
    pub partner_id: i64,
    pub order_count: i64,
    pub gross_amount: i64,
}

/// One row of `settlements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SettlementRow {
    pub partner_id: i64,
    pub settlement_date: NaiveDate,
    pub order_count: i64,
    pub gross_amount: i64,
    pub commission: i64,
    pub payout: i64,
    pub run_id: String,
}

impl SettlementRow {
    pub fn new(partner_id: i64, date: NaiveDate, run_id: &str, payout: Payout) -> Self {
        Self {
            partner_id,
            settlement_date: date,
            order_count: payout.order_count,
            gross_amount: payout.gross_amount,
            commission: payout.commission,
            payout: payout.payout,
            run_id: run_id.to_owned(),
        }
    }
}

/// One row of `settlement_runs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub settlement_date: NaiveDate,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub partitions: i32,
    pub partitions_done: i32,
    pub error: Option<String>,
}

/// Order count and gross of a day, or of a day's settlements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub order_count: i64,
    pub gross_amount: i64,
}

pub async fn insert_run(
    db: &MySqlPool,
    run_id: &str,
    date: NaiveDate,
    partitions: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settlement_runs (id, settlement_date, status, partitions) VALUES (?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(date)
    .bind(RunStatus::Running.as_str())
    .bind(partitions)
    .execute(db)
    .await?;
    Ok(())
}

/// Records how a run ended, if it is still RUNNING, and says whether it was: a run ends once.
/// A run that was taken over (the run that superseded it marked it FAILED) or that ended
/// already keeps its end.
///
/// In the finalizer's transaction this is the guard that makes a stale finalizer write nothing:
/// the update waits for, and then sees, a takeover's mark, and when it changes no row the
/// finalizer rolls its settlements back.
pub async fn finish_run(
    conn: &mut MySqlConnection,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE settlement_runs SET status = ?, error = ?, finished_at = UTC_TIMESTAMP(6) \
         WHERE id = ? AND status = ?",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(run_id)
    .bind(RunStatus::Running.as_str())
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Mirrors DynamoDB's count of finished partitions; never moves it backwards.
pub async fn set_partitions_done(
    db: &MySqlPool,
    run_id: &str,
    done: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement_runs SET partitions_done = GREATEST(partitions_done, ?) WHERE id = ?",
    )
    .bind(done)
    .bind(run_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The runs of a day that MySQL still calls RUNNING.
pub async fn running_runs(db: &MySqlPool, date: NaiveDate) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM settlement_runs WHERE settlement_date = ? AND status = ?")
        .bind(date)
        .bind(RunStatus::Running.as_str())
        .fetch_all(db)
        .await
}

pub async fn find_run(db: &MySqlPool, run_id: &str) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, settlement_date, status, partitions, partitions_done, error \
         FROM settlement_runs WHERE id = ?",
    )
    .bind(run_id)
    .fetch_optional(db)
    .await
}

/// Per partner, the CONFIRMED orders confirmed in `[from, to)`: one range of the covering index.
pub async fn aggregate_range(
    db: &MySqlPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PartnerTotal>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partner_id, COUNT(*) AS order_count, CAST(SUM(amount) AS SIGNED) AS gross_amount \
         FROM orders FORCE INDEX (idx_orders_settlement_covering) \
         WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ? \
         GROUP BY partner_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// Replaces what partition `partition` of `run_id` counted: a redelivered partition overwrites
/// its own rows (the primary key is `(run_id, partition_no, partner_id)`), never adds to them.
pub async fn replace_partials(
    db: &MySqlPool,
    run_id: &str,
    partition: u32,
    totals: &[PartnerTotal],
) -> Result<(), sqlx::Error> {
    let mut tx = begin_read_committed(db).await?;
    sqlx::query("DELETE FROM settlement_partials WHERE run_id = ? AND partition_no = ?")
        .bind(run_id)
        .bind(partition)
        .execute(&mut *tx)
        .await?;
    for chunk in totals.chunks(INSERT_CHUNK_ROWS) {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO settlement_partials (run_id, partition_no, partner_id, order_count, gross_amount) ",
        );
        insert.push_values(chunk, |mut row, total| {
            row.push_bind(run_id)
                .push_bind(partition)
                .push_bind(total.partner_id)
                .push_bind(total.order_count)
                .push_bind(total.gross_amount);
        });
        // A duplicate message handled at the same moment writes the same rows: last one wins.
        insert.push(
            " ON DUPLICATE KEY UPDATE order_count = VALUES(order_count), gross_amount = VALUES(gross_amount)",
        );
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// The partials of a whole run, summed per partner.
pub async fn run_totals(
    conn: &mut MySqlConnection,
    run_id: &str,
) -> Result<Vec<PartnerTotal>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partner_id, CAST(SUM(order_count) AS SIGNED) AS order_count, \
                CAST(SUM(gross_amount) AS SIGNED) AS gross_amount \
         FROM settlement_partials WHERE run_id = ? GROUP BY partner_id ORDER BY partner_id",
    )
    .bind(run_id)
    .fetch_all(conn)
    .await
}

/// Each partner's policy in force on `date`: its latest `effective_from` on or before it.
pub async fn policies_in_force(
    conn: &mut MySqlConnection,
    date: NaiveDate,
) -> Result<HashMap<i64, CommissionPolicy>, sqlx::Error> {
    let rows: Vec<(i64, i32, i64)> = sqlx::query_as(
        "SELECT p.partner_id, p.rate_bps, p.fixed_fee FROM commission_policies p \
         JOIN (SELECT partner_id, MAX(effective_from) AS effective_from FROM commission_policies \
               WHERE effective_from <= ? GROUP BY partner_id) latest \
           ON latest.partner_id = p.partner_id AND latest.effective_from = p.effective_from",
    )
    .bind(date)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(partner_id, rate_bps, fixed_fee)| {
            (
                partner_id,
                CommissionPolicy {
                    rate_bps: i64::from(rate_bps),
                    fixed_fee,
                },
            )
        })
        .collect())
}

/// Sets the policy a partner has from `effective_from` on (replacing one set for that date).
pub async fn upsert_policy(
    db: &MySqlPool,
    partner_id: i64,
    policy: CommissionPolicy,
    effective_from: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO commission_policies (partner_id, rate_bps, fixed_fee, effective_from) \
         VALUES (?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE rate_bps = VALUES(rate_bps), fixed_fee = VALUES(fixed_fee)",
    )
    .bind(partner_id)
    .bind(policy.rate_bps)
    .bind(policy.fixed_fee)
    .bind(effective_from)
    .execute(db)
    .await?;
    Ok(())
}

/// Replaces the settlements of `date` with `rows` (re-running a day replaces its results).
pub async fn replace_settlements(
    conn: &mut MySqlConnection,
    date: NaiveDate,
    rows: &[SettlementRow],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM settlements WHERE settlement_date = ?")
        .bind(date)
        .execute(&mut *conn)
        .await?;
    insert_settlements(conn, rows).await
}

/// Writes settlement rows with multi-row INSERTs of [`INSERT_CHUNK_ROWS`] (a row that is
/// already there is overwritten).
pub async fn insert_settlements(
    conn: &mut MySqlConnection,
    rows: &[SettlementRow],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK_ROWS) {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO settlements \
             (partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id) ",
        );
        insert.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.partner_id)
                .push_bind(row.settlement_date)
                .push_bind(row.order_count)
                .push_bind(row.gross_amount)
                .push_bind(row.commission)
                .push_bind(row.payout)
                .push_bind(&row.run_id);
        });
        // Two finalizers of one run (a redelivered last partition) write the same rows.
        insert.push(
            " ON DUPLICATE KEY UPDATE order_count = VALUES(order_count), \
             gross_amount = VALUES(gross_amount), commission = VALUES(commission), \
             payout = VALUES(payout), run_id = VALUES(run_id)",
        );
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The totals of the settlements written for `date`.
pub async fn settled_totals(
    conn: &mut MySqlConnection,
    date: NaiveDate,
) -> Result<DayTotals, sqlx::Error> {
    let (order_count, gross_amount): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(order_count), 0) AS SIGNED), CAST(COALESCE(SUM(gross_amount), 0) AS SIGNED) \
         FROM settlements WHERE settlement_date = ?",
    )
    .bind(date)
    .fetch_one(conn)
    .await?;
    Ok(DayTotals {
        order_count,
        gross_amount,
    })
}

/// The invariant's other side: the day's CONFIRMED orders counted and summed straight from the
/// index, in a few concurrent ranges (independent of partitions, partials and run state).
pub async fn day_totals(db: &MySqlPool, date: NaiveDate) -> Result<DayTotals, sqlx::Error> {
    let parts: Vec<(i64, i64)> = stream::iter(partition_ranges(date, CHECK_PARALLELISM))
        .map(|(from, to)| async move {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS SIGNED) \
                 FROM orders FORCE INDEX (idx_orders_settlement_covering) \
                 WHERE status = 'CONFIRMED' AND confirmed_at >= ? AND confirmed_at < ?",
            )
            .bind(from)
            .bind(to)
            .fetch_one(db)
            .await
        })
        .buffer_unordered(CHECK_PARALLELISM as usize)
        .try_collect()
        .await?;
    Ok(parts
        .into_iter()
        .fold(DayTotals::default(), |sum, (count, gross)| DayTotals {
            order_count: sum.order_count + count,
            gross_amount: sum.gross_amount + gross,
        }))
}

pub async fn settlements_of_date(
    db: &MySqlPool,
    date: NaiveDate,
) -> Result<Vec<SettlementRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id \
         FROM settlements WHERE settlement_date = ? ORDER BY partner_id",
    )
    .bind(date)
    .fetch_all(db)
    .await
}

/// One partner's settlements from `from` to `to`, both inclusive, oldest first.
pub async fn settlements_of_partner(
    db: &MySqlPool,
    partner_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<SettlementRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partner_id, settlement_date, order_count, gross_amount, commission, payout, run_id \
         FROM settlements WHERE partner_id = ? AND settlement_date BETWEEN ? AND ? \
         ORDER BY settlement_date",
    )
    .bind(partner_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}
