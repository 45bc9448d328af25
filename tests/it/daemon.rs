//! The daemon runtime: coalescing bursts into few reloads, one task per resource, guards,
//! SIGHUP, SIGTERM, systemd notifications, metrics and readiness.

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::etcd::{self, Etcd};
use crate::support::{
    Proc, confsync, free_port, random_prefix, tempdir, wait_file, wait_for, write,
};

const LIMIT: Duration = Duration::from_secs(10);

/// Lines of `path` (0 when it does not exist).
fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub(crate) fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// A resource `name` rendering `key=value` lines of `/app/servers/*` into `out/NAME`,
/// appending a line to `out/NAME.reloads` on every reload.
pub(crate) fn lines_resource(dir: &Path, name: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "templates/lines.tmpl",
        "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base }}={{ s.value }}\n{% endfor %}",
    );
    let dest = dir.join("out").join(name);
    std::fs::create_dir_all(dir.join("out")).unwrap();
    write(
        dir,
        &format!("conf.d/{name}.toml"),
        &format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{d}\"\nkeys = [\"/app/servers\"]\nreload_cmd = \"echo r >> {d}.reloads\"\n{extra}",
            d = dest.display()
        ),
    );
    dest
}

fn reloads(dest: &Path) -> usize {
    lines(&PathBuf::from(format!("{}.reloads", dest.display())))
}

/// A config dir on the file backend reading `data.yaml` (with `data` in it).
fn file_conf(data: &str) -> tempfile::TempDir {
    let dir = tempdir();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n",
    );
    write(dir.path(), "data.yaml", data);
    dir
}

fn daemon(dir: &Path, args: &[&str]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir).args(args);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

/// [`etcd_args`] with `/metrics` on 127.0.0.1:`port` and `max_staleness` of `staleness`.
pub(crate) fn etcd_metrics_args(e: &Etcd, prefix: &str, port: u16, staleness: &str) -> Vec<String> {
    let mut args = etcd_args(e, prefix);
    args.extend(["--metrics-addr".into(), format!("127.0.0.1:{port}")]);
    args.extend(["--max-staleness".into(), staleness.into()]);
    args
}

pub(crate) fn etcd_args(e: &Etcd, prefix: &str) -> Vec<String> {
    vec![
        "--backend".into(),
        "etcd".into(),
        "--node".into(),
        e.url(),
        "--prefix".into(),
        prefix.into(),
    ]
}

fn client(rt: &tokio::runtime::Runtime, e: &Etcd) -> etcd_client::Client {
    rt.block_on(etcd_client::Client::connect([e.url()], None))
        .unwrap()
}

#[test]
fn a_burst_of_100_puts_and_a_prefix_delete_are_few_reloads() {
    let e = etcd::shared();
    let prefix = random_prefix();
    let dir = tempdir();
    let dest = lines_resource(dir.path(), "burst", "");
    let args = etcd_args(e, &prefix);
    let mut p = daemon(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = client(&rt, e);
    // Settle the first render (an empty prefix renders an empty file: no reload).
    std::thread::sleep(Duration::from_millis(500));
    let before = reloads(&dest);
    rt.block_on(async {
        c.put(format!("{prefix}/app/servers/keep"), "127.0.0.1:3000", None)
            .await
            .unwrap();
        for i in 1..100 {
            c.put(
                format!("{prefix}/app/servers/web{i:03}"),
                format!("127.0.0.1:{}", 3000 + i),
                None,
            )
            .await
            .unwrap();
        }
    });
    assert!(
        wait_file(&dest, LIMIT, |s| s.lines().count() == 100).is_some(),
        "all 100 rendered"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let burst = reloads(&dest) - before;
    assert!((1..=5).contains(&burst), "100 puts took {burst} reloads");

    // 99 keys removed by one prefix delete.
    let gone = rt
        .block_on(c.delete(
            format!("{prefix}/app/servers/web"),
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        ))
        .unwrap();
    assert_eq!(gone.deleted(), 99);
    assert!(
        wait_file(&dest, LIMIT, |s| s.lines().count() == 1).is_some(),
        "deletes rendered"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let deletes = reloads(&dest) - before - burst;
    assert!(
        (1..=3).contains(&deletes),
        "99 deletes took {deletes} reloads"
    );
    assert!(p.child.try_wait().unwrap().is_none());
}

#[test]
fn a_hung_reload_is_killed_and_never_delays_another_resource() {
    let dir = file_conf("app:\n  servers:\n    a: \"1\"\n");
    let fast = lines_resource(dir.path(), "fast", "");
    let slow = lines_resource(dir.path(), "slow", "");
    // The slow one's reload hangs until its timeout kills it.
    let toml = std::fs::read_to_string(dir.path().join("conf.d/slow.toml")).unwrap();
    let toml = toml.replace(
        "reload_cmd = \"echo r >>",
        "reload_timeout = \"3s\"\nreload_cmd = \"sleep 600; echo r >>",
    );
    write(dir.path(), "conf.d/slow.toml", &toml);
    let mut p = daemon(dir.path(), &[]);
    assert!(wait_file(&fast, LIMIT, |s| s.contains("a=1")).is_some());
    assert!(wait_file(&slow, LIMIT, |s| s.contains("a=1")).is_some());
    // While the slow reload hangs, the fast resource keeps following changes.
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    write(dir.path(), "data.yaml", "app:\n  servers:\n    b: \"2\"\n");
    assert!(wait_file(&fast, LIMIT, |s| s.contains("b=2")).is_some());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "fast resource waited {:?}",
        start.elapsed()
    );
    assert!(
        wait_for(LIMIT, || log_of(dir.path())
            .contains("timed out after 3s")
            .then_some(()))
        .is_some(),
        "the hung reload is killed at its timeout: {}",
        log_of(dir.path())
    );
    assert!(wait_file(&slow, LIMIT, |s| s.contains("b=2")).is_some());
    assert!(p.child.try_wait().unwrap().is_none());
    // SIGTERM lets the in-flight (hung) reload run to its timeout, then exits 0, and the
    // killed reload leaves no process behind.
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let st = p.wait_exit(LIMIT).expect("exits after draining");
    assert!(st.success(), "{st:?}");
    let marker = dir.path().join("out/slow.reloads").display().to_string();
    assert!(!running_with(&marker), "reload command left running");
}

/// True when a process whose command line mentions `needle` is running (from /proc).
fn running_with(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(needle))
            .unwrap_or(false)
    })
}

#[test]
fn min_keys_refuses_an_emptied_prefix_and_value_pattern_drops_injection() {
    let dir = file_conf(
        "app:\n  servers:\n    a: \"10.0.0.1:80\"\n    b: \"10.0.0.2:80\"\n    evil: \"10.0.0.3:80\\n  server evil 203.0.113.9:80\"\n",
    );
    let dest = lines_resource(
        dir.path(),
        "guarded",
        "min_keys = 2\nvalue_pattern = \"[0-9.]+:[0-9]+\"\n",
    );
    let mut p = daemon(dir.path(), &[]);
    let good = wait_file(&dest, LIMIT, |s| s.contains("a=10.0.0.1:80")).expect("rendered");
    assert_eq!(
        good, "a=10.0.0.1:80\nb=10.0.0.2:80\n",
        "the injected value is left out"
    );
    write(
        dir.path(),
        "data.yaml",
        "app:\n  servers:\n    a: \"10.0.0.1:80\"\n",
    );
    assert!(
        wait_for(LIMIT, || log_of(dir.path())
            .contains("min_keys = 2")
            .then_some(()))
        .is_some(),
        "{}",
        log_of(dir.path())
    );
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        good,
        "old file kept"
    );
    let log = log_of(dir.path());
    assert!(
        log.contains("guarded") && log.contains("only 1 key"),
        "{log}"
    );
    assert!(
        log.contains("/app/servers/evil") && log.contains("value_pattern"),
        "{log}"
    );
    assert!(p.child.try_wait().unwrap().is_none());
}

// Issue 12: a key left out by `key_pattern` is counted under its own guard label.
#[test]
fn issue12_guard_refusals_tell_key_pattern_from_value_pattern() {
    let dir = file_conf(
        "app:\n  servers:\n    a: \"10.0.0.1:80\"\n    b: \"x; evil\"\n    \"c d\": \"10.0.0.3:80\"\n",
    );
    let dest = lines_resource(
        dir.path(),
        "g",
        "value_pattern = \"[0-9.]+:[0-9]+\"\nkey_pattern = \"/app/servers/[a-z]+\"\n",
    );
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut p = daemon(dir.path(), &["--metrics-addr", &addr]);
    let text = wait_file(&dest, LIMIT, |s| s.contains("a="));
    assert_eq!(
        text.as_deref(),
        Some("a=10.0.0.1:80\n"),
        "{}",
        log_of(dir.path())
    );
    let refusals = |text: &str, guard: &str| {
        let label = format!("resource=\"g\",guard=\"{guard}\"");
        sample(text, "confsync_guard_refusals_total", &label)
    };
    let text = wait_for(LIMIT, || {
        let text = http_get(port, "/metrics")?.1;
        (refusals(&text, "key_pattern")? >= 1.0).then_some(text)
    })
    .unwrap_or_else(|| panic!("no key_pattern refusal counted\n{}", log_of(dir.path())));
    assert_eq!(
        refusals(&text, "key_pattern"),
        refusals(&text, "value_pattern"),
        "one key each, counted apart on every render\n{text}"
    );
    assert_eq!(refusals(&text, "min_keys"), Some(0.0), "{text}");
    assert!(p.child.try_wait().unwrap().is_none());
}

#[test]
fn sighup_applies_a_new_template_and_keeps_the_old_set_when_broken() {
    let dir = file_conf("app:\n  servers:\n    a: \"1\"\n");
    let dest = lines_resource(dir.path(), "hup", "");
    let mut p = daemon(dir.path(), &[]);
    assert!(wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some());
    write(
        dir.path(),
        "templates/lines.tmpl",
        "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.key | base }} {{ s.value }}\n{% endfor %}",
    );
    p.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_file(&dest, LIMIT, |s| s == "server a 1\n").is_some(),
        "new template applied"
    );
    write(dir.path(), "templates/lines.tmpl", "{% for s in %}\n");
    p.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        wait_for(LIMIT, || log_of(dir.path())
            .contains("new configuration rejected")
            .then_some(()))
        .is_some(),
        "{}",
        log_of(dir.path())
    );
    assert!(log_of(dir.path()).contains("lines.tmpl"));
    write(dir.path(), "data.yaml", "app:\n  servers:\n    b: \"2\"\n");
    assert!(
        wait_file(&dest, LIMIT, |s| s == "server b 2\n").is_some(),
        "the old set keeps running"
    );
    // One info line per change, saying how many keys it covered (a removed, b added).
    assert!(
        wait_for(LIMIT, || log_of(dir.path())
            .contains("keys_changed=2")
            .then_some(()))
        .is_some(),
        "{}",
        log_of(dir.path())
    );
    assert!(p.child.try_wait().unwrap().is_none());
}

/// Datagrams received on `sock` within `limit`, until one contains `want`.
fn notify_until(sock: &UnixDatagram, want: &str, limit: Duration) -> Vec<String> {
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.contains(want);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

#[test]
fn systemd_hears_ready_after_the_first_render_and_stopping_on_sigterm() {
    let dir = file_conf("app:\n  servers:\n    a: \"1\"\n");
    // The check takes a while, so READY=1 before the render finished would show.
    let dest = lines_resource(dir.path(), "sd", "check_cmd = \"sleep 0.5\"\n");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"])
        .arg(dir.path())
        .env("NOTIFY_SOCKET", &sock_path);
    let mut p = Proc::spawn("confsync", c, &dir.path().join("confsync.log"));
    let msgs = notify_until(&sock, "READY=1", LIMIT);
    assert!(msgs.iter().any(|m| m.contains("READY=1")), "{msgs:?}");
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "a=1\n",
        "READY=1 came after the first render"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let msgs = notify_until(&sock, "STOPPING=1", LIMIT);
    assert!(msgs.iter().any(|m| m.contains("STOPPING=1")), "{msgs:?}");
    let st = p.wait_exit(LIMIT).expect("exits");
    assert!(st.success(), "{st:?}");
}

/// `GET path` on 127.0.0.1:`port`: (status, body).
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// The value of the first sample line of `name` with `label` in Prometheus `text`.
pub(crate) fn sample(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_move_and_ready_follows_the_backend() {
    let mut e = Etcd::start();
    let prefix = random_prefix();
    let dir = tempdir();
    let dest = lines_resource(dir.path(), "m", "");
    let port = free_port();
    // An outage is tolerated for max_staleness (default 30 min): make it short.
    let args = etcd_metrics_args(&e, &prefix, port, "1s");
    let mut p = daemon(
        dir.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        wait_for(LIMIT, || http_get(port, "/ready")
            .filter(|(s, _)| *s == 200))
        .is_some(),
        "ready"
    );
    assert_eq!(http_get(port, "/health").unwrap().0, 200);
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/a"), "1"]);
    assert!(wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some());
    let (status, text) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        assert!(
            name.chars().next().unwrap().is_ascii_alphabetic(),
            "bad name in {line:?}"
        );
    }
    let renders =
        sample(&text, "confsync_renders_total", "resource=\"m\"").expect("renders counter");
    assert!(renders >= 1.0, "{text}");
    // Reload commands append to a file: once the counter matches it, nothing is in flight.
    let counter = || {
        let text = http_get(port, "/metrics")?.1;
        sample(&text, "confsync_reloads_total", "resource=\"m\"")
    };
    // Two so far: the first (empty) render created the file, then `a` arrived.
    assert!(wait_for(LIMIT, || (self::reloads(&dest) == 2).then_some(())).is_some());
    let reloads = wait_for(LIMIT, || {
        counter().filter(|n| *n as usize == self::reloads(&dest))
    })
    .expect("reloads counter matches the reload commands run");
    assert_eq!(
        sample(&text, "confsync_backend_up", "backend=\"default\""),
        Some(1.0),
        "{text}"
    );
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/b"), "2"]);
    assert!(wait_file(&dest, LIMIT, |s| s.contains("b=2")).is_some());
    // The file is swapped in before the reload command runs and is counted.
    let counted = wait_for(LIMIT, || (counter() == Some(reloads + 1.0)).then_some(()));
    assert!(counted.is_some(), "reloads counter moved");

    e.kill();
    assert!(
        wait_for(LIMIT, || http_get(port, "/ready")
            .filter(|(s, _)| *s == 503))
        .is_some(),
        "503 once etcd has been dead for max_staleness"
    );
    assert_eq!(http_get(port, "/health").unwrap().0, 200, "still alive");
    e.restart(true);
    assert!(
        wait_for(Duration::from_secs(20), || http_get(port, "/ready")
            .filter(|(s, _)| *s == 200))
        .is_some(),
        "200 again"
    );
    assert!(p.child.try_wait().unwrap().is_none());
}

#[test]
fn resources_follow_their_own_named_backends() {
    let dir = file_conf("app:\n  servers:\n    a: \"1\"\n");
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n[backends.other]\nkind = \"file\"\nfile = [\"other.yaml\"]\nwatch = true\n",
    );
    write(dir.path(), "other.yaml", "app:\n  servers:\n    x: \"9\"\n");
    let main = lines_resource(dir.path(), "main", "");
    let other = lines_resource(dir.path(), "other", "backend = \"other\"\n");
    let mut p = daemon(dir.path(), &[]);
    assert!(wait_file(&main, LIMIT, |s| s == "a=1\n").is_some());
    assert!(wait_file(&other, LIMIT, |s| s == "x=9\n").is_some());
    // (Not `y`: YAML 1.1, which data files are read as, makes that key a boolean.)
    write(dir.path(), "other.yaml", "app:\n  servers:\n    z: \"8\"\n");
    assert!(wait_file(&other, LIMIT, |s| s == "z=8\n").is_some());
    write(dir.path(), "data.yaml", "app:\n  servers:\n    b: \"2\"\n");
    assert!(wait_file(&main, LIMIT, |s| s == "b=2\n").is_some());
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "z=8\n");
    let log = log_of(dir.path());
    assert!(
        log.contains("backend=other") && log.contains("backend=default"),
        "{log}"
    );
    assert!(p.child.try_wait().unwrap().is_none());
}
