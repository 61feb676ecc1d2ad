//! Which webhook ids were handled: DynamoDB (`IDEMPOTENCY_TABLE`, hash key `pk`, TTL `expires_at`).
//!
//! A webhook takes effect once, even when PortOne delivers it again or several copies arrive at
//! the same instant. Each id has one item `webhook#<id>`, in one of two states:
//!
//! - **claimed**: one handler is working on it, until `lease_until` (Unix seconds). The claim is a
//!   conditional write (absent, or a claim whose lease ran out), so of many copies exactly one
//!   handles it. A handler that fails gives the claim back, and one that dies leaves it to expire,
//!   so PortOne's retry is handled again: only a committed outcome marks an id done.
//! - **done**: the outcome committed; copies and retries are answered without asking PortOne
//!   again. Kept for [`KEEP_DONE`], far longer than PortOne keeps retrying.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::AttributeValue,
};
use chrono::{DateTime, Utc};

/// How long a done id is remembered.
pub const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const CLAIMED: &str = "CLAIMED";
const DONE: &str = "DONE";

/// DynamoDB failed or could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("DynamoDB {operation} on the webhook ids failed: {detail}")]
pub struct WebhookIdError {
    operation: &'static str,
    detail: String,
}

impl WebhookIdError {
    fn new<E: ProvideErrorMetadata + std::fmt::Debug>(
        operation: &'static str,
        err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Self {
        let detail = match err {
            SdkError::ServiceError(service) => format!(
                "{}: {}",
                service.err().code().unwrap_or("unknown"),
                service.err().message().unwrap_or_default()
            ),
            other => format!("{other:?}"),
        };
        Self { operation, detail }
    }
}

/// The answer to "may I handle this webhook id?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Yes: handle it, then [`WebhookIds::finish`] or [`WebhookIds::give_back`] with this token.
    Ours { token: String },
    /// Its outcome committed earlier: answer 2xx and do nothing.
    Done,
    /// Another handler holds a live claim on it right now.
    Busy,
}

#[derive(Debug, Clone)]
pub struct WebhookIds {
    client: Client,
    table: String,
    /// How long a claim keeps others away: longer than a handler can take (PortOne and MySQL
    /// calls are bounded by their timeouts), short enough that a crashed handler's retry is handled.
    lease: Duration,
}

fn key(webhook_id: &str) -> AttributeValue {
    AttributeValue::S(format!("webhook#{webhook_id}"))
}

fn seconds(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn is_condition_failed<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    matches!(err, SdkError::ServiceError(service)
        if service.err().code() == Some("ConditionalCheckFailedException"))
}

impl WebhookIds {
    pub fn new(client: Client, table: impl Into<String>, lease: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            lease,
        }
    }

    /// Claims `webhook_id` for this handler, or says why not.
    pub async fn claim(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, WebhookIdError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let lease_secs = i64::try_from(self.lease.as_secs()).unwrap_or(i64::MAX);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", key(webhook_id))
            .item("status", text(CLAIMED))
            .item("token", text(&token))
            .item(
                "lease_until",
                seconds(now.timestamp().saturating_add(lease_secs)),
            )
            .item("expires_at", seconds(now.timestamp() + keep_secs()))
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :claimed AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":claimed", text(CLAIMED))
            .expression_attribute_values(":now", seconds(now.timestamp()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::Ours { token }),
            Err(err) if is_condition_failed(&err) => Ok(match self.status(webhook_id).await? {
                Some(status) if status == DONE => Claim::Done,
                _ => Claim::Busy,
            }),
            Err(err) => Err(WebhookIdError::new("PutItem", &err)),
        }
    }

    /// Marks the id done once its outcome committed. Unconditional: should our lease have run
    /// out and another handler claimed the id, the outcome is committed all the same (both ran
    /// the same guarded transitions, which change the state once).
    pub async fn finish(&self, webhook_id: &str, now: DateTime<Utc>) -> Result<(), WebhookIdError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(webhook_id))
            .update_expression("SET #status = :done, expires_at = :expires REMOVE lease_until")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", text(DONE))
            .expression_attribute_values(":expires", seconds(now.timestamp() + keep_secs()))
            .send()
            .await
            .map_err(|err| WebhookIdError::new("UpdateItem", &err))?;
        Ok(())
    }

    /// Gives a claim back after a failure, so PortOne's retry is handled at once instead of
    /// after the lease. Only our own claim is removed.
    pub async fn give_back(&self, webhook_id: &str, token: &str) -> Result<(), WebhookIdError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", key(webhook_id))
            .condition_expression("#status = :claimed AND #token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":claimed", text(CLAIMED))
            .expression_attribute_values(":token", text(token))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failed(&err) => Ok(()),
            Err(err) => Err(WebhookIdError::new("DeleteItem", &err)),
        }
    }

    /// `CLAIMED` or `DONE`, or `None` for an id never seen (or forgotten).
    pub async fn status(&self, webhook_id: &str) -> Result<Option<String>, WebhookIdError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(webhook_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| WebhookIdError::new("GetItem", &err))?;
        let item: HashMap<String, AttributeValue> = output.item.unwrap_or_default();
        Ok(item
            .get("status")
            .and_then(|value| value.as_s().ok())
            .cloned())
    }
}

fn keep_secs() -> i64 {
    i64::try_from(KEEP_DONE.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::testing::aws::TestAws;

    async fn ids(lease_secs: u64) -> (TestAws, WebhookIds) {
        let aws = TestAws::new(30).await;
        let ids = WebhookIds::new(
            Client::new(&aws.sdk),
            aws.table.clone(),
            Duration::from_secs(lease_secs),
        );
        (aws, ids)
    }

    fn ours(claim: Claim) -> String {
        match claim {
            Claim::Ours { token } => token,
            other => panic!("expected our claim, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_claim_at_a_time_then_done_for_good() {
        let (_aws, ids) = ids(60).await;
        let now = Utc::now();
        ours(ids.claim("wh_1", now).await.unwrap());
        assert_eq!(ids.claim("wh_1", now).await.unwrap(), Claim::Busy);
        ids.finish("wh_1", now).await.unwrap();
        assert_eq!(ids.claim("wh_1", now).await.unwrap(), Claim::Done);
        // Long after any lease: still done.
        let later = now + TimeDelta::hours(2);
        assert_eq!(ids.claim("wh_1", later).await.unwrap(), Claim::Done);
        // Another id is independent.
        ours(ids.claim("wh_2", now).await.unwrap());
    }

    #[tokio::test]
    async fn a_claim_given_back_or_expired_can_be_taken_again() {
        let (_aws, ids) = ids(60).await;
        let now = Utc::now();
        let token = ours(ids.claim("wh_1", now).await.unwrap());
        // Someone else's token removes nothing.
        ids.give_back("wh_1", "not-the-token").await.unwrap();
        assert_eq!(ids.claim("wh_1", now).await.unwrap(), Claim::Busy);
        ids.give_back("wh_1", &token).await.unwrap();
        let token = ours(ids.claim("wh_1", now).await.unwrap());
        assert!(!token.is_empty());
        // A handler that died leaves its claim to expire: the retry after the lease takes it.
        let after_lease = now + TimeDelta::seconds(61);
        ours(ids.claim("wh_1", after_lease).await.unwrap());
    }

    #[tokio::test]
    async fn of_many_copies_at_once_exactly_one_claims() {
        let (_aws, ids) = ids(60).await;
        let now = Utc::now();
        let claims = futures::future::join_all((0..20).map(|_| ids.claim("wh_race", now))).await;
        let won = claims
            .iter()
            .filter(|claim| matches!(claim, Ok(Claim::Ours { .. })))
            .count();
        assert_eq!(won, 1, "{claims:?}");
        assert!(claims.iter().all(|claim| claim.is_ok()));
    }
}
