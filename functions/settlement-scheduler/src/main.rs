//! The `settlement-scheduler` Lambda binary: build the dependencies once, then start a run per
//! EventBridge fire.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::{Config, Platform, adapters::aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    let sdk = aws::sdk_config(&platform.config.aws).await;
    let deps = &settlement_scheduler::Deps::new(&platform, &sdk);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        settlement_scheduler::handle(deps, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
