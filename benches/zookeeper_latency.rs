//! Change-to-file latency and memory of `confsync run --watch` on ZooKeeper (issue 16's
//! performance section), side by side with the maintained confd fork (abtreece/confd)
//! and optionally the original confd.
//!
//! Starts its own ZooKeeper (Debian's `zookeeper` 3.8, `zkServer.sh start-foreground`
//! from a private zoo.cfg) on a free 127.0.0.1 port with its data in a temp dir, killed
//! at the end. For each case and each tool, one after another, it writes the znodes
//! `/zlN-…/app/servers/web00000`… (multi writes of 500 creates, all in flight at once),
//! writes a confdir whose one resource renders them with the Go template every tool
//! reads (one HAProxy `server` line per znode, no check or reload command, so only the
//! daemon is measured) to a destination on tmpfs (/dev/shm, when there is one: fsync is
//! free there), starts the tool watching (command lines below) with its default
//! coalescing, waits for the first render, then:
//!
//! - change-to-file latency: sets the data of one random znode (the same sequence for
//!   every tool) and measures from `setData`'s reply to the moment the rendered file
//!   holds the new value (inotify on the destination's directory wakes the reader);
//!   200 measured changes after 20 unmeasured ones, each written 150-300 ms after the
//!   previous one showed up (longer than confsync's default coalescing `min`, 100 ms,
//!   so each change is isolated and rendered at once) and once the daemon then used no
//!   CPU for 100 ms (confd and the fork list the prefix and set a watch on every znode
//!   again after each change, and miss what changes meanwhile: at 10,000 znodes that
//!   takes them longer than the pause). A slow peer stops after 90 s of measuring (with
//!   at least 20 changes);
//! - RSS: VmRSS (and VmHWM, the peak) of the daemon from /proc/PID/status, read once
//!   the changes are done and it sat idle for a second.
//!
//! with 5 and with 10,000 znodes under the watched prefix. The tools are started as
//! below (confsync with its own command line: it does not take `-backend zookeeper` on
//! confd's yet)
//!
//! ```text
//! confsync run --backend zookeeper --node 127.0.0.1:PORT --confdir DIR --watch --log-level error
//! confd    -backend zookeeper -node 127.0.0.1:PORT -confdir DIR -watch -log-level error
//! fork     zookeeper --node 127.0.0.1:PORT --confdir DIR --watch --log-level error
//! ```
//!
//! A change not in the file 5 s after it was written counts as lost and the next one is
//! written (a tool that loses more than 10 fails the case). It prints a table (case,
//! tool, changes measured and lost, p50, p90, p99, max in ms, RSS and peak in MB, p50
//! and RSS as ratios of the fork's) and whether each goal was met.
//!
//! Run with
//! `[CONFSYNC_BENCH_FORK=/path/to/fork-confd] [CONFSYNC_BENCH_CONFD=/path/to/confd] cargo bench --bench zookeeper_latency`
//! (needs ZooKeeper and a Java runtime: `apt-get install zookeeper default-jre-headless`).
//! A peer whose variable is not set is skipped with a note. `CONFSYNC_BENCH_LOG=info`
//! runs every tool at that log level (confsync's log then has each render's timings);
//! the logs are in the temp dir, kept when `CONFSYNC_BENCH_KEEP=1`. Takes about 3
//! minutes for confsync alone, 12 with both peers.
//!
//! Goals (issue 16): with 10,000 znodes p50 <= 10 ms; with a handful p50 <= 2 ms; RSS
//! while watching 10,000 znodes <= 25 MB.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use zookeeper_client as zk;

use common::{Dest, GO_SERVER_LINES, Guard, Percentiles, Tool, mb, ms};

/// How the cases run.
struct Plan {
    /// Znodes under the watched prefix, one case each.
    cases: [usize; 2],
    /// Unmeasured changes per case, then measured ones.
    warmup: usize,
    iterations: usize,
    /// A tool still measuring after `budget` stops once it has `min_samples` changes.
    budget: Duration,
    min_samples: usize,
    /// Pause after a change showed up before the next, in ms.
    gap_ms: std::ops::RangeInclusive<u64>,
    /// Quiet time before RSS is read, and after the first render before measuring.
    settle: Duration,
    /// A daemon counts as idle when it used no CPU for this long.
    idle: Duration,
    /// Bound on any other wait (ZooKeeper's start, a first render, an idle daemon).
    limit: Duration,
    /// A change not in the file after this long is lost; a tool that lost more than
    /// `most_lost` fails the case.
    lost_after: Duration,
    most_lost: usize,
    /// Creates (or deletes) per multi write.
    write_batch: usize,
}

const PLAN: Plan = Plan {
    cases: [5, 10_000],
    warmup: 20,
    iterations: 200,
    budget: Duration::from_secs(90),
    min_samples: 20,
    gap_ms: 150..=300,
    settle: Duration::from_secs(1),
    idle: Duration::from_millis(100),
    limit: Duration::from_secs(60),
    lost_after: Duration::from_secs(5),
    most_lost: 10,
    write_batch: 500,
};

/// ZooKeeper from Debian's package, standalone on a free loopback port; killed on drop.
struct ZooKeeper {
    node: String,
    _proc: Guard,
}

impl ZooKeeper {
    const LAUNCHER: &'static str = "/usr/share/zookeeper/bin/zkServer.sh";

    /// Starts it with config, data and log in `dir`; returns once it serves requests.
    fn start(dir: &Path) -> ZooKeeper {
        assert!(
            Path::new(Self::LAUNCHER).is_file(),
            "{} not found; install ZooKeeper with `apt-get install zookeeper default-jre-headless`",
            Self::LAUNCHER
        );
        let port = common::free_port();
        let data = dir.join("zk-data");
        std::fs::create_dir_all(&data).expect("mkdir zk-data");
        let cfg = common::write(
            dir,
            "zoo.cfg",
            &format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
                 4lw.commands.whitelist=srvr\n",
                data.display()
            ),
        );
        let log = std::fs::File::create(dir.join("zk.log")).expect("zk log");
        let child = Command::new(Self::LAUNCHER)
            .arg("start-foreground")
            .arg(&cfg)
            .env("ZOOCFGDIR", dir)
            .env("ZOO_LOG_DIR", dir)
            .env("JVMFLAGS", "-Xmx512m -Dzookeeper.jmx.log4j.disable=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("zk log"))
            .stderr(log)
            .spawn()
            .expect("start zookeeper");
        let zk = ZooKeeper {
            node: format!("127.0.0.1:{port}"),
            _proc: Guard(child),
        };
        common::poll(PLAN.limit, Duration::from_millis(100), || {
            srvr(port).contains("Mode: ").then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "zookeeper on port {port} did not serve within {:?}; its log is {}",
                PLAN.limit,
                dir.join("zk.log").display()
            )
        });
        zk
    }
}

/// ZooKeeper's answer to the `srvr` four-letter command (empty when none).
fn srvr(port: u16) -> String {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut out = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"srvr").is_ok() {
            let _ = s.read_to_string(&mut out);
        }
    }
    out
}

/// What every case runs against: the server, a client of it and the temp dirs.
struct Bench {
    rt: Runtime,
    client: zk::Client,
    node: String,
    /// Where confdirs and rendered files go (tmpfs when there is one).
    out: PathBuf,
}

impl Bench {
    /// Creates `parent` (and its ancestors) and `keys` znodes `parent/web00000`….
    fn load(&self, parent: &str, keys: usize) {
        let c = &self.client;
        self.rt.block_on(async {
            let dir = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
            c.mkdir(parent, &dir).await.expect("mkdir");
            let names: Vec<usize> = (0..keys).collect();
            let mut sent = Vec::new();
            for chunk in names.chunks(PLAN.write_batch) {
                let mut w = c.new_multi_writer();
                for &i in chunk {
                    let data = format!("10.0.{}.{}:8080", i >> 8, i & 255);
                    w.add_create(&format!("{parent}/web{i:05}"), data.as_bytes(), &dir)
                        .expect("create op");
                }
                sent.push(w.commit());
            }
            for reply in sent {
                reply.await.expect("create znodes");
            }
        });
    }

    /// Sets the data of `path`; returns when the reply arrived.
    fn set(&self, path: &str, value: &str) -> Instant {
        self.rt
            .block_on(self.client.set_data(path, value.as_bytes(), None))
            .expect("set data");
        Instant::now()
    }

    /// Deletes what `load(root/app/servers, keys)` created: the znodes, then their
    /// ancestors up to `root`, in multi writes.
    fn remove(&self, root: &str, keys: usize) {
        let servers = format!("{root}/app/servers");
        let mut order: Vec<String> = (0..keys).map(|i| format!("{servers}/web{i:05}")).collect();
        order.extend([servers, format!("{root}/app"), root.to_string()]);
        let c = &self.client;
        self.rt.block_on(async {
            for chunk in order.chunks(PLAN.write_batch) {
                let mut w = c.new_multi_writer();
                for p in chunk {
                    w.add_delete(p, None).expect("delete op");
                }
                w.commit().await.expect("delete znodes");
            }
        });
    }
}

/// One tool's result in one case.
struct Measured {
    /// Changes that never showed up in the file (within `PLAN.lost_after`).
    lost: usize,
    lat: Percentiles,
    rss_kb: u64,
    hwm_kb: u64,
}

struct Row {
    keys: usize,
    tool: &'static str,
    result: Result<Measured, String>,
}

/// Counter of the runs made, so each has its own prefix and confdir.
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One case for one tool: `keys` znodes, changes of random ones in the order `seed`
/// gives (the same for every tool).
fn case(b: &Bench, tool: &Tool, keys: usize, seed: u64) -> Result<Measured, String> {
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = format!("/zl{n}-{:08x}", fastrand::u32(..));
    let servers = format!("{root}/app/servers");
    b.load(&servers, keys);
    let conf = b.out.join(format!("run{n}-{}", tool.name));
    let out = conf.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    common::write(&conf, "templates/lines.tmpl", GO_SERVER_LINES);
    let mut dest = Dest::new(out.join("haproxy.cfg"));
    common::write(
        &conf,
        "conf.d/lines.toml",
        &format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{root}\"\nkeys = [\"/app/servers\"]\n",
            dest.path.display()
        ),
    );
    let log = conf.join("daemon.log");
    let mut daemon = tool.start(&conf, &common::ZOOKEEPER, &b.node);
    let result = (|| {
        dest.wait(&mut daemon, &log, PLAN.limit, "first render", |s| {
            s.lines().count() > keys
        })?;
        std::thread::sleep(PLAN.settle);
        wait_idle(daemon.pid())?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut lat = Vec::with_capacity(PLAN.iterations);
        let mut measuring = None;
        let mut lost = 0;
        for n in 0..PLAN.warmup + PLAN.iterations {
            let i = rng.usize(..keys);
            let gap = Duration::from_millis(rng.u64(PLAN.gap_ms.clone()));
            let value = format!("10.1.{}.{}:{}", n >> 8 & 255, n & 255, 10_000 + n);
            let needle = format!("server web{i:05} {value} check\n");
            let acked = b.set(&format!("{servers}/web{i:05}"), &value);
            let what = format!("change {n}");
            let seen = match dest.wait(&mut daemon, &log, PLAN.lost_after, &what, |s| {
                s.contains(&needle)
            }) {
                Ok(seen) => seen,
                // Still running: the change is lost (a later one may bring it along).
                Err(_) if matches!(daemon.0.try_wait(), Ok(None)) && lost < PLAN.most_lost => {
                    lost += 1;
                    continue;
                }
                Err(e) if lost == PLAN.most_lost => {
                    return Err(format!("lost {lost} changes; {e}"));
                }
                Err(e) => return Err(e),
            };
            if n >= PLAN.warmup {
                lat.push(seen.duration_since(acked));
                let began = *measuring.get_or_insert(acked);
                if began.elapsed() > PLAN.budget && lat.len() >= PLAN.min_samples {
                    break;
                }
            }
            std::thread::sleep(gap);
            wait_idle(daemon.pid())?;
        }
        std::thread::sleep(PLAN.settle);
        Ok(Measured {
            lost,
            lat: Percentiles::of(&mut lat),
            rss_kb: common::status_kb(daemon.pid(), "VmRSS:"),
            hwm_kb: common::status_kb(daemon.pid(), "VmHWM:"),
        })
    })();
    drop(daemon);
    b.remove(&root, keys);
    result
}

/// Waits until `pid` used no CPU time (less than a clock tick) over `PLAN.idle`: done with the
/// last change, its watches set again.
fn wait_idle(pid: u32) -> Result<(), String> {
    common::poll(PLAN.limit, Duration::ZERO, || {
        (common::cpu_ms_over(pid, PLAN.idle) == 0).then_some(())
    })
    .ok_or_else(|| format!("still busy after {:?}", PLAN.limit))
}

fn main() {
    let began = Instant::now();
    let tools = common::tools();

    let tmp = tempfile::Builder::new()
        .prefix("confsync-zk-latency")
        .tempdir()
        .expect("tempdir");
    let shm = tempfile::Builder::new()
        .prefix("confsync-zk-latency")
        .tempdir_in("/dev/shm")
        .ok();
    let out = shm.as_ref().map_or(tmp.path(), |d| d.path()).to_path_buf();
    let zookeeper = ZooKeeper::start(tmp.path());
    // A worker of its own keeps the client's session alive (pings) between our calls.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt
        .block_on(
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(30))
                .connect(&zookeeper.node),
        )
        .expect("zookeeper client");
    let b = Bench {
        rt,
        client,
        node: zookeeper.node.clone(),
        out,
    };

    println!("zookeeper change latency: setData acknowledged -> rendered file holds the value");
    println!(
        "up to {} measured changes per case after {}, {}-{} ms apart; ZooKeeper {} on loopback; dest in {}",
        PLAN.iterations,
        PLAN.warmup,
        PLAN.gap_ms.start(),
        PLAN.gap_ms.end(),
        zk_version(&b),
        b.out.display()
    );
    common::print_tools(&tools);
    println!();

    let mut rows = Vec::new();
    for (c, keys) in PLAN.cases.into_iter().enumerate() {
        for t in &tools {
            let result = case(&b, t, keys, c as u64);
            if let Err(e) = &result {
                eprintln!("{keys} znodes: {}: {e}", t.name);
            }
            rows.push(Row {
                keys,
                tool: t.name,
                result,
            });
        }
    }
    print_table(&rows);

    let ours = |keys: usize| {
        rows.iter()
            .find(|r| r.keys == keys && r.tool == "confsync")
            .and_then(|r| r.result.as_ref().ok())
    };
    println!("\ngoals (issue 16)");
    let goal = |text: &str, got: Option<f64>, unit: &str, limit: f64| {
        let verdict = match got {
            Some(v) if v <= limit => format!("met ({v:.3} {unit})"),
            Some(v) => format!("NOT met ({v:.3} {unit})"),
            None => "not measured (the run failed)".into(),
        };
        println!("  {text:<44} {verdict}");
    };
    goal(
        "10,000 znodes: p50 <= 10 ms",
        ours(10_000).map(|m| ms(m.lat.p50)),
        "ms",
        10.0,
    );
    goal(
        "5 znodes: p50 <= 2 ms",
        ours(5).map(|m| ms(m.lat.p50)),
        "ms",
        2.0,
    );
    goal(
        "RSS watching 10,000 znodes <= 25 MB",
        ours(10_000).map(|m| mb(m.rss_kb)),
        "MB",
        25.0,
    );
    println!("\ntook {:.0} s", began.elapsed().as_secs_f64());
    if std::env::var_os("CONFSYNC_BENCH_KEEP").is_some() {
        println!("kept {} and {}", tmp.keep().display(), b.out.display());
        std::mem::forget(shm);
    }
}

/// The server's version from `srvr` (its first line, after the colon).
fn zk_version(b: &Bench) -> String {
    let port: u16 = b
        .node
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    srvr(port)
        .lines()
        .next()
        .and_then(|l| l.split_once(": "))
        .map(|(_, v)| v.split(['-', ',']).next().unwrap_or(v).to_string())
        .unwrap_or_default()
}

/// The results: changes measured and lost, percentiles, memory, and p50 and RSS as
/// ratios of the fork's.
fn print_table(rows: &[Row]) {
    let fork = |keys: usize| {
        rows.iter()
            .find(|r| r.keys == keys && r.tool == "confd-fork")
            .and_then(|r| r.result.as_ref().ok())
    };
    println!(
        "{:<8} {:<10} {:>4} {:>4} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>9}",
        "znodes",
        "tool",
        "n",
        "lost",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "RSS MB",
        "peak",
        "p50/fork",
        "RSS/fork"
    );
    for r in rows {
        let m = match &r.result {
            Ok(m) => m,
            Err(e) => {
                println!(
                    "{:<8} {:<10} failed: {}",
                    r.keys,
                    r.tool,
                    e.lines().next().unwrap_or("")
                );
                continue;
            }
        };
        let ratio = |f: fn(&Measured) -> f64| {
            fork(r.keys).map_or("-".into(), |fm| format!("{:.3}", f(m) / f(fm)))
        };
        println!(
            "{:<8} {:<10} {:>4} {:>4} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7.1} {:>7.1} {:>9} {:>9}",
            r.keys,
            r.tool,
            m.lat.n,
            m.lost,
            ms(m.lat.p50),
            ms(m.lat.p90),
            ms(m.lat.p99),
            ms(m.lat.max),
            mb(m.rss_kb),
            mb(m.hwm_kb),
            ratio(|m| m.lat.p50.as_secs_f64()),
            ratio(|m| m.rss_kb as f64),
        );
    }
}
