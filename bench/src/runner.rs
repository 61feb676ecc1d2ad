//! The system under test: the release `kicksync-local serve` as a child process, with the
//! environment of one configuration, its output in a log file.

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long a runner may take to answer `GET /health` 200.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Lines of the runner's log shown when it fails.
const LOG_TAIL_LINES: usize = 20;

/// A running `kicksync-local serve`. Killed when dropped, so an early return never leaves one.
#[derive(Debug)]
pub struct Runner {
    child: Child,
    base_url: String,
    log: PathBuf,
}

/// How to start the runner of one configuration of a benchmark.
#[derive(Debug)]
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub addr: SocketAddr,
    /// Set on top of the inherited environment.
    pub env: &'a [(&'a str, String)],
    /// The benchmark (`drop`, `products-list`) and the configuration (`reservation`, `floor`):
    /// the log is `<log_dir>/<bench>-<configuration>.runner.log`.
    pub bench: &'a str,
    pub configuration: &'a str,
    pub log_dir: &'a Path,
    /// Serve the floor's routes too (`serve --bench-floor`).
    pub floor: bool,
}

impl Runner {
    /// Starts the runner and waits until `GET /health` answers 200.
    pub async fn start(launch: Launch<'_>, client: &reqwest::Client) -> anyhow::Result<Self> {
        let configuration = launch.configuration;
        Self::spawn(launch, client)
            .await
            .with_context(|| format!("{configuration}: starting the runner"))
    }

    async fn spawn(launch: Launch<'_>, client: &reqwest::Client) -> anyhow::Result<Self> {
        // Whatever answers on the port would be measured instead of our runner.
        if TcpStream::connect_timeout(&launch.addr, POLL_INTERVAL).is_ok() {
            bail!(
                "something already listens on {}: stop it or pass another --port",
                launch.addr
            );
        }
        let log_path = launch.log_dir.join(format!(
            "{}-{}.runner.log",
            launch.bench, launch.configuration
        ));
        std::fs::create_dir_all(launch.log_dir)
            .with_context(|| format!("creating {}", launch.log_dir.display()))?;
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let flags: &[&str] = if launch.floor {
            &["--bench-floor"]
        } else {
            &[]
        };
        let child = Command::new(launch.binary)
            .arg("serve")
            .arg("--addr")
            .arg(launch.addr.to_string())
            .args(flags)
            .envs(launch.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", launch.binary.display()))?;
        let mut runner = Self {
            child,
            base_url: format!("http://{}", launch.addr),
            log: log_path,
        };
        runner.wait_healthy(client).await?;
        Ok(runner)
    }

    /// The runner's process id (the bench reads its CPU time), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn wait_healthy(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let started = Instant::now();
        let health = self.url("/health");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the runner exited at start ({status}){}", self.log_tail());
            }
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the runner did not answer {health} with 200 within {START_TIMEOUT:?}{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the runner; an error if it had already exited on its own (it crashed under load).
    /// It holds nothing that needs a graceful shutdown, so it is killed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the runner exited during the run ({status}){}",
                self.log_tail()
            );
        }
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!("; last lines of {}:\n{tail}", self.log.display())
    }
}
