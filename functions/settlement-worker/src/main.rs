//! The `settlement-worker` Lambda binary: build the dependencies once, then settle the
//! partitions of each SQS batch, reporting the ones that failed.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::{Config, Platform, adapters::aws, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let platform = Platform::new(Config::from_lambda_env()?)?;
    // The stores' handshakes overlap the SDK's configuration.
    let (sdk, ()) = tokio::join!(aws::sdk_config(&platform.config.aws), platform.connect());
    let deps = &settlement_worker::Deps::new(&platform, &sdk);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, Error>(settlement_worker::handle(deps, event.payload).await)
    }))
    .await
}
