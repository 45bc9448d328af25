//! In-process render cost at 10,000 keys, the daemon's case: one key changed, the whole
//! template rendered again (the part of change-to-file latency that is confsync's own,
//! besides the fsync of the staged file). Run with `cargo bench --bench render_10k`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confsync::backend::KvMap;
use confsync::template::{Engine, View};

const KEYS: usize = 10_000;
const ROUNDS: usize = 200;

fn main() {
    let mut kvs = KvMap::new();
    for i in 0..KEYS {
        kvs.insert(
            format!("/app/servers/web{i:05}"),
            format!("10.0.{}.{}:8080", i / 256, i % 256),
        );
    }
    let mut engine = Engine::new();
    engine
        .add_raw(
            "haproxy",
            "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}",
        )
        .unwrap();
    let keys = vec!["/app/servers".to_string()];
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        // One key changes between renders, as in a watch event.
        kvs.insert(
            format!("/app/servers/web{:05}", round % KEYS),
            format!("10.9.9.{}:80", round % 250),
        );
        let snap = Arc::new(kvs.clone());
        let t = Instant::now();
        let out = engine
            .render("haproxy", View::new(snap, "", &keys))
            .unwrap();
        times.push(t.elapsed());
        assert_eq!(out.lines().count(), KEYS + 1);
    }
    report(&mut times);
}

fn report(v: &mut [Duration]) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "render_10k: {KEYS} keys, {ROUNDS} renders: p50 {:.2} ms, p99 {:.2} ms",
        p(0.5),
        p(0.99)
    );
}
