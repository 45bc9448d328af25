//! Last good state survives a restart (issue #11, part 8): each backend's snapshot is
//! saved in `STATE_DIR/snapshots/`; a daemon started while its backend is unreachable
//! renders from it (and says so in logs, metrics and `/ready`), then resyncs when the
//! backend answers, re-rendering only what changed.

use std::path::Path;
use std::time::Duration;

use crate::daemon::{etcd_args, http_get, lines_resource, log_of, sample};
use crate::support::etcd::Etcd;
use crate::support::{
    Proc, confsync, free_port, random_prefix, tempdir, wait_file, wait_for, write,
};

const LIMIT: Duration = Duration::from_secs(10);

fn daemon(dir: &Path, state: &Path, args: &[String]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"])
        .arg(dir)
        .args(args)
        .env("CONFSYNC_STATE_DIR", state);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

fn metric(port: u16, name: &str, resource_or_backend: &str) -> Option<f64> {
    let text = http_get(port, "/metrics")?.1;
    sample(&text, name, resource_or_backend)
}

#[test]
fn a_restart_with_etcd_down_serves_the_saved_snapshot() {
    let mut e = Etcd::start();
    let prefix = random_prefix();
    let (dir, state) = (tempdir(), tempdir());
    let dest = lines_resource(dir.path(), "main", "");
    // A second resource on keys that do not change: it must not render again.
    write(
        dir.path(),
        "templates/other.tmpl",
        "o={{ getv(key=\"/app/other\") }}\n",
    );
    let other = dir.path().join("out/other");
    write(
        dir.path(),
        "conf.d/other.toml",
        &format!(
            "[template]\nsrc = \"other.tmpl\"\ndest = \"{}\"\nkeys = [\"/app/other\"]\n",
            other.display()
        ),
    );
    let put = |k: &str, v: &str| e.ctl_ok(&["put", &format!("{prefix}{k}"), v]);
    put("/app/other", "x");
    let port = free_port();
    let mut args = etcd_args(&e, &prefix);
    args.extend(["--metrics-addr".into(), format!("127.0.0.1:{port}")]);

    // Run 1, etcd up: the snapshot is saved after each change.
    let mut p = daemon(dir.path(), state.path(), &args);
    assert!(wait_file(&other, LIMIT, |s| s == "o=x\n").is_some());
    put("/app/servers/a", "1");
    put("/app/servers/b", "2");
    assert!(wait_file(&dest, LIMIT, |s| s == "a=1\nb=2\n").is_some());
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait_exit(LIMIT).expect("exits").success());
    let saved: Vec<_> = std::fs::read_dir(state.path().join("snapshots"))
        .expect("snapshots dir")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let text = std::fs::read_to_string(&saved[0]).unwrap();
    assert!(
        text.starts_with("confsync-snapshot 1\n") && text.contains("/app/servers/b"),
        "{text}"
    );

    // Changed while no daemon runs; then etcd goes down and the file is lost.
    put("/app/servers/b", "3");
    e.kill();
    std::fs::remove_file(&dest).unwrap();

    // Run 2, etcd down: rendered from the saved snapshot, and said so everywhere.
    let mut p = daemon(dir.path(), state.path(), &args);
    assert!(
        wait_file(&dest, LIMIT, |s| s == "a=1\nb=2\n").is_some(),
        "not rendered from saved state: {}",
        log_of(dir.path())
    );
    let log = log_of(dir.path());
    assert!(log.contains("serving its saved snapshot"), "{log}");
    assert!(
        log.contains(&saved[0].display().to_string()),
        "the log names the file: {log}"
    );
    let serving = "confsync_backend_serving_saved_state";
    assert_eq!(metric(port, serving, "backend=\"default\""), Some(1.0));
    let ready = wait_for(LIMIT, || {
        http_get(port, "/ready").filter(|(s, _)| *s == 200)
    });
    let body = ready
        .expect("ready while serving fresh-enough saved state")
        .1;
    assert!(
        body.contains("backend default: serving saved state"),
        "{body}"
    );
    let other_renders = metric(port, "confsync_renders_total", "resource=\"other\"");
    assert_eq!(other_renders, Some(1.0), "rendered once, from saved state");

    // etcd is back: the first listing is diffed against the snapshot.
    e.restart(true);
    assert!(
        wait_file(&dest, Duration::from_secs(20), |s| s == "a=1\nb=3\n").is_some(),
        "did not catch up: {}",
        log_of(dir.path())
    );
    assert_eq!(metric(port, serving, "backend=\"default\""), Some(0.0));
    let ready = wait_for(LIMIT, || {
        http_get(port, "/ready").filter(|(s, _)| *s == 200)
    });
    assert_eq!(ready.map(|(_, b)| b).as_deref(), Some("ready\n"));
    assert_eq!(
        metric(port, "confsync_renders_total", "resource=\"other\""),
        Some(1.0),
        "the resource whose keys did not change was not rendered again"
    );
    assert!(log_of(dir.path()).contains("resynced from the saved snapshot"));
    assert!(p.child.try_wait().unwrap().is_none());
}

#[test]
fn a_damaged_snapshot_is_ignored_and_nothing_renders_until_etcd_answers() {
    let mut e = Etcd::start();
    let prefix = random_prefix();
    let (dir, state) = (tempdir(), tempdir());
    let dest = lines_resource(dir.path(), "main", "");
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/a"), "1"]);
    let args = etcd_args(&e, &prefix);
    let mut p = daemon(dir.path(), state.path(), &args);
    assert!(wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some());
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait_exit(LIMIT).expect("exits").success());
    let file = std::fs::read_dir(state.path().join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Another format version: refused, not guessed at.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("snapshot 1", "snapshot 9", 1)).unwrap();
    e.kill();
    std::fs::remove_file(&dest).unwrap();

    let mut p = daemon(dir.path(), state.path(), &args);
    let warned = wait_for(LIMIT, || {
        log_of(dir.path())
            .contains("ignoring the saved snapshot")
            .then_some(())
    });
    assert!(warned.is_some(), "{}", log_of(dir.path()));
    assert!(log_of(dir.path()).contains("not a confsync snapshot of this version"));
    assert!(!dest.exists(), "no render without a snapshot or a listing");
    e.restart(true);
    assert!(wait_file(&dest, Duration::from_secs(20), |s| s == "a=1\n").is_some());
    assert!(p.child.try_wait().unwrap().is_none());
}
