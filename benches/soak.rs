//! Soak benchmark of `confsync run --watch` on etcd (issue 5's performance goals: RSS
//! stays flat over a day-like soak of 100,000 changes; idle in watch mode at most 50 ms
//! of CPU per 10 s).
//!
//! Starts its own etcd on free loopback ports and the `confsync` binary watching 1,000
//! keys under a random prefix, rendered one line per key (no check or reload command),
//! with `--wait 10ms:100ms`. Records the daemon's RSS once the first render has settled,
//! then makes 100,000 changes one after another (updates of random keys; every 1,000th
//! change deletes the key and puts it back), waits until the file holds the last one,
//! settles, and records RSS and peak RSS again, then the CPU the daemon uses over 10 idle
//! seconds, and how many renders it made (from `/metrics`).
//!
//! Run with `cargo bench --bench soak` (needs `etcd`: `apt-get install etcd-server`).
//! Takes a few minutes: the changes go at the rate etcd acknowledges puts.

mod common;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use etcd_client::Client;

use common::{mb, status_kb};

/// Keys under the prefix.
const KEYS: usize = 1_000;
/// Changes made during the soak.
const CHANGES: usize = 100_000;
/// Every this many changes, one is a delete and a put back of the key.
const DELETE_EVERY: usize = 1_000;
/// Quiet time before each memory reading.
const SETTLE: Duration = Duration::from_secs(2);
/// Wall time over which idle CPU is measured.
const IDLE: Duration = Duration::from_secs(10);
/// Bound on the first render and on the last change reaching the file.
const LIMIT: Duration = Duration::from_secs(60);

fn main() {
    let (dir, etcd, rt, mut client) = common::etcd_setup("confsync-soak");

    let prefix = format!("/soak-{:08x}", fastrand::u32(..));
    let key = |i: usize| format!("{prefix}/app/servers/web{i:04}");
    // A distinct address for every change number (and for the initial values).
    let value = |n: usize| format!("10.{}.{}.{}:8080", n >> 16 & 255, n >> 8 & 255, n & 255);
    rt.block_on(common::put_all(
        &mut client,
        (0..KEYS).map(|i| (key(i), value(CHANGES + i))),
    ));

    let conf = dir.path().join("conf");
    let dest = conf.join("out/haproxy.cfg");
    std::fs::create_dir_all(conf.join("out")).expect("mkdir out");
    common::server_lines_confdir(&conf, &prefix, &dest);
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let daemon = common::confsync_etcd(
        &conf,
        &etcd.url,
        &["--wait", "10ms:100ms", "--metrics-addr", &metrics],
        &[("CONFSYNC_LOG_LEVEL", "warn")],
    );
    let pid = daemon.pid();
    common::wait_lines(&dest, KEYS + 1, LIMIT);
    std::thread::sleep(SETTLE);
    let rss_before = status_kb(pid, "VmRSS:");
    let hwm_before = status_kb(pid, "VmHWM:");
    let renders_before = renders(&metrics);

    let start = Instant::now();
    let (last_key, last_value) = rt.block_on(changes(&mut client, &key, &value));
    let put_time = start.elapsed();
    let needle = format!("server {} {last_value} check\n", base(&last_key));
    common::wait_file(&dest, LIMIT, |s| {
        s.contains(&needle) && s.lines().count() == KEYS + 1
    })
    .unwrap_or_else(|| panic!("{} did not get {needle:?} within {LIMIT:?}", dest.display()));
    let file_time = start.elapsed();
    std::thread::sleep(SETTLE);
    let rss_after = status_kb(pid, "VmRSS:");
    let hwm_after = status_kb(pid, "VmHWM:");
    let idle_ms = common::cpu_ms_over(pid, IDLE);
    let renders_after = renders(&metrics);

    println!("confsync soak on etcd: {KEYS} keys, {CHANGES} sequential changes, --wait 10ms:100ms");
    println!(
        "changes: {:.0}/s ({CHANGES} in {:.1} s; file holds the last one after {:.1} s)",
        CHANGES as f64 / put_time.as_secs_f64(),
        put_time.as_secs_f64(),
        file_time.as_secs_f64(),
    );
    println!(
        "RSS: {:.1} MB before, {:.1} MB after (peak {:.1} MB before, {:.1} MB after)",
        mb(rss_before),
        mb(rss_after),
        mb(hwm_before),
        mb(hwm_after),
    );
    println!("idle CPU: {idle_ms} ms in {} s", IDLE.as_secs());
    match (renders_before, renders_after) {
        (Some(b), Some(a)) => println!("renders during the soak: {} ({a} in all)", a - b),
        _ => println!("renders: /metrics did not answer"),
    }
}

/// Makes the changes, one acknowledged put (or delete and put) after another; returns
/// the last key changed and its value.
async fn changes(
    client: &mut Client,
    key: &impl Fn(usize) -> String,
    value: &impl Fn(usize) -> String,
) -> (String, String) {
    let mut last = (String::new(), String::new());
    for n in 0..CHANGES {
        let (k, v) = (key(fastrand::usize(..KEYS)), value(n));
        if n % DELETE_EVERY == DELETE_EVERY - 1 {
            client.delete(k.as_str(), None).await.expect("delete");
        }
        client.put(k.as_str(), v.as_str(), None).await.expect("put");
        last = (k, v);
    }
    last
}

/// The last path segment of a key (what the template's `base` filter prints).
fn base(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Sum of `confsync_renders_total` over resources, read from `/metrics` at `addr`.
fn renders(addr: &str) -> Option<u64> {
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let total = text
        .lines()
        .filter(|l| l.starts_with("confsync_renders_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    Some(total as u64)
}
