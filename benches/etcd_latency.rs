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

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions};
use notify::{RecursiveMode, Watcher};

use common::{Percentiles, ms, put_all};

/// Measured updates per case (after `WARMUP` unmeasured ones).
const ITERATIONS: usize = 200;
const WARMUP: usize = 20;
/// Pause between updates: longer than the daemon's default coalescing `min` (100 ms),
/// so each update is an isolated change, rendered at once.
const GAP: Duration = Duration::from_millis(150);
/// Bound on any one wait (first render, one change).
const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let (dir, etcd, rt, mut client) = common::etcd_setup("confsync-bench");
    let url = etcd.url.clone();
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
    put_all(
        client,
        (0..keys).map(|i| (key(i), "10.0.0.1:80".to_string())),
    )
    .await;
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

/// Prints the percentiles of `lat`.
fn report(keys: usize, lat: &mut [Duration]) {
    let p = Percentiles::of(lat);
    println!(
        "{keys:>6} keys: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.max),
    );
}

fn case(rt: &tokio::runtime::Runtime, client: &mut Client, url: &str, dir: &Path, keys: usize) {
    let prefix = format!("/bench{keys}-{:08x}", fastrand::u32(..));
    let key = |i: usize| format!("{prefix}/app/servers/web{i:05}");
    let value = |i: usize| format!("10.0.{}.{}:8080", i >> 8, i & 255);
    rt.block_on(put_all(client, (0..keys).map(|i| (key(i), value(i)))));

    let conf = dir.join(format!("conf{keys}"));
    let out = conf.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("haproxy.cfg");
    common::server_lines_confdir(&conf, &prefix, &dest);
    let daemon = common::confsync_etcd(&conf, url, &["--log-level", "warn"], &[]);
    let pid = daemon.pid();
    common::wait_lines(&dest, keys + 1, LIMIT);

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
    let (rss, hwm) = (
        common::status_kb(pid, "VmRSS:"),
        common::status_kb(pid, "VmHWM:"),
    );
    let idle_ms = common::cpu_ms_over(pid, Duration::from_secs(10));
    report(keys, &mut lat);
    println!(
        "{:>6}  RSS {:.1} MB (peak {:.1} MB), idle CPU {idle_ms} ms in 10 s",
        "",
        common::mb(rss),
        common::mb(hwm),
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
