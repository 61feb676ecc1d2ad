//! `fake-portone`: the fake PortOne server as a process, for the local stack, scripts and the demo.
//! Everything it does is in the library; this only picks the address, logs and waits for a signal.

use std::{io::IsTerminal, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use fake_portone::{FakeConfig, FakePortOne};
use tracing_subscriber::EnvFilter;

const DEFAULT_LISTEN: &str = "127.0.0.1:3100";

/// A fake PortOne V2 API. Secrets, store and webhook target come from PORTONE_API_SECRET,
/// PORTONE_STORE_ID, PORTONE_WEBHOOK_SECRET and FAKE_PORTONE_WEBHOOK_URL.
#[derive(Debug, Parser)]
#[command(name = "fake-portone", version)]
struct Cli {
    /// Address to listen on [default: PORTONE_API_BASE's host:port, else 127.0.0.1:3100]
    #[arg(long, env = "FAKE_PORTONE_LISTEN")]
    listen: Option<String>,
}

/// Where the functions will look for PortOne, so the fake listens where it is expected.
fn listen_from_api_base() -> Option<String> {
    let base = std::env::var("PORTONE_API_BASE").ok()?;
    let url = reqwest::Url::parse(base.trim()).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = cli
        .listen
        .or_else(listen_from_api_base)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let config = FakeConfig::from_env()?;
    let webhook_url = config.webhook_url.clone();
    let fake = FakePortOne::start(&listen, config).await?;
    tracing::info!(
        base_url = %fake.base_url(),
        webhook_url = webhook_url.as_deref().unwrap_or("(none: webhooks are not sent)"),
        "fake PortOne listening"
    );
    shutdown_signal().await.context("waiting for a signal")?;
    tracing::info!("shutting down");
    fake.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (how scripts and process managers ask).
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .compact()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
