//! The worker against real MariaDB and moto_server: random orders settled through the scheduler,
//! real SQS messages and this handler, checked against a direct SQL computation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::Message;
use chrono::{DateTime, NaiveDate, TimeDelta};
use rand::{Rng, SeedableRng, rngs::StdRng};
use shared::{
    domain::{
        auth::Role,
        settlement::{Trigger, day_start},
    },
    services::settlement_run::{RunStarter, StartOutcome, start_run},
    testing::{TestContext, aws::TestAws},
};

use super::*;

const PARTITIONS: &str = "5";
/// The default policy the tests configure: 10 % and no fee.
const DEFAULT_RATE_BPS: &str = "1000";

struct App {
    ctx: TestContext,
    aws: TestAws,
    run_starter: RunStarter,
    deps: Deps,
    buyer_id: i64,
}

/// (partner, order_count, gross, commission, payout)
type Expected = Vec<(i64, i64, i64, i64, i64)>;

impl App {
    async fn new() -> Self {
        let aws = TestAws::new(1).await;
        let mut vars = aws.vars().to_vec();
        vars.extend([
            ("SETTLEMENT_PARTITIONS", PARTITIONS),
            ("DEFAULT_COMMISSION_RATE_BPS", DEFAULT_RATE_BPS),
            ("DEFAULT_COMMISSION_FIXED_FEE", "0"),
        ]);
        let ctx = TestContext::with_vars(&vars).await;
        let run_starter = RunStarter::new(&ctx.platform, &aws.sdk);
        let deps = Deps::new(&ctx.platform, &aws.sdk);
        let (buyer_id, _) = ctx.user(Role::Buyer).await;
        sqlx::query(
            "INSERT INTO payments (id, buyer_id, amount, status, idempotency_key, request_hash, expires_at) \
             VALUES ('pay-test', ?, 1, 'PAID', 'key', REPEAT('0', 64), UTC_TIMESTAMP(6))",
        )
        .bind(buyer_id)
        .execute(&ctx.platform.db)
        .await
        .unwrap();
        Self {
            ctx,
            aws,
            run_starter,
            deps,
            buyer_id,
        }
    }

    fn db(&self) -> &MySqlPool {
        &self.ctx.platform.db
    }

    async fn partner(&self) -> i64 {
        self.ctx.user(Role::Partner).await.0
    }

    async fn order(
        &self,
        partner_id: i64,
        status: &str,
        amount: i64,
        created_at: DateTime<Utc>,
        confirmed_at: Option<DateTime<Utc>>,
    ) {
        sqlx::query(
            "INSERT INTO orders (payment_id, buyer_id, partner_id, status, amount, created_at, expires_at, confirmed_at) \
             VALUES ('pay-test', ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.buyer_id)
        .bind(partner_id)
        .bind(status)
        .bind(amount)
        .bind(created_at)
        .bind(created_at + TimeDelta::minutes(10))
        .bind(confirmed_at)
        .execute(self.db())
        .await
        .unwrap();
    }

    async fn policy(&self, partner_id: i64, rate_bps: i64, fixed_fee: i64, from: &str) {
        settlements::upsert_policy(
            self.db(),
            partner_id,
            CommissionPolicy {
                rate_bps,
                fixed_fee,
            },
            from.parse().unwrap(),
        )
        .await
        .unwrap();
    }

    async fn start(&self, date: NaiveDate, trigger: Trigger) -> String {
        match start_run(&self.run_starter, date, trigger, Utc::now())
            .await
            .unwrap()
        {
            StartOutcome::Started(run) => run.run_id,
            other => panic!("{other:?}"),
        }
    }

    async fn receive(&self) -> Vec<Message> {
        let sqs = aws::sqs(&self.aws.sdk);
        let mut all = Vec::new();
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.aws.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return all;
            }
            all.extend(messages);
        }
    }

    async fn delete(&self, messages: &[&Message]) {
        let sqs = aws::sqs(&self.aws.sdk);
        for message in messages {
            sqs.delete_message()
                .queue_url(&self.aws.queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    /// Receives and handles batches as Lambda would until the queue is empty; failed messages are
    /// left on the queue. Returns how many messages the handler reported as failed.
    async fn drain(&self) -> usize {
        let mut failed = 0;
        loop {
            let messages = self.receive().await;
            if messages.is_empty() {
                return failed;
            }
            // One message per invocation: moto_server applies concurrent UpdateItems to one item
            // without a lock, so two partitions' done-marks landing together can lose one (real
            // DynamoDB updates an item atomically), and the run would never finish. Batches of
            // several records are tested on their own, with handle() called directly.
            for batch in messages.chunks(1) {
                let response = handle(&self.deps, event(batch)).await;
                let failures: Vec<&str> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect();
                failed += failures.len();
                let done: Vec<&Message> = batch
                    .iter()
                    .filter(|m| !failures.contains(&m.message_id().unwrap()))
                    .collect();
                self.delete(&done).await;
            }
            if failed > 0 {
                return failed;
            }
        }
    }

    async fn run_status(&self, run_id: &str) -> (RunStatus, Option<String>) {
        let run = settlements::find_run(self.db(), run_id)
            .await
            .unwrap()
            .unwrap();
        (run.status, run.error)
    }

    async fn settled(&self, date: NaiveDate) -> Expected {
        settlements::settlements_of_date(self.db(), date)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.partner_id,
                    r.order_count,
                    r.gross_amount,
                    r.commission,
                    r.payout,
                )
            })
            .collect()
    }

    /// The day's settlements computed in one SQL statement, independently of the pipeline: the
    /// Seoul date by CONVERT_TZ (Seoul is UTC+9 all year), the policy by a correlated subquery.
    async fn expected(&self, date: NaiveDate) -> Expected {
        sqlx::query_as(
            "SELECT t.partner_id, t.n, CAST(t.gross AS SIGNED), \
                    CAST(FLOOR(t.gross * t.rate / 10000) + t.fee * t.n AS SIGNED), \
                    CAST(t.gross - (FLOOR(t.gross * t.rate / 10000) + t.fee * t.n) AS SIGNED) \
             FROM (SELECT o.partner_id, COUNT(*) AS n, SUM(o.amount) AS gross, \
                     COALESCE((SELECT p.rate_bps FROM commission_policies p WHERE p.partner_id = o.partner_id \
                               AND p.effective_from <= ? ORDER BY p.effective_from DESC LIMIT 1), ?) AS rate, \
                     COALESCE((SELECT p.fixed_fee FROM commission_policies p WHERE p.partner_id = o.partner_id \
                               AND p.effective_from <= ? ORDER BY p.effective_from DESC LIMIT 1), 0) AS fee \
                   FROM orders o WHERE o.status = 'CONFIRMED' \
                     AND DATE(CONVERT_TZ(o.confirmed_at, '+00:00', '+09:00')) = ? \
                   GROUP BY o.partner_id) t ORDER BY t.partner_id",
        )
        .bind(date)
        .bind(DEFAULT_RATE_BPS.parse::<i64>().unwrap())
        .bind(date)
        .bind(date)
        .fetch_all(self.db())
        .await
        .unwrap()
    }
}

fn event(messages: &[Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id().map(str::to_owned);
            record.receipt_handle = m.receipt_handle().map(str::to_owned);
            record.body = m.body().map(str::to_owned);
            record
        })
        .collect();
    event
}

fn day() -> NaiveDate {
    "2026-03-15".parse().unwrap()
}

/// A random instant within `spread` of Seoul midnight starting `date`, either side.
fn near_midnight(rng: &mut StdRng, date: NaiveDate, spread: TimeDelta) -> DateTime<Utc> {
    let micros = spread.num_microseconds().unwrap();
    day_start(date) + TimeDelta::microseconds(rng.gen_range(-micros..micros))
}

/// Random orders over three days around `day()`, mostly near its two midnights, for `partners`;
/// plus the edge cases the issue names. Returns the id of a partner with no sales.
async fn random_orders(app: &App, rng: &mut StdRng, partners: &[i64]) {
    let next = day().succ_opt().unwrap();
    let statuses = [
        "CONFIRMED",
        "CONFIRMED",
        "CONFIRMED",
        "SHIPPED",
        "CANCELLED",
        "PAID",
    ];
    for _ in 0..400 {
        let partner = partners[rng.gen_range(0..partners.len())];
        let status = statuses[rng.gen_range(0..statuses.len())];
        let midnight = if rng.gen_bool(0.5) { day() } else { next };
        let confirmed = near_midnight(rng, midnight, TimeDelta::hours(14));
        let created = confirmed - TimeDelta::hours(rng.gen_range(1..72));
        let confirmed_at = (status == "CONFIRMED").then_some(confirmed);
        app.order(
            partner,
            status,
            rng.gen_range(1..500_000),
            created,
            confirmed_at,
        )
        .await;
    }
    // Exactly at both midnights, and the last microsecond before the first.
    let start = day_start(day());
    app.order(
        partners[0],
        "CONFIRMED",
        1_000,
        start - TimeDelta::days(1),
        Some(start),
    )
    .await;
    app.order(
        partners[0],
        "CONFIRMED",
        2_000,
        start - TimeDelta::days(1),
        Some(start - TimeDelta::microseconds(1)),
    )
    .await;
    app.order(
        partners[1],
        "CONFIRMED",
        4_000,
        start,
        Some(day_start(next)),
    )
    .await;
    // Placed ten days before, confirmed on the day: settled on the day, once.
    app.order(
        partners[1],
        "CONFIRMED",
        77_777,
        start - TimeDelta::days(10),
        Some(start + TimeDelta::hours(5)),
    )
    .await;
}

#[tokio::test]
async fn a_run_settles_every_confirmed_order_once_and_matches_sql() {
    let app = App::new().await;
    let mut rng = StdRng::seed_from_u64(6);
    let mut partners = Vec::new();
    for _ in 0..6 {
        partners.push(app.partner().await);
    }
    let no_sales = app.partner().await;
    random_orders(&app, &mut rng, &partners).await;
    // A policy change effective mid-month: the 1st's policy must not apply on the 15th...
    app.policy(partners[0], 500, 0, "2026-03-01").await;
    app.policy(partners[0], 1_200, 150, "2026-03-15").await;
    // ...nor one that starts after the day; fixed fees; a policy for a partner with no sales.
    app.policy(partners[1], 800, 300, "2026-02-01").await;
    app.policy(partners[1], 9_000, 0, "2026-03-16").await;
    app.policy(no_sales, 2_000, 1_000, "2026-01-01").await;

    let run_id = app.start(day(), Trigger::Schedule).await;
    assert_eq!(app.drain().await, 0);

    assert_eq!(app.run_status(&run_id).await, (RunStatus::Completed, None));
    let settled = app.settled(day()).await;
    let expected = app.expected(day()).await;
    assert_eq!(settled, expected);
    assert_eq!(settled.len(), partners.len(), "every selling partner, once");
    assert!(
        settled.iter().all(|row| row.0 != no_sales),
        "no row without sales"
    );
    let p0 = settled.iter().find(|row| row.0 == partners[0]).unwrap();
    assert_eq!(
        p0.3,
        p0.2 * 1_200 / 10_000 + 150 * p0.1,
        "the mid-month policy"
    );
    let run = app.deps.runs.run(&run_id).await.unwrap().unwrap();
    assert_eq!((run.done, run.status), (5, RunStatus::Completed));

    // The day before settles its own orders, not the late-confirmed one placed then.
    let before = day().pred_opt().unwrap();
    app.start(before, Trigger::Schedule).await;
    assert_eq!(app.drain().await, 0);
    assert_eq!(app.settled(before).await, app.expected(before).await);
}

#[tokio::test]
async fn duplicate_and_redelivered_messages_count_once() {
    let app = App::new().await;
    let mut rng = StdRng::seed_from_u64(7);
    let partners = [
        app.partner().await,
        app.partner().await,
        app.partner().await,
    ];
    random_orders(&app, &mut rng, &partners).await;
    let run_id = app.start(day(), Trigger::Schedule).await;

    // Every partition is handled twice in one batch (a duplicate send) and again later (a
    // redelivery after a lost delete).
    let messages = app.receive().await;
    assert_eq!(messages.len(), 5);
    let doubled: Vec<Message> = messages.iter().chain(&messages).cloned().collect();
    let response = handle(&app.deps, event(&doubled[..4])).await;
    assert!(response.batch_item_failures.is_empty());
    let response = handle(&app.deps, event(&doubled[4..])).await;
    assert!(response.batch_item_failures.is_empty());
    let response = handle(&app.deps, event(&messages)).await;
    assert!(response.batch_item_failures.is_empty());

    assert_eq!(app.run_status(&run_id).await.0, RunStatus::Completed);
    assert_eq!(app.settled(day()).await, app.expected(day()).await);
    let (partials,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT partition_no) FROM settlement_partials WHERE run_id = ?",
    )
    .bind(&run_id)
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(partials, 5);
    // A message of a finished run changes nothing.
    let task: PartitionTask = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(
        settle_partition(&app.deps, &task).await.unwrap(),
        Progress::Skipped(RunStatus::Completed)
    );
}

#[tokio::test]
async fn a_worker_crashing_between_steps_is_repaired_by_redelivery() {
    let app = App::new().await;
    let mut rng = StdRng::seed_from_u64(8);
    let partners = [app.partner().await, app.partner().await];
    random_orders(&app, &mut rng, &partners).await;
    let run_id = app.start(day(), Trigger::Schedule).await;
    let messages = app.receive().await;
    let tasks: Vec<PartitionTask> = messages
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();

    // Partition A: crashed after its upsert, before its done-mark.
    let a = &tasks[0];
    let totals = settlements::aggregate_range(app.db(), a.from, a.to)
        .await
        .unwrap();
    settlements::replace_partials(app.db(), &run_id, a.partition, &totals)
        .await
        .unwrap();
    // Partitions B..: handled normally, except the last, which crashed after its done-mark,
    // before finalizing.
    for task in &tasks[1..tasks.len() - 1] {
        settle_partition(&app.deps, task).await.unwrap();
    }
    let last = tasks.last().unwrap();
    let totals = settlements::aggregate_range(app.db(), last.from, last.to)
        .await
        .unwrap();
    settlements::replace_partials(app.db(), &run_id, last.partition, &totals)
        .await
        .unwrap();
    app.deps
        .runs
        .mark_done(&run_id, last.partition)
        .await
        .unwrap();
    assert_eq!(app.run_status(&run_id).await.0, RunStatus::Running);

    // The visibility timeout passes; SQS redelivers everything that was not deleted.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.drain().await, 0);
    assert_eq!(app.run_status(&run_id).await.0, RunStatus::Completed);
    assert_eq!(app.settled(day()).await, app.expected(day()).await);
}

#[tokio::test]
async fn rerunning_a_day_replaces_its_settlements() {
    let app = App::new().await;
    let partners = [app.partner().await, app.partner().await];
    let noon = day_start(day()) + TimeDelta::hours(12);
    app.order(partners[0], "CONFIRMED", 10_000, noon, Some(noon))
        .await;
    let first = app.start(day(), Trigger::Schedule).await;
    app.drain().await;
    assert_eq!(app.settled(day()).await.len(), 1);

    // A late confirmation on the same day, then an admin re-run.
    app.order(
        partners[1],
        "CONFIRMED",
        20_000,
        noon,
        Some(noon + TimeDelta::hours(1)),
    )
    .await;
    let second = app.start(day(), Trigger::Admin).await;
    app.drain().await;
    let rows = settlements::settlements_of_date(app.db(), day())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|row| row.run_id == second && row.run_id != first)
    );
    assert_eq!(app.settled(day()).await, app.expected(day()).await);
}

#[tokio::test]
async fn a_broken_invariant_fails_the_run_and_keeps_the_old_settlements() {
    let app = App::new().await;
    let partner = app.partner().await;
    let noon = day_start(day()) + TimeDelta::hours(12);
    app.order(partner, "CONFIRMED", 10_000, noon, Some(noon))
        .await;
    app.start(day(), Trigger::Schedule).await;
    app.drain().await;
    let good = app.settled(day()).await;

    // A bug that counts a partition twice: a stray partial under a partition number that
    // does not exist.
    let run_id = app.start(day(), Trigger::Admin).await;
    settlements::replace_partials(
        app.db(),
        &run_id,
        99,
        &[settlements::PartnerTotal {
            partner_id: partner,
            order_count: 1,
            gross_amount: 10_000,
        }],
    )
    .await
    .unwrap();
    assert_eq!(app.drain().await, 0);
    let (status, error) = app.run_status(&run_id).await;
    assert_eq!(status, RunStatus::Failed);
    assert!(error.unwrap().contains("invariant violated"));
    assert_eq!(app.settled(day()).await, good, "rolled back");
    let lock = app.deps.runs.lock(day()).await.unwrap().unwrap();
    assert_eq!(lock.status, RunStatus::Failed, "the day may be retried");
}

#[tokio::test]
async fn malformed_messages_are_reported_as_failed() {
    let app = App::new().await;
    let mut record = SqsMessage::default();
    record.message_id = Some("m-1".into());
    record.body = Some("{\"not\":\"a task\"}".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];
    let response = handle(&app.deps, event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, "m-1");
}

#[tokio::test]
async fn the_sample_event_carries_exactly_what_the_scheduler_sends() {
    let app = App::new().await;
    let event: SqsEvent = serde_json::from_str(include_str!(
        "../../../events/settlement-worker/partition.json"
    ))
    .unwrap();
    let body = event.records[0].body.clone().unwrap();
    let task: PartitionTask = serde_json::from_str(&body).unwrap();
    let sent =
        &shared::domain::settlement::partition_tasks(&task.run_id, task.date, task.partitions)
            [task.partition as usize];
    assert_eq!(
        String::from_utf8(shared::http::json_bytes(sent)).unwrap(),
        body,
        "the scheduler's bytes"
    );
    // Its run is unknown here: the handler reports the message as failed, to be redelivered.
    let response = handle(&app.deps, event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["2e1424d4-f796-459a-8184-9c92662be6da"]);
}

/// Counts every partition of `run_id` without finalizing: the state in which the worker of the
/// last partition is about to finalize. Returns the run as that worker read it.
async fn count_partitions_without_finalizing(app: &App, run_id: &str) -> RunState {
    let tasks: Vec<PartitionTask> = app
        .receive()
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .filter(|task: &PartitionTask| task.run_id == run_id)
        .collect();
    let mut run = None;
    for task in &tasks {
        let totals = settlements::aggregate_range(app.db(), task.from, task.to)
            .await
            .unwrap();
        settlements::replace_partials(app.db(), run_id, task.partition, &totals)
            .await
            .unwrap();
        run = Some(
            app.deps
                .runs
                .mark_done(run_id, task.partition)
                .await
                .unwrap(),
        );
    }
    let run = run.unwrap();
    assert!(run.all_done() && run.status == RunStatus::Running);
    run
}

#[tokio::test]
async fn a_finalizer_taken_over_between_its_check_and_its_commit_writes_nothing() {
    let app = App::new().await;
    let partners = [app.partner().await, app.partner().await];
    let noon = day_start(day()) + TimeDelta::hours(12);
    app.order(partners[0], "CONFIRMED", 10_000, noon, Some(noon))
        .await;
    let settled_first = app.start(day(), Trigger::Schedule).await;
    assert_eq!(app.drain().await, 0);
    let before = app.settled(day()).await;
    assert_eq!(before.len(), 1);

    // A re-run whose last worker has written the day's settlements and checked that its run
    // still holds the day (it does), and then stalls past the lease before committing.
    app.order(
        partners[1],
        "CONFIRMED",
        20_000,
        noon,
        Some(noon + TimeDelta::hours(1)),
    )
    .await;
    let stale = app.start(day(), Trigger::Admin).await;
    let stale_run = count_partitions_without_finalizing(&app, &stale).await;
    let prepared = prepare_finalize(&app.deps, &stale_run)
        .await
        .unwrap()
        .expect("the run still holds the day when it checks");

    // Meanwhile its lease expires and another trigger takes the day over.
    let lease = TimeDelta::seconds(901);
    let newer = match start_run(&app.run_starter, day(), Trigger::Admin, Utc::now() + lease)
        .await
        .unwrap()
    {
        StartOutcome::Started(run) => run.run_id,
        other => panic!("{other:?}"),
    };

    // The stale finalizer now commits: it must write nothing.
    let outcome = commit_finalize(&app.deps, &stale_run, prepared)
        .await
        .unwrap();
    assert_eq!(outcome, RunStatus::Failed);
    let rows = settlements::settlements_of_date(app.db(), day())
        .await
        .unwrap();
    assert_eq!(
        app.settled(day()).await,
        before,
        "the day's rows are untouched"
    );
    assert!(rows.iter().all(|row| row.run_id == settled_first));
    let (status, error) = app.run_status(&stale).await;
    assert_eq!(status, RunStatus::Failed);
    assert!(error.unwrap().contains(&newer));
    assert_eq!(app.run_status(&newer).await.0, RunStatus::Running);
    let lock = app.deps.runs.lock(day()).await.unwrap().unwrap();
    assert_eq!(
        (lock.run_id.as_str(), lock.status),
        (newer.as_str(), RunStatus::Running)
    );

    // The newer run settles the day; the stale run's redelivered messages change nothing.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.drain().await, 0);
    assert_eq!(app.run_status(&newer).await, (RunStatus::Completed, None));
    assert_eq!(app.run_status(&stale).await.0, RunStatus::Failed);
    let rows = settlements::settlements_of_date(app.db(), day())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.run_id == newer));
    assert_eq!(app.settled(day()).await, app.expected(day()).await);
}

#[tokio::test]
async fn a_finalizer_repeated_after_a_commit_records_the_end_it_missed() {
    let app = App::new().await;
    let partner = app.partner().await;
    let noon = day_start(day()) + TimeDelta::hours(12);
    app.order(partner, "CONFIRMED", 10_000, noon, Some(noon))
        .await;
    let run_id = app.start(day(), Trigger::Schedule).await;
    let run = count_partitions_without_finalizing(&app, &run_id).await;
    assert_eq!(
        finalize(&app.deps, &run).await.unwrap(),
        RunStatus::Completed
    );
    let settled = settlements::settlements_of_date(app.db(), day())
        .await
        .unwrap();
    // As if that finalizer had stopped after its commit, before DynamoDB heard of it.
    app.deps
        .runs
        .finish(day(), &run_id, RunStatus::Running, None)
        .await
        .unwrap();

    // The redelivered last partition finalizes again: nothing to write, the end is recorded.
    assert_eq!(
        finalize(&app.deps, &run).await.unwrap(),
        RunStatus::Completed
    );
    assert_eq!(
        settlements::settlements_of_date(app.db(), day())
            .await
            .unwrap(),
        settled
    );
    assert_eq!(app.run_status(&run_id).await, (RunStatus::Completed, None));
    let state = app.deps.runs.run(&run_id).await.unwrap().unwrap();
    assert_eq!(state.status, RunStatus::Completed);
    let lock = app.deps.runs.lock(day()).await.unwrap().unwrap();
    assert_eq!(lock.status, RunStatus::Completed, "the day is settled");
}
