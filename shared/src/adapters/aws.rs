//! AWS SDK clients. Locally `AWS_ENDPOINT_URL` points them at moto_server or LocalStack.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsConfig;

/// Loads the SDK configuration once; build every client from it.
pub async fn sdk_config(config: &AwsConfig) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone()));
    if let Some(endpoint) = &config.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}
