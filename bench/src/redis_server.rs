//! A Redis server of the bench's own: nothing else writes to it, so `INFO cpu` and `INFO
//! commandstats` around a phase count the configuration under test and nothing else. It keeps
//! no data on disk and is killed when dropped.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

const START_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct PrivateRedis {
    child: Child,
    addr: SocketAddr,
}

impl PrivateRedis {
    /// Starts `redis-server` (from `PATH`) on 127.0.0.1:`port`, its log in `log_dir`, and waits
    /// until it answers PING.
    pub async fn start(port: u16, log_dir: &Path, name: &str) -> anyhow::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok() {
            bail!("something already listens on {addr}: pass another --redis-port");
        }
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let log = log_dir.join(format!("{name}.redis.log"));
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--logfile", &log.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (install redis-server or put it on PATH)")?;
        let mut server = Self { child, addr };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url())?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server on {} exited at start ({status})", self.addr);
            }
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("redis-server on {} did not answer PING", self.addr);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
