//! `confsync register --backend zookeeper` against a real ZooKeeper: the ephemeral node
//! is created with its parents, SIGTERM deletes it at once, SIGKILL lets the session
//! expire, a health check takes it out and brings it back, a node left by a dead session
//! is replaced, an expired session (server frozen past the timeout) gets the node back,
//! and `--nerve` writes what synapse (and the backend with `--nerve`) reads.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::register::{Health, log, registrar, wait_state};
use crate::support::zookeeper::{ZkServer, shared};
use crate::support::{random_prefix, tempdir, wait_for};

/// Bound on the first registration of a fresh registrar.
const START_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn sigterm_deletes_at_once_and_sigkill_lets_the_session_expire() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let key = format!("{p}/app/servers/web1");
    let dir = tempdir();
    let args = reg_args(&zk.node(), &key, "127.0.0.1:8001", "2");
    let mut r = start(dir.path(), "reg", &args);
    wait_state(START_LIMIT, || w.get(&key).is_some(), true)
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "reg")));
    assert_eq!(w.get(&key).as_deref(), Some("127.0.0.1:8001"));
    assert!(w.owner(&key).unwrap() != 0, "an ephemeral node");
    r.signal(Signal::SIGTERM);
    let gone = wait_state(Duration::from_secs(5), || w.get(&key).is_some(), false)
        .expect("SIGTERM deletes the node");
    eprintln!("zookeeper register: SIGTERM -> node gone in {gone:?}");
    assert_eq!(
        r.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );

    let r = start(dir.path(), "reg2", &args);
    wait_state(START_LIMIT, || w.get(&key).is_some(), true).expect("registered again");
    r.signal(Signal::SIGKILL);
    let t = Instant::now();
    wait_state(Duration::from_secs(10), || w.get(&key).is_some(), false)
        .expect("the session expires and takes the node");
    eprintln!(
        "zookeeper register: SIGKILL -> node gone after {:?} (ttl 2s)",
        t.elapsed()
    );
    w.delete_all(&p);
}

#[test]
fn a_failing_check_deletes_and_a_passing_one_creates_again() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let key = format!("{p}/app/servers/web1");
    let app = Health::start();
    let url = format!("http://{}/health", app.server.addr());
    let addr = app.server.addr();
    let dir = tempdir();
    let _r = start_with(
        dir.path(),
        "reg",
        reg_args(&zk.node(), &key, &addr, "5"),
        &[
            "--check-http",
            &url,
            "--check-interval",
            "200ms",
            "--rise",
            "1",
            "--fall",
            "1",
        ],
    );
    wait_state(START_LIMIT, || w.get(&key).is_some(), true)
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "reg")));
    app.set(false);
    wait_state(Duration::from_secs(5), || w.get(&key).is_some(), false).expect("unhealthy: out");
    app.set(true);
    wait_state(Duration::from_secs(5), || w.get(&key).is_some(), true).expect("healthy: back");
    w.delete_all(&p);
}

/// `confsync register` flags for `key` = `value` on `zk` with `ttl`.
fn reg_args(zk: &str, key: &str, value: &str, ttl: &str) -> Vec<String> {
    [
        "--backend",
        "zookeeper",
        "--node",
        zk,
        "--key",
        key,
        "--value",
        value,
        "--ttl",
        ttl,
    ]
    .map(String::from)
    .to_vec()
}

fn start(dir: &std::path::Path, name: &str, args: &[String]) -> crate::support::Proc {
    registrar(
        dir,
        name,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// [`start`] with more flags after the registration's.
fn start_with(
    dir: &std::path::Path,
    name: &str,
    mut args: Vec<String>,
    more: &[&str],
) -> crate::support::Proc {
    args.extend(more.iter().map(|s| s.to_string()));
    start(dir, name, &args)
}

#[test]
fn a_dead_sessions_node_is_replaced_and_a_live_ones_left_alone() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let key = format!("{p}/app/servers/web1");
    let dir = tempdir();
    let same = reg_args(&zk.node(), &key, "127.0.0.1:1111", "30");
    let old = start(dir.path(), "old", &same);
    wait_state(START_LIMIT, || w.get(&key).is_some(), true).expect("first registrar");
    let old_owner = w.owner(&key).unwrap();
    // Crashed: its session lives on for 30 s. Restarted with the same value, it takes
    // the node over at once.
    old.signal(Signal::SIGKILL);
    let _restarted = start(dir.path(), "restarted", &same);
    wait_for(START_LIMIT, || {
        w.owner(&key).filter(|o| *o != old_owner).map(|_| ())
    })
    .unwrap_or_else(|| panic!("not replaced; log:\n{}", log(dir.path(), "restarted")));
    assert_eq!(w.get(&key).as_deref(), Some("127.0.0.1:1111"));

    // Another instance with another value waits for the holder to go; it never deletes
    // a live instance's node.
    let holder = w.owner(&key).unwrap();
    let other = start(
        dir.path(),
        "other",
        &reg_args(&zk.node(), &key, "127.0.0.1:2222", "30"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.owner(&key), Some(holder), "{}", log(dir.path(), "other"));
    assert_eq!(w.get(&key).as_deref(), Some("127.0.0.1:1111"));
    drop(_restarted);
    wait_for(Duration::from_secs(15), || {
        (w.get(&key).as_deref() == Some("127.0.0.1:2222")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "never took the freed key; log:\n{}",
            log(dir.path(), "other")
        )
    });
    drop(other);

    // A persistent node at the key is not a registration: refused, exit 2.
    let fixed = format!("{p}/app/config");
    w.put(&fixed, "operator's");
    let out = crate::support::confsync()
        .arg("register")
        .args(reg_args(&zk.node(), &fixed, "x", "5"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("persistent node"), "{text}");
    assert_eq!(w.get(&fixed).as_deref(), Some("operator's"));
    w.delete_all(&p);
}

#[test]
fn an_expired_session_gets_its_node_back() {
    let zk = ZkServer::start();
    let w = zk.writer();
    let p = random_prefix();
    let key = format!("{p}/app/servers/web1");
    let dir = tempdir();
    let _r = start(
        dir.path(),
        "reg",
        &reg_args(&zk.node(), &key, "127.0.0.1:8001", "1"),
    );
    wait_state(START_LIMIT, || w.get(&key).is_some(), true).expect("registered");
    let first = w.owner(&key).unwrap();
    drop(w);
    // Frozen past the session timeout: the session expires when the server resumes.
    zk.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    zk.signal(Signal::SIGCONT);
    let w = zk.writer();
    let t = Instant::now();
    wait_for(Duration::from_secs(15), || {
        w.owner(&key).filter(|o| *o != first).map(|_| ())
    })
    .unwrap_or_else(|| {
        panic!(
            "node not created again on a new session; log:\n{}",
            log(dir.path(), "reg")
        )
    });
    eprintln!(
        "zookeeper register: node back on a new session {:?} after the resume",
        t.elapsed()
    );
}

#[test]
fn nerve_format_is_read_back_by_the_backend_and_wrong_flags_exit_2() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let svc = format!("{p}/nerve/services/web/services");
    let dir = tempdir();
    let r = registrar(
        dir.path(),
        "nerve",
        &[
            "--backend",
            "zookeeper",
            "--node",
            &zk.node(),
            "--nerve",
            "--nerve-name",
            "i-42",
            "--key",
            &svc,
            "--value",
            "127.0.0.1:8080",
            "--ttl",
            "5",
        ],
    );
    let node = wait_for(START_LIMIT, || w.children(&svc).into_iter().next())
        .unwrap_or_else(|| panic!("no nerve node; log:\n{}", log(dir.path(), "nerve")));
    assert!(
        node.starts_with("i-42_") && node.len() == "i-42_".len() + 10,
        "{node}"
    );
    let data: serde_json::Value =
        serde_json::from_str(&w.get(&format!("{svc}/{node}")).unwrap()).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"host": "127.0.0.1", "port": 8080, "name": "i-42"})
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let kvs = rt.block_on(async {
        let cfg = confsync::backend::BackendConfig {
            kind: confsync::backend::BackendKind::Zookeeper,
            nodes: vec![zk.node()],
            nerve: true,
            ..Default::default()
        };
        let b = confsync::backend::build(&cfg).await.unwrap();
        b.list(std::slice::from_ref(&svc)).await.unwrap().kvs
    });
    assert_eq!(
        kvs.get(&format!("{svc}/{node}")).map(String::as_str),
        Some("127.0.0.1:8080")
    );
    r.signal(Signal::SIGTERM);
    wait_state(Duration::from_secs(5), || w.children(&svc).is_empty(), true).expect("deleted");

    for (args, want) in [
        (
            vec![
                "--backend",
                "etcd",
                "--node",
                "http://127.0.0.1:1",
                "--nerve",
                "--key",
                "/k",
                "--value",
                "127.0.0.1:1",
                "--ttl",
                "5",
            ],
            "zookeeper backend",
        ),
        (
            vec![
                "--backend",
                "zookeeper",
                "--node",
                "127.0.0.1:1",
                "--nerve",
                "--key",
                "/k",
                "--value",
                "not an address",
                "--ttl",
                "5",
            ],
            "host:port",
        ),
        (
            vec![
                "--backend",
                "zookeeper",
                "--node",
                "127.0.0.1:1",
                "--nerve",
                "--nerve-name",
                "a/b",
                "--key",
                "/k",
                "--value",
                "127.0.0.1:1",
                "--ttl",
                "5",
            ],
            "--nerve-name",
        ),
        (
            vec![
                "--backend",
                "zookeeper",
                "--node",
                "127.0.0.1:0",
                "--key",
                "/k",
                "--value",
                "v",
                "--ttl",
                "5",
            ],
            "1-65535",
        ),
    ] {
        let out = crate::support::confsync()
            .arg("register")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains(want), "{args:?}: {text}");
    }
    w.delete_all(&p);
}

#[test]
fn with_digest_auth_the_node_is_the_registrars_and_readable_by_all() {
    let zk = shared();
    let w = zk.writer();
    let p = random_prefix();
    let key = format!("{p}/app/servers/web1");
    let dir = tempdir();
    let mut cmd = crate::support::confsync();
    cmd.arg("register")
        .args([
            "--backend",
            "zookeeper",
            "--node",
            &zk.node(),
            "--username",
            "alice",
        ])
        .args([
            "--key",
            &key,
            "--value",
            "127.0.0.1:8001",
            "--ttl",
            "5",
            "--log-level",
            "debug",
        ])
        .env("CONFSYNC_PASSWORD", "alice-pw");
    let r = crate::support::Proc::spawn("auth", cmd, &dir.path().join("auth2.log"));
    wait_state(START_LIMIT, || w.get(&key).is_some(), true).unwrap_or_else(|| {
        panic!(
            "never registered; log:\n{}",
            std::fs::read_to_string(dir.path().join("auth2.log")).unwrap_or_default()
        )
    });
    // An unauthenticated client reads it but cannot change it.
    assert_eq!(w.get(&key).as_deref(), Some("127.0.0.1:8001"));
    let c = w.client.clone();
    let k = key.clone();
    let denied = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move { c.set_data(&k, b"127.6.6.6:1", None).await.map(|_| ()) })
    })
    .join()
    .unwrap();
    assert_eq!(
        denied,
        Err(zookeeper_client::Error::NoAuth),
        "only alice may change it"
    );
    r.signal(Signal::SIGTERM);
    wait_state(Duration::from_secs(5), || w.get(&key).is_some(), false).expect("alice deletes it");
    w.delete_all(&p);
}
