//! Whole-process benchmark: `confsync run --onetime` rendering 100,000 keys from a YAML
//! file (the file backend), as an operator would run it, once with a Tera template and
//! once with S1's Go template (confd's dialect, `tests/golden/cases/s1_etcd_haproxy`).
//! Reports wall time percentiles and peak RSS of the child process for each. Run with
//! `cargo bench --bench render_100k`; `CONFSYNC_BENCH_CONFD=path/to/confd` also runs
//! confd on the same Go template and data, side by side.
//!
//! Targets: the Tera template at most 0.35 s (issue 2); the Go template at most 0.2 s and
//! 60 MB (issue 10). confd takes 1.7 s and 100 MB for the same job.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;
const RUNS: usize = 7;

const TERA: &str = "backend app\n{% for s in gets(key=\"/app/servers/*\") %}    server {{ s.key | base }} {{ s.value }} check\n{% endfor %}";

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut yaml =
        String::from("app:\n  stats:\n    user: admin\n    password: s3cret\n  servers:\n");
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
    let s1 = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/cases/s1_etcd_haproxy/template.tmpl"),
    )
    .expect("S1's template");
    for (label, template, engine) in [("tera", TERA, "tera"), ("go (S1)", s1.as_str(), "go")] {
        let conf = d.join(engine);
        write(
            &conf,
            "confsync.toml",
            "backend = \"file\"\nfile = [\"../data.yaml\"]\nlog_level = \"warn\"\n",
        );
        write(&conf, "templates/haproxy.cfg.tmpl", template);
        write(
            &conf,
            "conf.d/haproxy.toml",
            &format!(
                "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"out/haproxy.cfg\"\nkeys = [\"/app\"]\nengine = \"{engine}\"\n"
            ),
        );
        std::fs::create_dir_all(conf.join("out")).unwrap();
        let out = conf.join("out/haproxy.cfg");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_confsync"));
        cmd.args(["run", "--onetime", "--confdir"]).arg(&conf);
        report(&format!("confsync, {label}"), &mut cmd, &out);
        if engine == "go"
            && let Ok(confd) = std::env::var("CONFSYNC_BENCH_CONFD")
        {
            let mut cmd = Command::new(confd);
            cmd.current_dir(&conf).args([
                "-onetime",
                "-backend",
                "file",
                "-file",
                "../data.yaml",
                "-confdir",
                ".",
                "-config-file",
                "none.toml",
                "-log-level",
                "error",
            ]);
            // confd's resource has no `engine` field; it ignores unknown fields.
            report("confd, go (S1)", &mut cmd, &out);
        }
    }
}

fn report(label: &str, cmd: &mut Command, out: &Path) {
    let mut times = Vec::new();
    let mut peak_kb = 0i64;
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(out);
        let (t, rss) = run_once(cmd);
        times.push(t);
        peak_kb = peak_kb.max(rss);
    }
    let text = std::fs::read_to_string(out).unwrap();
    let servers = text
        .lines()
        .filter(|l| l.trim_start().starts_with("server "))
        .count();
    assert_eq!(servers, KEYS, "{label}: every key rendered");
    times.sort();
    println!(
        "render_100k [{label}]: {KEYS} keys, {RUNS} runs: p50 {:.3} s, min {:.3} s, max {:.3} s; peak RSS {:.1} MB",
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

/// Runs the command once; returns wall time and its peak RSS in KiB.
fn run_once(cmd: &mut Command) -> (Duration, i64) {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("start");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the maximum so far).
    let (status, rss) = wait4(pid);
    let took = start.elapsed();
    let _ = child.try_wait();
    assert!(status == 0, "{cmd:?} failed with status {status}");
    (took, rss)
}

fn wait4(pid: nix::unistd::Pid) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child; status and usage point to valid memory.
    let r = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
    assert!(r == pid.as_raw(), "wait4 failed");
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}
