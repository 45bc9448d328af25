//! Change-to-file latency of `confsync run --watch` on etcd (issue 3's performance goals).
//!
//! Starts its own etcd (Debian's etcd-server) on free loopback ports in a temp dir, writes
//! N keys under one prefix, starts the `confsync` binary watching it with a template that
//! renders one line per key (no check or reload command, so only confsync is measured),
//! then repeatedly updates one random key and measures from the put's acknowledgement to
//! the moment the rendered file contains the new line (inotify on the destination's
//! directory wakes the reader). Reports p50/p90/p99/max for N = 5 and N = 10,000, the
//! daemon's RSS while watching and its CPU time over 10 idle seconds; then the same with
//! the destination on tmpfs (to show what fsync costs), and the backend alone (put
//! acknowledged -> `Update::Changes` out of `EtcdBackend::watch`).
//!
//! Run with `cargo bench --bench etcd_latency` (needs `etcd` and `etcdctl` on PATH:
//! `apt-get install etcd-server etcd-client`). Goals: at 10,000 keys p50 <= 10 ms and
//! p99 <= 40 ms; at a handful of keys p50 <= 1 ms; RSS <= 20 MB; idle CPU ~0.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions, Txn, TxnOp};
use notify::{RecursiveMode, Watcher};

/// Measured updates per case (after `WARMUP` unmeasured ones).
const ITERATIONS: usize = 200;
const WARMUP: usize = 20;
/// Pause between updates: longer than the daemon's default coalescing `min` (100 ms),
/// so each update is an isolated change, rendered at once.
const GAP: Duration = Duration::from_millis(150);
/// Bound on any one wait (etcd start, first render, one change).
const LIMIT: Duration = Duration::from_secs(30);

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("confsync-bench")
        .tempdir()
        .expect("tempdir");
    let (client_port, peer_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
    let etcd = Command::new(find("etcd"))
        .arg("--data-dir")
        .arg(dir.path().join("data.etcd"))
        .args([
            "--name",
            "bench",
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("bench={peer}")])
        .args([
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd");
    let _etcd = Guard(etcd);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = rt
        .block_on(Client::connect([url.as_str()], None))
        .expect("client");
    let start = Instant::now();
    while rt.block_on(client.get("/", None)).is_err() {
        assert!(
            start.elapsed() < LIMIT,
            "etcd did not answer within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("confsync etcd watch latency: put acknowledged -> rendered file contains the change");
    println!("{ITERATIONS} updates per case, one every {GAP:?}; etcd 3.4 on loopback\n");
    for keys in [5usize, 10_000] {
        case(&rt, &mut client, &url, dir.path(), keys);
    }
    // The same with the destination on tmpfs, where fsync costs nothing: the difference
    // is what the two fsyncs per replaced file (stage file, directory) cost on this disk.
    if let Ok(shm) = tempfile::Builder::new()
        .prefix("confsync-bench")
        .tempdir_in("/dev/shm")
    {
        println!("\nthe same, destination on tmpfs (/dev/shm: fsync is free)");
        for keys in [5usize, 10_000] {
            case(&rt, &mut client, &url, shm.path(), keys);
        }
    }
    println!("\nbackend only: put acknowledged -> EtcdBackend::watch delivers Update::Changes");
    for keys in [5usize, 10_000] {
        rt.block_on(backend_case(&mut client, &url, keys));
    }
}

/// The backend's share of the latency: from the put's acknowledgement to the watch
/// delivering the change (no store, render or file).
async fn backend_case(client: &mut Client, url: &str, keys: usize) {
    use confsync::backend::{self, BackendConfig, BackendKind, Update};
    let prefix = format!("/backend{keys}");
    let key = |i: usize| format!("{prefix}/app/servers/web{i:05}");
    let all: Vec<usize> = (0..keys).collect();
    for chunk in all.chunks(100) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|&i| TxnOp::put(key(i), "10.0.0.1:80", None))
            .collect();
        client
            .txn(Txn::new().and_then(ops))
            .await
            .expect("write keys");
    }
    let cfg = BackendConfig {
        kind: BackendKind::Etcd,
        nodes: vec![url.to_string()],
        watch: true,
        ..Default::default()
    };
    let b = backend::build(&cfg).await.expect("backend");
    let prefixes = vec![prefix.clone()];
    let snap = b.list(&prefixes).await.expect("list");
    assert_eq!(snap.kvs.len(), keys);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        async move { b.watch(prefixes, std::sync::Arc::new(snap), tx, stop).await }
    });
    let mut lat = Vec::with_capacity(ITERATIONS);
    for n in 0..WARMUP + ITERATIONS {
        let k = key(fastrand::usize(..keys));
        let value = format!("v{n}");
        client
            .put(k.as_str(), value.as_str(), None)
            .await
            .expect("put");
        let acked = Instant::now();
        loop {
            let u = tokio::time::timeout(LIMIT, rx.recv())
                .await
                .expect("change within the limit");
            if let Some(Update::Changes(c)) = u
                && c.iter()
                    .any(|(ck, cv)| *ck == k && cv.as_deref() == Some(value.as_str()))
            {
                break;
            }
        }
        if n >= WARMUP {
            lat.push(acked.elapsed());
        }
        tokio::time::sleep(GAP).await;
    }
    stop.cancel();
    let _ = task.await;
    report(keys, &mut lat);
    client
        .delete(prefix.as_str(), Some(DeleteOptions::new().with_prefix()))
        .await
        .expect("clean up");
}

/// Prints the percentiles of `lat` (sorted in place).
fn report(keys: usize, lat: &mut [Duration]) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{keys:>6} keys: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(pct(1.0)),
    );
}

fn case(rt: &tokio::runtime::Runtime, client: &mut Client, url: &str, dir: &Path, keys: usize) {
    let prefix = format!("/bench{keys}-{:08x}", fastrand::u32(..));
    let key = |i: usize| format!("{prefix}/app/servers/web{i:05}");
    let all: Vec<usize> = (0..keys).collect();
    for chunk in all.chunks(100) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|&i| TxnOp::put(key(i), format!("10.0.{}.{}:8080", i >> 8, i & 255), None))
            .collect();
        rt.block_on(client.txn(Txn::new().and_then(ops)))
            .expect("write keys");
    }

    let conf = dir.join(format!("conf{keys}"));
    let out = conf.join("out");
    std::fs::create_dir_all(conf.join("templates")).unwrap();
    std::fs::create_dir_all(conf.join("conf.d")).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("haproxy.cfg");
    std::fs::write(
        conf.join("templates/lines.tmpl"),
        "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}",
    )
    .unwrap();
    std::fs::write(
        conf.join("conf.d/lines.toml"),
        format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n",
            dest.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(conf.join("confsync.log")).unwrap();
    let daemon = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["run", "--confdir"])
        .arg(&conf)
        .args([
            "--backend",
            "etcd",
            "--node",
            url,
            "--watch",
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start confsync");
    let pid = daemon.id();
    let _daemon = Guard(daemon);
    let start = Instant::now();
    while std::fs::read_to_string(&dest)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < keys + 1
    {
        assert!(
            start.elapsed() < LIMIT,
            "first render of {keys} keys within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx).expect("inotify");
    watcher
        .watch(&out, RecursiveMode::NonRecursive)
        .expect("watch out/");
    let mut lat = Vec::with_capacity(ITERATIONS);
    for n in 0..WARMUP + ITERATIONS {
        let i = fastrand::usize(..keys);
        let value = format!("10.1.{}.{}:{}", n >> 8 & 255, n & 255, 10_000 + n);
        let needle = format!("server web{i:05} {value} check\n");
        while rx.try_recv().is_ok() {}
        rt.block_on(client.put(key(i), value.as_str(), None))
            .expect("put");
        let acked = Instant::now();
        let seen = wait_contains(&dest, &needle, &rx);
        if n >= WARMUP {
            lat.push(seen.duration_since(acked));
        }
        std::thread::sleep(GAP);
    }
    let (rss, hwm) = (status_kb(pid, "VmRSS:"), status_kb(pid, "VmHWM:"));
    let cpu0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle_ms = (cpu_ticks(pid) - cpu0) * 10;
    report(keys, &mut lat);
    println!(
        "{:>6}  RSS {:.1} MB (peak {:.1} MB), idle CPU {idle_ms} ms in 10 s",
        "",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    rt.block_on(client.delete(prefix.as_str(), Some(DeleteOptions::new().with_prefix())))
        .expect("clean up");
}

/// Waits until `dest` contains `needle`, woken by inotify events; returns when it saw it.
fn wait_contains(
    dest: &Path,
    needle: &str,
    rx: &mpsc::Receiver<notify::Result<notify::Event>>,
) -> Instant {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(dest).is_ok_and(|s| s.contains(needle)) {
            return Instant::now();
        }
        let left = LIMIT.checked_sub(start.elapsed()).unwrap_or_else(|| {
            panic!("{} did not get {needle:?} within {LIMIT:?}", dest.display())
        });
        let _ = rx.recv_timeout(left.min(Duration::from_millis(200)));
    }
}

/// A `kB` field of /proc/PID/status.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of PID in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// Finds `name` on PATH or panics with the Debian install command.
fn find(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found; install it with `apt-get install etcd-server etcd-client`")
        })
}
