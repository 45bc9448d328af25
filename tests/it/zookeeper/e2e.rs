//! The `confsync` binary on ZooKeeper: S1 (HAProxy follows `/app/servers`, reloaded
//! with USR2) end to end, and an outage that leaves the rendered file alone.

use std::time::{Duration, Instant};

use crate::etcd::e2e::{get, sample};
use crate::support::http::TinyHttp;
use crate::support::s1::S1;
use crate::support::zookeeper::{ZkServer, shared};
use crate::support::{Proc, confsync, random_prefix, tempdir, wait_file, wait_for, write};

/// Bound on one expected change reaching the file or the traffic on a loaded machine.
const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn s1_haproxy_follows_app_servers_in_zookeeper() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let backends = [TinyHttp::body("zk-0"), TinyHttp::body("zk-1")];
    let s1 = S1::start(&p);
    let (http, stats, cfg) = (s1.http, s1.stats, s1.cfg.clone());
    for (k, v) in s1.settings() {
        w.put(&format!("{p}{k}"), &v);
    }
    let _confsync = s1.daemon(&["--backend", "zookeeper", "--node", &zk.node()]);
    let show = || s1.show();
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
