//! A real ZooKeeper (Debian's `zookeeper`, on a headless Java runtime) for tests: one
//! shared standalone server per test binary for ordinary tests, dedicated servers for
//! kills, SIGSTOP and ACLs, and three-member ensembles on loopback. Each server listens
//! on free 127.0.0.1 ports with its data in a temp dir and dies with the test binary.
//!
//! [`Writer`] is a client for setting up data from any test (it owns its own runtime, so
//! it works from plain `#[test]`s and from inside async tests alike).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use zookeeper_client as zk;

use super::{Proc, free_port, require_program, tempdir, wait_for};

/// What to install when the server is missing.
const PACKAGES: &str = "zookeeper default-jre-headless";
/// Where Debian's package puts the launcher.
const LAUNCHER: &str = "/usr/share/zookeeper/bin/zkServer.sh";
/// A server's tick: sessions may be as short as two ticks (500 ms).
const TICK_MS: u64 = 250;

/// One ZooKeeper server (standalone or an ensemble member).
pub struct ZkServer {
    pub port: u16,
    /// Data dir, config and log (kept alive as long as the server).
    pub dir: PathBuf,
    cfg: PathBuf,
    proc: Option<Proc>,
    _tmp: Option<tempfile::TempDir>,
}

/// The server shared by every ordinary test in this binary (tests use their own prefixes).
pub fn shared() -> &'static ZkServer {
    static SHARED: OnceLock<ZkServer> = OnceLock::new();
    SHARED.get_or_init(ZkServer::start)
}

fn launcher() -> PathBuf {
    let p = PathBuf::from(LAUNCHER);
    if !p.is_file() {
        panic!(
            "ZooKeeper is required by this test but {LAUNCHER} was not found; install it \
             with `apt-get install {PACKAGES}` (scripts/test.sh does this for you)"
        );
    }
    require_program("java", PACKAGES);
    p
}

fn config(dir: &std::path::Path, port: u16, members: &str) -> String {
    format!(
        "tickTime={TICK_MS}\ninitLimit=20\nsyncLimit=10\ndataDir={data}\nclientPort={port}\n\
         clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
         minSessionTimeout={min}\nmaxSessionTimeout=60000\n\
         4lw.commands.whitelist=ruok,srvr,mntr,stat\n\
         standaloneEnabled={standalone}\nreconfigEnabled=false\n{members}",
        data = dir.join("data").display(),
        min = 2 * TICK_MS,
        standalone = members.is_empty(),
    )
}

impl ZkServer {
    /// A dedicated standalone server, answering when this returns.
    pub fn start() -> ZkServer {
        let tmp = tempdir();
        let dir = tmp.path().to_path_buf();
        let port = free_port();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, config(&dir, port, "")).unwrap();
        let mut s = ZkServer {
            port,
            dir,
            cfg,
            proc: None,
            _tmp: Some(tmp),
        };
        s.spawn();
        s.wait_serving(Duration::from_secs(30));
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(launcher());
        cmd.arg("start-foreground")
            .arg(&self.cfg)
            .env("ZOOCFGDIR", &self.dir)
            .env("ZOO_LOG_DIR", &self.dir)
            .env(
                "JVMFLAGS",
                "-Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dzookeeper.jmx.log4j.disable=true",
            );
        self.proc = Some(Proc::spawn("zookeeper", cmd, &self.dir.join("zk.log")));
    }

    /// Waits until the server serves requests (standalone, leader or follower).
    pub fn wait_serving(&self, limit: Duration) {
        let port = self.port;
        wait_for(limit, || serving(port).then_some(())).unwrap_or_else(|| {
            panic!(
                "zookeeper on port {port} is not serving; log:\n{}",
                std::fs::read_to_string(self.dir.join("zk.log")).unwrap_or_default()
            )
        });
    }

    /// `127.0.0.1:PORT`.
    pub fn node(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL; the data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts it again on the same ports and data (after `kill`), without waiting.
    pub fn restart_no_wait(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again and waits until it serves.
    pub fn restart(&mut self) {
        self.restart_no_wait();
        self.wait_serving(Duration::from_secs(30));
    }

    /// SIGSTOP or SIGCONT the server.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(p) = &self.proc {
            p.signal(sig);
        }
    }

    /// A client for setting up data.
    pub fn writer(&self) -> Writer {
        Writer::connect(&self.node(), None)
    }
}

/// A three-member (or `n`-member) ensemble on loopback; returns when all serve.
pub fn ensemble(n: usize) -> Vec<ZkServer> {
    let ports: Vec<(u16, u16, u16)> = (0..n)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let members: String = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer, elect))| format!("server.{}=127.0.0.1:{peer}:{elect}\n", i + 1))
        .collect();
    let mut servers: Vec<ZkServer> = ports
        .iter()
        .enumerate()
        .map(|(i, &(port, _, _))| {
            let tmp = tempdir();
            let dir = tmp.path().to_path_buf();
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data/myid"), format!("{}\n", i + 1)).unwrap();
            let cfg = dir.join("zoo.cfg");
            std::fs::write(&cfg, config(&dir, port, &members)).unwrap();
            ZkServer {
                port,
                dir,
                cfg,
                proc: None,
                _tmp: Some(tmp),
            }
        })
        .collect();
    for s in &mut servers {
        s.spawn();
    }
    for s in &servers {
        s.wait_serving(Duration::from_secs(60));
    }
    servers
}

/// The connect string of an ensemble.
pub fn connect_string(servers: &[ZkServer]) -> String {
    servers
        .iter()
        .map(ZkServer::node)
        .collect::<Vec<_>>()
        .join(",")
}

/// True when the server on `port` answers `srvr` as a serving member.
pub fn serving(port: u16) -> bool {
    four_letter(port, "srvr").is_some_and(|s| s.contains("Mode: "))
}

/// The answer to a four-letter command, if any.
pub fn four_letter(port: u16, cmd: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(cmd.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A ZooKeeper client for test setup. Its session runs on one runtime shared by every
/// writer (never dropped), so it works from plain `#[test]`s and inside async tests.
pub struct Writer {
    rt: tokio::runtime::Handle,
    pub client: zk::Client,
}

fn runtime() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
    .handle()
    .clone()
}

/// Runs `f` on `rt` from a thread of its own (so also from inside an async test).
fn block_on<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let rt = rt.clone();
    std::thread::scope(|s| s.spawn(move || rt.block_on(f)).join().unwrap())
}

impl Writer {
    /// Connects to `connect` (a connect string), with digest auth `user:password`.
    pub fn connect(connect: &str, digest: Option<&str>) -> Writer {
        let rt = runtime();
        let connect = connect.to_string();
        let digest = digest.map(str::to_string);
        let client = block_on(&rt, async move {
            let mut c = zk::Client::connector().with_session_timeout(Duration::from_secs(20));
            if let Some(d) = &digest {
                c = c.with_auth("digest", d.as_bytes());
            }
            c.connect(&connect).await
        });
        let client = client.unwrap_or_else(|e| panic!("test client cannot connect: {e}"));
        Writer { rt, client }
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        block_on(&self.rt, f)
    }

    /// Creates `path` (and missing parents, empty) holding `data`, or sets its data.
    pub fn put(&self, path: &str, data: &str) {
        self.put_acl(path, data, zk::Acls::anyone_all());
    }

    /// As [`Writer::put`], with any bytes.
    pub fn put_bytes(&self, path: &str, data: &[u8]) {
        self.put_raw(path, data.to_vec(), zk::Acls::anyone_all());
    }

    /// As [`Writer::put`], creating the node (not its parents) with `acls`.
    pub fn put_acl(&self, path: &str, data: &str, acls: zk::Acls<'static>) {
        self.put_raw(path, data.as_bytes().to_vec(), acls);
    }

    fn put_raw(&self, path: &str, data: Vec<u8>, acls: zk::Acls<'static>) {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            if let Some(i) = path.rfind('/').filter(|i| *i > 0) {
                let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                match c.mkdir(&path[..i], &opts).await {
                    Ok(()) | Err(zk::Error::NodeExists) => {}
                    Err(e) => panic!("mkdir {}: {e}", &path[..i]),
                }
            }
            let opts = zk::CreateMode::Persistent.with_acls(acls);
            match c.create(&path, &data, &opts).await {
                Ok(_) => {}
                Err(zk::Error::NodeExists) => {
                    c.set_data(&path, &data, None)
                        .await
                        .unwrap_or_else(|e| panic!("set {path}: {e}"));
                }
                Err(e) => panic!("create {path}: {e}"),
            }
        })
    }

    /// Replaces the ACL of `path`.
    pub fn set_acl(&self, path: &str, acls: zk::Acls<'static>) {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            c.set_acl(&path, &acls, None)
                .await
                .unwrap_or_else(|e| panic!("setAcl {path}: {e}"));
        })
    }

    /// Creates the ephemeral `path` (its parent must exist), held by this writer's session.
    pub fn put_ephemeral(&self, path: &str, data: &str) {
        let (c, path, data) = (self.client.clone(), path.to_string(), data.to_string());
        self.run(async move {
            let opts = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            c.create(&path, data.as_bytes(), &opts)
                .await
                .unwrap_or_else(|e| panic!("create {path}: {e}"));
        })
    }

    /// Deletes `path` and everything below it (nothing when it is not there).
    pub fn delete_all(&self, path: &str) {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            let mut stack = vec![path.clone()];
            let mut order = Vec::new();
            while let Some(p) = stack.pop() {
                match c.list_children(&p).await {
                    Ok(kids) => {
                        for k in kids {
                            stack.push(format!("{}/{k}", p.trim_end_matches('/')));
                        }
                        order.push(p);
                    }
                    Err(zk::Error::NoNode) => {}
                    Err(e) => panic!("list {p}: {e}"),
                }
            }
            for p in order.iter().rev() {
                match c.delete(p, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => panic!("delete {p}: {e}"),
                }
            }
        })
    }

    /// The data of `path`, `None` when it does not exist.
    pub fn get(&self, path: &str) -> Option<String> {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            match c.get_data(&path).await {
                Ok((d, _)) => Some(String::from_utf8_lossy(&d).into_owned()),
                Err(zk::Error::NoNode) => None,
                Err(e) => panic!("get {path}: {e}"),
            }
        })
    }

    /// The children of `path` (empty when it does not exist).
    pub fn children(&self, path: &str) -> Vec<String> {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            match c.list_children(&path).await {
                Ok(mut v) => {
                    v.sort();
                    v
                }
                Err(zk::Error::NoNode) => Vec::new(),
                Err(e) => panic!("children {path}: {e}"),
            }
        })
    }

    /// The session owning the ephemeral `path` (0 for a persistent node), if it exists.
    pub fn owner(&self, path: &str) -> Option<i64> {
        let (c, path) = (self.client.clone(), path.to_string());
        self.run(async move {
            c.check_stat(&path)
                .await
                .unwrap_or_else(|e| panic!("stat {path}: {e}"))
                .map(|s| s.ephemeral_owner)
        })
    }
}
