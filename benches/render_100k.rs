//! Whole-process benchmark: `confsync run --onetime` rendering 100,000 keys from a YAML
//! file (the file backend), as an operator would run it. Reports wall time percentiles
//! and peak RSS of the child process. Run with `cargo bench --bench render_100k`.
//!
//! Targets (issue 2): at most 0.35 s and 50 MB on a 2-core machine, where confd takes
//! 1.7 s and 100 MB for the same job.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;
const RUNS: usize = 7;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut yaml = String::from("app:\n  servers:\n");
    for i in 0..KEYS {
        let _ = writeln!(
            yaml,
            "    web{i:06}: 10.{}.{}.{}:8080",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        );
    }
    write(d, "data.yaml", &yaml);
    write(
        d,
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\nlog_level = \"warn\"\n",
    );
    write(
        d,
        "templates/haproxy.cfg.tmpl",
        "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}",
    );
    write(
        d,
        "conf.d/haproxy.toml",
        "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"out/haproxy.cfg\"\nkeys = [\"/app/servers\"]\n",
    );
    std::fs::create_dir_all(d.join("out")).unwrap();

    let mut times = Vec::new();
    let mut peak_kb = 0i64;
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(d.join("out/haproxy.cfg"));
        let (t, rss) = run_once(d);
        times.push(t);
        peak_kb = peak_kb.max(rss);
    }
    let lines = std::fs::read_to_string(d.join("out/haproxy.cfg"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(lines, KEYS + 1, "every key rendered");
    times.sort();
    println!(
        "render_100k: {KEYS} keys, {RUNS} runs: p50 {:.3} s, min {:.3} s, max {:.3} s; peak RSS {:.1} MB",
        times[RUNS / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[RUNS - 1].as_secs_f64(),
        peak_kb as f64 / 1024.0
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Runs the binary once; returns wall time and the child's peak RSS in KiB.
fn run_once(dir: &Path) -> (Duration, i64) {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_confsync"))
        .args(["run", "--onetime", "--confdir"])
        .arg(dir)
        .status()
        .expect("run confsync");
    let took = start.elapsed();
    assert!(status.success(), "confsync failed");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    (took, usage.max_rss())
}
