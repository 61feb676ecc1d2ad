//! One server: the gateway, the API document, the runner's control routes, the SQS pollers and
//! the schedules, started together and stopped together.

use std::{io, net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{Router, serve::ListenerExt};
use shared::{
    Platform,
    adapters::{aws, redis::RedisStore},
    config::AwsConfig,
    routes::{ROUTES, Route},
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    bench_floor, docs,
    functions::Functions,
    gateway,
    queues::{self, QueueBinding},
    schedules::{self, ScheduleBinding, Schedules},
};

/// Everything the runner serves over HTTP: the Lambda routes, `/openapi.json` and `/docs`, and
/// `POST /_local/schedules/{name}`; anything else is a 404 problem.
pub fn app(functions: &Arc<Functions>, schedules: Arc<Schedules>) -> Router {
    gateway::router(ROUTES, functions)
        .merge(docs::router())
        .merge(schedules.control_router())
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    functions: Arc<Functions>,
    schedules: Arc<Schedules>,
    queues: Vec<QueueBinding>,
    aws: AwsConfig,
    /// Set by [`Server::with_bench_floor`]: the Redis store the floor route reads.
    bench_floor: Option<RedisStore>,
}

impl Server {
    /// Binds `addr` and wires every function, schedule and queue the registry declares.
    pub async fn bind(platform: &Platform, addr: SocketAddr) -> io::Result<Self> {
        let functions = Arc::new(Functions::new(platform).await.map_err(io::Error::other)?);
        let schedules = functions.schedules();
        let queues = functions.queues(&platform.config);
        Self::bind_with(functions, schedules, queues, &platform.config.aws, addr).await
    }

    /// Like [`Server::bind`] with the given schedules and queues (tests bind their own).
    pub async fn bind_with(
        functions: Arc<Functions>,
        schedules: Vec<ScheduleBinding>,
        queues: Vec<QueueBinding>,
        aws: &AwsConfig,
        addr: SocketAddr,
    ) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            functions,
            schedules: Arc::new(Schedules::new(schedules, &aws.region)),
            queues,
            aws: aws.clone(),
            bench_floor: None,
        })
    }

    /// Bench only: also serve `GET /_bench/floor` and `POST /_bench/drop-floor` (see
    /// [`bench_floor`]), the baselines of `bench products-list` and `bench drop`.
    #[must_use]
    pub fn with_bench_floor(mut self, redis: RedisStore) -> Self {
        self.bench_floor = Some(redis);
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The base URL clients use: an unspecified bind address (`0.0.0.0`) is reached on loopback.
    pub fn base_url(&self) -> io::Result<String> {
        let mut addr = self.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(format!("http://{addr}"))
    }

    /// What the server serves, one line each, for the console.
    pub fn describe(&self) -> io::Result<Vec<String>> {
        let base = self.base_url()?;
        let mut lines = vec![
            format!("API          {base}"),
            format!("Swagger UI   {base}{}", docs::DOCS_PATH),
            format!("OpenAPI      {base}{}", docs::OPENAPI_PATH),
            format!("Health       {base}/health"),
            String::new(),
            "Routes:".to_owned(),
        ];
        lines.extend(ROUTES.iter().map(|route| route_line(&base, route)));
        lines.push(String::new());
        if self.schedules.bindings().is_empty() {
            lines.push("Schedules:   none".to_owned());
        } else {
            lines.push(format!(
                "Schedules (fire one now: POST {base}{}):",
                schedules::FIRE_ROUTE
            ));
            lines.extend(self.schedules.bindings().iter().map(|binding| {
                format!(
                    "  {:<24} {} ({})",
                    binding.name, binding.expression_text, binding.timezone
                )
            }));
        }
        if self.queues.is_empty() {
            lines.push("Queues:      none".to_owned());
        } else {
            lines.push("Queues:".to_owned());
            lines.extend(self.queues.iter().map(|queue| {
                format!(
                    "  {:<24} {} (batch {}, {} pollers)",
                    queue.name, queue.queue_url, queue.batch_size, queue.concurrency
                )
            }));
        }
        Ok(lines)
    }

    /// Serves until `shutdown` is cancelled, then lets requests in flight finish, stops the
    /// pollers and schedules (each finishes the batch or fire it is in) and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut background = JoinSet::new();
        if !self.queues.is_empty() {
            let sdk = aws::sdk_config(&self.aws).await;
            queues::spawn(&aws::sqs(&sdk), self.queues, &mut background, &shutdown)
                .await
                .context("starting the SQS pollers")?;
        }
        self.schedules.spawn(&mut background, &shutdown);

        let mut app = app(&self.functions, self.schedules);
        if let Some(redis) = self.bench_floor {
            app = app.merge(bench_floor::router(redis));
        }
        // Small responses on keep-alive connections must not wait for Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "could not set TCP_NODELAY");
            }
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
        // Whatever ended the server ends the background work too.
        shutdown.cancel();
        while let Some(joined) = background.join_next().await {
            if let Err(err) = joined {
                tracing::error!(%err, "a poller or schedule task panicked");
            }
        }
        tracing::info!("stopped");
        served.context("serving HTTP")
    }
}

fn route_line(base: &str, route: &Route) -> String {
    format!(
        "  {:<7}{base}{:<32} -> {}",
        route.method, route.path, route.function
    )
}

/// Cancels `shutdown` on ctrl-C (or SIGTERM, which is how scripts and process managers ask).
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
        () = shutdown.cancelled() => return,
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
