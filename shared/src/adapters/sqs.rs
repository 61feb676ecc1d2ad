//! SQS: sending many messages with `SendMessageBatch`, ten per call (the SQS limit), retrying the
//! entries SQS reports as failed.

use aws_sdk_sqs::{Client, error::DisplayErrorContext, types::SendMessageBatchRequestEntry};
use futures::future::try_join_all;

/// Entries per `SendMessageBatch`: the most SQS accepts.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Attempts per entry before the send is reported as failed.
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
#[error("SQS SendMessageBatch: {0}")]
pub struct SendError(pub String);

/// Sends every body to `queue_url`; the batches go out concurrently. Fails if any message could
/// not be sent after [`ATTEMPTS`] tries (those that were sent stay sent: receivers must be
/// idempotent anyway).
pub async fn send_all(
    client: &Client,
    queue_url: &str,
    bodies: &[String],
) -> Result<(), SendError> {
    try_join_all(
        bodies
            .chunks(MAX_BATCH_ENTRIES)
            .map(|chunk| send_batch(client, queue_url, chunk)),
    )
    .await?;
    Ok(())
}

async fn send_batch(client: &Client, queue_url: &str, bodies: &[String]) -> Result<(), SendError> {
    // Entry ids are positions in `bodies`, so a failed id maps back to its body.
    let mut pending: Vec<usize> = (0..bodies.len()).collect();
    for _ in 0..ATTEMPTS {
        let entries = pending
            .iter()
            .map(|&index| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(&bodies[index])
                    .build()
                    .map_err(|err| SendError(err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|err| SendError(DisplayErrorContext(err).to_string()))?;
        pending = output
            .failed()
            .iter()
            .filter_map(|failure| failure.id().parse().ok())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            failed = pending.len(),
            "SQS refused some entries; retrying them"
        );
    }
    Err(SendError(format!(
        "{} message(s) still refused after {ATTEMPTS} attempts",
        pending.len()
    )))
}
