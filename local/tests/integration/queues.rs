//! The SQS poller against a real moto_server (`AWS_ENDPOINT_URL`, started by `scripts/test`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::{
    Client,
    config::Credentials,
    types::{MessageAttributeValue, QueueAttributeName},
};
use futures::FutureExt;
use kicksync_local::queues::{self, PollReport, Poller, QueueBinding, QueueHandler};
use shared::{adapters::aws::sdk_config, config::AwsConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a failed message stays invisible in the test queues before it is redelivered.
const VISIBILITY_TIMEOUT_SECS: &str = "1";

/// moto accepts any credentials; fixed ones keep the SDK from hunting for a profile.
async fn sqs_client() -> Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at a running moto_server (scripts/test starts one)");
    let aws = AwsConfig {
        endpoint_url: Some(endpoint),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "ap-northeast-2".into()),
        idempotency_table: String::new(),
        settlement_runs_table: String::new(),
        settlement_queue_url: None,
    };
    let sdk = sdk_config(&aws).await;
    let config = aws_sdk_sqs::config::Builder::from(&sdk)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .build();
    Client::from_conf(config)
}

async fn create_queue(client: &Client) -> String {
    let name = format!("kst-{}", uuid::Uuid::new_v4().simple());
    client
        .create_queue()
        .queue_name(&name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_TIMEOUT_SECS,
        )
        .send()
        .await
        .expect("create a queue on moto_server (is AWS_ENDPOINT_URL reachable?)")
        .queue_url
        .expect("queue url")
}

async fn send(client: &Client, queue_url: &str, body: &str) {
    client
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .message_attributes(
            "kind",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("partition")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn messages_left(client: &Client, queue_url: &str) -> (u64, u64) {
    let output = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = output.attributes().unwrap();
    let count = |name| {
        attributes
            .get(&name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(u64::MAX)
    };
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Every record the handler was given, in order.
#[derive(Default)]
struct Deliveries {
    records: Vec<SqsMessage>,
}

impl Deliveries {
    fn of(&self, body: &str) -> Vec<&SqsMessage> {
        self.records
            .iter()
            .filter(|record| record.body.as_deref() == Some(body))
            .collect()
    }
}

/// Records every delivery and fails `fail-me` on its first delivery only.
fn flaky_handler(deliveries: Arc<Mutex<Deliveries>>) -> QueueHandler {
    Arc::new(move |event: SqsEvent| {
        let deliveries = deliveries.clone();
        async move {
            let mut response = SqsBatchResponse::default();
            let mut seen = deliveries.lock().unwrap();
            for record in event.records {
                let first_time = seen.of("fail-me").is_empty();
                if record.body.as_deref() == Some("fail-me") && first_time {
                    response.add_failure(record.message_id.clone().unwrap_or_default());
                }
                seen.records.push(record);
            }
            response
        }
        .boxed()
    })
}

fn binding(queue_url: &str, handler: QueueHandler, concurrency: usize) -> QueueBinding {
    QueueBinding {
        name: "test-queue".to_owned(),
        queue_url: queue_url.to_owned(),
        handler,
        batch_size: 10,
        concurrency,
    }
}

#[tokio::test]
async fn failed_messages_are_redelivered_and_the_rest_deleted() {
    let client = sqs_client().await;
    let queue_url = create_queue(&client).await;
    for body in ["ok-1", "fail-me", "ok-2"] {
        send(&client, &queue_url, body).await;
    }
    let deliveries = Arc::new(Mutex::new(Deliveries::default()));
    let binding = Arc::new(binding(&queue_url, flaky_handler(deliveries.clone()), 2));

    // WHEN one poll receives the three messages and the handler fails one
    let poller = Poller::new(client.clone(), binding.clone()).await.unwrap();
    let mut first = PollReport::default();
    while first.received < 3 {
        let report = poller.poll_once().await.unwrap();
        first.received += report.received;
        first.deleted += report.deleted;
        first.failed += report.failed;
    }
    // THEN the two others are deleted and the failed one is left on the queue
    assert_eq!(
        first,
        PollReport {
            received: 3,
            deleted: 2,
            failed: 1
        }
    );

    // WHEN the pollers run, the failed message comes back after the visibility timeout
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    queues::spawn(&client, vec![(*binding).clone()], &mut tasks, &shutdown)
        .await
        .unwrap();
    let redelivered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if deliveries.lock().unwrap().of("fail-me").len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    assert!(
        redelivered.is_ok(),
        "fail-me was not redelivered within 30 s"
    );

    // THEN it succeeded the second time, the others were never redelivered, and the queue is empty
    let deliveries = std::mem::take(&mut *deliveries.lock().unwrap());
    assert_eq!(deliveries.of("ok-1").len(), 1);
    assert_eq!(deliveries.of("ok-2").len(), 1);
    let failed = deliveries.of("fail-me");
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        failed[1]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(messages_left(&client, &queue_url).await, (0, 0));

    // AND the records look like Lambda's
    let record = failed[1];
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    let arn = record.event_source_arn.as_deref().unwrap();
    assert!(
        arn.starts_with("arn:aws:sqs:") && arn.ends_with(queue_url.rsplit('/').next().unwrap()),
        "{arn}"
    );
    assert!(
        record
            .aws_region
            .as_deref()
            .is_some_and(|region| !region.is_empty())
    );
    assert!(record.receipt_handle.is_some() && record.md5_of_body.is_some());
    assert!(record.attributes.contains_key("SentTimestamp"));
    let kind = &record.message_attributes["kind"];
    assert_eq!(kind.string_value.as_deref(), Some("partition"));
    assert_eq!(kind.data_type.as_deref(), Some("String"));

    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_panicking_handler_or_an_unknown_failure_id_fails_the_whole_batch() {
    let client = sqs_client().await;
    let queue_url = create_queue(&client).await;
    send(&client, &queue_url, "one").await;
    send(&client, &queue_url, "two").await;

    let panicking: QueueHandler =
        Arc::new(|_event: SqsEvent| async move { panic!("the handler blew up") }.boxed());
    let poller = Poller::new(client.clone(), Arc::new(binding(&queue_url, panicking, 1)))
        .await
        .unwrap();
    let report = poller.poll_once().await.unwrap();
    assert!(report.received > 0);
    assert_eq!(report.deleted, 0);
    assert_eq!(report.failed, report.received);

    // After the visibility timeout, a handler naming an id outside the batch: nothing deleted.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let confused: QueueHandler = Arc::new(|_event: SqsEvent| {
        async move {
            let mut response = SqsBatchResponse::default();
            response.add_failure("not-a-message-of-this-batch");
            response
        }
        .boxed()
    });
    let poller = Poller::new(client.clone(), Arc::new(binding(&queue_url, confused, 1)))
        .await
        .unwrap();
    let report = poller.poll_once().await.unwrap();
    assert!(report.received > 0);
    assert_eq!(report.deleted, 0);

    let (visible, in_flight) = messages_left(&client, &queue_url).await;
    assert_eq!(visible + in_flight, 2);
    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
}
