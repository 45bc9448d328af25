//! In-process render cost at 10,000 keys, the daemon's case: one key changed, the whole
//! template rendered again (the part of change-to-file latency that is confsync's own,
//! besides the fsync of the staged file). The same template written in Tera (without and
//! with the daemon's entry cache) and in confd's Go dialect (without and with the
//! daemon's cache, whose loop fragments make the render incremental). Run with
//! `cargo bench --bench render_10k` (`CONFSYNC_BENCH_KEYS=100000` for another size).
//! Targets: Go within 1.5x of Tera (issue 10); with the daemon's cache, one changed key
//! renders one loop body (issue 18).
//!
//! Wall time on a shared machine is noisy; for a repeatable figure count instructions:
//! `CONFSYNC_BENCH_ROUNDS=20 valgrind --tool=callgrind target/release/deps/render_10k-*`
//! (`CONFSYNC_BENCH_ONLY=go` or `=tera` runs only those variants)
//! (build it first with `cargo bench --bench render_10k --no-run`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use confsync::backend::KvMap;
use confsync::template::{Engine, EntryCache, View};

const KEYS: usize = 10_000;
/// Renders measured, unless `CONFSYNC_BENCH_ROUNDS` says otherwise.
const ROUNDS: usize = 200;

fn main() {
    let keys_n: usize = std::env::var("CONFSYNC_BENCH_KEYS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(KEYS);
    let mut kvs = KvMap::new();
    for i in 0..keys_n {
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
    engine
        .add_go_raw(
            "haproxy-go",
            b"backend app\n{{range gets \"/app/servers/*\"}}    server {{base .Key}} {{.Value}} check\n{{end}}",
        )
        .unwrap();
    let keys = vec!["/app/servers".to_string()];
    let rounds = std::env::var("CONFSYNC_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    // Without a cache (a one-shot run), then with the entry cache a daemon's resource
    // keeps between renders.
    let runs = [
        ("tera, one-shot, no cache", "haproxy", None),
        (
            "tera, daemon, entry cache",
            "haproxy",
            Some(Arc::new(EntryCache::default())),
        ),
        ("go, one-shot, no cache", "haproxy-go", None),
        (
            "go, daemon, cache",
            "haproxy-go",
            Some(Arc::new(EntryCache::default())),
        ),
    ];
    // `CONFSYNC_BENCH_ONLY=go` (or `tera`) runs only those, e.g. under callgrind.
    let only = std::env::var("CONFSYNC_BENCH_ONLY").unwrap_or_default();
    for (label, template, cache) in runs {
        if !label.starts_with(only.as_str()) {
            continue;
        }
        let mut times = Vec::new();
        for round in 0..rounds {
            // One key changes between renders, as in a watch event.
            kvs.insert(
                format!("/app/servers/web{:05}", round % keys_n),
                format!("10.9.9.{}:80", round % 250),
            );
            let snap = Arc::new(kvs.clone());
            let mut view = View::new(snap, "", &keys);
            if let Some(c) = &cache {
                view = view.with_cache(c.clone());
            }
            let t = Instant::now();
            let out = engine.render(template, view).unwrap();
            times.push(t.elapsed());
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), keys_n + 1);
        }
        report(label, keys_n, &mut times);
    }
}

fn report(label: &str, keys: usize, v: &mut [Duration]) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "render_10k ({label}): {keys} keys, {} renders: p50 {:.2} ms, p99 {:.2} ms",
        v.len(),
        p(0.5),
        p(0.99)
    );
}
