//! The `confsync` binary on the etcd backend: changes reach the rendered file, an outage
//! leaves it alone, a wrong password is exit 2 without the password, and S1 (HAProxy
//! follows `/app/servers`, reloaded with USR2) end to end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd_client::{Client, DeleteOptions, PutOptions};

use crate::support::etcd::{self, Etcd};
use crate::support::http::TinyHttp;
use crate::support::s1::S1;
use crate::support::{Proc, confsync, random_prefix, tempdir, wait_file, write};

/// Bound on one expected change reaching the file or the traffic (the goal is well under
/// a second; the bound leaves room for a loaded 2-core CI machine).
const LIMIT: Duration = Duration::from_secs(10);

/// A config dir with one resource rendering `/app/servers/*` under `prefix` as
/// `name=value` lines into `out.cfg`.
struct Conf {
    dir: tempfile::TempDir,
}

impl Conf {
    fn lines(prefix: &str) -> Conf {
        let dir = tempdir();
        write(
            dir.path(),
            "templates/lines.tmpl",
            "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base }}={{ s.value }}\n{% endfor %}",
        );
        let dest = dir.path().join("out.cfg");
        write(
            dir.path(),
            "conf.d/lines.toml",
            &format!(
                "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n",
                dest.display()
            ),
        );
        Conf { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dest(&self) -> PathBuf {
        self.path().join("out.cfg")
    }

    /// `confsync run` on etcd `nodes` with `extra` flags, logging to `confsync.log`.
    fn command(&self, nodes: &[String], extra: &[&str]) -> std::process::Command {
        let mut cmd = confsync();
        cmd.args(["run", "--confdir"])
            .arg(self.path())
            .args(["--backend", "etcd"]);
        for n in nodes {
            cmd.args(["--node", n]);
        }
        cmd.args(extra);
        cmd
    }

    fn daemon(&self, nodes: &[String]) -> Proc {
        let cmd = self.command(nodes, &["--watch", "--log-level", "debug"]);
        Proc::spawn("confsync", cmd, &self.log())
    }

    fn log(&self) -> PathBuf {
        self.path().join("confsync.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Waits until the file satisfies `pred`; panics with the file and the log otherwise.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_file(&self.dest(), LIMIT, pred).unwrap_or_else(|| {
            panic!(
                "{what}: not in {} within {LIMIT:?}; file: {:?}\nlog:\n{}",
                self.dest().display(),
                std::fs::read_to_string(self.dest()).ok(),
                self.log_text()
            )
        })
    }
}

/// A blocking runtime for the async etcd client in these synchronous tests.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn put_update_delete_prefix_delete_and_lease_expiry_reach_the_file() {
    let etcd = etcd::shared();
    let p = random_prefix();
    let conf = Conf::lines(&p);
    let rt = rt();
    let mut c = rt.block_on(Client::connect([etcd.url()], None)).unwrap();
    let key = |n: &str| format!("{p}/app/servers/{n}");
    rt.block_on(c.put(key("a"), "10.0.0.1:80", None)).unwrap();
    let _d = conf.daemon(&[etcd.url()]);
    conf.wait("initial listing", |s| s == "a=10.0.0.1:80\n");

    rt.block_on(c.put(key("b"), "10.0.0.2:80", None)).unwrap();
    conf.wait("put", |s| s.contains("b=10.0.0.2:80"));
    rt.block_on(c.put(key("a"), "10.0.0.9:80", None)).unwrap();
    conf.wait("update", |s| s.contains("a=10.0.0.9:80"));
    rt.block_on(c.delete(key("a"), None)).unwrap();
    conf.wait("delete", |s| s == "b=10.0.0.2:80\n");
    rt.block_on(c.delete(key(""), Some(DeleteOptions::new().with_prefix())))
        .unwrap();
    conf.wait("prefix delete", |s| s.is_empty());

    let lease = rt.block_on(c.lease_grant(1, None)).unwrap().id();
    rt.block_on(c.put(
        key("tmp"),
        "10.0.0.3:80",
        Some(PutOptions::new().with_lease(lease)),
    ))
    .unwrap();
    conf.wait("leased put", |s| s.contains("tmp=10.0.0.3:80"));
    let t = Instant::now();
    conf.wait("lease expiry", |s| s.is_empty());
    assert!(t.elapsed() < LIMIT);
}

#[test]
fn outage_leaves_the_file_alone_and_changes_apply_after_restart() {
    let mut etcd = Etcd::start();
    let p = random_prefix();
    let conf = Conf::lines(&p);
    let rt = rt();
    let url = etcd.url();
    let put = |k: &str, v: &str| {
        let mut c = rt.block_on(Client::connect([url.as_str()], None)).unwrap();
        rt.block_on(c.put(format!("{p}/app/servers/{k}"), v, None))
            .unwrap();
    };
    put("a", "1");
    let mut d = conf.daemon(&[etcd.url()]);
    let before = conf.wait("initial listing", |s| s == "a=1\n");

    etcd.kill();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "daemon alive during the outage"
    );
    assert_eq!(
        std::fs::read_to_string(conf.dest()).unwrap(),
        before,
        "dest unchanged"
    );
    let log = conf.log_text();
    // Logged once per state change (backend and daemon), not once per retry.
    let lines = log.lines().filter(|l| l.contains("unreachable")).count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines say unreachable:\n{log}"
    );

    etcd.restart(true);
    put("b", "2");
    conf.wait("put after the restart", |s| s == "a=1\nb=2\n");
    assert!(conf.log_text().contains("reachable again"));
}

#[test]
fn onetime_with_a_wrong_password_exits_2_naming_the_endpoint_not_the_password() {
    let etcd = Etcd::start();
    etcd.ctl_ok(&["user", "add", "root:good-pw-1234"]);
    etcd.ctl_ok(&["auth", "enable"]);
    let p = random_prefix();
    let conf = Conf::lines(&p);
    let secret = "bad-pw-5678";
    let out = conf
        .command(&[etcd.url()], &["--onetime", "--username", "root"])
        .env("CONFSYNC_PASSWORD", secret)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&etcd.url()) && text.contains("authentication failed"),
        "{text}"
    );
    assert!(!text.contains(secret), "{text}");
    assert!(!conf.dest().exists());

    // The right password renders.
    etcd.ctl_ok(&[
        "--user",
        "root:good-pw-1234",
        "put",
        &format!("{p}/app/servers/a"),
        "1",
    ]);
    let out = conf
        .command(&[etcd.url()], &["--onetime", "--username", "root"])
        .env("CONFSYNC_PASSWORD", "good-pw-1234")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(conf.dest()).unwrap(), "a=1\n");
}

/// One GET through HAProxy; the body, or `None` on any error.
pub(crate) fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    if !out.starts_with("HTTP/1.1 200") && !out.starts_with("HTTP/1.0 200") {
        return None;
    }
    out.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// Bodies seen in `n` requests.
pub(crate) fn sample(port: u16, n: usize) -> Vec<String> {
    (0..n).filter_map(|_| get(port)).collect()
}

#[test]
fn s1_haproxy_follows_app_servers_in_etcd() {
    let etcd = etcd::shared();
    let p = random_prefix();
    let backends = [
        TinyHttp::body("backend-0"),
        TinyHttp::body("backend-1"),
        TinyHttp::body("backend-2"),
    ];
    let s1 = S1::start(&p);
    let (http, stats, cfg) = (s1.http, s1.stats, s1.cfg.clone());
    let rt = rt();
    let mut c = rt.block_on(Client::connect([etcd.url()], None)).unwrap();
    for (k, v) in s1.settings() {
        rt.block_on(c.put(format!("{p}{k}"), v, None)).unwrap();
    }
    let _confsync = s1.daemon(&["--backend", "etcd", "--node", &etcd.url()]);
    let show = || s1.show();
    assert!(
        wait_file(&cfg, LIMIT, |s| s.contains("backend app")).is_some(),
        "first render{}",
        show()
    );

    // Scale up: each backend takes traffic after its key is put.
    for (i, b) in backends.iter().enumerate() {
        let t = Instant::now();
        rt.block_on(c.put(
            format!("{p}/app/servers/web{i}"),
            format!("127.0.0.1:{}", b.port),
            None,
        ))
        .unwrap();
        let want = format!("backend-{i}");
        let seen =
            crate::support::wait_for(LIMIT, || sample(http, 4).contains(&want).then_some(()));
        assert!(
            seen.is_some(),
            "{want} takes traffic within {LIMIT:?}{}",
            show()
        );
        eprintln!("s1: {want} answered {:?} after its put", t.elapsed());
    }
    let all = sample(http, 9);
    for i in 0..3 {
        assert!(
            all.contains(&format!("backend-{i}")),
            "round robin over all three: {all:?}"
        );
    }
    // The stats page asks for the password from etcd.
    let stats_get = get(stats);
    assert!(stats_get.is_none(), "stats page needs basic auth");

    // Scale down: a deleted backend stops taking traffic.
    rt.block_on(c.delete(format!("{p}/app/servers/web0"), None))
        .unwrap();
    let gone = crate::support::wait_for(LIMIT, || {
        let s = sample(http, 6);
        (s.len() == 6 && !s.contains(&"backend-0".to_string())).then_some(())
    });
    assert!(
        gone.is_some(),
        "backend-0 leaves after its key is deleted{}",
        show()
    );
    let after = sample(http, 12);
    assert_eq!(after.len(), 12, "every request is served: {after:?}");
    assert!(!after.contains(&"backend-0".to_string()), "{after:?}");
}
