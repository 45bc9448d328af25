//! Whole-process latency benchmark for the Redis backend (issue 4): a real redis-server
//! and `confsync run --watch` rendering a file, measured from outside as an operator
//! would see it. Run with `cargo bench --bench redis_latency`.
//!
//! 1. Expiry: a key set with a short TTL; the time from Redis publishing `expired` (seen
//!    on our own keyspace subscription) to the rendered file no longer holding the key.
//!    Target: within 250 ms.
//! 2. With 10,000 keys under the prefix: the time from `SET` returning to the file holding
//!    the new value, for isolated changes (spaced past the coalescing window).
//!    Target: p50 <= 10 ms.
//! 3. The backend's share of (2): `SET` to the `Changes` update, through the library.
//!
//! Needs `redis-server` (`apt-get install redis-server`).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, Percentiles, ms, poll, wait_file, write};

const BIG: usize = 10_000;
const EXPIRY_ROUNDS: usize = 15;
const CHANGE_ROUNDS: usize = 40;
/// Pause before each change, longer than the daemon's default coalescing `min` (100 ms).
const QUIET: Duration = Duration::from_millis(150);
/// How often the waits below look again.
const EVERY: Duration = Duration::from_micros(100);

fn report(what: &str, mut v: Vec<Duration>) {
    let p = Percentiles::of(&mut v);
    println!(
        "{what}: n={} p50={:.1} ms p90={:.1} ms max={:.1} ms",
        p.n,
        ms(p.p50),
        ms(p.p90),
        ms(p.max)
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = common::Redis::start(d, &[]);
    let (port, client) = (server.port, &server.client);
    let mut conn = server.conn();

    // 10,000 keys under /bench/big, one under /bench/ttl (separate resources and files).
    let mut pipe = redis::pipe();
    for i in 0..BIG {
        pipe.cmd("SET")
            .arg(format!("/bench/big/k{i:05}"))
            .arg(format!("10.0.{}.{}:80", i / 256, i % 256))
            .ignore();
    }
    let _: () = pipe.query(&mut conn).expect("load keys");

    write(
        d,
        "templates/big.tmpl",
        "{% for s in gets(key=\"/bench/big/*\") %}{{ s.key }} {{ s.value }}\n{% endfor %}",
    );
    write(
        d,
        "templates/ttl.tmpl",
        "{% for s in gets(key=\"/bench/ttl/*\") %}{{ s.key }} {{ s.value }}\n{% endfor %}#\n",
    );
    let out = d.join("out");
    std::fs::create_dir_all(&out).expect("mkdir out");
    for name in ["big", "ttl"] {
        write(
            d,
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"{name}.tmpl\"\ndest = \"{}\"\nkeys = [\"/bench/{name}\"]\n",
                out.join(format!("{name}.txt")).display()
            ),
        );
    }
    // CONFSYNC_BENCH_LOG=info shows confsync's per-render timings (on stderr).
    let log_level = std::env::var("CONFSYNC_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_confsync"));
    daemon
        .args(["run", "--confdir"])
        .arg(d)
        .args([
            "--backend",
            "redis",
            "--node",
            &format!("127.0.0.1:{port}"),
            "--watch",
            "--log-level",
            &log_level,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let _confsync = Guard(daemon.spawn().expect("start confsync"));
    let big = out.join("big.txt");
    let ttl = out.join("ttl.txt");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    poll(Duration::from_secs(30), EVERY, || {
        (read(&big).lines().count() == BIG && ttl.exists()).then_some(())
    })
    .expect("first render of 10,000 keys");

    // 1. Expiry: our own subscription sees `expired`; then wait for the file.
    let mut sub = client.get_connection().expect("pubsub connection");
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyspace@0__:/bench/ttl/*")
        .expect("psubscribe");
    ps.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut expiry = Vec::new();
    for round in 0..EXPIRY_ROUNDS {
        let key = format!("/bench/ttl/r{round}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("x")
            .arg("PX")
            .arg(300)
            .query(&mut conn)
            .expect("set px");
        wait_file(&ttl, Duration::from_secs(5), |s| s.contains(&key)).expect("ttl key rendered");
        let expired_at = loop {
            let msg = ps.get_message().expect("keyspace message");
            let event: String = msg.get_payload().unwrap_or_default();
            if msg.get_channel_name().ends_with(&key) && event == "expired" {
                break Instant::now();
            }
        };
        let gone = wait_file(&ttl, Duration::from_secs(5), |s| !s.contains(&key))
            .expect("expired key left the file");
        expiry.push(gone.saturating_duration_since(expired_at));
    }
    report("expired -> key leaves the file", expiry);

    // 2. Change-to-file with 10,000 keys under the prefix.
    // Rounds are spaced past the daemon's coalescing window (`wait`, 100 ms by default),
    // so each is an isolated change rendered at once, as a single registration is.
    let mut change = Vec::new();
    for round in 0..CHANGE_ROUNDS {
        std::thread::sleep(QUIET);
        let key = format!("/bench/big/k{:05}", (round * 163) % BIG);
        let value = format!("changed-{round}:80");
        let t0 = Instant::now();
        set(&mut conn, &key, &value);
        let line = format!("{key} {value}\n");
        let at = wait_file(&big, Duration::from_secs(5), |s| s.contains(&line))
            .expect("change rendered");
        change.push(at.duration_since(t0));
    }
    report("change -> file (10,000 keys)", change);

    // 3. The backend's own share: SET to the `Changes` update leaving `watch`, through
    //    the library, with the same 10,000 keys under the prefix.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend_share = rt.block_on(backend_share(port, &mut conn));
    report("change -> backend update (10,000 keys)", backend_share);
    let _ = std::io::stdout().flush();
}

/// `SET key value`.
fn set(conn: &mut redis::Connection, key: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(conn)
        .expect("set");
}

async fn backend_share(port: u16, conn: &mut redis::Connection) -> Vec<Duration> {
    use confsync::backend::{BackendConfig, BackendKind, Update};
    let cfg = BackendConfig {
        kind: BackendKind::Redis,
        nodes: vec![format!("127.0.0.1:{port}")],
        watch: true,
        ..Default::default()
    };
    let backend = confsync::backend::build(&cfg).await.expect("backend");
    let prefixes = vec!["/bench/big".to_string()];
    let snap = backend.list(&prefixes).await.expect("list");
    assert_eq!(snap.kvs.len(), BIG);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        let snap = std::sync::Arc::new(snap);
        async move { backend.watch(prefixes, snap, tx, stop).await }
    });
    // Let the watch subscribe (and send its opening Resync, if any).
    tokio::time::sleep(Duration::from_millis(300)).await;
    while rx.try_recv().is_ok() {}
    let mut out = Vec::new();
    for round in 0..CHANGE_ROUNDS {
        let key = format!("/bench/big/k{:05}", (round * 97) % BIG);
        let value = format!("lib-{round}:80");
        let t0 = Instant::now();
        set(conn, &key, &value);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Update::Changes(cs)))
                    if cs
                        .iter()
                        .any(|(k, v)| *k == key && v.as_deref() == Some(value.as_str())) =>
                {
                    break;
                }
                Ok(Some(_)) => {}
                other => panic!("no update for {key}: {other:?}"),
            }
        }
        out.push(t0.elapsed());
    }
    stop.cancel();
    let _ = task.await;
    out
}
