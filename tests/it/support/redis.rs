//! A real redis-server / redis-sentinel (Debian) for tests: one shared server per test
//! binary for ordinary tests, dedicated ones for restarts, ACLs, forbidden CONFIG and
//! Sentinel failover. Servers listen on free 127.0.0.1 ports, keep nothing on disk
//! unless told to, and die with the test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{Proc, free_port, require_program, tempdir, wait_for};

/// What to install when a program is missing.
const PACKAGES: &str = "redis-server redis-sentinel";

/// One redis-server process.
pub struct RedisServer {
    pub port: u16,
    /// Data dir and logs (kept alive as long as the server).
    pub dir: tempfile::TempDir,
    /// Extra config lines, kept so `restart` starts the same server again.
    lines: Vec<String>,
    proc: Option<Proc>,
}

impl RedisServer {
    /// Starts a dedicated server with these extra `redis.conf` lines.
    pub fn start(lines: &[&str]) -> RedisServer {
        let dir = tempdir();
        let mut s = RedisServer {
            port: free_port(),
            dir,
            lines: lines.iter().map(|l| l.to_string()).collect(),
            proc: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let bin = require_program("redis-server", PACKAGES);
        let conf = self.dir.path().join("redis.conf");
        let mut text = format!(
            "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndaemonize no\ndir {}\n",
            self.port,
            self.dir.path().display()
        );
        for l in &self.lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(&conf, text).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg(&conf);
        self.proc = Some(Proc::spawn(
            "redis-server",
            cmd,
            &self.dir.path().join("redis.log"),
        ));
        let port = self.port;
        let log = self.dir.path().join("redis.log");
        wait_for(Duration::from_secs(10), || ping(port).then_some(())).unwrap_or_else(|| {
            panic!(
                "redis-server on port {port} did not answer PING; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    }

    /// `127.0.0.1:PORT`.
    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A plain connection (as the admin `default` user) for setting up data.
    pub fn conn(&self) -> redis::Connection {
        conn(self.port, 0)
    }

    /// A connection to database `db`.
    pub fn conn_db(&self, db: i64) -> redis::Connection {
        conn(self.port, db)
    }

    /// SIGKILL (no save).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the server again on the same port with the same config (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The data directory (where `dump.rdb` is loaded from at start).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The server shared by every ordinary test in this binary (tests use their own prefixes).
pub fn shared() -> &'static RedisServer {
    static SHARED: OnceLock<RedisServer> = OnceLock::new();
    SHARED.get_or_init(|| RedisServer::start(&[]))
}

/// True when 127.0.0.1:`port` answers PING.
pub fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut c).is_ok()
}

/// A sync connection to 127.0.0.1:`port`, database `db`.
pub fn conn(port: u16, db: i64) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{db}")).unwrap();
    let c = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// A redis-sentinel watching one master, with short timeouts so a failover takes seconds.
pub struct Sentinel {
    pub port: u16,
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Sentinel {
    /// Starts a Sentinel monitoring `name` at 127.0.0.1:`master_port` (quorum 1).
    pub fn start(name: &str, master_port: u16) -> Sentinel {
        let bin: PathBuf = require_program("redis-sentinel", PACKAGES);
        let dir = tempdir();
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 4000\n\
                 sentinel parallel-syncs {name} 1\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg(&conf);
        let proc = Proc::spawn("redis-sentinel", cmd, &dir.path().join("sentinel.log"));
        wait_for(Duration::from_secs(10), || ping(port).then_some(()))
            .unwrap_or_else(|| panic!("redis-sentinel on port {port} did not answer PING"));
        Sentinel {
            port,
            dir,
            _proc: proc,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The master's port as this Sentinel sees it.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        let mut c = conn(self.port, 0);
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .query(&mut c)
            .ok()?;
        addr.map(|(_, p)| p)
    }

    /// True when the Sentinel knows a healthy replica on `replica_port` (it only fails
    /// over to replicas it has seen).
    pub fn sees_replica(&self, name: &str, replica_port: u16) -> bool {
        let mut c = conn(self.port, 0);
        let Ok(replicas) = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg(name)
            .query::<Vec<Vec<String>>>(&mut c)
        else {
            return false;
        };
        replicas.iter().any(|r| {
            let field = |k: &str| {
                r.chunks(2)
                    .find(|p| p[0] == k)
                    .map(|p| p[1].clone())
                    .unwrap_or_default()
            };
            field("port") == replica_port.to_string()
                && field("flags") == "slave"
                && field("master-link-status") == "ok"
        })
    }

    /// The Sentinel's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

/// PEM files for a TLS test (see [`super::make_certs`]).
pub type TestCerts = super::Certs;

impl TestCerts {
    /// Writes a CA, a server certificate for 127.0.0.1 and a client certificate into `dir`.
    pub fn make(dir: &Path) -> TestCerts {
        super::make_certs(dir, &["IP:127.0.0.1"])
    }
}
