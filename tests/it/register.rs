//! `confsync register` against real etcd and Redis: a crash lets the key expire within
//! the TTL, SIGTERM removes it at once, a failing HTTP check takes it out and a passing
//! one brings it back, a restarted store gets the registration back, and Redis never
//! deletes a key another instance has taken over.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use redis::Commands;

use crate::support::etcd::{self, Etcd};
use crate::support::http::TinyHttp;
use crate::support::redis::{RedisServer, shared};
use crate::support::{Proc, confsync, random_prefix, tempdir, wait_for};

/// Bound on the first registration of a fresh registrar.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Starts `confsync register` with `args`, logging into `dir`.
pub(crate) fn registrar(dir: &Path, name: &str, args: &[&str]) -> Proc {
    let mut cmd = confsync();
    cmd.arg("register")
        .args(args)
        .args(["--log-level", "debug"]);
    Proc::spawn(name, cmd, &dir.join(format!("{name}.log")))
}

pub(crate) fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Reads keys from etcd with a client of its own.
pub(crate) struct EtcdReader {
    rt: tokio::runtime::Runtime,
    client: etcd_client::Client,
}

impl EtcdReader {
    pub(crate) fn new(url: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(etcd_client::Client::connect([url], None))
            .unwrap();
        Self { rt, client }
    }

    /// The key's value and lease, or `None` when it is absent or etcd does not answer.
    pub(crate) fn get(&mut self, key: &str) -> Option<(String, i64)> {
        let fut = self.client.get(key, None);
        let resp = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(1), fut).await })
            .ok()?
            .ok()?;
        resp.kvs()
            .first()
            .map(|kv| (kv.value_str().unwrap_or("").to_string(), kv.lease()))
    }
}

/// Waits until `present(key)` is `want`; how long it took.
pub(crate) fn wait_state(
    limit: Duration,
    mut present: impl FnMut() -> bool,
    want: bool,
) -> Option<Duration> {
    let t = Instant::now();
    wait_for(limit, || (present() == want).then(|| t.elapsed()))
}

#[test]
fn etcd_sigkill_lets_the_lease_expire_and_sigterm_revokes_it() {
    let etcd = etcd::shared();
    let dir = tempdir();
    let key = format!("{}/app/servers/web1", random_prefix());
    let mut r = EtcdReader::new(&etcd.url());
    let args = [
        "--backend",
        "etcd",
        "--node",
        &etcd.url(),
        "--key",
        &key,
        "--value",
        "127.0.0.1:9",
        "--ttl",
        "2",
    ];

    // A crash: the key outlives the registrar by at most its TTL.
    let crashed = registrar(dir.path(), "crash", &args);
    let (value, lease) = wait_for(START_LIMIT, || r.get(&key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "crash")));
    assert_eq!(value, "127.0.0.1:9");
    assert_ne!(lease, 0, "the key is put with a lease");
    crashed.signal(Signal::SIGKILL);
    let gone = wait_state(Duration::from_secs(6), || r.get(&key).is_some(), false)
        .expect("the key expires after a SIGKILL");
    eprintln!("etcd: key gone {gone:?} after SIGKILL (TTL 2 s)");
    assert!(
        gone <= Duration::from_secs(3),
        "gone after {gone:?}, TTL 2 s"
    );

    // SIGTERM: the lease is revoked, the key goes at once, exit 0.
    let mut clean = registrar(dir.path(), "term", &args);
    wait_for(START_LIMIT, || r.get(&key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "term")));
    clean.signal(Signal::SIGTERM);
    let gone = wait_state(Duration::from_secs(3), || r.get(&key).is_some(), false)
        .expect("the key goes on SIGTERM");
    eprintln!("etcd: key gone {gone:?} after SIGTERM");
    assert!(gone <= Duration::from_millis(500), "gone after {gone:?}");
    let st = clean
        .wait_exit(Duration::from_secs(5))
        .expect("exits after SIGTERM");
    assert_eq!(st.code(), Some(0), "log:\n{}", log(dir.path(), "term"));
}

/// A health-check target answering 200 or 500 as `healthy` says.
pub(crate) struct Health {
    healthy: Arc<AtomicBool>,
    pub(crate) server: TinyHttp,
}

impl Health {
    pub(crate) fn start() -> Health {
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let server = TinyHttp::start(move || {
            let status = if h.load(Ordering::Relaxed) {
                "200 OK"
            } else {
                "500 Internal Server Error"
            };
            (status, "ok".to_string())
        });
        Health { healthy, server }
    }

    pub(crate) fn set(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Relaxed);
    }
}

#[test]
fn etcd_http_check_failing_deregisters_and_passing_registers_again() {
    let etcd = etcd::shared();
    let dir = tempdir();
    let key = format!("{}/app/servers/web1", random_prefix());
    let mut r = EtcdReader::new(&etcd.url());
    let app = Health::start();
    let url = format!("http://127.0.0.1:{}/health", app.server.port);
    let _reg = registrar(
        dir.path(),
        "check",
        &[
            "--backend",
            "etcd",
            "--node",
            &etcd.url(),
            "--key",
            &key,
            "--value",
            "v",
            "--ttl",
            "2",
            "--check-http",
            &url,
            "--check-interval",
            "300ms",
            "--check-timeout",
            "500ms",
            "--rise",
            "2",
            "--fall",
            "2",
        ],
    );
    wait_for(START_LIMIT, || r.get(&key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "check")));

    // fall x interval + 1 s.
    app.set(false);
    let gone =
        wait_state(Duration::from_secs(5), || r.get(&key).is_some(), false).unwrap_or_else(|| {
            panic!(
                "still registered while failing; log:\n{}",
                log(dir.path(), "check")
            )
        });
    eprintln!("check: key gone {gone:?} after the check started failing");
    assert!(gone <= Duration::from_millis(2 * 300 + 1000), "{gone:?}");

    // Back after rise x interval (plus one interval for the phase, and a little slack).
    app.set(true);
    let back = wait_state(Duration::from_secs(5), || r.get(&key).is_some(), true)
        .unwrap_or_else(|| panic!("never came back; log:\n{}", log(dir.path(), "check")));
    eprintln!("check: key back {back:?} after the check passed again");
    assert!(back <= Duration::from_millis(3 * 300 + 500), "{back:?}");
    let text = log(dir.path(), "check");
    assert!(
        text.contains("unhealthy") && text.contains("healthy"),
        "{text}"
    );
}

#[test]
fn etcd_restart_gets_a_new_lease() {
    let mut etcd = Etcd::start();
    let dir = tempdir();
    let key = format!("{}/app/servers/web1", random_prefix());
    let _reg = registrar(
        dir.path(),
        "restart",
        &[
            "--backend",
            "etcd",
            "--node",
            &etcd.url(),
            "--key",
            &key,
            "--value",
            "v",
            "--ttl",
            "2",
        ],
    );
    let mut r = EtcdReader::new(&etcd.url());
    let (_, first) = wait_for(START_LIMIT, || r.get(&key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "restart")));
    etcd.kill();
    std::thread::sleep(Duration::from_secs(1));
    etcd.restart(true);
    let t = Instant::now();
    let lease = wait_for(Duration::from_secs(10), || {
        r.get(&key).map(|(_, l)| l).filter(|l| *l != first)
    })
    .unwrap_or_else(|| {
        panic!(
            "no new lease after the restart; log:\n{}",
            log(dir.path(), "restart")
        )
    });
    eprintln!(
        "etcd restart: key on a new lease {:?} after etcd answered",
        t.elapsed()
    );
    // The new lease is kept alive: still there well past its TTL.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        r.get(&key).map(|(_, l)| l),
        Some(lease),
        "log:\n{}",
        log(dir.path(), "restart")
    );
    let text = log(dir.path(), "restart");
    assert!(text.contains("store reachable again"), "{text}");
}

pub(crate) fn redis_get(srv: &RedisServer, key: &str) -> Option<String> {
    srv.conn().get::<_, Option<String>>(key).ok().flatten()
}

#[test]
fn redis_sigkill_expires_sigterm_deletes_and_a_taken_over_key_stays() {
    let srv = shared();
    let dir = tempdir();
    let key = format!("{}/work/webapp/ips/10.0.0.1", random_prefix());
    let args = [
        "--backend",
        "redis",
        "--node",
        &srv.node(),
        "--key",
        &key,
        "--value",
        "10.0.0.1:80",
    ];

    let crashed = registrar(dir.path(), "crash", &[&args[..], &["--ttl", "2"]].concat());
    wait_for(START_LIMIT, || redis_get(srv, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "crash")));
    let ttl: i64 = srv.conn().ttl(&key).unwrap();
    assert!((1..=2).contains(&ttl), "SET with EX 2: ttl {ttl}");
    crashed.signal(Signal::SIGKILL);
    let gone = wait_state(
        Duration::from_secs(6),
        || redis_get(srv, &key).is_some(),
        false,
    )
    .expect("the key expires after a SIGKILL");
    eprintln!("redis: key gone {gone:?} after SIGKILL (TTL 2 s)");
    assert!(gone <= Duration::from_secs(3), "{gone:?}");

    let mut clean = registrar(dir.path(), "term", &[&args[..], &["--ttl", "2"]].concat());
    wait_for(START_LIMIT, || redis_get(srv, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "term")));
    clean.signal(Signal::SIGTERM);
    let gone = wait_state(
        Duration::from_secs(3),
        || redis_get(srv, &key).is_some(),
        false,
    )
    .expect("the key goes on SIGTERM");
    eprintln!("redis: key gone {gone:?} after SIGTERM");
    assert!(gone <= Duration::from_millis(500), "{gone:?}");
    assert_eq!(
        clean
            .wait_exit(Duration::from_secs(5))
            .and_then(|s| s.code()),
        Some(0)
    );

    // Another instance takes the key over; our SIGTERM must leave its value alone. The
    // long TTL keeps our next refresh (every 10 s) out of the way.
    let mut old = registrar(dir.path(), "old", &[&args[..], &["--ttl", "30"]].concat());
    wait_for(START_LIMIT, || redis_get(srv, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "old")));
    let _: () = srv.conn().set_ex(&key, "10.0.0.2:80", 30).unwrap();
    old.signal(Signal::SIGTERM);
    assert_eq!(
        old.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    assert_eq!(
        redis_get(srv, &key).as_deref(),
        Some("10.0.0.2:80"),
        "log:\n{}",
        log(dir.path(), "old")
    );
    assert!(log(dir.path(), "old").contains("another instance"));
    let _: () = srv.conn().del(&key).unwrap();
}

#[test]
fn redis_restart_restores_the_registration() {
    let mut srv = RedisServer::start(&[]);
    let dir = tempdir();
    let key = format!("{}/work/webapp/ips/a", random_prefix());
    let _reg = registrar(
        dir.path(),
        "restart",
        &[
            "--backend",
            "redis",
            "--node",
            &srv.node(),
            "--key",
            &key,
            "--value",
            "a:1",
            "--ttl",
            "2",
        ],
    );
    wait_for(START_LIMIT, || redis_get(&srv, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "restart")));
    // Without persistence the restarted server is empty: the registrar puts the key back.
    srv.restart();
    let back = wait_state(
        Duration::from_secs(5),
        || redis_get(&srv, &key).is_some(),
        true,
    )
    .unwrap_or_else(|| panic!("not restored; log:\n{}", log(dir.path(), "restart")));
    eprintln!("redis restart: key back {back:?} after the server answered");
}

#[test]
fn service_file_registers_only_healthy_services_in_redis() {
    let srv = shared();
    let dir = tempdir();
    let p = random_prefix();
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap().to_string();
    let down_addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let file = crate::support::write(
        dir.path(),
        "services.toml",
        &format!(
            "[[service]]\nkey = \"{p}/up\"\nvalue = \"{up_addr}\"\nttl = 3\n\
             check = {{ tcp = \"{up_addr}\", interval = \"200ms\" }}\n\n\
             [[service]]\nkey = \"{p}/down\"\nvalue = \"{down_addr}\"\nttl = 3\n\
             check = {{ tcp = \"{down_addr}\", interval = \"200ms\" }}\n\n\
             [[service]]\nkey = \"{p}/plain\"\nvalue = \"x\"\nttl = 3\n"
        ),
    );
    let mut reg = registrar(
        dir.path(),
        "file",
        &[
            "--backend",
            "redis",
            "--node",
            &srv.node(),
            "--service-file",
            file.to_str().unwrap(),
        ],
    );
    for k in ["up", "plain"] {
        wait_for(START_LIMIT, || redis_get(srv, &format!("{p}/{k}")))
            .unwrap_or_else(|| panic!("{k} never registered; log:\n{}", log(dir.path(), "file")));
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        redis_get(srv, &format!("{p}/down")),
        None,
        "a failing check keeps the key out"
    );
    reg.signal(Signal::SIGINT);
    assert_eq!(
        reg.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    assert_eq!(redis_get(srv, &format!("{p}/up")), None);
    assert_eq!(redis_get(srv, &format!("{p}/plain")), None);
    drop(up);
}

#[test]
fn bad_configuration_exits_2() {
    let srv = RedisServer::start(&["user app on >right-pw ~* &* +@all"]);
    let out = confsync()
        .args([
            "register",
            "--backend",
            "redis",
            "--node",
            &srv.node(),
            "--username",
            "app",
            "--password",
            "wrong-pw",
        ])
        .args(["--key", "/x", "--value", "v", "--ttl", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/x") && err.contains(&srv.node()), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
    eprintln!("wrong password: {}", err.trim());

    let dir = tempdir();
    let file = crate::support::write(
        dir.path(),
        "s.toml",
        "[[service]]\nkey = \"/a\"\nvalue = \"v\"\nttl = 2\nchek = {}\n",
    );
    let out = confsync()
        .args([
            "register",
            "--backend",
            "etcd",
            "--node",
            "127.0.0.1:1",
            "--service-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("s.toml:5") && err.contains("chek"), "{err}");

    let out = confsync()
        .args([
            "register",
            "--backend",
            "etcd",
            "--node",
            "127.0.0.1:1",
            "--key",
            "/a",
            "--value",
            "v",
            "--ttl",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn redis_behind_sentinel_registers_on_the_master() {
    let master = RedisServer::start(&[]);
    let sentinel = crate::support::redis::Sentinel::start("regmaster", master.port);
    let dir = tempdir();
    let key = format!("{}/work/webapp/ips/s", random_prefix());
    let mut reg = registrar(
        dir.path(),
        "sentinel",
        &[
            "--backend",
            "redis",
            "--node",
            &sentinel.node(),
            "--sentinel-master",
            "regmaster",
            "--key",
            &key,
            "--value",
            "s:1",
            "--ttl",
            "2",
        ],
    );
    wait_for(START_LIMIT, || redis_get(&master, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "sentinel")));
    reg.signal(Signal::SIGTERM);
    assert_eq!(
        reg.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    assert_eq!(redis_get(&master, &key), None);
}

#[test]
fn check_cmd_sees_only_what_command_env_allows_and_never_the_password() {
    let srv = shared();
    let dir = tempdir();
    let key = format!("{}/env/web1", random_prefix());
    let out = dir.path().join("check-env");
    let check = format!("env > {}", out.display());
    let mut cmd = confsync();
    cmd.arg("register")
        .args(["--backend", "redis", "--node", &srv.node(), "--key", &key])
        .args([
            "--value",
            "127.0.0.1:80",
            "--ttl",
            "5",
            "--check-cmd",
            &check,
        ])
        .args(["--check-interval", "200ms", "--rise", "1"])
        .args(["--command-env", "PATH,LC_*"])
        .env("CONFSYNC_LOG_FORMAT", "text")
        .env("LC_REGTEST", "kept")
        .env("HOME_SECRET_TEST", "dropped");
    let mut reg = Proc::spawn("env", cmd, &dir.path().join("env.log"));
    wait_for(START_LIMIT, || redis_get(srv, &key))
        .unwrap_or_else(|| panic!("never registered; log:\n{}", log(dir.path(), "env")));
    let env = std::fs::read_to_string(&out).expect("the check ran");
    assert!(env.contains("LC_REGTEST=kept"), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    assert!(!env.contains("HOME_SECRET_TEST"), "{env}");
    assert!(!env.lines().any(|l| l.starts_with("CONFSYNC_")), "{env}");
    reg.signal(Signal::SIGTERM);
    assert!(reg.wait_exit(Duration::from_secs(5)).is_some());

    // A list naming a secret variable is a configuration error.
    let bad = confsync()
        .arg("register")
        .args(["--backend", "redis", "--node", &srv.node(), "--key", &key])
        .args(["--value", "v", "--ttl", "5", "--check-cmd", "true"])
        .args(["--command-env", "CONFSYNC_PASSWORD"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--command-env"), "{stderr}");
}
