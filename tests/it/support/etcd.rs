//! A real etcd server (Debian etcd-server) for tests.
//!
//! [`shared`] is one server per test binary for ordinary tests (each uses its own
//! `random_prefix()`); [`Etcd::start`], [`Etcd::start_with`] and [`cluster`] start
//! dedicated servers for tests that kill, restart, compact, enable auth or TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use super::{Proc, free_port, require_program, tempdir, wait_for};

/// How long a fresh or restarted member may take to answer.
const READY_LIMIT: Duration = Duration::from_secs(20);

/// TLS files for a server started with [`Etcd::start_with`].
pub use super::Certs as TlsFiles;

/// One etcd member.
pub struct Etcd {
    /// Member name (also the log file name).
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    /// Kept across [`Etcd::kill`] and [`Etcd::restart`].
    pub data_dir: PathBuf,
    /// Server log (stdout and stderr), for debugging a failed test.
    pub log: PathBuf,
    /// `--initial-cluster` value (all members of its cluster).
    initial_cluster: String,
    /// TLS settings the member serves clients with.
    pub tls: Option<TlsFiles>,
    /// `None` while killed.
    proc: Option<Proc>,
    /// Owns the temp directory holding data and log (removed on drop).
    _dir: Option<tempfile::TempDir>,
}

/// The etcd shared by every ordinary test in this binary.
pub fn shared() -> &'static Etcd {
    static SHARED: OnceLock<Etcd> = OnceLock::new();
    SHARED.get_or_init(Etcd::start)
}

/// A cluster of `n` members on loopback with fast elections; returns when all answer.
pub fn cluster(n: usize) -> Vec<Etcd> {
    let dir = tempdir();
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let initial = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut members: Vec<Etcd> = ports
        .iter()
        .enumerate()
        .map(|(i, &(client_port, peer_port))| Etcd {
            name: format!("m{i}"),
            client_port,
            peer_port,
            data_dir: dir.path().join(format!("m{i}.etcd")),
            log: dir.path().join(format!("m{i}.log")),
            initial_cluster: initial.clone(),
            tls: None,
            proc: None,
            _dir: None,
        })
        .collect();
    for m in &mut members {
        m.spawn();
    }
    for m in &members {
        m.wait_ready();
    }
    // The last member is dropped last, so the directory outlives every member.
    if let Some(last) = members.last_mut() {
        last._dir = Some(dir);
    }
    members
}

impl Etcd {
    /// A dedicated single-member server.
    pub fn start() -> Etcd {
        Etcd::start_with(None)
    }

    /// A dedicated single-member server, serving clients over TLS when `tls` is given
    /// (and then requiring a client certificate signed by its CA).
    pub fn start_with(tls: Option<TlsFiles>) -> Etcd {
        let dir = tempdir();
        let (client_port, peer_port) = (free_port(), free_port());
        let mut e = Etcd {
            name: "single".into(),
            client_port,
            peer_port,
            data_dir: dir.path().join("data.etcd"),
            log: dir.path().join("etcd.log"),
            initial_cluster: format!("single=http://127.0.0.1:{peer_port}"),
            tls,
            proc: None,
            _dir: Some(dir),
        };
        e.spawn();
        e.wait_ready();
        e
    }

    /// The client URL (`https://` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// SIGKILL the member; its data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the member again on the same ports and data dir; waits until it answers
    /// when it is alone (a cluster member waits for a quorum, so `wait` may be false).
    pub fn restart(&mut self, wait: bool) {
        self.kill();
        self.spawn();
        if wait {
            self.wait_ready();
        }
    }

    fn spawn(&mut self) {
        let bin = require_program("etcd", "etcd-server etcd-client");
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new(bin);
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "confsync-test",
            ])
            // Fast elections: a killed member's loss is noticed quickly on loopback.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ])
            .env_remove("ETCDCTL_API");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        self.proc = Some(Proc::spawn(&format!("etcd {}", self.name), cmd, &self.log));
    }

    /// Waits until the member answers a health check; panics with its log otherwise.
    pub fn wait_ready(&self) {
        let ok = wait_for(READY_LIMIT, || {
            let out = self.ctl(&["endpoint", "health", "--command-timeout=1s"]);
            out.status.success().then_some(())
        });
        if ok.is_none() {
            panic!(
                "etcd {} on port {} did not become healthy within {:?}; log {}:\n{}",
                self.name,
                self.client_port,
                READY_LIMIT,
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// Runs `etcdctl` against this member (with its TLS files) and returns its output.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let bin = require_program("etcdctl", "etcd-client");
        let mut cmd = Command::new(bin);
        cmd.env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.url());
        if let Some(t) = &self.tls {
            cmd.arg("--cacert")
                .arg(&t.ca)
                .arg("--cert")
                .arg(&t.client_cert)
                .arg("--key")
                .arg(&t.client_key);
        }
        cmd.args(args).output().expect("run etcdctl")
    }

    /// Like [`Etcd::ctl`] but panics with etcdctl's stderr when it fails.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Generates a CA, a server certificate for 127.0.0.1 and localhost and a client
/// certificate in `dir` (see [`super::make_certs`]).
pub fn make_certs(dir: &Path) -> TlsFiles {
    super::make_certs(dir, &["IP:127.0.0.1", "DNS:localhost"])
}
