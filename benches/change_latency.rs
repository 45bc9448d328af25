//! Change-to-file latency and burst reloads of `confsync`, side by side with the maintained
//! confd fork (abtreece/confd) and optionally the original confd (issue 11's performance
//! section).
//!
//! Starts its own etcd (Debian's etcd-server) on free loopback ports in a temp dir (on the
//! same disk as everything else, not tmpfs) and runs every case for each tool one after
//! another, against that etcd, with the same data, the same confdir and the same Go
//! template (one `server` line per key under `/app/servers`), the destination in the temp
//! dir. Every tool is started with confd's command line, watching and with its default
//! coalescing (none for confd and the fork):
//!
//! ```text
//! confsync -backend etcdv3 -node http://127.0.0.1:PORT -confdir DIR -watch -log-level error
//! confd    -backend etcdv3 -node http://127.0.0.1:PORT -confdir DIR -watch -log-level error
//! fork     etcd --node http://127.0.0.1:PORT --confdir DIR --watch --log-level error
//! ```
//!
//! confsync is the binary cargo built with this bench. A latency is measured from a put's
//! acknowledgement to the moment the rendered file contains the change (inotify on the
//! destination's directory wakes the reader), over 100 measured changes per case after 10
//! unmeasured ones; each tool gets the same sequence of keys. The cases:
//!
//! - isolated change, 5 and 10,000 keys: one random key updated every 150 ms (longer than
//!   confsync's default coalescing `min`, 100 ms, so each change is rendered at once);
//! - steady stream, 5 and 10,000 keys: each change written 50 ms after the previous one
//!   showed up in the file (within confsync's `min`, so its coalescing is measured too);
//! - burst: 100 registrations (100 new keys, put one after another as fast as the client
//!   gets acknowledgements) on top of 5 keys, three rounds; the resource's reload_cmd
//!   appends a line to a counter file, and the reloads of each round are counted once the
//!   file has all 100 and 2 s (past confsync's `max`, 1 s) have passed.
//!
//! It prints a table (case, tool, n, p50, p90, p99, max in ms, p50 as a ratio of the
//! fork's), the burst's reload counts, and whether each goal was met.
//!
//! Run with
//! `CONFSYNC_BENCH_FORK=/path/to/fork-confd [CONFSYNC_BENCH_CONFD=/path/to/confd] cargo bench --bench change_latency`
//! (needs `etcd`: `apt-get install etcd-server`; build the fork from its source at
//! github.com/abtreece/confd, Go >= 1.25). Without `CONFSYNC_BENCH_FORK` confsync runs
//! alone and the comparisons are reported as not made. Takes about 4 minutes with the
//! fork; the original confd, at about 0.6 s a change with 10,000 keys, adds 3 more.
//!
//! Goals (issue 11): isolated change at 10,000 keys, confsync p50 <= 0.1x the fork's; at
//! 5 keys no worse than the fork's (confsync still fsyncs the staged file and the
//! directory, confd does not); steady stream at 5 and 10,000 keys, p50 no worse than the
//! fork's; burst of 100 registrations, at most 5 reloads.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions};
use tokio::runtime::Runtime;

use common::{Dest, GO_SERVER_LINES, Guard, Percentiles, Tool, ms, put_all};

/// Measured changes per latency case (after `WARMUP` unmeasured ones).
const ITERATIONS: usize = 100;
const WARMUP: usize = 10;
/// Pause after a change showed up before the next, isolated changes: longer than
/// confsync's default coalescing `min` (100 ms).
const ISOLATED_GAP: Duration = Duration::from_millis(150);
/// Pause after a change showed up before the next, steady stream.
const STREAM_GAP: Duration = Duration::from_millis(50);
/// Registrations per burst, keys present before the first, rounds per tool.
const BURST: usize = 100;
const BURST_BASE: usize = 5;
const BURST_ROUNDS: usize = 3;
/// Quiet time after a burst is in the file before its reloads are counted (confsync's
/// default coalescing `max` is 1 s), and after the first render before measuring.
const SETTLE: Duration = Duration::from_secs(2);
const START_SETTLE: Duration = Duration::from_millis(500);
/// Bound on any one wait (first render, one change, a whole burst).
const LIMIT: Duration = Duration::from_secs(30);

/// One latency case's result for one tool.
struct Row {
    case: String,
    tool: &'static str,
    result: Result<Percentiles, String>,
}

/// One tool's burst rounds: puts' duration, time until all were in the file, reloads.
struct Burst {
    tool: &'static str,
    rounds: Result<Vec<(Duration, Duration, usize)>, String>,
}

/// What every case runs against: the etcd's client and URL, and the temp dir.
struct Bench {
    rt: Runtime,
    client: Client,
    url: String,
    dir: PathBuf,
}

/// A running tool on its own prefix and confdir: everything a case needs.
struct Run<'a> {
    b: &'a mut Bench,
    prefix: String,
    dest: Dest,
    daemon: Guard,
    log: PathBuf,
}

impl Run<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}/app/servers/{name}", self.prefix)
    }

    /// Waits until the dest satisfies `pred`; returns when it saw it, or why not (the
    /// daemon exited, or `LIMIT` passed).
    fn wait(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> Result<Instant, String> {
        self.dest
            .wait(&mut self.daemon, &self.log, LIMIT, what, pred)
    }

    fn put(&mut self, key: &str, value: &str) -> Instant {
        self.b
            .rt
            .block_on(self.b.client.put(key, value, None))
            .expect("put");
        Instant::now()
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        let _ = self.daemon.0.kill();
        let _ = self.daemon.0.wait();
        let prefix = self.prefix.clone();
        self.b
            .rt
            .block_on(
                self.b
                    .client
                    .delete(prefix, Some(DeleteOptions::new().with_prefix())),
            )
            .expect("clean up");
    }
}

/// Counter of the confdirs made, so each run has its own.
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Writes `keys` keys (`web00000`...) under a fresh prefix, a confdir rendering them
/// (with a reload command appending to `counter` when given), starts `tool` on it and
/// waits for its first render (`keys + 1` lines) and `START_SETTLE`.
fn start<'a>(
    b: &'a mut Bench,
    tool: &Tool,
    keys: usize,
    counter: Option<&Path>,
) -> Result<Run<'a>, String> {
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("/latency{n}-{:08x}", fastrand::u32(..));
    b.rt.block_on(put_all(
        &mut b.client,
        (0..keys).map(|i| {
            (
                format!("{prefix}/app/servers/web{i:05}"),
                format!("10.0.{}.{}:8080", i >> 8, i & 255),
            )
        }),
    ));
    let conf = b.dir.join(format!("run{n}-{}", tool.name));
    let out = conf.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let dest = out.join("haproxy.cfg");
    common::write(&conf, "templates/lines.tmpl", GO_SERVER_LINES);
    let mut resource = format!(
        "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n",
        dest.display()
    );
    if let Some(c) = counter {
        writeln!(resource, "reload_cmd = \"echo reload >> {}\"", c.display()).unwrap();
    }
    common::write(&conf, "conf.d/lines.toml", &resource);

    let dest = Dest::new(dest);
    let daemon = tool.start(&conf, &common::ETCD, &b.url);
    let mut run = Run {
        b,
        prefix,
        dest,
        daemon,
        log: conf.join("daemon.log"),
    };
    run.wait("first render", |s| s.lines().count() > keys)?;
    std::thread::sleep(START_SETTLE);
    Ok(run)
}

/// A latency case: `keys` keys, changes of random keys (the same sequence for every
/// tool: `seed`), `gap` after each one showed up before the next.
fn latency(
    b: &mut Bench,
    tool: &Tool,
    keys: usize,
    gap: Duration,
    seed: u64,
) -> Result<Percentiles, String> {
    let mut run = start(b, tool, keys, None)?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut lat = Vec::with_capacity(ITERATIONS);
    for n in 0..WARMUP + ITERATIONS {
        let i = rng.usize(..keys);
        let value = format!("10.1.{}.{}:{}", n >> 8 & 255, n & 255, 10_000 + n);
        let needle = format!("server web{i:05} {value} check\n");
        let acked = run.put(&run.key(&format!("web{i:05}")), &value);
        let seen = run.wait(&format!("change {n}"), |s| s.contains(&needle))?;
        if n >= WARMUP {
            lat.push(seen.duration_since(acked));
        }
        std::thread::sleep(gap);
    }
    Ok(Percentiles::of(&mut lat))
}

/// The burst case: `BURST_ROUNDS` rounds of `BURST` new keys on top of `BURST_BASE`.
fn burst(b: &mut Bench, tool: &Tool) -> Result<Vec<(Duration, Duration, usize)>, String> {
    let counter = b.dir.join(format!("reloads-{}", tool.name));
    let reloads = || {
        std::fs::read_to_string(&counter)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let mut run = start(b, tool, BURST_BASE, Some(&counter))?;
    std::thread::sleep(SETTLE);
    let mut rounds = Vec::new();
    for r in 0..BURST_ROUNDS {
        let before = reloads();
        let begin = Instant::now();
        for j in 0..BURST {
            run.put(
                &run.key(&format!("burst{r}-{j:03}")),
                &format!("10.2.{r}.{j}:80"),
            );
        }
        let puts = begin.elapsed();
        let lines = BURST_BASE + BURST * (r + 1) + 1;
        let all_in = run.wait(&format!("burst {r}"), |s| s.lines().count() >= lines)?;
        std::thread::sleep(SETTLE);
        rounds.push((puts, all_in.duration_since(begin), reloads() - before));
    }
    Ok(rounds)
}

fn main() {
    let began = Instant::now();
    let tools = common::tools();
    let have_fork = common::has_fork(&tools);

    let (dir, etcd, rt, client) = common::etcd_setup("confsync-change-latency");
    let mut b = Bench {
        rt,
        client,
        url: etcd.url.clone(),
        dir: dir.path().to_path_buf(),
    };
    println!("change latency: put acknowledged -> rendered file contains the change");
    println!(
        "{ITERATIONS} measured changes per case after {WARMUP}; etcd 3.4 on loopback; dest in {}",
        b.dir.display()
    );
    common::print_tools(&tools);
    println!();

    let cases = [
        ("isolated", 5usize, ISOLATED_GAP),
        ("isolated", 10_000, ISOLATED_GAP),
        ("stream 50ms", 5, STREAM_GAP),
        ("stream 50ms", 10_000, STREAM_GAP),
    ];
    let mut rows = Vec::new();
    for (c, (label, keys, gap)) in cases.iter().enumerate() {
        let case = format!("{label}, {keys} keys");
        for t in &tools {
            let result = latency(&mut b, t, *keys, *gap, c as u64);
            if let Err(e) = &result {
                eprintln!("{case}: {}: {e}", t.name);
            }
            rows.push(Row {
                case: case.clone(),
                tool: t.name,
                result,
            });
        }
    }
    let mut bursts = Vec::new();
    for t in &tools {
        let rounds = burst(&mut b, t);
        if let Err(e) = &rounds {
            eprintln!("burst: {}: {e}", t.name);
        }
        bursts.push(Burst {
            tool: t.name,
            rounds,
        });
    }

    let fork_p50 = |case: &str| {
        rows.iter()
            .find(|r| r.case == case && r.tool == "confd-fork")
            .and_then(|r| r.result.as_ref().ok())
            .map(|p| p.p50)
    };
    println!(
        "{:<24} {:<10} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "case", "tool", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50/fork"
    );
    for r in &rows {
        match &r.result {
            Ok(p) => {
                let ratio = fork_p50(&r.case)
                    .map(|f| format!("{:.3}", p.p50.as_secs_f64() / f.as_secs_f64()))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<24} {:<10} {:>4} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
                    r.case,
                    r.tool,
                    p.n,
                    ms(p.p50),
                    ms(p.p90),
                    ms(p.p99),
                    ms(p.max),
                    ratio
                );
            }
            Err(e) => println!(
                "{:<24} {:<10} failed: {}",
                r.case,
                r.tool,
                e.lines().next().unwrap_or("")
            ),
        }
    }
    println!(
        "\nburst of {BURST} registrations on {BURST_BASE} keys ({BURST_ROUNDS} rounds; reloads counted {SETTLE:?} after all were in the file)"
    );
    for b in &bursts {
        match &b.rounds {
            Ok(rounds) => {
                let each: Vec<String> = rounds
                    .iter()
                    .map(|(puts, all, n)| {
                        format!(
                            "{n} reloads (puts {:.0} ms, all in file after {:.0} ms)",
                            ms(*puts),
                            ms(*all)
                        )
                    })
                    .collect();
                println!("  {:<10} {}", b.tool, each.join("; "));
            }
            Err(e) => println!(
                "  {:<10} failed: {}",
                b.tool,
                e.lines().next().unwrap_or("")
            ),
        }
    }

    println!("\ngoals (issue 11)");
    let ours = |case: &str| {
        rows.iter()
            .find(|r| r.case == case && r.tool == "confsync")
            .and_then(|r| r.result.as_ref().ok())
            .map(|p| p.p50)
    };
    let goal = |text: &str, case: &str, factor: f64| {
        let verdict = match (ours(case), fork_p50(case)) {
            (Some(o), Some(f)) => {
                let ratio = o.as_secs_f64() / f.as_secs_f64();
                let met = if ratio <= factor { "met" } else { "NOT met" };
                format!("{met} ({ratio:.3}x)")
            }
            _ if !have_fork => "not compared (no CONFSYNC_BENCH_FORK)".into(),
            _ => "not compared (a run failed)".into(),
        };
        println!("  {text:<58} {verdict}");
    };
    goal(
        "isolated, 10,000 keys: p50 <= 0.1x the fork's",
        "isolated, 10000 keys",
        0.1,
    );
    goal(
        "isolated, 5 keys: p50 <= the fork's",
        "isolated, 5 keys",
        1.0,
    );
    goal(
        "stream 50ms, 5 keys: p50 <= the fork's",
        "stream 50ms, 5 keys",
        1.0,
    );
    goal(
        "stream 50ms, 10,000 keys: p50 <= the fork's",
        "stream 50ms, 10000 keys",
        1.0,
    );
    let burst_verdict = match bursts
        .iter()
        .find(|b| b.tool == "confsync")
        .map(|b| &b.rounds)
    {
        Some(Ok(rounds)) => {
            let most = rounds.iter().map(|r| r.2).max().unwrap_or(0);
            format!(
                "{} (at most {most})",
                if most <= 5 { "met" } else { "NOT met" }
            )
        }
        _ => "not measured (the run failed)".into(),
    };
    println!(
        "  {:<58} {burst_verdict}",
        format!("burst of {BURST}: at most 5 reloads")
    );
    println!("\ntook {:.0} s", began.elapsed().as_secs_f64());
}
