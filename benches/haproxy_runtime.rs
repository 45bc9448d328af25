//! HAProxy under load while a backend scales 2 -> 50 -> 2 servers in single steps, once
//! through the Runtime API (`haproxy_socket`, `drain_timeout = "2s"`) and once with
//! reloads, side by side (issue 14's performance section).
//!
//! Each run starts its own HAProxy (Debian's 2.6, master-worker mode: `-W -S`) from the
//! file `confsync render` gives, 50 small HTTP servers on loopback answering with their
//! name, and `confsync run --watch` on the file backend (`wait = "10ms:50ms"`,
//! `check_cmd = "haproxy -c"`, `reload_cmd` appending to a counter file and sending USR2
//! to the master). Two client threads send `GET /` on new connections through HAProxy,
//! 1 ms apart each, for the whole run; a failed request is a connect error or anything
//! but `200`. A step writes the data file (renamed into place) and waits until the
//! destination has the new server set, then lets the load run 20 ms more. Measured:
//!
//! - failed requests, reloads (`reload_cmd` runs), peak HAProxy processes (master and
//!   workers, sampled every 5 ms), p50/p99 request latency;
//! - change to file: from the data file's rename to the destination holding the change
//!   (through the file backend, render, `haproxy -c` and, on the runtime path, the
//!   commands and their check, which happen before the rename);
//! - change to runtime: the commands and the `show servers state` check alone, as the
//!   daemon logs them (`runtime_ms`), p50 (goal: at most 5 ms).
//!
//! Run with `cargo bench --bench haproxy_runtime` (needs `apt-get install haproxy`);
//! about 30 s.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Guard, Percentiles, find, free_port, ms, poll, wait_file, write};

const LIMIT: Duration = Duration::from_secs(20);
const MAX: usize = 50;

/// A loopback HTTP server answering every request with `name` (one thread per
/// connection); it lives as long as the bench.
fn app(name: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let body = name.clone();
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

struct Run {
    failed: usize,
    requests: usize,
    reloads: usize,
    peak_procs: usize,
    latency: Percentiles,
    to_file: Percentiles,
    to_runtime: Option<Percentiles>,
    runtime_updates: usize,
}

fn data(dir: &Path, apps: &[String], n: usize) {
    let mut y = String::from("hx:\n  servers:\n");
    for (i, a) in apps.iter().take(n).enumerate() {
        y.push_str(&format!("    s{i:02}: \"{a}\"\n"));
    }
    let tmp = dir.join("data.yaml.tmp");
    std::fs::write(&tmp, y).expect("write data");
    std::fs::rename(&tmp, dir.join("data.yaml")).expect("rename data");
}

fn children(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1))
                .and_then(|p| p.parse::<u32>().ok())
                == Some(parent)
        })
        .count()
}

fn run(runtime: bool, apps: &[String]) -> Run {
    let haproxy = find("haproxy", "haproxy");
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let (sock, port) = (d.join("admin.sock"), free_port());
    let dest = d.join("haproxy.cfg");
    write(
        d,
        "templates/hx.tmpl",
        &format!(
            "global\n    stats socket {} level admin\n\ndefaults\n    mode http\n    option redispatch\n    retries 2\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend app\n\nbackend app\n    balance roundrobin\n{{% for s in gets(key=\"/hx/servers/*\") %}}    server {{{{ s.key | base }}}} {{{{ s.value }}}}\n{{% endfor %}}",
            sock.display()
        ),
    );
    write(
        d,
        "confsync.toml",
        &format!(
            "backend = \"file\"\nfile = [\"{}\"]\n",
            d.join("data.yaml").display()
        ),
    );
    let socket = if runtime {
        format!(
            "haproxy_socket = \"{}\"\ndrain_timeout = \"2s\"\n",
            sock.display()
        )
    } else {
        String::new()
    };
    write(
        d,
        "conf.d/hx.toml",
        &format!(
            "[template]\nsrc = \"hx.tmpl\"\ndest = \"{}\"\nkeys = [\"/hx\"]\nwait = \"10ms:50ms\"\ncheck_cmd = \"{} -c -q -f {{{{ src }}}}\"\nreload_cmd = \"echo r >> {dir}/reloads && kill -USR2 $(cat {dir}/haproxy.pid)\"\n{socket}",
            dest.display(),
            haproxy.display(),
            dir = d.display(),
        ),
    );
    data(d, apps, 2);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_confsync"));
    let out = Command::new(&bin)
        .args(["render", "--resource", "hx", "--confdir"])
        .arg(d)
        .output()
        .expect("confsync render");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&dest, &out.stdout).expect("write dest");
    let log = |name: &str| std::fs::File::create(d.join(name)).expect("log");
    let master = Guard(
        Command::new(&haproxy)
            .arg("-W")
            .arg("-S")
            .arg(d.join("master.sock"))
            .arg("-p")
            .arg(d.join("haproxy.pid"))
            .arg("-f")
            .arg(&dest)
            .stdout(log("haproxy.log"))
            .stderr(log("haproxy.err"))
            .spawn()
            .expect("start haproxy"),
    );
    poll(LIMIT, Duration::from_millis(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("haproxy listens");
    let daemon = Guard(
        Command::new(&bin)
            .args(["run", "--watch", "--confdir"])
            .arg(d)
            .env("CONFSYNC_STATE_DIR", d.join("state"))
            .stdin(Stdio::null())
            .stdout(log("confsync.log"))
            .stderr(log("confsync.err"))
            .spawn()
            .expect("start confsync"),
    );
    std::thread::sleep(Duration::from_millis(300));

    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, failed, latencies) = (stop.clone(), failed.clone(), latencies.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut c| {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut out = String::new();
                        c.write_all(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                            .is_ok()
                            && c.read_to_string(&mut out).is_ok()
                            && out.starts_with("HTTP/1.1 200")
                    });
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    mine.push(t.elapsed());
                    std::thread::sleep(Duration::from_millis(1));
                }
                latencies.lock().expect("latencies").extend(mine);
            })
        })
        .collect();
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), master.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(1 + children(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let mut to_file = Vec::new();
    let steps: Vec<usize> = (3..=MAX).chain((2..MAX).rev()).collect();
    for n in steps {
        let t = Instant::now();
        data(d, apps, n);
        let seen = wait_file(&dest, LIMIT, |s| {
            s.lines()
                .filter(|l| l.trim_start().starts_with("server "))
                .count()
                == n
        })
        .unwrap_or_else(|| panic!("the file never had {n} servers"));
        to_file.push(seen - t);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let _ = sampler.join();
    drop(daemon);
    drop(master);

    let text = std::fs::read_to_string(d.join("confsync.err")).unwrap_or_default()
        + &std::fs::read_to_string(d.join("confsync.log")).unwrap_or_default();
    let mut runtime_ms: Vec<Duration> = text
        .lines()
        .filter(|l| l.contains("runtime"))
        .filter_map(|l| {
            let v = l.split("runtime_ms=").nth(1)?.split_whitespace().next()?;
            let v: f64 = v.parse().ok()?;
            (v > 0.0).then(|| Duration::from_secs_f64(v / 1e3))
        })
        .collect();
    let mut lat = latencies.lock().expect("latencies").clone();
    Run {
        failed: failed.load(Ordering::Relaxed),
        requests: lat.len(),
        reloads: std::fs::read_to_string(d.join("reloads"))
            .map(|s| s.lines().count())
            .unwrap_or(0),
        peak_procs: peak.load(Ordering::Relaxed),
        latency: Percentiles::of(&mut lat),
        to_file: Percentiles::of(&mut to_file),
        runtime_updates: runtime_ms.len(),
        to_runtime: (!runtime_ms.is_empty()).then(|| Percentiles::of(&mut runtime_ms)),
    }
}

fn main() {
    let apps: Vec<String> = (0..MAX).map(|i| app(format!("b{i:02}"))).collect();
    let with = run(true, &apps);
    let without = run(false, &apps);
    println!("haproxy_runtime: backend scaled 2 -> {MAX} -> 2 in single steps under load");
    println!(
        "{:<10} {:>9} {:>7} {:>8} {:>10} {:>9} {:>9} {:>14} {:>17}",
        "path",
        "requests",
        "failed",
        "reloads",
        "peak procs",
        "p50 ms",
        "p99 ms",
        "to file p50 ms",
        "to runtime p50 ms"
    );
    for (name, r) in [("runtime", &with), ("reload", &without)] {
        println!(
            "{:<10} {:>9} {:>7} {:>8} {:>10} {:>9.2} {:>9.2} {:>14.1} {:>17}",
            name,
            r.requests,
            r.failed,
            r.reloads,
            r.peak_procs,
            ms(r.latency.p50),
            ms(r.latency.p99),
            ms(r.to_file.p50),
            r.to_runtime.as_ref().map_or("-".to_string(), |p| format!(
                "{:.2} (n={})",
                ms(p.p50),
                r.runtime_updates
            )),
        );
    }
    let goal = with
        .to_runtime
        .as_ref()
        .is_some_and(|p| p.p50 <= Duration::from_millis(5));
    println!(
        "goals: runtime path zero failed {}, zero reloads {}, one worker {}, change-to-runtime p50 <= 5 ms {}",
        with.failed == 0,
        with.reloads == 0,
        with.peak_procs <= 2,
        goal
    );
}
