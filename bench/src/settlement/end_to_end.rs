//! One end-to-end settlement run, timed from `start_run` to COMPLETED: the
//! scheduler and the worker's handler on the bench's own DynamoDB table and SQS queue, the
//! worker fed by the local runner's SQS poller.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use futures::FutureExt;
use kicksync_local::queues::{Poller, QueueBinding};
use shared::{
    Config, Platform,
    adapters::{aws, settlements},
    domain::settlement::{RunStatus, Trigger},
    services::settlement_run::{RunStarter, StartOutcome, start_run},
};
use tokio::task::JoinSet;

use super::timeline::Timeline;

/// How often the bench looks whether the run has finished.
const STATUS_POLL: Duration = Duration::from_millis(2);

pub(super) struct Bench {
    pub(super) db_url: String,
    pub(super) aws: BenchAws,
    pub(super) timeline: Timeline,
    pub(super) batch_size: i32,
    pub(super) concurrency: usize,
}

/// One end-to-end run: its time and where the time went.
pub(super) struct Measured {
    pub(super) seconds: f64,
    pub(super) breakdown: serde_json::Value,
}

impl Bench {
    pub(super) fn platform(&self, partitions: u32) -> anyhow::Result<Platform> {
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", self.db_url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "24"),
            ("JWT_SECRET", "bench-secret-bench-secret-bench-secret!"),
            ("AWS_ENDPOINT_URL", self.aws.endpoint.as_str()),
            ("SETTLEMENT_RUNS_TABLE", self.aws.table.as_str()),
            ("SETTLEMENT_QUEUE_URL", self.aws.queue_url.as_str()),
            ("SETTLEMENT_PARTITIONS", &partitions.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Ok(Platform::new(Config::from_vars(vars)?)?)
    }

    /// The fastest of `times` end-to-end runs.
    pub(super) async fn best_end_to_end(
        &self,
        times: u32,
        day: NaiveDate,
        partitions: u32,
    ) -> anyhow::Result<Measured> {
        let mut best: Option<Measured> = None;
        for _ in 0..times {
            let run = self.end_to_end(day, partitions).await?;
            if best.as_ref().is_none_or(|best| run.seconds < best.seconds) {
                best = Some(run);
            }
        }
        best.context("no run")
    }

    /// Seconds from `start_run` to COMPLETED, with `partitions` partitions.
    async fn end_to_end(&self, day: NaiveDate, partitions: u32) -> anyhow::Result<Measured> {
        let platform = self.platform(partitions)?;
        let run_starter = RunStarter::new(&platform, &self.aws.sdk);
        let worker = Arc::new(settlement_worker::Deps::new(&platform, &self.aws.sdk));
        // Connect the pool before the clock starts, as a warm Lambda would be.
        sqlx::query("SELECT 1").execute(&platform.db).await?;
        let timeline = self.timeline.clone();
        let binding = Arc::new(QueueBinding {
            name: "settlement-worker".into(),
            queue_url: self.aws.queue_url.clone(),
            handler: Arc::new(move |event| {
                let worker = Arc::clone(&worker);
                timeline.mark("received");
                async move { settlement_worker::handle(&worker, event).await }.boxed()
            }),
            batch_size: self.batch_size,
            concurrency: self.concurrency,
        });
        let poller = Poller::new(aws::sqs(&self.aws.sdk), binding).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut pollers = JoinSet::new();
        for _ in 0..self.concurrency.min(partitions as usize).max(1) {
            let (poller, stop) = (poller.clone(), Arc::clone(&stop));
            pollers.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(err) = poller.poll_once().await {
                        eprintln!("poll failed: {err}");
                    }
                }
            });
        }

        self.timeline.clear();
        let started = Instant::now();
        let outcome = start_run(&run_starter, day, Trigger::Admin, Utc::now()).await?;
        let StartOutcome::Started(run) = outcome else {
            anyhow::bail!("the run did not start: {outcome:?}");
        };
        let status = loop {
            let row = settlements::find_run(&platform.db, &run.run_id)
                .await?
                .context("run row")?;
            if row.status != RunStatus::Running {
                break row;
            }
            tokio::time::sleep(STATUS_POLL).await;
        };
        let completed = Instant::now();
        let elapsed = (completed - started).as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        while pollers.join_next().await.is_some() {}
        anyhow::ensure!(
            status.status == RunStatus::Completed,
            "run {} ended {}: {:?}",
            run.run_id,
            status.status.as_str(),
            status.error
        );
        // The finalizer logs its timings after the commit the loop above saw.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Measured {
            seconds: elapsed,
            breakdown: self.timeline.breakdown(started, completed),
        })
    }
}

/// A settlement table and queue of the bench's own on the local AWS endpoint.
#[derive(Debug)]
pub struct BenchAws {
    pub(crate) endpoint: String,
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) table: String,
    pub(crate) queue_url: String,
}

impl BenchAws {
    pub async fn create(endpoint: &str) -> anyhow::Result<Self> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let config = shared::config::AwsConfig {
            endpoint_url: Some(endpoint.to_owned()),
            region: "ap-northeast-2".into(),
            idempotency_table: String::new(),
            settlement_runs_table: String::new(),
            settlement_queue_url: None,
        };
        let sdk = aws::sdk_config(&config).await;
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
        let table = format!("bench-settlement-runs-{suffix}");
        aws::dynamodb(&sdk)
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| {
                format!("creating a DynamoDB table on {endpoint} (is moto_server up?)")
            })?;
        let queue_url = aws::sqs(&sdk)
            .create_queue()
            .queue_name(format!("bench-settlement-{suffix}"))
            .send()
            .await?
            .queue_url
            .context("queue url")?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            sdk,
            table,
            queue_url,
        })
    }

    pub async fn delete(&self) {
        let _ = aws::dynamodb(&self.sdk)
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
        let _ = aws::sqs(&self.sdk)
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await;
    }
}
