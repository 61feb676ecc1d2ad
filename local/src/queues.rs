//! The SQS event source mapping stand-in: long-polls a queue and feeds its handler real
//! `SqsEvent`s.
//!
//! Each [`QueueBinding`] runs `concurrency` pollers (Lambda's `MaximumConcurrency`). A poller
//! receives up to `batch_size` messages (system and message attributes included), builds the
//! `SqsEvent` Lambda would build, awaits the handler and deletes every message the handler did
//! not list in `batch_item_failures` (`ReportBatchItemFailures`). The failed ones stay on the
//! queue and reappear after its visibility timeout, so the queue's redrive policy moves them to
//! the dead-letter queue after `maxReceiveCount` receives, as it does in AWS.
//!
//! As with Lambda, the whole batch counts as failed (nothing is deleted) when the handler panics
//! or names a message id that was not in the batch.

use std::{collections::HashSet, fmt, sync::Arc, time::Duration};

use aws_lambda_events::{
    encodings::Base64Data,
    sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute},
};
use aws_sdk_sqs::{
    Client,
    error::DisplayErrorContext,
    types::{
        DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
        QueueAttributeName,
    },
};
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long one ReceiveMessage waits for messages (long polling); also bounds how long an idle
/// poller takes to notice nothing, never how long shutdown takes.
pub const LONG_POLL: Duration = Duration::from_secs(1);
/// SQS hands out at most this many messages per receive, and Lambda's batch is at most this
/// for a standard queue without a batching window.
pub const MAX_BATCH_SIZE: i32 = 10;
/// A poller whose receive failed (queue missing, endpoint down) waits this long to retry.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// A queue handler: the event in, the ids of the messages it could not process out.
pub type QueueHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// One SQS event source mapping: a queue and the function it feeds.
#[derive(Clone)]
pub struct QueueBinding {
    pub name: String,
    pub queue_url: String,
    pub handler: QueueHandler,
    /// Messages per event, 1..=10.
    pub batch_size: i32,
    /// Pollers running at once (Lambda's `MaximumConcurrency`), at least 1.
    pub concurrency: usize,
}

impl fmt::Debug for QueueBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBinding")
            .field("name", &self.name)
            .field("queue_url", &self.queue_url)
            .field("batch_size", &self.batch_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS {operation} on {queue}: {message}")]
    Sqs {
        operation: &'static str,
        queue: String,
        message: String,
    },
}

impl QueueError {
    fn sqs(operation: &'static str, queue: &str, err: impl std::error::Error) -> Self {
        Self::Sqs {
            operation,
            queue: queue.to_owned(),
            message: DisplayErrorContext(err).to_string(),
        }
    }
}

/// What one receive, invoke and delete cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    pub received: usize,
    pub deleted: usize,
    /// Left on the queue for redelivery.
    pub failed: usize,
}

/// Polls one queue for one binding.
#[derive(Debug, Clone)]
pub struct Poller {
    client: Client,
    binding: Arc<QueueBinding>,
    /// What Lambda puts in `eventSourceARN`.
    queue_arn: String,
    region: String,
}

impl Poller {
    /// Looks the queue's ARN up once, which also proves the queue exists.
    pub async fn new(client: Client, binding: Arc<QueueBinding>) -> Result<Self, QueueError> {
        let attributes = client
            .get_queue_attributes()
            .queue_url(&binding.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|err| QueueError::sqs("GetQueueAttributes", &binding.name, err))?;
        let queue_arn = attributes
            .attributes()
            .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let region = client
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_default();
        Ok(Self {
            client,
            binding,
            queue_arn,
            region,
        })
    }

    /// Receives one batch (waiting up to [`LONG_POLL`]), hands it to the handler and deletes the
    /// messages that did not fail.
    pub async fn poll_once(&self) -> Result<PollReport, QueueError> {
        let messages = self.receive().await?;
        self.process(&messages).await
    }

    /// Polls until `shutdown`. Only the wait for messages is cut short: a batch being handled
    /// is finished, and its messages deleted, first.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = self.receive() => received,
            };
            let result = match received {
                Ok(messages) => self.process(&messages).await,
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                tracing::warn!(queue = %self.binding.name, error = %err, "polling failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER_ERROR) => {}
                }
            }
        }
    }

    async fn receive(&self) -> Result<Vec<Message>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.binding.queue_url)
            .max_number_of_messages(self.binding.batch_size.clamp(1, MAX_BATCH_SIZE))
            .wait_time_seconds(i32::try_from(LONG_POLL.as_secs()).unwrap_or(1))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|err| QueueError::sqs("ReceiveMessage", &self.binding.name, err))?;
        Ok(output.messages.unwrap_or_default())
    }

    async fn process(&self, messages: &[Message]) -> Result<PollReport, QueueError> {
        if messages.is_empty() {
            return Ok(PollReport::default());
        }
        let event = self.event(messages);
        // A panicking handler must not take the poller down; Lambda would record a failed
        // invocation and leave the whole batch on the queue.
        let outcome = tokio::spawn((self.binding.handler)(event)).await;
        let failed: HashSet<String> = match outcome {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|failure| failure.item_identifier)
                .collect(),
            Err(err) => {
                tracing::error!(queue = %self.binding.name, error = %err, "queue handler panicked; batch left on the queue");
                return Ok(PollReport {
                    received: messages.len(),
                    deleted: 0,
                    failed: messages.len(),
                });
            }
        };
        let known = |id: &String| messages.iter().any(|m| m.message_id() == Some(id.as_str()));
        if !failed.iter().all(known) {
            tracing::error!(queue = %self.binding.name, ?failed, "handler reported ids not in the batch; whole batch failed");
            return Ok(PollReport {
                received: messages.len(),
                deleted: 0,
                failed: messages.len(),
            });
        }
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_none_or(|id| !failed.contains(id)))
            .collect();
        let deleted = self.delete(&done).await?;
        Ok(PollReport {
            received: messages.len(),
            deleted,
            failed: failed.len(),
        })
    }

    fn event(&self, messages: &[Message]) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| self.record(m)).collect();
        event
    }

    /// One record as Lambda delivers it.
    fn record(&self, message: &Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id().map(str::to_owned);
        record.receipt_handle = message.receipt_handle().map(str::to_owned);
        record.body = message.body().map(str::to_owned);
        record.md5_of_body = message.md5_of_body().map(str::to_owned);
        record.md5_of_message_attributes = message.md5_of_message_attributes().map(str::to_owned);
        record.attributes = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
            .collect();
        record.message_attributes = message
            .message_attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.clone(), message_attribute(value)))
            .collect();
        record.event_source = Some("aws:sqs".to_owned());
        record.event_source_arn = Some(self.queue_arn.clone());
        record.aws_region = Some(self.region.clone());
        record
    }

    /// Deletes in one DeleteMessageBatch; returns how many SQS confirmed.
    async fn delete(&self, messages: &[&Message]) -> Result<usize, QueueError> {
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{index}"))
                    .receipt_handle(message.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let output = self
            .client
            .delete_message_batch()
            .queue_url(&self.binding.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| QueueError::sqs("DeleteMessageBatch", &self.binding.name, err))?;
        for failure in output.failed() {
            tracing::warn!(queue = %self.binding.name, entry = failure.id(), code = failure.code(), "message not deleted; it will be redelivered");
        }
        Ok(output.successful().len())
    }
}

fn message_attribute(value: &MessageAttributeValue) -> SqsMessageAttribute {
    let binary = |blob: &aws_sdk_sqs::primitives::Blob| {
        let mut data = Base64Data::default();
        *data = blob.as_ref().to_vec();
        data
    };
    let mut attribute = SqsMessageAttribute::default();
    attribute.string_value = value.string_value().map(str::to_owned);
    attribute.binary_value = value.binary_value().map(binary);
    attribute.string_list_values = value.string_list_values().to_vec();
    attribute.binary_list_values = value.binary_list_values().iter().map(binary).collect();
    attribute.data_type = Some(value.data_type().to_owned());
    attribute
}

/// Starts `concurrency` pollers per binding on `tasks`; they stop when `shutdown` is cancelled.
/// Fails if a queue cannot be found, so a misconfigured runner says so at start-up.
pub async fn spawn(
    client: &Client,
    bindings: Vec<QueueBinding>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), QueueError> {
    for binding in bindings {
        let concurrency = binding.concurrency.max(1);
        let poller = Poller::new(client.clone(), Arc::new(binding)).await?;
        for _ in 0..concurrency {
            tasks.spawn(poller.clone().run(shutdown.clone()));
        }
    }
    Ok(())
}
