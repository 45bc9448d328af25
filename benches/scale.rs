//! How `confsync` scales with the number of keys under the watched prefix, side by side
//! with the maintained confd fork (abtreece/confd), on etcd and on Redis (issue 18).
//!
//! Starts its own etcd (Debian's etcd-server) and redis-server (with
//! `--notify-keyspace-events KEA`) on free 127.0.0.1 ports in temp dirs, killed at the end.
//! For each backend, each N and each tool, one tool alone after the other, it writes N
//! keys `/scaleK-…/app/servers/web000000`… under a fresh prefix (etcd: transactions of
//! 100 puts; Redis: MSETs of 1,000 keys, pipelined), writes a confdir whose one resource
//! renders them with the Go template every tool reads (one HAProxy `server` line per key,
//! no check or reload command, so only the daemon is measured) and starts the tool
//! watching with confd's command line and its default coalescing:
//!
//! ```text
//! confsync -backend etcdv3 -node http://127.0.0.1:PORT -confdir DIR -watch -log-level error
//! confsync -backend redis -node 127.0.0.1:PORT -confdir DIR -watch -log-level error
//! fork     etcd --node http://127.0.0.1:PORT --confdir DIR --watch --log-level error
//! fork     redis --node 127.0.0.1:PORT --confdir DIR --watch --log-level error
//! ```
//!
//! Then it measures:
//!
//! 1. first full render: from spawning the daemon to the rendered file holding all N
//!    server lines;
//! 2. RSS while watching: VmRSS from /proc/PID/status after the first render, and again
//!    after the changes below (the one reported), with VmHWM (the peak);
//! 3. change-to-file latency: one random existing key set to a new unique value (the same
//!    sequence for every tool), measured from the write's acknowledgement to the file
//!    holding the new line (inotify on the destination's directory wakes the reader);
//!    60 measured changes after 5 unmeasured ones, each written 300 ms after the previous
//!    one showed up (longer than confsync's default coalescing `min`, 100 ms, so each is
//!    isolated). A change not in the file within max(30 s, 3x the tool's first render)
//!    counts as lost, and a case stops after 5 lost. The fork on Redis re-reads every key
//!    on each change (seconds at 100,000 keys), so there it gets 10 measured changes from
//!    50,000 keys on;
//! 4. CPU per change: the daemon's utime + stime over the measured changes (each with its
//!    pause) divided by their number;
//! 5. RSS after deleting every key (etcd: one range delete; Redis: pipelined DELs of
//!    1,000 keys), once the file has no server line left and 2 s passed, as MB and as a
//!    ratio of the tool's idle RSS: that of the same tool started on 0 keys, 2 s after
//!    its first render (measured once per backend and tool).
//!
//! It prints one table per backend (N, tool, first render s, RSS and peak MB, p50/p90/p99
//! ms, CPU ms/change, RSS after delete MB and x idle, and for confsync its RSS, p50 and
//! first render as ratios of the fork's), the same as one markdown table (for the
//! README), and whether each goal was met. With `CONFSYNC_BENCH_OUT=FILE` every result is
//! also written to FILE as one JSON object per line.
//!
//! Run with
//! `CONFSYNC_BENCH_FORK=/path/to/fork-confd cargo bench --bench scale`
//! (needs `apt-get install etcd-server redis-server`; build the fork from its source at
//! github.com/abtreece/confd). Without `CONFSYNC_BENCH_FORK` confsync runs alone and the
//! comparisons are reported as not made. Settings:
//!
//! - `CONFSYNC_BENCH_SCALE_N`: comma list of key counts (default
//!   `100,1000,10000,50000,100000,200000`);
//! - `CONFSYNC_BENCH_SCALE_BACKENDS`: comma list of `etcd`, `redis` (default both);
//! - `CONFSYNC_BENCH_SCALE_TMPFS=1`: the destinations on tmpfs (/dev/shm) instead of the
//!   temp dir's disk;
//! - `CONFSYNC_BENCH_LOG=debug`: every tool at that log level (confsync's log then has
//!   each render's timings); the logs are in the temp dirs, kept with
//!   `CONFSYNC_BENCH_KEEP=1`.
//!
//! With the fork and the default N this takes about half an hour, most of it the fork's.
//!
//! Goals (issue 18): at 100,000 keys, on etcd and on Redis, confsync's RSS <= 0.5x the
//! fork's, its change p50 <= 0.05x the fork's, its first render <= 0.5x the fork's, and
//! its RSS after deleting every key within 20% of its idle RSS; at 10,000 keys, an
//! isolated change's p50 <= 2 ms with the destination on tmpfs.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions};
use tokio::runtime::Runtime;

use common::{Dest, GO_SERVER_LINES, Kind, PeerBackend, Percentiles, Tool, mb, ms};

const DEFAULT_N: &str = "100,1000,10000,50000,100000,200000";
/// Unmeasured changes, then measured ones (`FEW` for the fork on Redis from `FEW_FROM`).
const WARMUP: usize = 5;
const ITERATIONS: usize = 60;
const FEW: usize = 10;
const FEW_FROM: usize = 50_000;
/// Pause after a change showed up before the next: past confsync's coalescing `min`.
const GAP: Duration = Duration::from_millis(300);
/// Bound on one change, at least (it scales with the tool's first render).
const CHANGE_LIMIT: Duration = Duration::from_secs(30);
/// Lost changes after which a case stops.
const MAX_LOST: usize = 5;
/// Bounds on the first render and on the file emptying after the deletes.
const FIRST_LIMIT: Duration = Duration::from_secs(300);
const DELETE_LIMIT: Duration = Duration::from_secs(60);
/// Quiet time before RSS is read after the first render, the changes, the deletes.
const SETTLE: Duration = Duration::from_secs(1);
const DELETE_SETTLE: Duration = Duration::from_secs(2);
/// Keys per MSET and per DEL on Redis.
const REDIS_BATCH: usize = 1000;

/// The key store every tool of one backend runs against.
enum Store {
    Etcd {
        client: Box<Client>,
        rt: Runtime,
        url: String,
        _etcd: common::Etcd,
    },
    Redis {
        conn: redis::Connection,
        server: Box<common::Redis>,
    },
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Etcd { .. } => "etcd",
            Store::Redis { .. } => "redis",
        }
    }

    fn peer(&self) -> &'static PeerBackend {
        match self {
            Store::Etcd { .. } => &common::ETCD,
            Store::Redis { .. } => &common::REDIS,
        }
    }

    fn node(&self) -> &str {
        match self {
            Store::Etcd { url, .. } => url,
            Store::Redis { server, .. } => &server.node,
        }
    }

    /// Writes keys `0..n` under `prefix`.
    fn load(&mut self, prefix: &str, n: usize) {
        match self {
            Store::Etcd { client, rt, .. } => {
                rt.block_on(common::put_all(
                    client,
                    (0..n).map(|i| (key(prefix, i), value(i))),
                ));
            }
            Store::Redis { .. } if n == 0 => {}
            Store::Redis { conn, .. } => {
                let mut pipe = redis::pipe();
                for start in (0..n).step_by(REDIS_BATCH) {
                    let mut mset = redis::cmd("MSET");
                    for i in start..n.min(start + REDIS_BATCH) {
                        mset.arg(key(prefix, i)).arg(value(i));
                    }
                    pipe.add_command(mset).ignore();
                }
                let _: () = pipe.query(conn).expect("load keys");
            }
        }
    }

    /// Sets `key` to `value`; returns when the write was acknowledged.
    fn set(&mut self, key: &str, value: &str) -> Instant {
        match self {
            Store::Etcd { client, rt, .. } => {
                rt.block_on(client.put(key, value, None)).expect("put");
            }
            Store::Redis { conn, .. } => {
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query(conn)
                    .expect("set");
            }
        }
        Instant::now()
    }

    /// Deletes keys `0..n` under `prefix` (etcd: every key under it, in one request).
    fn delete_all(&mut self, prefix: &str, n: usize) {
        match self {
            Store::Etcd { client, rt, .. } => {
                rt.block_on(client.delete(
                    format!("{prefix}/"),
                    Some(DeleteOptions::new().with_prefix()),
                ))
                .expect("range delete");
            }
            Store::Redis { .. } if n == 0 => {}
            Store::Redis { conn, .. } => {
                let mut pipe = redis::pipe();
                for start in (0..n).step_by(REDIS_BATCH) {
                    let keys: Vec<String> = (start..n.min(start + REDIS_BATCH))
                        .map(|i| key(prefix, i))
                        .collect();
                    pipe.cmd("DEL").arg(keys).ignore();
                }
                let _: () = pipe.query(conn).expect("delete keys");
            }
        }
    }
}

fn key(prefix: &str, i: usize) -> String {
    format!("{prefix}/app/servers/web{i:06}")
}

fn value(i: usize) -> String {
    format!("10.{}.{}.{}:8080", i >> 16, (i >> 8) & 255, i & 255)
}

/// The number of `server` lines in a rendered file.
fn servers(s: &str) -> usize {
    s.lines().filter(|l| l.starts_with("    server ")).count()
}

/// One (backend, N, tool) result; `None` where the run did not get that far.
#[derive(Default)]
struct Row {
    backend: &'static str,
    n: usize,
    tool: &'static str,
    first: Option<Duration>,
    rss_first_kb: Option<u64>,
    rss_kb: Option<u64>,
    hwm_kb: Option<u64>,
    lat: Option<Percentiles>,
    lost: usize,
    cpu_per_change: Option<f64>,
    deleted_after: Option<Duration>,
    rss_deleted_kb: Option<u64>,
    error: Option<String>,
}

impl Row {
    fn json(&self, idle_kb: Option<u64>) -> serde_json::Value {
        let opt_ms = |d: Option<Duration>| d.map(ms);
        serde_json::json!({
            "bench": "scale",
            "backend": self.backend,
            "n": self.n,
            "tool": self.tool,
            "first_render_s": self.first.map(|d| d.as_secs_f64()),
            "rss_first_kb": self.rss_first_kb,
            "rss_kb": self.rss_kb,
            "hwm_kb": self.hwm_kb,
            "changes": self.lat.as_ref().map(|p| p.n),
            "lost": self.lost,
            "p50_ms": opt_ms(self.lat.as_ref().map(|p| p.p50)),
            "p90_ms": opt_ms(self.lat.as_ref().map(|p| p.p90)),
            "p99_ms": opt_ms(self.lat.as_ref().map(|p| p.p99)),
            "max_ms": opt_ms(self.lat.as_ref().map(|p| p.max)),
            "cpu_ms_per_change": self.cpu_per_change,
            "emptied_after_s": self.deleted_after.map(|d| d.as_secs_f64()),
            "rss_after_delete_kb": self.rss_deleted_kb,
            "idle_rss_kb": idle_kb,
            "error": self.error,
        })
    }
}

/// Where the runs put their confdirs and destinations.
struct Dirs {
    conf: PathBuf,
    dest: PathBuf,
}

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `tool` on `n` fresh keys (see the module doc); `n == 0` is the idle run, which
/// stops after the first render and reads RSS `DELETE_SETTLE` later.
fn run(store: &mut Store, dirs: &Dirs, tool: &Tool, n: usize, seed: u64) -> Row {
    let k = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("/scale{k}-{:08x}", fastrand::u32(..));
    let mut row = Row {
        backend: store.name(),
        n,
        tool: tool.name,
        ..Row::default()
    };
    store.load(&prefix, n);
    let deleted = measure(store, dirs, tool, n, seed, &prefix, k, &mut row);
    if let Err(e) = &deleted {
        eprintln!("  {} n={n} {}: {e}", row.backend, tool.name);
        row.error = Some(e.lines().next().unwrap_or("").to_string());
    }
    if !matches!(deleted, Ok(true)) {
        store.delete_all(&prefix, n);
    }
    row
}

/// The measurements of [`run`], into `row`; `Ok(true)` once the keys are deleted.
#[allow(clippy::too_many_arguments)]
fn measure(
    store: &mut Store,
    dirs: &Dirs,
    tool: &Tool,
    n: usize,
    seed: u64,
    prefix: &str,
    k: usize,
    row: &mut Row,
) -> Result<bool, String> {
    let conf = dirs
        .conf
        .join(format!("run{k}-{}-{n}-{}", store.name(), tool.name));
    let out = dirs.dest.join(format!("run{k}"));
    std::fs::create_dir_all(&out).expect("mkdir dest");
    let dest = out.join("haproxy.cfg");
    common::write(&conf, "templates/lines.tmpl", GO_SERVER_LINES);
    common::write(
        &conf,
        "conf.d/lines.toml",
        &format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n",
            dest.display()
        ),
    );
    let log = conf.join("daemon.log");
    let mut dest = Dest::new(dest);
    let spawned = Instant::now();
    let mut daemon = tool.start(&conf, store.peer(), store.node());
    let pid = daemon.pid();
    let seen = dest.wait(&mut daemon, &log, FIRST_LIMIT, "first render", |s| {
        s.starts_with("backend app") && servers(s) == n
    })?;
    let first = seen.duration_since(spawned);
    row.first = Some(first);
    if n == 0 {
        std::thread::sleep(DELETE_SETTLE);
        row.rss_kb = Some(common::status_kb(pid, "VmRSS:"));
        row.hwm_kb = Some(common::status_kb(pid, "VmHWM:"));
        return Ok(true);
    }
    std::thread::sleep(SETTLE);
    row.rss_first_kb = Some(common::status_kb(pid, "VmRSS:"));

    let few = tool.kind == Kind::Fork && store.name() == "redis" && n >= FEW_FROM;
    let iterations = if few { FEW } else { ITERATIONS };
    let limit = (first * 3).max(CHANGE_LIMIT);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut lat = Vec::with_capacity(iterations);
    let mut cpu_before = 0;
    let mut done = 0;
    for c in 0..WARMUP + iterations {
        if c == WARMUP {
            cpu_before = common::cpu_ms(pid);
        }
        let i = rng.usize(..n);
        let v = format!("10.200.{}.{}:{}", (c >> 8) & 255, c & 255, 20_000 + c);
        let needle = format!("    server web{i:06} {v} check\n");
        let acked = store.set(&key(prefix, i), &v);
        match dest.wait(&mut daemon, &log, limit, &format!("change {c}"), |s| {
            s.contains(&needle)
        }) {
            Ok(at) if c >= WARMUP => lat.push(at.duration_since(acked)),
            Ok(_) => {}
            Err(e) => {
                if daemon.0.try_wait().ok().flatten().is_some() {
                    return Err(e);
                }
                row.lost += 1;
                eprintln!("  {} n={n} {}: change {c} lost", row.backend, tool.name);
                if row.lost >= MAX_LOST {
                    row.error = Some(format!("stopped after {MAX_LOST} lost changes"));
                    break;
                }
            }
        }
        if c >= WARMUP {
            done += 1;
        }
        std::thread::sleep(GAP);
    }
    if done > 0 {
        row.cpu_per_change =
            Some(common::cpu_ms(pid).saturating_sub(cpu_before) as f64 / done as f64);
    }
    if !lat.is_empty() {
        row.lat = Some(Percentiles::of(&mut lat));
    }
    std::thread::sleep(SETTLE);
    row.rss_kb = Some(common::status_kb(pid, "VmRSS:"));
    row.hwm_kb = Some(common::status_kb(pid, "VmHWM:"));

    let begin = Instant::now();
    store.delete_all(prefix, n);
    let emptied = dest.wait(
        &mut daemon,
        &log,
        (first * 3).max(DELETE_LIMIT),
        "the file without server lines",
        |s| s.starts_with("backend app") && servers(s) == 0,
    )?;
    row.deleted_after = Some(emptied.duration_since(begin));
    std::thread::sleep(DELETE_SETTLE);
    row.rss_deleted_kb = Some(common::status_kb(pid, "VmRSS:"));
    drop(daemon);
    Ok(true)
}

fn env_list(var: &str, default: &str) -> Vec<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `a / b` when both are there and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.map(|v| format!("{v:.prec$}"))
        .unwrap_or_else(|| "-".into())
}

/// The printed cells of one row: N, tool, first s, RSS, HWM, p50, p90, p99, lost,
/// CPU/change, after delete (x idle), and the ratios to the fork (RSS, p50, first).
fn cells(r: &Row, idle: Option<u64>, fork: Option<&Row>) -> Vec<String> {
    let p = |f: fn(&Percentiles) -> Duration| r.lat.as_ref().map(|p| ms(f(p)));
    let rss = r.rss_kb.map(mb);
    let p50 = p(|p| p.p50);
    let first = r.first.map(|d| d.as_secs_f64());
    let deleted = match (
        r.rss_deleted_kb,
        ratio(r.rss_deleted_kb.map(mb), idle.map(mb)),
    ) {
        (Some(d), Some(x)) => format!("{:.1} ({x:.2}x)", mb(d)),
        (Some(d), None) => format!("{:.1}", mb(d)),
        _ => "-".into(),
    };
    let vs = |ours: Option<f64>, f: fn(&Row) -> Option<f64>| {
        if r.tool != "confsync" {
            return String::new();
        }
        match fork {
            None => "not made".into(),
            Some(fr) => num(ratio(ours, f(fr)), 3),
        }
    };
    vec![
        r.n.to_string(),
        r.tool.to_string(),
        num(first, 2),
        num(rss, 1),
        num(r.hwm_kb.map(mb), 1),
        num(p50, 2),
        num(p(|p| p.p90), 2),
        num(p(|p| p.p99), 2),
        format!("{}/{}", r.lat.as_ref().map_or(0, |p| p.n), r.lost),
        num(r.cpu_per_change, 1),
        deleted,
        vs(rss, |f| f.rss_kb.map(mb)),
        vs(p50, |f| f.lat.as_ref().map(|p| ms(p.p50))),
        vs(first, |f| f.first.map(|d| d.as_secs_f64())),
    ]
}

const HEADERS: [&str; 14] = [
    "N",
    "tool",
    "first s",
    "RSS MB",
    "HWM MB",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "n/lost",
    "CPU ms/chg",
    "del MB (x idle)",
    "RSS/fork",
    "p50/fork",
    "first/fork",
];

struct Results {
    rows: Vec<Row>,
    /// Idle RSS per (backend, tool).
    idle: Vec<(&'static str, &'static str, Option<u64>)>,
}

impl Results {
    fn idle(&self, backend: &str, tool: &str) -> Option<u64> {
        self.idle
            .iter()
            .find(|(b, t, _)| *b == backend && *t == tool)
            .and_then(|i| i.2)
    }

    fn find(&self, backend: &str, n: usize, tool: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.backend == backend && r.n == n && r.tool == tool)
    }

    fn fork_of(&self, r: &Row) -> Option<&Row> {
        self.find(r.backend, r.n, "confd-fork")
    }
}

fn print_table(res: &Results, backend: &str) {
    let rows: Vec<Vec<String>> = res
        .rows
        .iter()
        .filter(|r| r.backend == backend)
        .map(|r| cells(r, res.idle(backend, r.tool), res.fork_of(r)))
        .collect();
    let widths: Vec<usize> = (0..HEADERS.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([HEADERS[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 1 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("  {}", text.join("  ").trim_end());
    };
    println!("\n{backend}:");
    let idle: Vec<String> = res
        .idle
        .iter()
        .filter(|i| i.0 == backend)
        .map(|i| format!("{} {}", i.1, num(i.2.map(mb), 1)))
        .collect();
    println!(
        "  idle RSS MB (0 keys, after the first render): {}",
        idle.join(", ")
    );
    line(&HEADERS.map(String::from));
    for r in &rows {
        line(r);
    }
    for r in res.rows.iter().filter(|r| r.backend == backend) {
        if let Some(e) = &r.error {
            println!("  note: n={} {}: {e}", r.n, r.tool);
        }
    }
}

fn print_markdown(res: &Results) {
    println!("\nmarkdown:\n");
    println!("| backend | {} |", HEADERS.join(" | "));
    println!("|{}", "---|".repeat(HEADERS.len() + 1));
    for r in &res.rows {
        let c = cells(r, res.idle(r.backend, r.tool), res.fork_of(r));
        println!("| {} | {} |", r.backend, c.join(" | "));
    }
}

fn print_goals(res: &Results, backends: &[&'static str], have_fork: bool, tmpfs: bool) {
    println!("\ngoals (issue 18)");
    let verdict = |v: Option<f64>, limit: f64, unit: &str, missing: &str| match v {
        Some(v) => format!(
            "{} ({v:.3}{unit})",
            if v <= limit { "met" } else { "NOT met" }
        ),
        None => missing.to_string(),
    };
    for &b in backends {
        let ours = res.find(b, 100_000, "confsync");
        let fork = res.find(b, 100_000, "confd-fork");
        let missing = if ours.is_none() {
            "not measured (N 100000 not run)"
        } else if !have_fork {
            "not made (no CONFSYNC_BENCH_FORK)"
        } else {
            "not made (a run failed)"
        };
        let vs = |f: fn(&Row) -> Option<f64>| ratio(ours.and_then(f), fork.and_then(f));
        let g = |text: &str, v: Option<f64>, limit: f64, unit: &str, missing: &str| {
            println!("  {b:<5} {text:<52} {}", verdict(v, limit, unit, missing));
        };
        g(
            "100,000 keys: RSS <= 0.5x the fork's",
            vs(|r| r.rss_kb.map(mb)),
            0.5,
            "x",
            missing,
        );
        g(
            "100,000 keys: change p50 <= 0.05x the fork's",
            vs(|r| r.lat.as_ref().map(|p| ms(p.p50))),
            0.05,
            "x",
            missing,
        );
        g(
            "100,000 keys: first render <= 0.5x the fork's",
            vs(|r| r.first.map(|d| d.as_secs_f64())),
            0.5,
            "x",
            missing,
        );
        let idle = res.idle(b, "confsync");
        g(
            "100,000 keys: RSS after deleting all <= 1.2x idle",
            ratio(ours.and_then(|r| r.rss_deleted_kb.map(mb)), idle.map(mb)),
            1.2,
            "x",
            if ours.is_none() {
                "not measured (N 100000 not run)"
            } else {
                "not measured (a run failed)"
            },
        );
        let p50 = res
            .find(b, 10_000, "confsync")
            .and_then(|r| r.lat.as_ref().map(|p| ms(p.p50)));
        let text = if tmpfs {
            "10,000 keys: change p50 <= 2 ms (dest on tmpfs)"
        } else {
            "10,000 keys: change p50 <= 2 ms (dest on disk, goal is tmpfs)"
        };
        g(
            text,
            p50,
            2.0,
            " ms",
            "not measured (N 10000 not run or failed)",
        );
    }
}

fn main() {
    let began = Instant::now();
    let tools = common::tools();
    let have_fork = common::has_fork(&tools);
    let ns: Vec<usize> = env_list("CONFSYNC_BENCH_SCALE_N", DEFAULT_N)
        .iter()
        .map(|s| {
            s.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("CONFSYNC_BENCH_SCALE_N: {s}: not a number"))
        })
        .collect();
    let backends: Vec<&'static str> = env_list("CONFSYNC_BENCH_SCALE_BACKENDS", "etcd,redis")
        .iter()
        .map(|b| match b.as_str() {
            "etcd" => "etcd",
            "redis" => "redis",
            other => panic!("CONFSYNC_BENCH_SCALE_BACKENDS: {other}: not etcd or redis"),
        })
        .collect();
    let tmpfs = std::env::var("CONFSYNC_BENCH_SCALE_TMPFS").is_ok_and(|v| v == "1");
    let keep = std::env::var("CONFSYNC_BENCH_KEEP").is_ok_and(|v| v == "1");
    let mut out = std::env::var_os("CONFSYNC_BENCH_OUT")
        .filter(|v| !v.is_empty())
        .map(|p| std::fs::File::create(&p).expect("CONFSYNC_BENCH_OUT"));

    let shm = tmpfs.then(|| {
        tempfile::Builder::new()
            .prefix("confsync-scale-dest")
            .tempdir_in("/dev/shm")
            .expect("tempdir on /dev/shm")
    });
    println!("scale: N keys under the watched prefix; each tool alone, one after another");
    println!(
        "N = {ns:?}; backends {backends:?}; {WARMUP} + {ITERATIONS} isolated changes {GAP:?} apart \
         (fork on Redis from {FEW_FROM} keys: {WARMUP} + {FEW}); dest on {}",
        if tmpfs { "tmpfs" } else { "disk" }
    );
    common::print_tools(&tools);

    let mut res = Results {
        rows: Vec::new(),
        idle: Vec::new(),
    };
    for &b in &backends {
        let (dir, mut store) = match b {
            "etcd" => {
                let (dir, etcd, rt, client) = common::etcd_setup("confsync-scale-etcd");
                let url = etcd.url.clone();
                (
                    dir,
                    Store::Etcd {
                        client: Box::new(client),
                        rt,
                        url,
                        _etcd: etcd,
                    },
                )
            }
            _ => {
                let dir = tempfile::Builder::new()
                    .prefix("confsync-scale-redis")
                    .tempdir()
                    .expect("tempdir");
                let server = common::Redis::start(dir.path(), &["--notify-keyspace-events", "KEA"]);
                let conn = server.conn();
                (
                    dir,
                    Store::Redis {
                        conn,
                        server: Box::new(server),
                    },
                )
            }
        };
        let dirs = Dirs {
            conf: dir.path().to_path_buf(),
            dest: shm.as_ref().map_or(dir.path(), |d| d.path()).to_path_buf(),
        };
        eprintln!("{b}: in {}", dirs.conf.display());
        for t in &tools {
            let r = run(&mut store, &dirs, t, 0, 0);
            eprintln!("  {b} idle {}: RSS {} MB", t.name, num(r.rss_kb.map(mb), 1));
            res.idle.push((b, t.name, r.rss_kb));
        }
        for (s, &n) in ns.iter().enumerate() {
            for t in &tools {
                let t0 = Instant::now();
                let r = run(&mut store, &dirs, t, n, s as u64 + 1);
                eprintln!(
                    "  {b} n={n} {}: first {} s, p50 {} ms, RSS {} MB ({:.0} s)",
                    t.name,
                    num(r.first.map(|d| d.as_secs_f64()), 2),
                    num(r.lat.as_ref().map(|p| ms(p.p50)), 2),
                    num(r.rss_kb.map(mb), 1),
                    t0.elapsed().as_secs_f64()
                );
                if let Some(f) = out.as_mut() {
                    writeln!(f, "{}", r.json(res.idle(b, t.name)))
                        .expect("write CONFSYNC_BENCH_OUT");
                }
                res.rows.push(r);
            }
        }
        print_table(&res, b);
        drop(store);
        if keep {
            println!("  kept {}", dir.keep().display());
        }
    }
    print_markdown(&res);
    print_goals(&res, &backends, have_fork, tmpfs);
    if let Some(d) = shm.filter(|_| keep) {
        println!("  kept {}", d.keep().display());
    }
    println!("\ntook {:.0} s", began.elapsed().as_secs_f64());
    let _ = std::io::stdout().flush();
}
