//! The registry of Lambda functions the runner hosts.
//!
//! Each function's `Deps` is built once, from one [`Platform`], so every function shares the same
//! MySQL pool and Redis connection, just as each Lambda binary builds its `Deps` once at cold
//! start. The gateway calls [`Functions::dispatch`] with the function name from
//! [`shared::routes::ROUTES`].
//!
//! # Adding a function
//!
//! 1. a field with its `Deps` in [`Functions`] and one line in [`Functions::new`];
//! 2. one arm in [`Functions::dispatch`] (HTTP functions);
//! 3. its `ApiDoc` in [`api_docs`] (HTTP functions);
//! 4. its binding in [`Functions::schedules`] or [`Functions::queues`] (EventBridge and SQS
//!    functions).
//!
//! The tests fail when step 2 or 3 is forgotten for a function named in the route table.

use std::sync::Arc;

use futures::FutureExt;
use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::{
    Config, Platform,
    adapters::{aws, portone::PortOneClient},
    error::ProblemCode,
    ports::PaymentGateway,
    routes,
};
use utoipa::OpenApi;

use crate::{
    gateway::problem,
    queues::QueueBinding,
    schedules::{BindingError, ScheduleBinding, ScheduleHandler},
};

/// What the runner answers (500) when the route table names a function it does not host.
pub const FUNCTION_NOT_REGISTERED: ProblemCode = ProblemCode::FunctionNotRegistered;

/// Every function's dependencies, built once and shared by all requests.
#[derive(Debug)]
pub struct Functions {
    auth: auth::Deps,
    products: products::Deps,
    orders: orders::Deps,
    payment_webhook: payment_webhook::Deps,
    order_sweeper: order_sweeper::Deps,
    admin: admin::Deps,
    settlement_scheduler: settlement_scheduler::Deps,
    settlement_worker: settlement_worker::Deps,
}

/// A scheduled function's EventBridge Scheduler schedule, as template.yaml declares it (its
/// `ScheduleV2` event; `local/tests/integration/route_sets.rs` compares the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The function (binary name); also the name `kicksync-local fire` takes.
    pub function: &'static str,
    pub expression: &'static str,
    /// IANA time zone (`ScheduleExpressionTimezone`; UTC when the template leaves it out).
    pub timezone: &'static str,
}

impl Schedule {
    fn bind(self, handler: ScheduleHandler) -> Result<ScheduleBinding, BindingError> {
        ScheduleBinding::new(self.function, self.expression, self.timezone, handler)
    }
}

pub const ORDER_SWEEPER_SCHEDULE: Schedule = Schedule {
    function: "order-sweeper",
    expression: "rate(1 minute)",
    timezone: "UTC",
};
pub const SETTLEMENT_SCHEDULE: Schedule = Schedule {
    function: "settlement-scheduler",
    expression: "cron(0 4 * * ? *)",
    timezone: "Asia/Seoul",
};
/// Every schedule the runner fires.
pub const SCHEDULES: [Schedule; 2] = [ORDER_SWEEPER_SCHEDULE, SETTLEMENT_SCHEDULE];

/// The settlement worker's SQS event source mapping, as template.yaml declares it: one partition
/// per invocation, at most this many invocations at once.
pub const SETTLEMENT_WORKER_BATCH_SIZE: i32 = 1;
pub const SETTLEMENT_WORKER_CONCURRENCY: usize = 8;

impl Functions {
    /// Async because the AWS SDK configuration loads asynchronously (it builds no connection).
    /// Fails only on configuration a Lambda binary would refuse too (the PortOne client or the
    /// webhook secret).
    pub async fn new(platform: &Platform) -> anyhow::Result<Self> {
        let sdk = aws::sdk_config(&platform.config.aws).await;
        let portone: Arc<dyn PaymentGateway> =
            Arc::new(PortOneClient::new(&platform.config.portone)?);
        Ok(Self {
            auth: auth::Deps::new(platform),
            products: products::Deps::new(platform),
            orders: orders::Deps::new(platform, Arc::clone(&portone)),
            payment_webhook: payment_webhook::Deps::new(platform, portone, aws::dynamodb(&sdk))?,
            order_sweeper: order_sweeper::Deps::new(platform),
            admin: admin::Deps::new(platform, &sdk),
            settlement_scheduler: settlement_scheduler::Deps::new(platform, &sdk),
            settlement_worker: settlement_worker::Deps::new(platform, &sdk),
        })
    }

    /// Calls the handler of `function`, as Lambda would invoke that function with `req`.
    ///
    /// Each handler's future is boxed: unboxed, this future would be as large as the largest of
    /// them (kilobytes, the admin function's AWS SDK calls), and every request would copy that
    /// much as the gateway's and axum's futures wrapping it are moved.
    pub async fn dispatch(&self, function: &str, req: Request) -> Response<Body> {
        match function {
            routes::AUTH => Box::pin(auth::handle(&self.auth, req)).await,
            routes::PRODUCTS => Box::pin(products::handle(&self.products, req)).await,
            routes::ORDERS => Box::pin(orders::handle(&self.orders, req)).await,
            routes::PAYMENT_WEBHOOK => {
                Box::pin(payment_webhook::handle(&self.payment_webhook, req)).await
            }
            routes::ADMIN => Box::pin(admin::handle(&self.admin, req)).await,
            other => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                FUNCTION_NOT_REGISTERED,
                &format!(
                    "the route table names function `{other}`, which the local runner does not host"
                ),
            ),
        }
    }

    /// The EventBridge schedules of the scheduled functions, bound to their handlers
    /// ([`ORDER_SWEEPER_SCHEDULE`], [`SETTLEMENT_SCHEDULE`]).
    pub fn schedules(self: &Arc<Self>) -> Vec<ScheduleBinding> {
        let this = Arc::clone(self);
        let sweeper = ORDER_SWEEPER_SCHEDULE.bind(Arc::new(move |event| {
            let this = Arc::clone(&this);
            async move {
                let report = order_sweeper::handle(&this.order_sweeper, event).await?;
                Ok(serde_json::to_value(report)?)
            }
            .boxed()
        }));
        let this = Arc::clone(self);
        let settlement = SETTLEMENT_SCHEDULE.bind(Arc::new(move |event| {
            let this = Arc::clone(&this);
            async move {
                let report =
                    settlement_scheduler::handle(&this.settlement_scheduler, event).await?;
                Ok(serde_json::to_value(report)?)
            }
            .boxed()
        }));
        [sweeper, settlement]
            .into_iter()
            .filter_map(|binding| {
                binding
                    .map_err(|err| tracing::error!(%err, "schedule not bound"))
                    .ok()
            })
            .collect()
    }

    /// The SQS queues of the queue-triggered functions (`settlement-worker` binds here once it
    /// exists, with the queue URL from `config.aws.settlement_queue_url`).
    pub fn queues(self: &Arc<Self>, config: &Config) -> Vec<QueueBinding> {
        let mut bindings = Vec::new();
        match &config.aws.settlement_queue_url {
            Some(queue_url) => {
                let this = Arc::clone(self);
                bindings.push(QueueBinding {
                    name: "settlement-worker".to_owned(),
                    queue_url: queue_url.clone(),
                    handler: Arc::new(move |event| {
                        let this = Arc::clone(&this);
                        async move { settlement_worker::handle(&this.settlement_worker, event).await }
                            .boxed()
                    }),
                    batch_size: SETTLEMENT_WORKER_BATCH_SIZE,
                    concurrency: SETTLEMENT_WORKER_CONCURRENCY,
                });
            }
            None => {
                tracing::warn!("SETTLEMENT_QUEUE_URL is not set; settlement-worker is not bound")
            }
        }
        bindings
    }
}

/// The OpenAPI document of every HTTP function, merged into one by [`crate::docs`].
pub fn api_docs() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        auth::ApiDoc::openapi(),
        products::ApiDoc::openapi(),
        orders::ApiDoc::openapi(),
        payment_webhook::ApiDoc::openapi(),
        admin::ApiDoc::openapi(),
    ]
}

/// The gateway's view of the registry: tests put a fake function behind the real gateway.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch(&self, function: &str, req: Request)
    -> impl Future<Output = Response<Body>> + Send;
}

impl Dispatch for Functions {
    fn dispatch(
        &self,
        function: &str,
        req: Request,
    ) -> impl Future<Output = Response<Body>> + Send {
        Functions::dispatch(self, function, req)
    }
}
