//! The `kicksync-local` command line. Configuration comes from the environment
//! ([`shared::Config::from_env`]); the flags only choose what to do.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::net::SocketAddr;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use shared::{Config, Platform, adapters::mysql};
use tokio_util::sync::CancellationToken;

use crate::{
    functions::Functions,
    schedules::Schedules,
    seed::{self, AdminAccount, DEFAULT_ADMIN_EMAIL, DEMO_PASSWORD, SeedReport},
    serve::{Server, cancel_on_signal},
};

/// Run KickSync's Lambda handlers locally: the HTTP API, the SQS worker and the schedules.
#[derive(Debug, Parser)]
#[command(
    name = "kicksync-local",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a command, `serve` with these options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every HTTP route, poll the queues and fire the schedules (the default).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Apply the migrations, insert the demo data (idempotent) and exit.
    Seed(AdminArgs),
    /// Run one scheduled handler once, in-process, print its output and exit.
    Fire {
        /// The schedule's name, as `serve` lists it.
        name: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000", env = "LOCAL_ADDR")]
    pub addr: SocketAddr,
    /// Apply the database migrations first.
    #[arg(long)]
    pub migrate: bool,
    /// Insert the demo data first (implies --migrate).
    #[arg(long)]
    pub seed: bool,
    /// Benchmarks only: also serve `GET /_bench/floor`, one Redis GET and nothing else, the
    /// floor `bench products-list` measures the cached product list against, and
    /// `POST /_bench/drop-floor`, one Lua decrement, the floor of `bench drop`. Not API routes.
    #[arg(long)]
    pub bench_floor: bool,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The seeded admin account.
#[derive(Clone, Args)]
pub struct AdminArgs {
    #[arg(long, env = "ADMIN_EMAIL", default_value = DEFAULT_ADMIN_EMAIL)]
    pub admin_email: String,
    /// Defaults to the demo password; set it for anything but a laptop.
    #[arg(long, env = "ADMIN_PASSWORD", default_value = DEMO_PASSWORD, hide_env_values = true, hide_default_value = true)]
    pub admin_password: String,
}

impl std::fmt::Debug for AdminArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminArgs")
            .field("admin_email", &self.admin_email)
            .field("admin_password", &"[redacted]")
            .finish()
    }
}

impl AdminArgs {
    fn account(&self) -> AdminAccount {
        AdminAccount {
            email: self.admin_email.clone(),
            password: self.admin_password.clone(),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let platform = Platform::new(config)?;
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(&platform, &args).await,
        Command::Migrate => migrate(&platform).await,
        Command::Seed(admin) => {
            migrate(&platform).await?;
            seed(&platform, &admin).await
        }
        Command::Fire { name } => fire(&platform, &name).await,
    }
}

async fn serve(platform: &Platform, args: &ServeArgs) -> anyhow::Result<()> {
    if args.migrate || args.seed {
        migrate(platform).await?;
    }
    if args.seed {
        seed(platform, &args.admin).await?;
    }
    let mut server = Server::bind(platform, args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    if args.bench_floor {
        server = server.with_bench_floor(platform.redis.clone());
    }
    println!("KickSync local runner");
    for line in server.describe()? {
        if line.is_empty() {
            println!();
        } else {
            println!("  {line}");
        }
    }
    println!("Press ctrl-C to stop.");
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    server.run(shutdown).await
}

async fn migrate(platform: &Platform) -> anyhow::Result<()> {
    mysql::migrate(&platform.db)
        .await
        .context("applying the migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn seed(platform: &Platform, admin: &AdminArgs) -> anyhow::Result<()> {
    let report = seed::seed(platform, &admin.account())
        .await
        .context("seeding the demo data")?;
    print_seed_report(&report);
    Ok(())
}

fn print_seed_report(report: &SeedReport) {
    println!("Demo accounts (password `{DEMO_PASSWORD}`; the admin's is ADMIN_PASSWORD):");
    for (email, role, created) in &report.accounts {
        let state = if *created {
            "created"
        } else {
            "already there, left as is"
        };
        println!("  {:<8} {email:<32} {state}", role.as_str());
    }
    match report.products_created {
        0 => println!("Products: none added (the partners already have products)"),
        count => println!("Products: {count} added"),
    }
}

async fn fire(platform: &Platform, name: &str) -> anyhow::Result<()> {
    let functions = std::sync::Arc::new(Functions::new(platform).await?);
    let schedules = Schedules::new(functions.schedules(), &platform.config.aws.region);
    let Some(result) = schedules.fire(name, Utc::now()).await else {
        let known: Vec<&str> = schedules
            .bindings()
            .iter()
            .map(|binding| binding.name.as_str())
            .collect();
        anyhow::bail!(
            "no schedule named {name:?}; known: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    };
    let output = result.map_err(|err| anyhow::anyhow!("schedule {name} failed: {err}"))?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
