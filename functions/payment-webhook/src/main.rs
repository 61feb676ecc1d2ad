//! The `payment-webhook` Lambda binary: build the dependencies once, then serve requests with them.
// The webhook handler's future nests deep enough (verify, cross-check, cancel, give back) that
// the arm64 release build needs more than the default 128 levels to compute its layout.
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
    let platform = Platform::new(Config::from_lambda_env()?)?;
    // The stores' handshakes overlap the SDK's configuration.
    let (sdk, ()) = tokio::join!(aws::sdk_config(&platform.config.aws), platform.connect());
    let gateway = Arc::new(PortOneClient::new(&platform.config.portone)?);
    let deps = &payment_webhook::Deps::new(&platform, gateway, aws::dynamodb(&sdk))?;
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, Error>(payment_webhook::handle(deps, req).await)
    }))
    .await
}
