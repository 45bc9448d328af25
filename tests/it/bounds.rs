//! Limits that keep what commands print, what templates write and what the store holds
//! from exhausting the host (issue #12, "Bounded everything"), with the real binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::http_get;
use crate::support::{Proc, confsync, tempdir, wait_for, write};

const LIMIT: Duration = Duration::from_secs(60);

/// A config dir on the file backend reading `data.yaml` (`app: {x: "1"}`), with a
/// resource `name` rendering `template` into `out/NAME.cfg`; `extra` is appended to
/// its `[template]` table.
fn resource(dir: &Path, name: &str, template: &str, extra: &str) -> PathBuf {
    write(dir, &format!("templates/{name}.tmpl"), template);
    let dest = dir.join(format!("out/{name}.cfg"));
    std::fs::create_dir_all(dir.join("out")).unwrap();
    write(
        dir,
        &format!("conf.d/{name}.toml"),
        &format!(
            "[template]\nsrc = \"{name}.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n{extra}",
            dest.display()
        ),
    );
    dest
}

fn config_dir(settings: &str) -> tempfile::TempDir {
    let dir = tempdir();
    let data = dir.path().join("data.yaml");
    std::fs::write(&data, "app:\n  x: \"1\"\n").unwrap();
    write(
        dir.path(),
        "confsync.toml",
        &format!(
            "backend = \"file\"\nfile = [\"{}\"]\n{settings}",
            data.display()
        ),
    );
    dir
}

fn daemon(dir: &Path, extra: &[&str]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir).args(extra);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// Peak resident set of process `pid` in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn reload_printing_500_mb_keeps_rss_small_and_logs_the_tail() {
    let dir = config_dir("");
    resource(
        dir.path(),
        "loud",
        "x={{ getv(key=\"/app/x\") }}\n",
        "reload_cmd = \"head -c 500000000 /dev/zero | tr '\\\\0' x; echo TAIL-MARK; exit 1\"\n",
    );
    let proc = daemon(dir.path(), &[]);
    let logged = wait_for(LIMIT, || {
        let log = log_of(dir.path());
        log.contains("TAIL-MARK").then_some(log)
    });
    let rss = peak_rss_kib(proc.child.id());
    let log =
        logged.unwrap_or_else(|| panic!("no reload error with the tail:\n{}", log_of(dir.path())));
    eprintln!("peak RSS after 500 MB of reload output: {rss} KiB");
    assert!(rss < 50 * 1024, "peak RSS {rss} KiB");
    assert!(log.contains("xxxxTAIL-MARK"), "{log}");
    assert!(
        !log.contains(&"x".repeat(10_000)),
        "the log holds more than the tail"
    );
}

#[test]
fn a_2_gb_render_is_stopped_at_max_render_size_and_dest_is_untouched() {
    let dir = config_dir("");
    // 2 GB if nothing stopped it.
    let big = resource(
        dir.path(),
        "big",
        "{% for i in range(end=20000) %}{% for j in range(end=100000) %}x{% endfor %}{% endfor %}",
        "max_render_size = 1048576\n",
    );
    let small = resource(dir.path(), "small", "x={{ getv(key=\"/app/x\") }}\n", "");
    let proc = daemon(dir.path(), &[]);
    let logged = wait_for(LIMIT, || {
        let log = log_of(dir.path());
        log.contains("max_render_size (1 MiB)").then_some(log)
    });
    let log = logged.unwrap_or_else(|| panic!("no size error:\n{}", log_of(dir.path())));
    assert!(log.contains("big"), "{log}");
    assert!(
        !big.exists(),
        "the destination of a stopped render was written"
    );
    assert!(
        wait_for(LIMIT, || small.exists().then_some(())).is_some(),
        "the other resource was not rendered"
    );
    let rss = peak_rss_kib(proc.child.id());
    eprintln!("peak RSS with a render stopped at 1 MiB: {rss} KiB");
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB");
}

#[test]
fn a_stuck_render_is_reported_while_others_update_and_sigterm_still_exits() {
    let dir = config_dir("");
    let stuck = resource(
        dir.path(),
        "stuck",
        "{{range seq 1 10000000}}{{range seq 1 10000000}}{{end}}{{end}}",
        "engine = \"go\"\nrender_timeout = \"2s\"\n",
    );
    let fast = resource(dir.path(), "fast", "x={{ getv(key=\"/app/x\") }}\n", "");
    let port = crate::support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut proc = daemon(dir.path(), &["--metrics-addr", &listen]);
    let reported = wait_for(LIMIT, || {
        let log = log_of(dir.path());
        (log.contains("render stuck") && log.contains("stuck")).then_some(())
    });
    assert!(
        reported.is_some(),
        "no stuck render reported:\n{}",
        log_of(dir.path())
    );
    assert!(!stuck.exists());
    // The fast resource keeps following the data.
    std::fs::write(dir.path().join("data.yaml"), "app:\n  x: \"2\"\n").unwrap();
    let followed = wait_for(LIMIT, || {
        (std::fs::read_to_string(&fast).ok()? == "x=2\n").then_some(())
    });
    assert!(
        followed.is_some(),
        "the fast resource stopped updating:\n{}",
        log_of(dir.path())
    );
    let (_, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    let timeouts = crate::daemon::sample(
        &metrics,
        "confsync_render_timeouts_total",
        "resource=\"stuck\"",
    );
    assert!(timeouts.is_some_and(|n| n >= 1.0), "{metrics}");
    let (_, ready) = http_get(port, "/ready").expect("/ready answers");
    assert!(ready.contains("render stuck"), "{ready}");
    let t = std::time::Instant::now();
    proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        proc.wait_exit(Duration::from_secs(5)).is_some(),
        "SIGTERM did not end the daemon within 5 s"
    );
    eprintln!("exited {:?} after SIGTERM", t.elapsed());
}

#[test]
fn values_over_max_value_size_are_dropped_and_listings_over_max_keys_refused() {
    let port = crate::support::free_port();
    let dir = config_dir(&format!(
        "max_value_size = 16\nmax_keys = 3\nmetrics_addr = \"127.0.0.1:{port}\"\n"
    ));
    let data = dir.path().join("data.yaml");
    let big = "y".repeat(100);
    std::fs::write(&data, format!("app:\n  x: \"1\"\n  big: \"{big}\"\n")).unwrap();
    let dest = resource(
        dir.path(),
        "keys",
        "{% for s in gets(key=\"/app/*\") %}{{ s.key }}={{ s.value }}\n{% endfor %}",
        "",
    );
    let _proc = daemon(dir.path(), &[]);
    let rendered = wait_for(LIMIT, || std::fs::read_to_string(&dest).ok());
    assert_eq!(
        rendered.as_deref(),
        Some("/app/x=1\n"),
        "{}",
        log_of(dir.path())
    );
    let log = log_of(dir.path());
    assert!(
        log.contains("max_value_size") && log.contains("/app/big"),
        "{log}"
    );
    // Four keys: refused, the last good keys stay.
    std::fs::write(
        &data,
        "app:\n  x: \"2\"\n  a: \"1\"\n  b: \"1\"\n  c: \"1\"\n",
    )
    .unwrap();
    let refused = wait_for(LIMIT, || {
        log_of(dir.path())
            .contains("more keys than max_keys")
            .then_some(())
    });
    assert!(refused.is_some(), "{}", log_of(dir.path()));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "/app/x=1\n");
    let (_, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    let refused = crate::daemon::sample(&metrics, "confsync_data_refused_total", "backend=");
    assert!(refused.is_some_and(|n| n >= 2.0), "{metrics}");
}
