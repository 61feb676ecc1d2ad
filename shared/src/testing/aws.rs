//! A DynamoDB table and an SQS queue of one's own on the local AWS endpoint (moto_server), shaped
//! like template.yaml's settlement table and queue and deleted when the [`TestAws`] drops.
//!
//! `AWS_ENDPOINT_URL` (default `http://127.0.0.1:5001`, where `scripts/test` starts moto) is the
//! endpoint; credentials are fixed test ones, so a test can never reach a real account.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::{config::Credentials, types::QueueAttributeName};

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5001".into())
}

/// The SDK configuration every test client is built from.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-2"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "kicksync-tests",
        ))
        .load()
        .await
}

#[derive(Debug)]
pub struct TestAws {
    pub sdk: SdkConfig,
    pub table: String,
    pub queue_url: String,
}

impl TestAws {
    /// A fresh table (`pk` S) and queue; `visibility_timeout_secs` is how soon a message that was
    /// received and not deleted comes back.
    pub async fn new(visibility_timeout_secs: u32) -> Self {
        let sdk = sdk_config().await;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let table = format!("kst-runs-{}", &unique[..16]);
        aws_sdk_dynamodb::Client::new(&sdk)
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .send()
            .await
            .expect("create test table (is moto_server on AWS_ENDPOINT_URL?)");
        let queue_url = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(format!("kst-partitions-{}", &unique[..16]))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            )
            .send()
            .await
            .expect("create test queue")
            .queue_url
            .expect("queue url");
        Self {
            sdk,
            table,
            queue_url,
        }
    }

    /// The configuration variables that point a [`crate::Config`] at these resources.
    pub fn vars(&self) -> [(&str, &str); 2] {
        [
            ("SETTLEMENT_RUNS_TABLE", self.table.as_str()),
            ("SETTLEMENT_QUEUE_URL", self.queue_url.as_str()),
        ]
    }
}

impl Drop for TestAws {
    fn drop(&mut self) {
        let sdk = self.sdk.clone();
        let table = self.table.clone();
        let queue_url = self.queue_url.clone();
        // As in TestContext: the test's runtime is blocked here, so clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                let _ = aws_sdk_dynamodb::Client::new(&sdk)
                    .delete_table()
                    .table_name(table)
                    .send()
                    .await;
                let _ = aws_sdk_sqs::Client::new(&sdk)
                    .delete_queue()
                    .queue_url(queue_url)
                    .send()
                    .await;
            });
        });
        let _ = cleanup.join();
    }
}
