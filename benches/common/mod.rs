//! Helpers shared by the benches that start their own servers and `confsync` daemons:
//! processes killed on drop, free loopback ports, bounded waits, /proc readers, latency
//! percentiles, an etcd server, and the daemons compared side by side (confsync, confd
//! and the confd fork, started with confd's command line) with the wait for their
//! rendered file. Each bench includes it with `mod common;` (cargo does
//! not build `benches/common/mod.rs` as a bench of its own).

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use etcd_client::{Client, Txn, TxnOp};
use tokio::runtime::Runtime;

/// A child process killed (and reaped) on drop.
pub struct Guard(pub Child);

impl Guard {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Finds `name` on PATH or in the sbin directories Debian installs servers into, or
/// panics with the command that installs `package`.
pub fn find(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found; install it with `apt-get install {package}`")
        })
}

/// Writes `text` to `dir/rel`, creating parent directories; returns the path.
pub fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    p
}

/// Calls `f` every `every` until it returns `Some` or `limit` passes.
pub fn poll<T>(limit: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Waits until the file at `p` satisfies `pred` and returns when it saw it. It reads the
/// file only when its inode, size or mtime changed (confsync replaces files by rename),
/// so each check every 100 µs costs a `stat`, not a read of the whole file.
pub fn wait_file(p: &Path, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<Instant> {
    let mut seen = None;
    poll(limit, Duration::from_micros(100), || {
        let id = std::fs::metadata(p)
            .ok()
            .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        if id == seen {
            return None;
        }
        seen = id;
        let at = Instant::now();
        pred(&std::fs::read_to_string(p).unwrap_or_default()).then_some(at)
    })
}

/// Waits until the file at `p` has at least `lines` lines; panics after `limit`.
pub fn wait_lines(p: &Path, lines: usize, limit: Duration) {
    wait_file(p, limit, |s| s.lines().count() >= lines).unwrap_or_else(|| {
        panic!(
            "{} did not reach {lines} lines within {limit:?}",
            p.display()
        )
    });
}

/// A `kB` field of /proc/PID/status (`"VmRSS:"`, `"VmHWM:"`); 0 when unreadable.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `kB` as MB, for printing.
pub fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// User + system CPU time of PID in milliseconds (/proc/PID/stat utime + stime).
pub fn cpu_ms(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (get(11) + get(12)) * 1000 / hz
}

/// CPU milliseconds PID spends over `span` of wall time.
pub fn cpu_ms_over(pid: u32, span: Duration) -> u64 {
    let before = cpu_ms(pid);
    std::thread::sleep(span);
    cpu_ms(pid).saturating_sub(before)
}

/// Nearest-rank percentiles of a set of latencies.
pub struct Percentiles {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Panics on an empty set.
    pub fn of(lat: &mut [Duration]) -> Percentiles {
        assert!(!lat.is_empty(), "no latencies measured");
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
        Percentiles {
            n: lat.len(),
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: pct(1.0),
        }
    }
}

/// A duration in (fractional) milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Bound on starting etcd and on its first answer.
const ETCD_LIMIT: Duration = Duration::from_secs(30);

/// A single-member etcd (Debian's etcd-server) on free loopback ports, its data and log
/// in a directory the caller owns; killed on drop.
pub struct Etcd {
    /// Client URL, `http://127.0.0.1:PORT`.
    pub url: String,
    _proc: Guard,
}

impl Etcd {
    /// Starts etcd with its data in `dir/data.etcd` and its log in `dir/etcd.log`;
    /// returns once its client port accepts connections.
    pub fn start(dir: &Path) -> Etcd {
        let (client_port, peer_port) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.join("etcd.log")).expect("etcd log");
        let child = Command::new(find("etcd", "etcd-server etcd-client"))
            .arg("--data-dir")
            .arg(dir.join("data.etcd"))
            .args(["--name", "bench"])
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            url,
            _proc: Guard(child),
        };
        poll(ETCD_LIMIT, Duration::from_millis(50), || {
            std::net::TcpStream::connect(("127.0.0.1", client_port)).ok()
        })
        .unwrap_or_else(|| panic!("etcd did not listen within {ETCD_LIMIT:?}"));
        etcd
    }

    /// A client, returned once etcd answers a read.
    pub async fn client(&self) -> Client {
        let mut client = Client::connect([self.url.as_str()], None)
            .await
            .expect("etcd client");
        let start = Instant::now();
        while client.get("/", None).await.is_err() {
            assert!(
                start.elapsed() < ETCD_LIMIT,
                "etcd did not answer within {ETCD_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client
    }
}

/// A temp dir named `prefix…`, an etcd started in it, a current-thread runtime and a
/// client of that etcd (ready to answer). Bind them in this order, so they drop client
/// first and directory last.
pub fn etcd_setup(prefix: &str) -> (tempfile::TempDir, Etcd, Runtime, Client) {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    let etcd = Etcd::start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt.block_on(etcd.client());
    (dir, etcd, rt, client)
}

/// A redis-server (Debian's redis-server) on a free 127.0.0.1 port, its working
/// directory one the caller owns, nothing persisted; killed on drop.
#[cfg(feature = "redis")]
pub struct Redis {
    pub port: u16,
    /// `127.0.0.1:PORT`, as confd's `-node` takes it.
    pub node: String,
    pub client: redis::Client,
    _proc: Guard,
}

#[cfg(feature = "redis")]
impl Redis {
    /// Starts redis-server in `dir` with `args` added to its command line (such as
    /// `--notify-keyspace-events KEA`); returns once it accepts connections.
    pub fn start(dir: &Path, args: &[&str]) -> Redis {
        let port = free_port();
        let child = Command::new(find("redis-server", "redis-server"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis {
            port,
            node: format!("127.0.0.1:{port}"),
            client: redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client"),
            _proc: Guard(child),
        };
        poll(Duration::from_secs(5), Duration::from_micros(100), || {
            redis.client.get_connection().ok()
        })
        .expect("redis-server did not answer within 5 s");
        redis
    }

    /// A new synchronous connection.
    pub fn conn(&self) -> redis::Connection {
        self.client.get_connection().expect("redis connection")
    }
}

/// Writes `kvs` in transactions of 100 puts.
pub async fn put_all(client: &mut Client, kvs: impl IntoIterator<Item = (String, String)>) {
    let ops: Vec<TxnOp> = kvs
        .into_iter()
        .map(|(k, v)| TxnOp::put(k, v, None))
        .collect();
    for chunk in ops.chunks(100) {
        client
            .txn(Txn::new().and_then(chunk.to_vec()))
            .await
            .expect("write keys");
    }
}

/// The template the etcd benches render: one HAProxy `server` line per key under
/// `/app/servers/`, after a `backend app` line.
pub const SERVER_LINES: &str = "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}";

/// Writes a confdir at `conf` with one resource (no check or reload command) rendering
/// [`SERVER_LINES`] for the keys under `prefix` to `dest`.
pub fn server_lines_confdir(conf: &Path, prefix: &str, dest: &Path) {
    write(conf, "templates/lines.tmpl", SERVER_LINES);
    write(
        conf,
        "conf.d/lines.toml",
        &format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n",
            dest.display()
        ),
    );
}

/// Starts `confsync run --confdir CONF --backend etcd --node URL --watch ARGS...` with
/// stderr in `conf/confsync.log` and no inherited `CONFSYNC_*` settings but `env`.
pub fn confsync_etcd(conf: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Guard {
    let log = std::fs::File::create(conf.join("confsync.log")).expect("confsync log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_confsync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFSYNC_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["run", "--confdir"])
        .arg(conf)
        .args(["--backend", "etcd", "--node", url, "--watch"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    Guard(cmd.spawn().expect("start confsync"))
}

/// The template, in confd's Go dialect, which confsync, confd and the fork all read: one
/// HAProxy `server` line per key under `/app/servers`, after a `backend app` line.
pub const GO_SERVER_LINES: &str = "backend app\n{{range gets \"/app/servers/*\"}}    server {{base .Key}} {{.Value}} check\n{{end}}";

/// Which daemon a [`Tool`] is: how its command line reads.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Confsync,
    /// confd 0.16's command line (`-backend etcdv3 -node URL ...`).
    Confd,
    /// The fork's: the backend is a subcommand (`etcd --node URL ...`).
    Fork,
}

/// A backend as confd names it (`-backend NAME`) and as the fork does (its subcommand).
pub struct PeerBackend {
    pub confd: &'static str,
    pub fork: &'static str,
    /// confsync does not take this backend on confd's command line: it is started with
    /// its own (`run --backend NAME --node ... --confdir ... --watch`) instead.
    pub confsync_native: bool,
}

pub const ETCD: PeerBackend = PeerBackend {
    confd: "etcdv3",
    fork: "etcd",
    confsync_native: false,
};

pub const REDIS: PeerBackend = PeerBackend {
    confd: "redis",
    fork: "redis",
    confsync_native: false,
};

pub const ZOOKEEPER: PeerBackend = PeerBackend {
    confd: "zookeeper",
    fork: "zookeeper",
    confsync_native: true,
};

/// A daemon to run: confsync (the binary cargo built with the bench) or a peer.
pub struct Tool {
    pub name: &'static str,
    pub kind: Kind,
    pub bin: PathBuf,
}

impl Tool {
    /// The confsync binary cargo built with this bench.
    pub fn confsync() -> Tool {
        Tool {
            name: "confsync",
            kind: Kind::Confsync,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_confsync")),
        }
    }

    /// Starts the tool watching `backend` at `node` with the confdir `conf`, its stderr
    /// and stdout in `conf/daemon.log`, without inherited `CONFD_*`, `CONFSYNC_*` or
    /// `ETCDCTL_*` settings. The log level is `error` unless `CONFSYNC_BENCH_LOG` says
    /// otherwise (`debug` shows confsync's render timings).
    pub fn start(&self, conf: &Path, backend: &PeerBackend, node: &str) -> Guard {
        let log = std::fs::File::create(conf.join("daemon.log")).expect("daemon log");
        let level = std::env::var("CONFSYNC_BENCH_LOG").unwrap_or_else(|_| "error".into());
        let mut cmd = Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["CONFD_", "CONFSYNC_", "ETCDCTL_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(k.as_ref());
            }
        }
        match self.kind {
            Kind::Confsync if backend.confsync_native => cmd
                .args([
                    "run",
                    "--backend",
                    backend.confd,
                    "--node",
                    node,
                    "--confdir",
                ])
                .arg(conf)
                .args(["--watch", "--log-level", &level]),
            Kind::Fork => cmd
                .args([backend.fork, "--node", node, "--confdir"])
                .arg(conf)
                .args(["--watch", "--log-level", &level]),
            Kind::Confsync | Kind::Confd => cmd
                .args(["-backend", backend.confd, "-node", node, "-confdir"])
                .arg(conf)
                .args(["-watch", "-log-level", &level]),
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("daemon log"))
            .stderr(log);
        Guard(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display())),
        )
    }

    /// The first line the binary prints for its version.
    pub fn version(&self) -> String {
        let flag = if self.kind == Kind::Fork {
            "--version"
        } else {
            "-version"
        };
        Command::new(&self.bin)
            .arg(flag)
            .output()
            .ok()
            .map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    }
}

/// The peer given by the environment variable `var` (a confd binary), if set.
pub fn peer(var: &str, name: &'static str, kind: Kind) -> Option<Tool> {
    let bin = PathBuf::from(std::env::var_os(var).filter(|v| !v.is_empty())?);
    assert!(
        bin.is_file(),
        "{var}={}: no such file (build the peer first)",
        bin.display()
    );
    Some(Tool { name, kind, bin })
}

/// confsync and the peers the environment names: the fork (`CONFSYNC_BENCH_FORK`) and
/// the original confd (`CONFSYNC_BENCH_CONFD`), each the path of its confd binary.
pub fn tools() -> Vec<Tool> {
    let mut tools = vec![Tool::confsync()];
    tools.extend(peer("CONFSYNC_BENCH_FORK", "confd-fork", Kind::Fork));
    tools.extend(peer("CONFSYNC_BENCH_CONFD", "confd-orig", Kind::Confd));
    tools
}

/// True when `tools` has the fork.
pub fn has_fork(tools: &[Tool]) -> bool {
    tools.iter().any(|t| t.kind == Kind::Fork)
}

/// Prints each tool's binary and version, and a note when the fork is not among them.
pub fn print_tools(tools: &[Tool]) {
    for t in tools {
        println!("  {:<10} {}  ({})", t.name, t.bin.display(), t.version());
    }
    if !has_fork(tools) {
        println!(
            "  peer not given: set CONFSYNC_BENCH_FORK to the fork's confd binary to compare (confsync runs alone)"
        );
    }
}

/// The last lines of a daemon's log, for a failure message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n    ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its log ends:\n    {tail}")
    }
}

/// A rendered file watched through inotify on its directory (every tool replaces it by
/// rename), read again only when its inode, size or mtime changed.
pub struct Dest {
    pub path: PathBuf,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
    _watcher: notify::RecommendedWatcher,
    seen: Option<(u64, u64, i64, i64)>,
}

impl Dest {
    /// Watches the directory of `path` (which must exist).
    pub fn new(path: PathBuf) -> Dest {
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).expect("inotify");
        watcher
            .watch(
                path.parent().expect("dest dir"),
                RecursiveMode::NonRecursive,
            )
            .expect("watch the dest's directory");
        Dest {
            path,
            rx,
            _watcher: watcher,
            seen: None,
        }
    }

    /// Waits until the file satisfies `pred`, woken by inotify; returns when it saw it,
    /// or why not (`daemon`, whose log is `log`, exited, or `limit` passed).
    pub fn wait(
        &mut self,
        daemon: &mut Guard,
        log: &Path,
        limit: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<Instant, String> {
        let start = Instant::now();
        loop {
            let id = std::fs::metadata(&self.path)
                .ok()
                .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
            if id.is_some() && id != self.seen {
                self.seen = id;
                let at = Instant::now();
                if pred(&std::fs::read_to_string(&self.path).unwrap_or_default()) {
                    return Ok(at);
                }
                // Replaced again while it was read: read it once more.
                continue;
            }
            if let Ok(Some(status)) = daemon.0.try_wait() {
                return Err(format!(
                    "exited ({status}) waiting for {what}{}",
                    log_tail(log)
                ));
            }
            let Some(left) = limit.checked_sub(start.elapsed()) else {
                return Err(format!("no {what} within {limit:?}{}", log_tail(log)));
            };
            let _ = self.rx.recv_timeout(left.min(Duration::from_millis(100)));
            while self.rx.try_recv().is_ok() {}
        }
    }
}
