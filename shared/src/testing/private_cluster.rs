//! A Redis Cluster of the test's own: three primaries (`redis-server --cluster-enabled yes`, no
//! persistence) on free ports, the 16384 slots shared out by `redis-cli --cluster create`;
//! stopped and its directory removed when dropped. For faults one shard at a time (a primary
//! that restarts empty) and for the cluster client's own paths. [`PrivateCluster::start_tls`]
//! makes one whose nodes speak only TLS, to clients and on the cluster bus.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::TestCertificates;

const PRIMARIES: usize = 3;
/// A node's cluster bus listens on its port + 10000.
const BUS_OFFSET: u16 = 10_000;

#[derive(Debug)]
pub struct PrivateCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
    /// Set for a cluster that speaks only TLS.
    tls: Option<TestCertificates>,
}

impl PrivateCluster {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A cluster reachable only over TLS (`--tls-cluster yes`: the bus too), its certificate
    /// signed by a throwaway CA ([`PrivateCluster::certificates`]).
    pub fn start_tls() -> Self {
        crate::adapters::redis::install_crypto_provider();
        Self::start_with(Some(TestCertificates::generate()))
    }

    /// The certificates of a [`PrivateCluster::start_tls`] cluster.
    pub fn certificates(&self) -> &TestCertificates {
        self.tls.as_ref().expect("a TLS cluster")
    }

    fn start_with(tls: Option<TestCertificates>) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kst-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let ports: Vec<u16> = (0..PRIMARIES).map(|_| free_port_with_bus()).collect();
        let mut cluster = Self {
            ports,
            children: Vec::new(),
            dir,
            tls,
        };
        for index in 0..PRIMARIES {
            let child = cluster.spawn(index);
            cluster.children.push(child);
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(cluster.redis_cli_tls_args())
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in cluster.ports.clone() {
            cluster.wait_until_ok(port);
        }
        cluster
    }

    fn spawn(&self, index: usize) -> Child {
        let port = self.ports[index];
        let node_dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("node directory");
        let listen = match &self.tls {
            None => vec!["--port".to_owned(), port.to_string()],
            Some(certificates) => {
                let mut args = vec!["--port".into(), "0".into(), "--tls-port".into()];
                args.push(port.to_string());
                args.extend(["--tls-cluster".into(), "yes".into()]);
                args.extend(certificates.redis_server_args());
                args
            }
        };
        let mut child = Command::new("redis-server")
            .args(listen)
            .args([
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&node_dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return child;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("cluster node on port {port} did not start");
    }

    fn wait_until_ok(&self, port: u16) {
        for _ in 0..200 {
            if let redis::Value::BulkString(info) = self.command_on(port, &["CLUSTER", "INFO"])
                && String::from_utf8_lossy(&info).contains("cluster_state:ok")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("cluster node on port {port} never reported cluster_state:ok");
    }

    fn redis_cli_tls_args(&self) -> Vec<String> {
        match &self.tls {
            None => Vec::new(),
            Some(certificates) => vec![
                "--tls".into(),
                "--cacert".into(),
                certificates.ca_file().to_str().expect("UTF-8 path").into(),
            ],
        }
    }

    fn url_of(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{port}")
    }

    /// The seed list a [`crate::adapters::redis::RedisStore`] takes with `REDIS_CLUSTER=true`.
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|&port| self.url_of(port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the primary that holds `key`'s slot (asked of the cluster, not computed).
    pub fn port_of(&self, key: &str) -> u16 {
        let slot = match self.command_on(self.ports[0], &["CLUSTER", "KEYSLOT", key]) {
            redis::Value::Int(slot) => slot,
            other => panic!("CLUSTER KEYSLOT answered {other:?}"),
        };
        self.ports
            .iter()
            .copied()
            .find(|&port| self.owns(port, slot))
            .unwrap_or_else(|| panic!("no primary owns slot {slot}"))
    }

    fn owns(&self, port: u16, slot: i64) -> bool {
        let redis::Value::BulkString(nodes) = self.command_on(port, &["CLUSTER", "NODES"]) else {
            return false;
        };
        let nodes = String::from_utf8_lossy(&nodes).into_owned();
        let Some(myself) = nodes.lines().find(|line| line.contains("myself")) else {
            return false;
        };
        myself.split_whitespace().skip(8).any(|range| {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            match (first.parse::<i64>(), last.parse::<i64>()) {
                (Ok(first), Ok(last)) => (first..=last).contains(&slot),
                _ => false,
            }
        })
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Runs one command on the node at `port` alone (e.g. `FLUSHALL`: that shard forgets
    /// everything, as a primary restarting empty does).
    pub fn command_on(&self, port: u16, args: &[&str]) -> redis::Value {
        let client = match &self.tls {
            None => redis::Client::open(self.url_of(port)),
            Some(certificates) => redis::Client::build_with_tls(
                self.url_of(port),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(certificates.ca_pem()),
                },
            ),
        }
        .expect("client");
        let mut connection = client.get_connection().expect("connection");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut connection).expect("command")
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that is free, and whose cluster bus port (+10000) is free too.
fn free_port_with_bus() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        let Some(bus) = port.checked_add(BUS_OFFSET) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
}
