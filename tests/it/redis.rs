//! The Redis backend against real redis-server and redis-sentinel processes: listing
//! (strings, hashes, databases, separators), keyspace-notification watches, TTL expiry,
//! the polling fallback when CONFIG is refused, ACL users, restarts and Sentinel failover.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confsync::backend::{BackendConfig, BackendKind, Snapshot, Update};
use redis::Commands;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::http::TinyHttp;
use crate::support::random_prefix;
use crate::support::redis::{RedisServer, Sentinel, shared};
use crate::support::watch::{Watching, build, kv};

/// A Redis backend config for `nodes`.
fn cfg(nodes: &[String]) -> BackendConfig {
    BackendConfig {
        kind: BackendKind::Redis,
        nodes: nodes.to_vec(),
        watch: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn lists_strings_and_hashes() {
    let srv = shared();
    let p = random_prefix();
    let mut c = srv.conn();
    let _: () = c.set(format!("{p}/app/servers/a"), "10.0.0.1:80").unwrap();
    let _: () = c.set(format!("{p}/app/servers/b"), "10.0.0.2:80").unwrap();
    let _: () = c
        .hset_multiple(format!("{p}/app/db"), &[("host", "db1"), ("port", "5432")])
        .unwrap();
    let _: () = c.rpush(format!("{p}/app/list"), "ignored").unwrap();
    let _: () = c.set(format!("{p}x/outside"), "no").unwrap();
    // A hash above the prefix still gives the fields that fall under it.
    let _: () = c.hset(format!("{p}/svc"), "web/1", "w1").unwrap();
    let _: () = c.hset(format!("{p}/svc"), "other", "o").unwrap();

    let b = build(&cfg(&[srv.node()])).await;
    assert!(b.can_watch());
    let snap = b.list(&[format!("{p}/app")]).await.unwrap();
    assert_eq!(
        snap.kvs,
        kv(&[
            (&format!("{p}/app/db/host"), "db1"),
            (&format!("{p}/app/db/port"), "5432"),
            (&format!("{p}/app/servers/a"), "10.0.0.1:80"),
            (&format!("{p}/app/servers/b"), "10.0.0.2:80"),
        ])
    );
    let snap = b.list(&[format!("{p}/svc/web")]).await.unwrap();
    assert_eq!(snap.kvs, kv(&[(&format!("{p}/svc/web/1"), "w1")]));
    let snap = b.list(&[format!("{p}/nothing")]).await.unwrap();
    assert!(snap.kvs.is_empty());
}

#[tokio::test]
async fn selects_the_database_after_the_slash() {
    let srv = shared();
    let p = random_prefix();
    let _: () = srv.conn_db(3).set(format!("{p}/k"), "in-db-3").unwrap();
    let in3 = build(&cfg(&[format!("{}/3", srv.node())])).await;
    let in0 = build(&cfg(&[srv.node()])).await;
    assert_eq!(
        in3.list(std::slice::from_ref(&p)).await.unwrap().kvs,
        kv(&[(&format!("{p}/k"), "in-db-3")])
    );
    assert!(
        in0.list(std::slice::from_ref(&p))
            .await
            .unwrap()
            .kvs
            .is_empty()
    );

    // Watching db 3 hears db 3's events.
    let mut w = Watching::start(in3, std::slice::from_ref(&p)).await;
    let _: () = srv.conn_db(3).set(format!("{p}/k2"), "v").unwrap();
    w.until(Duration::from_secs(5), "db 3 event", |s| {
        s.contains_key(&format!("{p}/k2"))
    })
    .await;
    w.stop().await.expect("watch returns Ok on shutdown");
}

#[tokio::test]
async fn custom_separator_maps_keys_both_ways() {
    let srv = shared();
    let p = random_prefix(); // "/t-..."
    let bare = p.trim_start_matches('/');
    let mut c = srv.conn();
    let _: () = c.set(format!("{bare}:app:servers:a"), "1").unwrap();
    let _: () = c.hset(format!("{bare}:app:db"), "host", "db1").unwrap();
    let mut config = cfg(&[srv.node()]);
    config.separator = Some(":".into());
    let b = build(&config).await;
    let snap = b.list(&[format!("{p}/app")]).await.unwrap();
    assert_eq!(
        snap.kvs,
        kv(&[
            (&format!("{p}/app/db/host"), "db1"),
            (&format!("{p}/app/servers/a"), "1")
        ])
    );

    let mut w = Watching::start(b, &[format!("{p}/app")]).await;
    let _: () = c.set(format!("{bare}:app:servers:b"), "2").unwrap();
    w.until(Duration::from_secs(5), "new key via ':'", |s| {
        s.get(&format!("{p}/app/servers/b")).map(String::as_str) == Some("2")
    })
    .await;
    w.stop().await.expect("watch returns Ok on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_sets_hashes_deletes_and_expiry() {
    let srv = shared();
    let p = random_prefix();
    let b = build(&cfg(&[srv.node()])).await;
    let mut c = srv.conn();
    let _: () = c.set(format!("{p}/s/a"), "1").unwrap();
    let mut w = Watching::start(b, std::slice::from_ref(&p)).await;
    let key = |k: &str| format!("{p}{k}");

    let _: () = c.set(key("/s/b"), "2").unwrap();
    let _: () = c
        .hset_multiple(key("/h"), &[("x", "1"), ("y", "2")])
        .unwrap();
    w.until(Duration::from_secs(5), "set + hset", |s| {
        s.len() == 4 && s.get(&key("/h/y")).map(String::as_str) == Some("2")
    })
    .await;
    let _: () = c.hdel(key("/h"), "x").unwrap();
    let _: () = c.del(key("/s/a")).unwrap();
    w.until(Duration::from_secs(5), "hdel + del", |s| {
        !s.contains_key(&key("/h/x")) && !s.contains_key(&key("/s/a")) && s.len() == 2
    })
    .await;
    let _: () = c.del(key("/h")).unwrap();
    w.until(Duration::from_secs(5), "hash deleted", |s| s.len() == 1)
        .await;

    // SET EX: the key leaves promptly once Redis expires it.
    let _: () = c.set_ex(key("/ttl/x"), "gone-soon", 1).unwrap();
    let set_at = Instant::now();
    w.until(Duration::from_secs(5), "ttl key set", |s| {
        s.contains_key(&key("/ttl/x"))
    })
    .await;
    let gone_at = w
        .until_update(Duration::from_secs(5), "expiry", |u| {
            matches!(u, Update::Changes(cs) if cs.iter().any(|(k, v)| *k == key("/ttl/x") && v.is_none()))
        })
        .await;
    let after = gone_at.duration_since(set_at);
    assert!(
        after >= Duration::from_millis(900),
        "removed before the TTL: {after:?}"
    );
    assert!(
        after < Duration::from_millis(1600),
        "expiry took too long: {after:?}"
    );
    // Every update was incremental (no rescans), except that the watch may open with one
    // Resync when the test wrote before the watch had listed.
    assert!(
        w.log
            .iter()
            .skip(1)
            .all(|u| matches!(u, Update::Changes(_))),
        "{:?}",
        w.log
    );
    assert!(
        !w.log
            .iter()
            .any(|u| matches!(u, Update::Down(_) | Update::Up)),
        "{:?}",
        w.log
    );
    w.stop().await.expect("watch returns Ok on shutdown");
}

#[tokio::test]
async fn enables_notifications_merging_existing_flags() {
    let srv = RedisServer::start(&["notify-keyspace-events Elg"]);
    let p = random_prefix();
    let b = build(&cfg(&[srv.node()])).await;
    let mut w = Watching::start(b, std::slice::from_ref(&p)).await;
    let mut c = srv.conn();
    let _: () = c.set(format!("{p}/k"), "v").unwrap();
    w.until(Duration::from_secs(5), "event after enabling", |s| {
        s.contains_key(&format!("{p}/k"))
    })
    .await;
    let flags: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut c)
        .unwrap();
    for f in ['K', 'E', 'l', 'g', '$', 'h', 'x', 'e'] {
        assert!(flags[1].contains(f), "flag {f} missing in {:?}", flags[1]);
    }
    w.stop().await.expect("watch returns Ok on shutdown");
}

/// Captures what tracing logs on this thread (the tests below run on one thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// With CONFIG refused, the watch polls every `interval`, warns once (also across
/// reconnects) and still sees changes.
async fn falls_back_to_polling(srv: &RedisServer, mut config: BackendConfig) {
    let logs = Captured::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    config.interval = Some(Duration::from_millis(200));
    let p = random_prefix();
    let b = build(&config).await;
    let mut w = Watching::start(b, std::slice::from_ref(&p)).await;
    let mut c = srv.conn();
    let _: () = c.set(format!("{p}/a"), "1").unwrap();
    w.until(Duration::from_secs(5), "polled change", |s| {
        s.contains_key(&format!("{p}/a"))
    })
    .await;
    // Drop our connections: the watch reconnects (Down, Up) but does not warn again.
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    let _: () = c.del(format!("{p}/a")).unwrap();
    w.until(Duration::from_secs(5), "polled delete", |s| s.is_empty())
        .await;
    let _: () = c.set(format!("{p}/b"), "2").unwrap();
    w.until(
        Duration::from_secs(5),
        "polled change after reconnect",
        |s| s.contains_key(&format!("{p}/b")),
    )
    .await;
    w.stop().await.expect("watch returns Ok on shutdown");
    let text = logs.text();
    let warnings = text.matches("falling back to polling").count();
    assert_eq!(warnings, 1, "expected one polling warning, got:\n{text}");
    assert!(
        text.contains(&srv.node()),
        "the warning names the endpoint:\n{text}"
    );
}

#[tokio::test]
async fn renamed_config_falls_back_to_polling_with_one_warning() {
    let srv = RedisServer::start(&["rename-command CONFIG \"\""]);
    falls_back_to_polling(&srv, cfg(&[srv.node()])).await;
}

#[tokio::test]
async fn acl_without_config_falls_back_to_polling() {
    let srv = RedisServer::start(&["user reader on >reader-pw ~* &* +@all -config"]);
    let mut config = cfg(&[srv.node()]);
    config.username = Some("reader".into());
    config.password = Some("reader-pw".into());
    falls_back_to_polling(&srv, config).await;
}

#[tokio::test]
async fn acl_user_right_and_wrong_password() {
    let srv = RedisServer::start(&["user app on >app-secret-pw ~* &* +@all"]);
    let p = random_prefix();
    let _: () = srv.conn().set(format!("{p}/k"), "v").unwrap();

    let mut good = cfg(&[srv.node()]);
    good.username = Some("app".into());
    good.password = Some("app-secret-pw".into());
    let b = build(&good).await;
    assert_eq!(
        b.list(std::slice::from_ref(&p)).await.unwrap().kvs,
        kv(&[(&format!("{p}/k"), "v")])
    );
    let mut w = Watching::start(b, std::slice::from_ref(&p)).await;
    let _: () = srv.conn().set(format!("{p}/k2"), "v2").unwrap();
    w.until(Duration::from_secs(5), "event as ACL user", |s| {
        s.len() == 2
    })
    .await;
    w.stop().await.expect("watch returns Ok on shutdown");

    let mut bad = good.clone();
    bad.password = Some("wrong-secret-pw".into());
    let b = build(&bad).await;
    let err = b.list(std::slice::from_ref(&p)).await.unwrap_err();
    assert!(!err.is_transient(), "a wrong password is fatal: {err}");
    let text = err.to_string();
    assert!(text.contains(&srv.node()), "names the endpoint: {text}");
    assert!(
        !text.contains("wrong-secret-pw") && !text.contains("app-secret-pw"),
        "{text}"
    );
    // The watch gives up with the same fatal error instead of retrying forever.
    let (tx, _rx) = mpsc::channel(8);
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        b.watch(
            vec![p.clone()],
            Arc::new(Snapshot::default()),
            tx,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("watch returns on a fatal error");
    assert!(matches!(r, Err(e) if !e.is_transient()));
    let dbg = format!("{bad:?}");
    assert!(!dbg.contains("wrong-secret-pw"), "{dbg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_sends_down_up_and_a_resync() {
    let mut srv = RedisServer::start(&[]);
    let p = random_prefix();
    let key = |k: &str| format!("{p}{k}");
    let mut c = srv.conn();
    let _: () = c.set(key("/a"), "1").unwrap();
    let _: () = c.set(key("/b"), "1").unwrap();

    // What the server will hold after its restart: prepared in another server's dump.
    let prep = RedisServer::start(&[]);
    let mut pc = prep.conn();
    let _: () = pc.set(key("/b"), "2").unwrap();
    let _: () = pc.set(key("/c"), "3").unwrap();
    let _: () = redis::cmd("SAVE").query(&mut pc).unwrap();
    std::fs::copy(
        prep.data_dir().join("dump.rdb"),
        srv.data_dir().join("dump.rdb"),
    )
    .unwrap();
    drop(prep);

    let b = build(&cfg(&[srv.node()])).await;
    let mut w = Watching::start(b.clone(), std::slice::from_ref(&p)).await;
    assert_eq!(w.view.len(), 2);
    srv.kill();
    w.until_update(Duration::from_secs(5), "Down", |u| {
        matches!(u, Update::Down(_))
    })
    .await;
    // While Redis is down, a listing fails and is transient.
    let err = b.list(std::slice::from_ref(&p)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&srv.node()), "{err}");
    srv.restart();
    w.until_update(Duration::from_secs(10), "Resync", |u| {
        matches!(u, Update::Resync(_))
    })
    .await;
    assert_eq!(w.view, kv(&[(&key("/b"), "2"), (&key("/c"), "3")]));
    let kinds: Vec<&str> = w
        .log
        .iter()
        .map(|u| match u {
            Update::Changes(_) => "changes",
            Update::Resync(_) => "resync",
            Update::Down(_) => "down",
            Update::Up => "up",
        })
        .collect();
    assert_eq!(kinds, vec!["down", "up", "resync"]);

    // The restarted server forgot notify-keyspace-events; the watch set it again.
    let mut c = srv.conn();
    let _: () = c.set(key("/d"), "4").unwrap();
    w.until(Duration::from_secs(5), "event after restart", |s| {
        s.contains_key(&key("/d"))
    })
    .await;
    assert!(matches!(w.log.last(), Some(Update::Changes(_))));
    w.stop().await.expect("watch returns Ok on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_a_sentinel_failover() {
    let name = "confsync-master";
    let master = RedisServer::start(&["repl-diskless-sync-delay 0"]);
    let replica_line = format!("replicaof 127.0.0.1 {}", master.port);
    let replica = RedisServer::start(&[&replica_line, "repl-diskless-sync-delay 0"]);
    // Start Sentinel once the replica is linked, so its first look at the master finds it.
    let mut rc = replica.conn();
    crate::support::wait_for(Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut rc).ok()?;
        info.contains("master_link_status:up").then_some(())
    })
    .expect("replica links to the master");
    let sentinel = Sentinel::start(name, master.port);
    let p = random_prefix();
    let key = |k: &str| format!("{p}{k}");
    let _: () = master.conn().set(key("/a"), "1").unwrap();

    let mut config = cfg(&[sentinel.node()]);
    config.sentinel_master = Some(name.into());
    let b = build(&config).await;
    let mut w = Watching::start(b.clone(), std::slice::from_ref(&p)).await;
    assert_eq!(w.view, kv(&[(&key("/a"), "1")]));
    let _: () = master.conn().set(key("/b"), "2").unwrap();
    w.until(Duration::from_secs(5), "event from the first master", |s| {
        s.len() == 2
    })
    .await;

    crate::support::wait_for(Duration::from_secs(10), || {
        rc.get::<_, Option<String>>(key("/b")).ok().flatten()
    })
    .expect("the replica has the writes");
    crate::support::wait_for(Duration::from_secs(20), || {
        sentinel.sees_replica(name, replica.port).then_some(())
    })
    .unwrap_or_else(|| panic!("sentinel never saw the replica:\n{}", sentinel.log()));
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(name)
        .query(&mut crate::support::redis::conn(sentinel.port, 0))
        .unwrap();
    crate::support::wait_for(Duration::from_secs(20), || {
        (sentinel.master_port(name) == Some(replica.port)).then_some(())
    })
    .unwrap_or_else(|| panic!("no failover:\n{}", sentinel.log()));
    // Writes now go to the new master; the backend must follow it.
    let mut nc = replica.conn();
    crate::support::wait_for(Duration::from_secs(10), || {
        nc.set::<_, _, ()>(key("/c"), "3").ok()
    })
    .expect("new master accepts writes");
    w.until(
        Duration::from_secs(20),
        "key written on the new master",
        |s| s.get(&key("/c")).map(String::as_str) == Some("3"),
    )
    .await;
    let _: () = nc.del(key("/a")).unwrap();
    w.until(Duration::from_secs(10), "event from the new master", |s| {
        !s.contains_key(&key("/a"))
    })
    .await;
    assert_eq!(
        b.list(std::slice::from_ref(&p)).await.unwrap().kvs,
        kv(&[(&key("/b"), "2"), (&key("/c"), "3")])
    );
    w.stop().await.expect("watch returns Ok on shutdown");
}

/// The bodies of `n` requests through nginx on `port` (errors count as "error").
fn hits(port: u16, n: usize) -> std::collections::BTreeSet<String> {
    use std::io::Read;
    (0..n)
        .map(|_| {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return "error".to_string();
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: s2\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            match out.split_once("\r\n\r\n") {
                Some((head, body)) if head.starts_with("HTTP/1.1 200") => body.to_string(),
                _ => "error".to_string(),
            }
        })
        .collect()
}

fn names(list: &[&str]) -> std::collections::BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The full nginx config S2 renders: upstream from `/work/webapp/ips/*`, checked with
/// `nginx -t -c` on the staged file and reloaded with HUP.
const S2_TEMPLATE: &str = r#"pid RUN/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path RUN/client_body;
    proxy_temp_path RUN/proxy;
    fastcgi_temp_path RUN/fastcgi;
    uwsgi_temp_path RUN/uwsgi;
    scgi_temp_path RUN/scgi;
    upstream webapp {
{%- for addr in getvs(key="/work/webapp/ips/*") %}
        server {{ addr | safe_line }} weight=10 max_fails=1 fail_timeout=1s;
{%- else %}
        server 127.0.0.1:1 down;
{%- endfor %}
    }
    server {
        listen 127.0.0.1:LISTEN;
        location / {
            proxy_pass http://webapp;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_connect_timeout 1s;
        }
    }
}
"#;

/// S2: apps register with `SET key addr EX n` (refreshed by a reporter); confsync renders
/// the nginx upstream, checks it with `nginx -t`, reloads with HUP; traffic follows
/// registrations, and an app whose key expires leaves the upstream.
#[test]
fn s2_nginx_follows_registrations_and_expiry() {
    let nginx = crate::support::require_program("nginx", "nginx");
    let srv = shared();
    let p = random_prefix();
    let dir = crate::support::tempdir();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let dest = dir.path().join("nginx.conf");
    let listen = crate::support::free_port();
    let run_s = run.display().to_string();
    crate::support::write(
        dir.path(),
        "templates/nginx.conf.tmpl",
        &S2_TEMPLATE
            .replace("RUN", &run_s)
            .replace("LISTEN", &listen.to_string()),
    );
    let nginx_s = nginx.display().to_string();
    crate::support::write(
        dir.path(),
        "conf.d/webapp.toml",
        &format!(
            "[template]\nsrc = \"nginx.conf.tmpl\"\ndest = \"{dest}\"\nprefix = \"{p}\"\nkeys = [\"/work/webapp/ips\"]\n\
             check_cmd = \"{nginx_s} -t -q -p {run_s} -e stderr -c {{{{.src}}}}\"\n\
             reload_cmd = \"test ! -s {run_s}/nginx.pid || kill -HUP $(cat {run_s}/nginx.pid)\"\n",
            dest = dest.display()
        ),
    );
    let key = |name: &str| format!("{p}/work/webapp/ips/{name}");
    let (a, b, c) = (
        TinyHttp::body("app-a"),
        TinyHttp::body("app-b"),
        TinyHttp::body("app-c"),
    );
    let mut rc = srv.conn();
    let _: () = rc.set_ex(key("a"), a.addr(), 30).unwrap();
    let _: () = rc.set_ex(key("b"), b.addr(), 30).unwrap();

    let mut cmd = crate::support::confsync();
    cmd.args(["run", "--confdir"]).arg(dir.path()).args([
        "--backend",
        "redis",
        "--node",
        &srv.node(),
        "--watch",
        "--log-level",
        "debug",
    ]);
    let log = dir.path().join("confsync.log");
    let _daemon = crate::support::Proc::spawn("confsync", cmd, &log);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    crate::support::wait_file(&dest, Duration::from_secs(10), |s| {
        s.contains(&a.addr()) && s.contains(&b.addr())
    })
    .unwrap_or_else(|| panic!("first render missing; log:\n{}", logs()));

    let mut ncmd = std::process::Command::new(&nginx);
    ncmd.args(["-p", &run_s, "-e", "stderr", "-g", "daemon off;", "-c"])
        .arg(&dest);
    let _nginx = crate::support::Proc::spawn("nginx", ncmd, &run.join("nginx.out"));
    assert!(
        crate::support::wait_port(listen, Duration::from_secs(5)),
        "nginx did not listen"
    );
    let follows = |want: &[&str], what: &str| {
        crate::support::wait_for(Duration::from_secs(10), || {
            (hits(listen, 6) == names(want)).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "traffic never became {want:?} ({what}); got {:?}\nconfig:\n{}\nlog:\n{}",
                hits(listen, 6),
                std::fs::read_to_string(&dest).unwrap_or_default(),
                logs()
            )
        })
    };
    follows(&["app-a", "app-b"], "two registered apps");

    // A third app registers for 2 s and is not refreshed: it takes traffic, then leaves.
    let _: () = rc.set_ex(key("c"), c.addr(), 2).unwrap();
    let set_at = Instant::now();
    follows(&["app-a", "app-b", "app-c"], "c registered");
    let written = crate::support::wait_for(Duration::from_secs(10), || {
        let s = std::fs::read_to_string(&dest).ok()?;
        (!s.contains(&c.addr())).then(Instant::now)
    })
    .unwrap_or_else(|| panic!("c never left the config; log:\n{}", logs()));
    let late = written
        .duration_since(set_at)
        .saturating_sub(Duration::from_secs(2));
    eprintln!("S2: expired key left nginx.conf {late:?} after its TTL");
    assert!(
        late < Duration::from_secs(1),
        "expiry took {late:?} past the TTL"
    );
    follows(&["app-a", "app-b"], "c expired");

    // Refreshing a registration with the same address changes nothing on disk.
    let before = std::fs::metadata(&dest).unwrap().modified().unwrap();
    for _ in 0..3 {
        let _: () = rc.set_ex(key("a"), a.addr(), 30).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::metadata(&dest).unwrap().modified().unwrap(),
        before,
        "a refresh rewrote the file"
    );

    // An app that crashes stops refreshing; its key expires and it leaves the upstream.
    let b_addr = b.addr();
    drop(b);
    let _: () = rc.expire(key("b"), 1).unwrap();
    follows(&["app-a"], "b crashed and expired");
    crate::support::wait_file(&dest, Duration::from_secs(5), |s| !s.contains(&b_addr))
        .unwrap_or_else(|| panic!("b never left the config; log:\n{}", logs()));
    assert!(
        !std::fs::read_to_string(&dest)
            .unwrap()
            .contains("127.0.0.1:1 down")
    );
    let _: () = rc.del(key("a")).unwrap();
    crate::support::wait_file(&dest, Duration::from_secs(5), |s| {
        s.contains("127.0.0.1:1 down")
    })
    .unwrap_or_else(|| panic!("empty upstream not rendered; log:\n{}", logs()));
}

#[tokio::test]
async fn rediss_with_ca_and_client_certificate() {
    let certs_dir = crate::support::tempdir();
    let certs = crate::support::redis::TestCerts::make(certs_dir.path());
    let tls_port = crate::support::free_port();
    let lines = [
        format!("tls-port {tls_port}"),
        format!("tls-cert-file {}", certs.server_cert.display()),
        format!("tls-key-file {}", certs.server_key.display()),
        format!("tls-ca-cert-file {}", certs.ca.display()),
        "tls-auth-clients yes".to_string(),
    ];
    let srv = RedisServer::start(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let p = random_prefix();
    let _: () = srv.conn().set(format!("{p}/k"), "v").unwrap();
    let node = format!("rediss://127.0.0.1:{tls_port}");

    let mut config = cfg(std::slice::from_ref(&node));
    config.client_ca_keys = Some(certs.ca.clone());
    config.client_cert = Some(certs.client_cert.clone());
    config.client_key = Some(certs.client_key.clone());
    let b = build(&config).await;
    assert_eq!(
        b.list(std::slice::from_ref(&p)).await.unwrap().kvs,
        kv(&[(&format!("{p}/k"), "v")])
    );
    let mut w = Watching::start(b, std::slice::from_ref(&p)).await;
    let _: () = srv.conn().set(format!("{p}/k2"), "v2").unwrap();
    w.until(Duration::from_secs(5), "event over TLS", |s| s.len() == 2)
        .await;
    w.stop().await.expect("watch returns Ok on shutdown");

    // Without the client certificate the server refuses us; the error names the endpoint.
    let mut no_client = cfg(std::slice::from_ref(&node));
    no_client.client_ca_keys = Some(certs.ca.clone());
    let err = build(&no_client)
        .await
        .list(std::slice::from_ref(&p))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{tls_port}")),
        "{err}"
    );
    // A certificate file that cannot be read is a configuration error.
    let mut missing = config.clone();
    missing.client_ca_keys = Some(certs_dir.path().join("nope.pem"));
    let err = confsync::backend::build(&missing)
        .await
        .err()
        .expect("missing CA file is an error");
    assert!(
        !err.is_transient() && err.to_string().contains("nope.pem"),
        "{err}"
    );
}
