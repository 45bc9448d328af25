//! The ZooKeeper backend against real ZooKeeper servers: the tree-to-keys mapping,
//! persistent recursive watches (create, update, delete, recursive delete), a
//! three-member ensemble losing members, full outages, session expiry, digest auth and
//! nerve's format. `e2e.rs` runs the daemon (S1's HAProxy), `register.rs` the registrar.

mod e2e;
mod register;

use std::time::{Duration, Instant};

use confsync::backend::{BackendConfig, BackendKind, Update};

use crate::support::random_prefix;
use crate::support::watch::{Watching, build, kv};
use crate::support::zookeeper::{self, Writer, ZkServer, shared};

/// How long a change may take to reach a watch (the issue's bound for an ensemble).
const LIMIT: Duration = Duration::from_secs(5);

/// A ZooKeeper backend config for `connect`.
fn cfg(connect: &str) -> BackendConfig {
    BackendConfig {
        kind: BackendKind::Zookeeper,
        nodes: vec![connect.to_string()],
        watch: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn lists_a_subtree_as_confd_does() {
    let srv = shared();
    let w = srv.writer();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    w.put(&k("/app/servers/a"), "10.0.0.1:80");
    w.put(&k("/app/servers/b"), "10.0.0.2:80");
    // Data and children: both the node's own key and its children's.
    w.put(&k("/app/db"), "primary");
    w.put(&k("/app/db/host"), "db1");
    // A leaf with empty data is a key with an empty value; a directory is not a key.
    w.put(&k("/app/flag"), "");
    w.put(&k("/app/dir/deep/x"), "1");
    w.put(&k("/apps/other"), "not under /app");

    let b = build(&cfg(&srv.node())).await;
    assert!(b.can_watch() && b.kind() == "zookeeper");
    let want = kv(&[
        (&k("/app/db"), "primary"),
        (&k("/app/db/host"), "db1"),
        (&k("/app/dir/deep/x"), "1"),
        (&k("/app/flag"), ""),
        (&k("/app/servers/a"), "10.0.0.1:80"),
        (&k("/app/servers/b"), "10.0.0.2:80"),
    ]);
    assert_eq!(b.list(&[k("/app")]).await.unwrap().kvs, want);
    assert_eq!(
        b.list(&[k("/app/"), k("/app/servers")]).await.unwrap().kvs,
        want
    );
    assert_eq!(
        b.list(&[k("/app/*")]).await.unwrap().kvs,
        want,
        "confd's /*"
    );
    // A prefix that is a leaf is its own key; one that does not exist lists nothing.
    assert_eq!(
        b.list(&[k("/app/servers/a")]).await.unwrap().kvs,
        kv(&[(&k("/app/servers/a"), "10.0.0.1:80")])
    );
    assert!(b.list(&[k("/nothing")]).await.unwrap().kvs.is_empty());
    w.delete_all(&p);
}

#[tokio::test]
async fn a_chroot_in_the_connect_string_is_stripped_from_keys() {
    let srv = shared();
    let w = srv.writer();
    let p = random_prefix();
    w.put(&format!("{p}/app/servers/a"), "1");
    let b = build(&cfg(&format!("{}{p}", srv.node()))).await;
    assert_eq!(
        b.list(&["/app".to_string()]).await.unwrap().kvs,
        kv(&[("/app/servers/a", "1")])
    );
    w.delete_all(&p);
}

#[tokio::test]
async fn values_that_are_not_utf8_are_left_out_not_guessed() {
    let srv = shared();
    let w = srv.writer();
    let p = random_prefix();
    w.put(&format!("{p}/ok"), "fine");
    w.put_bytes(&format!("{p}/bad"), b"ok\xff");
    let b = build(&cfg(&srv.node())).await;
    assert_eq!(
        b.list(std::slice::from_ref(&p)).await.unwrap().kvs,
        kv(&[(&format!("{p}/ok"), "fine")])
    );
    w.delete_all(&p);
}

#[tokio::test]
async fn watch_follows_create_update_delete_and_recursive_delete() {
    let srv = shared();
    let w = srv.writer();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    w.put(&k("/app/servers/a"), "1");
    let b = build(&cfg(&srv.node())).await;
    let mut watch = Watching::start(b, vec![k("/app")]).await;
    assert_eq!(watch.view, kv(&[(&k("/app/servers/a"), "1")]));

    let t = Instant::now();
    w.put(&k("/app/servers/b"), "2");
    watch
        .until(LIMIT, "create", |v| v.get(&k("/app/servers/b")).is_some())
        .await;
    eprintln!("zookeeper: create reached the watch in {:?}", t.elapsed());
    w.put(&k("/app/servers/a"), "1b");
    watch
        .until(LIMIT, "update", |v| {
            v.get(&k("/app/servers/a")).map(String::as_str) == Some("1b")
        })
        .await;
    w.delete_all(&k("/app/servers/b"));
    watch
        .until(LIMIT, "delete", |v| !v.contains_key(&k("/app/servers/b")))
        .await;

    // A leaf with empty data is a key until it gets a child, and again when it loses it.
    w.put(&k("/app/flag"), "");
    watch
        .until(LIMIT, "empty leaf", |v| {
            v.get(&k("/app/flag")).map(String::as_str) == Some("")
        })
        .await;
    w.put(&k("/app/flag/x"), "1");
    watch
        .until(LIMIT, "leaf became a directory", |v| {
            !v.contains_key(&k("/app/flag")) && v.contains_key(&k("/app/flag/x"))
        })
        .await;
    w.delete_all(&k("/app/flag/x"));
    watch
        .until(LIMIT, "directory became a leaf again", |v| {
            v.get(&k("/app/flag")).map(String::as_str) == Some("")
                && !v.contains_key(&k("/app/flag/x"))
        })
        .await;

    // A whole subtree created and deleted.
    for i in 0..20 {
        w.put(
            &k(&format!("/app/pool/n{i}/addr")),
            &format!("10.1.0.{i}:80"),
        );
    }
    watch
        .until(LIMIT, "subtree", |v| {
            v.keys().filter(|x| x.contains("/app/pool/")).count() == 20
        })
        .await;
    w.delete_all(&k("/app/pool"));
    watch
        .until(LIMIT, "recursive delete", |v| {
            !v.keys().any(|x| x.contains("/app/pool"))
        })
        .await;
    // Outside the prefix: never seen.
    w.put(&k("/appx/y"), "1");
    w.put(&k("/app/servers/c"), "3");
    watch
        .until(LIMIT, "marker", |v| v.contains_key(&k("/app/servers/c")))
        .await;
    assert!(!watch.view.keys().any(|x| x.contains("/appx")));
    // The watch's view is what a fresh listing sees.
    let fresh = build(&cfg(&srv.node()))
        .await
        .list(&[k("/app")])
        .await
        .unwrap();
    assert_eq!(watch.view, fresh.kvs);
    watch.stop().await.expect("watch returns Ok on shutdown");
    w.delete_all(&p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_losing_any_one_member_still_delivers_changes() {
    let mut servers = zookeeper::ensemble(3);
    let connect = zookeeper::connect_string(&servers);
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    let w = Writer::connect(&connect, None);
    w.put(&k("/app/servers/a"), "0");
    let b = build(&cfg(&connect)).await;
    let mut watch = Watching::start(b, vec![k("/app")]).await;
    for i in 0..servers.len() {
        servers[i].kill();
        let t = Instant::now();
        // Written through a member that is up.
        let other = &servers[(i + 1) % servers.len()];
        let wi = Writer::connect(&other.node(), None);
        wi.put(&k("/app/servers/a"), &format!("after-kill-{i}"));
        let want = format!("after-kill-{i}");
        // The issue's bound is 5 s; the assertion leaves room for a loaded CI machine
        // running three JVMs on two cores, and the time taken is printed.
        watch
            .until(2 * LIMIT, &format!("change with member {i} down"), |v| {
                v.get(&k("/app/servers/a")) == Some(&want)
            })
            .await;
        eprintln!(
            "zookeeper: member {i} down, change arrived in {:?}",
            t.elapsed()
        );
        servers[i].restart();
    }
    watch.stop().await.expect("watch returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_outage_sends_down_then_up_and_a_resync() {
    let mut srv = ZkServer::start();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    srv.writer().put(&k("/a"), "1");
    let mut c = cfg(&srv.node());
    c.session_timeout = Some(Duration::from_secs(4));
    let b = build(&c).await;
    let mut watch = Watching::start(b.clone(), vec![p.clone()]).await;
    srv.kill();
    watch
        .until_update(Duration::from_secs(15), "Down", |u| {
            matches!(u, Update::Down(_))
        })
        .await;
    let err = b.list(std::slice::from_ref(&p)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&srv.node()), "{err}");
    srv.restart();
    watch
        .until_update(Duration::from_secs(20), "Resync", |u| {
            matches!(u, Update::Resync(_))
        })
        .await;
    assert_eq!(
        watch.view,
        kv(&[(&k("/a"), "1")]),
        "the data survived the restart"
    );
    srv.writer().put(&k("/b"), "2");
    watch
        .until(LIMIT, "event after the outage", |v| {
            v.contains_key(&k("/b"))
        })
        .await;
    watch.stop().await.expect("watch returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_replaced_and_watched_again() {
    let srv = ZkServer::start();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    srv.writer().put(&k("/a"), "1");
    let mut c = cfg(&srv.node());
    c.session_timeout = Some(Duration::from_secs(1));
    let b = build(&c).await;
    let mut watch = Watching::start(b, vec![p.clone()]).await;
    // Frozen past the session timeout: the server expires the session when it resumes.
    srv.signal(nix::sys::signal::Signal::SIGSTOP);
    tokio::time::sleep(Duration::from_secs(3)).await;
    srv.signal(nix::sys::signal::Signal::SIGCONT);
    watch
        .until_update(Duration::from_secs(20), "Resync after expiry", |u| {
            matches!(u, Update::Resync(_))
        })
        .await;
    let w = srv.writer();
    w.put(&k("/b"), "2");
    watch
        .until(LIMIT, "event on the new session", |v| {
            v.contains_key(&k("/b"))
        })
        .await;
    assert!(
        watch.log.iter().any(|u| matches!(u, Update::Down(_))),
        "the lost session was reported: {:?}",
        watch.log
    );
    watch.stop().await.expect("watch returns Ok");
}

#[tokio::test]
async fn digest_auth_right_wrong_and_a_locked_node_below_the_prefix() {
    let srv = shared();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    let alice = Writer::connect(&srv.node(), Some("alice:right-pw"));
    alice.put_acl(&k("/app"), "", zk_acls::creator_all());
    alice.put_acl(&k("/app/a"), "1", zk_acls::creator_all());
    let open = srv.writer();
    open.put(&k("/open/a"), "1");
    // Another instance locks a node of its own under a watched prefix.
    let mallory = Writer::connect(&srv.node(), Some("mallory:pw"));
    mallory.put_acl(&k("/open/locked"), "x", zk_acls::creator_all());

    let mut right = cfg(&srv.node());
    right.username = Some("alice".into());
    right.password = Some("right-pw".into());
    let b = build(&right).await;
    assert_eq!(
        b.list(&[k("/app")]).await.unwrap().kvs,
        kv(&[(&k("/app/a"), "1")])
    );

    let mut wrong = right.clone();
    wrong.password = Some("wrong-pw".into());
    let err = build(&wrong).await.list(&[k("/app")]).await.unwrap_err();
    assert!(!err.is_transient(), "wrong credentials are fatal: {err}");
    let text = err.to_string();
    assert!(
        text.contains("not authorized") && text.contains("alice"),
        "{text}"
    );
    assert!(!text.contains("wrong-pw"), "{text}");
    let err = build(&cfg(&srv.node()))
        .await
        .list(&[k("/app")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no auth given"), "{err}");

    // The locked node is left out; the rest of the prefix is still read.
    assert_eq!(
        build(&cfg(&srv.node()))
            .await
            .list(&[k("/open")])
            .await
            .unwrap()
            .kvs,
        kv(&[(&k("/open/a"), "1")])
    );
}

#[tokio::test]
async fn nerve_registrations_read_back_as_host_port() {
    let srv = shared();
    let w = srv.writer();
    let p = random_prefix();
    let dir = format!("{p}/nerve/services/web/services");
    w.put(
        &format!("{dir}/i-1_0000000001"),
        r#"{"host":"127.0.0.1","port":8080,"name":"i-1"}"#,
    );
    w.put(
        &format!("{dir}/i-2_0000000002"),
        r#"{"host":"::1","port":"8081","name":"i-2","weight":2}"#,
    );
    w.put(
        &format!("{dir}/evil_0000000003"),
        "{\"host\":\"1.2.3.4:1;\\n  server x 6.6.6.6\",\"port\":80,\"name\":\"e\"}",
    );
    w.put(&format!("{dir}/junk_0000000004"), r#"{"host":"10.0.0.1""#);
    // An ephemeral leaf under --nerve must be a registration, whatever it holds.
    let eph = zookeeper::Writer::connect(&srv.node(), None);
    eph.put_ephemeral(
        &format!("{dir}/raw_0000000005"),
        "10.0.0.9:80\n    server evil 6.6.6.6:80",
    );
    // Plain values beside the registrations read as usual.
    w.put(&format!("{dir}/plain"), "127.0.0.1:9000");
    let mut c = cfg(&srv.node());
    c.nerve = true;
    let b = build(&c).await;
    assert_eq!(
        b.list(std::slice::from_ref(&dir)).await.unwrap().kvs,
        kv(&[
            (&format!("{dir}/i-1_0000000001"), "127.0.0.1:8080"),
            (&format!("{dir}/i-2_0000000002"), "[::1]:8081"),
            (&format!("{dir}/plain"), "127.0.0.1:9000"),
        ])
    );
    w.delete_all(&p);
}

/// ACL sets used above.
mod zk_acls {
    pub use zookeeper_client::Acls;
    pub fn creator_all() -> Acls<'static> {
        Acls::creator_all()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_locked_after_it_was_read_keeps_the_snapshot_and_the_watch() {
    let srv = shared();
    let p = random_prefix();
    let k = |s: &str| format!("{p}{s}");
    let admin = Writer::connect(&srv.node(), Some("admin:pw"));
    admin.put(&k("/app/a"), "1");
    let b = build(&cfg(&srv.node())).await;
    let mut watch = Watching::start(b, vec![k("/app")]).await;
    // An operator locks the prefix: the watch must not stop the daemon.
    admin.set_acl(&k("/app"), zk_acls::creator_all());
    admin.put(&k("/app/b"), "2");
    watch
        .until_update(Duration::from_secs(15), "Down", |u| {
            matches!(u, Update::Down(_))
        })
        .await;
    assert!(!watch.task.is_finished(), "the watch keeps going");
    assert_eq!(watch.view, kv(&[(&k("/app/a"), "1")]), "last good snapshot");
    admin.set_acl(&k("/app"), zookeeper_client::Acls::anyone_all());
    watch
        .until(Duration::from_secs(15), "readable again", |v| {
            v.contains_key(&k("/app/b"))
        })
        .await;
    watch.stop().await.expect("watch returns Ok");
    admin.delete_all(&p);
}
