//! Reconcile and freshness (issue #11, part 7): a watch lists in full every
//! `resync_interval`, so an event lost on the way never stays lost; `/ready` tolerates a
//! backend outage for `max_staleness` and then fails, naming the backend.

use std::path::Path;
use std::time::Duration;

use crate::daemon::{etcd_args, etcd_metrics_args, http_get, lines_resource, log_of};
use crate::support::etcd::{self, Etcd};
use crate::support::redis::RedisServer;
use crate::support::{Proc, confsync, free_port, random_prefix, tempdir, wait_file, wait_for};

const LIMIT: Duration = Duration::from_secs(10);

/// `confsync run --watch` in `dir` with `args` and extra environment.
fn daemon_env(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

#[test]
fn etcd_resync_repairs_a_dropped_watch_event() {
    let e = etcd::shared();
    let prefix = random_prefix();
    let marker = format!("lost-{}", &prefix[3..]);
    // The debug build's test hook drops every watch event for keys holding `marker`.
    let drop = [("CONFSYNC_TEST_DROP_WATCH_EVENTS", marker.as_str())];
    let (plain, fixed) = (tempdir(), tempdir());
    let plain_dest = lines_resource(plain.path(), "m", "");
    let fixed_dest = lines_resource(fixed.path(), "m", "");
    let mut args = etcd_args(e, &prefix);
    let mut without = args.clone();
    without.extend(["--resync-interval".into(), "off".into()]);
    args.extend(["--resync-interval".into(), "1s".into()]);
    let mut a = daemon_env(plain.path(), &without, &drop);
    let mut b = daemon_env(fixed.path(), &args, &drop);
    for d in [&plain_dest, &fixed_dest] {
        assert!(
            wait_file(d, LIMIT, |s| s.is_empty()).is_some(),
            "first render"
        );
    }
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/{marker}"), "2"]);
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/seen"), "1"]);
    // Without resync: the later event arrives, the dropped one never does.
    let got = wait_file(&plain_dest, LIMIT, |s| s.contains("seen=1"));
    assert_eq!(got.as_deref(), Some("seen=1\n"), "{}", log_of(plain.path()));
    // With it: the next full listing brings the key the watch lost.
    let want = format!("{marker}=2\nseen=1\n");
    assert!(
        wait_file(&fixed_dest, Duration::from_secs(5), |s| s == want).is_some(),
        "resync did not repair the lost event: {:?}\n{}",
        std::fs::read_to_string(&fixed_dest),
        log_of(fixed.path())
    );
    assert_eq!(std::fs::read_to_string(&plain_dest).unwrap(), "seen=1\n");
    // Events after the resync still apply (nothing older flickers back).
    e.ctl_ok(&["put", &format!("{prefix}/app/servers/seen"), "3"]);
    let want = format!("{marker}=2\nseen=3\n");
    assert!(wait_file(&fixed_dest, LIMIT, |s| s == want).is_some());
    assert!(a.child.try_wait().unwrap().is_none());
    assert!(b.child.try_wait().unwrap().is_none());
}

#[test]
fn redis_resync_picks_up_a_write_made_without_notifications() {
    // A dedicated server: the test turns keyspace notifications off on it.
    let srv = RedisServer::start(&[]);
    let dir = tempdir();
    let dest = lines_resource(dir.path(), "m", "");
    let args: Vec<String> = ["--backend", "redis", "--node", &srv.node()]
        .iter()
        .map(|s| s.to_string())
        .chain(["--resync-interval".into(), "1s".into()])
        .collect();
    let mut p = daemon_env(dir.path(), &args, &[]);
    let mut c = srv.conn();
    assert!(
        wait_file(&dest, LIMIT, |s| s.is_empty()).is_some(),
        "first render"
    );
    let _: () = redis::cmd("SET")
        .arg("/app/servers/a")
        .arg("1")
        .query(&mut c)
        .unwrap();
    assert!(
        wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some(),
        "watch works"
    );
    // Notifications are fire-and-forget: with them off, nothing tells the daemon.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("/app/servers/b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    assert!(
        wait_file(&dest, Duration::from_secs(5), |s| s == "a=1\nb=2\n").is_some(),
        "resync did not pick up the write: {}",
        log_of(dir.path())
    );
    assert!(
        log_of(dir.path()).contains("periodic resync found keys no notification reported"),
        "{}",
        log_of(dir.path())
    );
    assert!(p.child.try_wait().unwrap().is_none());
}

#[test]
fn ready_turns_503_past_max_staleness_naming_the_backend() {
    let mut e = Etcd::start();
    let prefix = random_prefix();
    let dir = tempdir();
    let dest = lines_resource(dir.path(), "m", "");
    let port = free_port();
    let args = etcd_metrics_args(&e, &prefix, port, "3s");
    let mut p = daemon_env(dir.path(), &args, &[]);
    assert!(wait_file(&dest, LIMIT, |s| s.is_empty()).is_some());
    let ready = |status: u16, has: &str| {
        let has = has.to_string();
        wait_for(LIMIT, move || {
            http_get(port, "/ready").filter(|(s, b)| *s == status && b.contains(&has))
        })
    };
    assert_eq!(ready(200, "").unwrap().1, "ready\n");
    e.kill();
    // Down, but within max_staleness: still ready, and it says so.
    let (_, body) = ready(200, "backend default: down").expect("200 noting the outage");
    assert!(body.starts_with("ready; "), "{body}");
    // Past it: 503 naming the backend.
    let (_, body) = ready(503, "backend stale: default").expect("503 once stale");
    assert!(body.contains("max_staleness 3s"), "{body}");
    e.restart(true);
    assert_eq!(
        wait_for(Duration::from_secs(20), || http_get(port, "/ready")
            .filter(|(s, _)| *s == 200))
        .map(|(_, b)| b),
        Some("ready\n".to_string())
    );
    assert!(p.child.try_wait().unwrap().is_none());
}
