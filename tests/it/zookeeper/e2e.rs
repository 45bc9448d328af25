//! The `confsync` binary on ZooKeeper: S1 (HAProxy follows `/app/servers`, reloaded
//! with USR2) end to end, and an outage that leaves the rendered file alone.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::etcd::e2e::{get, sample};
use crate::support::http::TinyHttp;
use crate::support::zookeeper::{ZkServer, shared};
use crate::support::{
    Proc, confsync, free_port, random_prefix, require_program, tempdir, wait_file, wait_for,
    wait_port, write,
};

/// Bound on one expected change reaching the file or the traffic on a loaded machine.
const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn s1_haproxy_follows_app_servers_in_zookeeper() {
    let haproxy = require_program("haproxy", "haproxy");
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let dir = tempdir();
    let d = dir.path();
    let backends = [TinyHttp::body("zk-0"), TinyHttp::body("zk-1")];
    let (http, stats) = (free_port(), free_port());
    let cfg = d.join("haproxy.cfg");
    let pidfile = d.join("haproxy.pid");
    let tpl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/haproxy.cfg.tmpl"),
    )
    .unwrap();
    write(d, "templates/haproxy.cfg.tmpl", &tpl);
    write(
        d,
        "conf.d/haproxy.toml",
        &format!(
            "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"{cfg}\"\nprefix = \"{p}\"\n\
             keys = [\"/app/servers\", \"/app/stats\", \"/app/listen\"]\n\
             check_cmd = \"{haproxy} -c -q -f {{{{.src}}}}\"\n\
             reload_cmd = \"kill -USR2 $(cat {pid})\"\n",
            cfg = cfg.display(),
            haproxy = haproxy.display(),
            pid = pidfile.display(),
        ),
    );
    w.put(
        &format!("{p}/app/listen/http"),
        &format!("127.0.0.1:{http}"),
    );
    w.put(
        &format!("{p}/app/listen/stats"),
        &format!("127.0.0.1:{stats}"),
    );
    w.put(&format!("{p}/app/stats/password"), "stats-pw");
    std::fs::write(
        &cfg,
        format!("defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nfrontend www\n  bind 127.0.0.1:{http}\n"),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(&haproxy);
    cmd.arg("-W").arg("-f").arg(&cfg).arg("-p").arg(&pidfile);
    let _haproxy = Proc::spawn("haproxy", cmd, &d.join("haproxy.log"));
    assert!(wait_port(http, LIMIT), "haproxy listens on {http}");
    assert!(crate::support::wait_for(LIMIT, || pidfile.exists().then_some(())).is_some());

    let mut daemon = confsync();
    daemon.args(["run", "--confdir"]).arg(d).args([
        "--backend",
        "zookeeper",
        "--node",
        &zk.node(),
        "--watch",
        "--log-level",
        "debug",
    ]);
    let log = d.join("confsync.log");
    let _confsync = Proc::spawn("confsync", daemon, &log);
    let show = || {
        format!(
            "\nconfsync log:\n{}\nconfig:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(&cfg).unwrap_or_default()
        )
    };
    assert!(
        wait_file(&cfg, LIMIT, |s| s.contains("backend app")).is_some(),
        "first render{}",
        show()
    );
    for (i, b) in backends.iter().enumerate() {
        let t = Instant::now();
        w.put(
            &format!("{p}/app/servers/web{i}"),
            &format!("127.0.0.1:{}", b.port),
        );
        let want = format!("zk-{i}");
        let seen =
            crate::support::wait_for(LIMIT, || sample(http, 4).contains(&want).then_some(()));
        assert!(seen.is_some(), "{want} takes traffic{}", show());
        eprintln!(
            "s1 on zookeeper: {want} answered {:?} after its create",
            t.elapsed()
        );
    }
    assert!(get(stats).is_none(), "stats page needs basic auth");
    w.delete_all(&format!("{p}/app/servers/web0"));
    let gone = crate::support::wait_for(LIMIT, || {
        let s = sample(http, 6);
        (s.len() == 6 && !s.contains(&"zk-0".to_string())).then_some(())
    });
    assert!(
        gone.is_some(),
        "zk-0 leaves after its znode is deleted{}",
        show()
    );
    w.delete_all(&p);
}

#[test]
fn an_outage_leaves_the_file_alone_and_changes_apply_after_it() {
    let mut zk = ZkServer::start();
    let p = random_prefix();
    let dir = tempdir();
    let d = dir.path();
    write(
        d,
        "templates/lines.tmpl",
        "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base }}={{ s.value }}\n{% endfor %}",
    );
    let dest = d.join("out.cfg");
    write(
        d,
        "conf.d/lines.toml",
        &format!(
            "[template]\nsrc = \"lines.tmpl\"\ndest = \"{}\"\nprefix = \"{p}\"\nkeys = [\"/app/servers\"]\n",
            dest.display()
        ),
    );
    zk.writer().put(&format!("{p}/app/servers/a"), "1");
    let mut cmd = confsync();
    cmd.args(["run", "--confdir"]).arg(d).args([
        "--backend",
        "zookeeper",
        "--node",
        &zk.node(),
        "--session-timeout",
        "2s",
        "--watch",
        "--log-level",
        "debug",
    ]);
    let log = d.join("confsync.log");
    let mut daemon = Proc::spawn("confsync", cmd, &log);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let before = wait_file(&dest, LIMIT, |s| s == "a=1\n")
        .unwrap_or_else(|| panic!("first render; log:\n{}", logs()));
    zk.kill();
    let says = |l: &str| l.contains("unreachable");
    wait_for(Duration::from_secs(20), || {
        logs().lines().any(says).then_some(())
    })
    .unwrap_or_else(|| panic!("the outage was never logged:\n{}", logs()));
    std::thread::sleep(Duration::from_secs(2));
    assert!(daemon.child.try_wait().unwrap().is_none(), "daemon alive");
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        before,
        "dest unchanged"
    );
    let lines = logs().lines().filter(|l| says(l)).count();
    assert!(
        (1..=2).contains(&lines),
        "{lines} lines say unreachable:\n{}",
        logs()
    );
    zk.restart();
    zk.writer().put(&format!("{p}/app/servers/b"), "2");
    wait_file(&dest, Duration::from_secs(20), |s| s == "a=1\nb=2\n")
        .unwrap_or_else(|| panic!("change after the outage; log:\n{}", logs()));
    assert!(logs().contains("reachable again"), "{}", logs());
}
