//! A Redis server of the test's own, for faults that cannot be injected into the shared one
//! without disturbing other tests (`CONFIG SET` is global): refusing writes, going away,
//! restarting empty; and one that speaks only TLS ([`PrivateRedis::start_tls`]).

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::TestCertificates;

/// `redis-server` on a free port, without persistence; killed when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    /// Set for a server that speaks only TLS, on its port (no plain-text port at all).
    tls: Option<TestCertificates>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server reachable only over TLS, its certificate signed by a throwaway CA
    /// ([`PrivateRedis::certificates`]).
    pub fn start_tls() -> Self {
        Self::start_with(Some(TestCertificates::generate()))
    }

    fn start_with(tls: Option<TestCertificates>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let mut redis = Self {
            port,
            child: None,
            tls,
        };
        redis.restart();
        redis
    }

    /// The certificates of a [`PrivateRedis::start_tls`] server.
    pub fn certificates(&self) -> &TestCertificates {
        self.tls.as_ref().expect("a TLS server")
    }

    /// Starts the server again (empty) after [`PrivateRedis::stop`].
    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let listen = match &self.tls {
            None => vec!["--port".to_owned(), port],
            Some(certificates) => {
                let mut args = vec!["--port".into(), "0".into(), "--tls-port".into(), port];
                args.extend(certificates.redis_server_args());
                args
            }
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis://…`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Runs one command on the server, on a connection of its own (e.g. `CONFIG SET ...`).
    pub fn command(&self, args: &[&str]) -> redis::Value {
        assert!(self.tls.is_none(), "commands go to plain-text servers");
        let client = redis::Client::open(self.url()).expect("client");
        let mut connection = client.get_connection().expect("connection");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut connection).expect("command")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
