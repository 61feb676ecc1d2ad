//! A throwaway certificate authority and a server certificate it signed (for `127.0.0.1` and
//! `localhost`), made with the `openssl` CLI in a directory of their own, removed when dropped:
//! for Redis servers of the tests' own that speak TLS.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

#[derive(Debug)]
pub struct TestCertificates {
    dir: PathBuf,
}

/// What the server certificate is for: the addresses tests connect to, as a server.
const SERVER_EXTENSIONS: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
basicConstraints=CA:FALSE\n\
keyUsage=digitalSignature,keyEncipherment\n\
extendedKeyUsage=serverAuth,clientAuth\n";
/// A new P-256 key, unencrypted.
const NEW_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

impl TestCertificates {
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!("kst-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let certificates = Self { dir };
        std::fs::write(certificates.path("server.ext"), SERVER_EXTENSIONS).expect("extensions");
        certificates.openssl(
            &[
                &["req", "-x509"][..],
                &NEW_KEY,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=KickSync test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        certificates.openssl(
            &[
                &["req"][..],
                &NEW_KEY,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        certificates.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ]);
        certificates
    }

    fn openssl(&self, args: &[&str]) {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl on PATH");
        assert!(status.success(), "openssl {args:?} failed");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_file()).expect("CA certificate")
    }

    /// `redis-server` arguments serving TLS with the server certificate; clients need none.
    pub fn redis_server_args(&self) -> Vec<String> {
        let path = |name: &str| -> String { path_text(&self.path(name)) };
        vec![
            "--tls-cert-file".into(),
            path("server.pem"),
            "--tls-key-file".into(),
            path("server.key"),
            "--tls-ca-cert-file".into(),
            path("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
