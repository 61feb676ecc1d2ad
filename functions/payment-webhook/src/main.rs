//! The `payment-webhook` Lambda binary: build the dependencies once, then serve requests with them.

// The handler's future nests deeply enough that computing its layout can overflow rustc's
// default query depth (128): `cargo clippy --workspace --all-targets --all-features` failed so on
// rustc 1.95.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_http::{Error, service_fn};
use shared::{
    Config, Platform,
    adapters::{aws, portone::PortOneClient},
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_env()?)?;
    let sdk = aws::sdk_config(&platform.config.aws).await;
    let gateway = Arc::new(PortOneClient::new(&platform.config.portone)?);
    let deps = &payment_webhook::Deps::new(&platform, gateway, aws::dynamodb(&sdk))?;
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(payment_webhook::handle(deps, req).await)
    }))
    .await
}
