//! The scheduler against real MariaDB and moto_server (DynamoDB + SQS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use futures::future::join_all;
use shared::{
    adapters::{aws, settlements},
    domain::settlement::{PartitionTask, RunStatus, day_range},
    services::settlement_run::RunStarted,
    testing::{TestContext, aws::TestAws},
};

use super::*;

struct App {
    ctx: TestContext,
    aws: TestAws,
    deps: Deps,
}

impl App {
    async fn new() -> Self {
        let aws = TestAws::new(30).await;
        let mut vars = aws.vars().to_vec();
        vars.extend([
            ("SETTLEMENT_PARTITIONS", "4"),
            ("SETTLEMENT_LEASE_SECONDS", "60"),
        ]);
        let ctx = TestContext::with_vars(&vars).await;
        let deps = Deps::new(&ctx.platform, &aws.sdk);
        Self { ctx, aws, deps }
    }

    /// Every message on the queue (received, not deleted).
    async fn queued_tasks(&self) -> Vec<PartitionTask> {
        let sqs = aws::sqs(&self.aws.sdk);
        let mut tasks = Vec::new();
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
                return tasks;
            }
            tasks.extend(
                messages
                    .iter()
                    .map(|m| serde_json::from_str(m.body().unwrap()).unwrap()),
            );
        }
    }

    async fn mysql_status(&self, run_id: &str) -> String {
        settlements::find_run(&self.ctx.platform.db, run_id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str()
            .to_owned()
    }
}

fn date() -> NaiveDate {
    "2026-03-15".parse().unwrap()
}

fn started(outcome: StartOutcome) -> RunStarted {
    match outcome {
        StartOutcome::Started(run) => run,
        other => panic!("expected a started run, got {other:?}"),
    }
}

#[tokio::test]
async fn a_run_enqueues_one_message_per_partition_covering_the_day() {
    let app = App::new().await;
    let run = started(
        start_run(&app.deps, date(), Trigger::Schedule, Utc::now())
            .await
            .unwrap(),
    );
    assert_eq!(run.partitions, 4);
    assert_eq!(app.mysql_status(&run.run_id).await, "RUNNING");

    let mut tasks = app.queued_tasks().await;
    tasks.sort_by_key(|task| task.partition);
    assert_eq!(tasks.len(), 4);
    let (start, end) = day_range(date());
    assert_eq!(tasks[0].from, start);
    assert_eq!(tasks[3].to, end);
    assert!(tasks.windows(2).all(|pair| pair[0].to == pair[1].from));
    assert!(tasks.iter().all(|task| task.run_id == run.run_id));
}

#[tokio::test]
async fn concurrent_triggers_start_exactly_one_run() {
    let app = App::new().await;
    let now = Utc::now();
    let outcomes =
        join_all((0..6).map(|_| start_run(&app.deps, date(), Trigger::Admin, now))).await;
    let runs: Vec<_> = outcomes
        .into_iter()
        .map(Result::unwrap)
        .filter_map(|outcome| match outcome {
            StartOutcome::Started(run) => Some(run),
            StartOutcome::Busy { .. } => None,
            other @ StartOutcome::AlreadySettled { .. } => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(runs.len(), 1, "exactly one trigger wins");
    assert_eq!(
        app.queued_tasks().await.len(),
        4,
        "and only its partitions are queued"
    );
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM settlement_runs")
        .fetch_one(&app.ctx.platform.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);

    // A later trigger while the run is alive starts nothing either.
    let again = start_run(&app.deps, date(), Trigger::Schedule, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        again,
        StartOutcome::Busy {
            run_id: runs[0].run_id.clone()
        }
    );
}

#[tokio::test]
async fn a_stalled_run_is_taken_over_once_its_lease_has_passed() {
    let app = App::new().await;
    let now = Utc::now();
    let stalled = started(
        start_run(&app.deps, date(), Trigger::Schedule, now)
            .await
            .unwrap(),
    );
    let within = start_run(
        &app.deps,
        date(),
        Trigger::Schedule,
        now + TimeDelta::seconds(59),
    )
    .await
    .unwrap();
    assert!(matches!(within, StartOutcome::Busy { .. }), "{within:?}");

    let after = started(
        start_run(
            &app.deps,
            date(),
            Trigger::Schedule,
            now + TimeDelta::seconds(61),
        )
        .await
        .unwrap(),
    );
    assert_ne!(after.run_id, stalled.run_id);
    let old = app.deps.runs().run(&stalled.run_id).await.unwrap().unwrap();
    assert_eq!(old.status, RunStatus::Failed);
    assert!(old.error.unwrap().contains(&after.run_id));
    assert_eq!(app.mysql_status(&stalled.run_id).await, "FAILED");
    assert_eq!(app.mysql_status(&after.run_id).await, "RUNNING");
}

/// A start can write its run's row and still fail (the INSERT's answer lost with the connection),
/// and lose the row's FAILED mark the same way: the next run of the day ends that row in MySQL
/// as DynamoDB recorded it, rather than leave it RUNNING for ever.
#[tokio::test]
async fn the_next_run_of_a_day_ends_a_run_whose_start_failed_unrecorded() {
    let app = App::new().await;
    let db = &app.ctx.platform.db;
    // A start that fails once its row is written (no such queue), whose FAILED mark MySQL refuses.
    let mut config = (*app.ctx.platform.config).clone();
    config.aws.settlement_queue_url = Some(format!("{}-missing", app.aws.queue_url));
    let platform = shared::Platform::from_parts(config, db.clone(), app.ctx.platform.redis.clone());
    let failing = RunStarter::new(&platform, &app.aws.sdk);
    sqlx::raw_sql(
        "CREATE TRIGGER runs_unmarked BEFORE UPDATE ON settlement_runs FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the mark is lost'",
    )
    .execute(db)
    .await
    .unwrap();
    assert!(
        start_run(&failing, date(), Trigger::Admin, Utc::now())
            .await
            .is_err()
    );
    sqlx::raw_sql("DROP TRIGGER runs_unmarked")
        .execute(db)
        .await
        .unwrap();
    let dead: String = sqlx::query_scalar("SELECT id FROM settlement_runs")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(app.mysql_status(&dead).await, "RUNNING");
    let state = app.deps.runs().run(&dead).await.unwrap().unwrap();
    assert_eq!(state.status, RunStatus::Failed);

    let run = started(
        start_run(&app.deps, date(), Trigger::Admin, Utc::now())
            .await
            .unwrap(),
    );
    let ended = settlements::find_run(db, &dead).await.unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Failed);
    assert_eq!(ended.error, state.error);
    assert_eq!(
        ended.error.as_deref(),
        Some(shared::services::settlement_run::start_failure(&dead).as_str())
    );
    assert_eq!(app.mysql_status(&run.run_id).await, "RUNNING");
}

#[tokio::test]
async fn a_takeover_leaves_the_end_of_a_run_that_finished_meanwhile() {
    let app = App::new().await;
    let now = Utc::now();
    let stalled = started(
        start_run(&app.deps, date(), Trigger::Schedule, now)
            .await
            .unwrap(),
    );
    // Its finalizer commits in MySQL just as its lease runs out, before DynamoDB hears of it.
    let mut conn = app.ctx.platform.db.acquire().await.unwrap();
    assert!(
        settlements::finish_run(&mut conn, &stalled.run_id, RunStatus::Completed, None)
            .await
            .unwrap()
    );
    let after = started(
        start_run(
            &app.deps,
            date(),
            Trigger::Schedule,
            now + TimeDelta::seconds(61),
        )
        .await
        .unwrap(),
    );
    assert_eq!(app.mysql_status(&stalled.run_id).await, "COMPLETED");
    assert_eq!(app.mysql_status(&after.run_id).await, "RUNNING");
}

#[tokio::test]
async fn the_schedule_leaves_a_settled_day_alone_but_an_admin_re_runs_it() {
    let app = App::new().await;
    let first = started(
        start_run(&app.deps, date(), Trigger::Schedule, Utc::now())
            .await
            .unwrap(),
    );
    app.deps
        .runs()
        .finish(date(), &first.run_id, RunStatus::Completed, None)
        .await
        .unwrap();

    let scheduled = start_run(&app.deps, date(), Trigger::Schedule, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        scheduled,
        StartOutcome::AlreadySettled {
            run_id: first.run_id.clone()
        }
    );
    let rerun = started(
        start_run(&app.deps, date(), Trigger::Admin, Utc::now())
            .await
            .unwrap(),
    );
    assert_ne!(rerun.run_id, first.run_id);
}

#[tokio::test]
async fn the_nightly_fire_settles_yesterday_in_seoul() {
    let app = App::new().await;
    let mut event = EventBridgeEvent::default();
    // 04:00 on the 16th in Seoul.
    event.time = Some("2026-03-15T19:00:00Z".parse().unwrap());
    let report = handle(&app.deps, event).await.unwrap();
    let FireReport::Started { date: settled, .. } = report else {
        panic!("{report:?}")
    };
    assert_eq!(settled, date());
}

#[tokio::test]
async fn without_a_queue_nothing_is_locked() {
    let aws = TestAws::new(30).await;
    let ctx = TestContext::with_vars(&[("SETTLEMENT_RUNS_TABLE", aws.table.as_str())]).await;
    let deps = Deps::new(&ctx.platform, &aws.sdk);
    let err = start_run(&deps, date(), Trigger::Admin, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::NoQueue), "{err}");
    assert_eq!(deps.runs().lock(date()).await.unwrap(), None);
}

#[tokio::test]
async fn the_sample_scheduled_event_settles_the_day_before_its_fire() {
    let app = App::new().await;
    let event: EventBridgeEvent = serde_json::from_str(include_str!(
        "../../../events/settlement-scheduler/scheduled.json"
    ))
    .unwrap();
    // Fired at 04:00 on 2026-11-24 in Seoul: the 23rd is settled.
    let report = handle(&app.deps, event).await.unwrap();
    let FireReport::Started {
        date: settled,
        run_id,
        partitions,
    } = report
    else {
        panic!("{report:?}")
    };
    assert_eq!(settled, "2026-11-23".parse::<NaiveDate>().unwrap());
    assert_eq!(partitions, 4);
    assert_eq!(app.mysql_status(&run_id).await, "RUNNING");
    assert_eq!(app.queued_tasks().await.len(), 4);
}
