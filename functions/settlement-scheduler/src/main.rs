//! The `settlement-scheduler` Lambda binary: build the dependencies once, then start a run per
//! EventBridge fire.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::{Config, Platform, adapters::aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    // The stores' handshakes overlap the SDK's configuration.
    let (sdk, ()) = tokio::join!(aws::sdk_config(&platform.config.aws), platform.connect());
    let deps = &settlement_scheduler::Deps::new(&platform, &sdk);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        settlement_scheduler::handle(deps, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
