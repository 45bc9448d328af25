//! etcd backend against a real etcd: listing at one revision, incremental watch, lease
//! expiry, compaction, member loss, full outage, auth and TLS.
//!
//! Ordinary tests share one server ([`etcd::shared`]) and use their own random prefix;
//! tests that kill, restart, compact or configure a server start their own. The
//! `confsync` binary on etcd (and S1 with HAProxy) is in [`e2e`].

pub(crate) mod e2e;

use std::sync::Arc;
use std::time::{Duration, Instant};

use confsync::backend::{self, Backend, BackendConfig, BackendKind, KvMap, Snapshot, Update};
use etcd_client::{Client, CompactionOptions, PutOptions, Txn, TxnOp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::etcd::{self, Etcd};
use crate::support::watch::Watching;
use crate::support::{random_prefix, tempdir};

/// Bound on any single expected change.
const CHANGE_LIMIT: Duration = Duration::from_secs(5);

fn config(nodes: &[String]) -> BackendConfig {
    BackendConfig {
        kind: BackendKind::Etcd,
        nodes: nodes.to_vec(),
        watch: true,
        ..Default::default()
    }
}

async fn connect(cfg: &BackendConfig) -> Arc<dyn Backend> {
    backend::build(cfg).await.expect("build etcd backend")
}

/// A plain client for writing test data.
async fn writer(nodes: &[String]) -> Client {
    Client::connect(nodes, None).await.expect("connect writer")
}

fn is_resync(u: &Update) -> bool {
    matches!(u, Update::Resync(_))
}

fn is_down(u: &Update) -> bool {
    matches!(u, Update::Down(_))
}

fn has(v: &KvMap, k: &str, val: &str) -> bool {
    v.get(k).map(String::as_str) == Some(val)
}

/// Runs blocking harness work (starting, killing servers) without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A watch of `{p}/app` on the shared server, and a client to write there.
async fn watch_app_on_shared(p: &str) -> (Watching, Client) {
    let nodes = vec![blocking(etcd::shared).url()];
    let w = Watching::start(connect(&config(&nodes)).await, vec![format!("{p}/app")]).await;
    (w, writer(&nodes).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_applies_put_update_delete_and_prefix_delete_incrementally() {
    let p = random_prefix();
    let (mut w, mut c) = watch_app_on_shared(&p).await;
    let a = format!("{p}/app/servers/a");

    c.put(a.as_str(), "10.0.0.1:80", None).await.unwrap();
    w.until(CHANGE_LIMIT, "put", |v| has(v, &a, "10.0.0.1:80"))
        .await;
    c.put(a.as_str(), "10.0.0.2:80", None).await.unwrap();
    w.until(CHANGE_LIMIT, "update", |v| has(v, &a, "10.0.0.2:80"))
        .await;
    c.delete(a.as_str(), None).await.unwrap();
    w.until(CHANGE_LIMIT, "delete", |v| !v.contains_key(&a))
        .await;

    // Several keys, then one prefix delete removing them all.
    for i in 0..3 {
        c.put(
            format!("{p}/app/servers/s{i}"),
            format!("10.0.1.{i}:80"),
            None,
        )
        .await
        .unwrap();
    }
    w.until(CHANGE_LIMIT, "three puts", |v| v.len() == 3).await;
    c.delete(
        format!("{p}/app/servers/"),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
    w.until(CHANGE_LIMIT, "prefix delete", |v| v.is_empty())
        .await;

    // A key outside the watched prefix is never seen.
    c.put(format!("{p}/other"), "x", None).await.unwrap();
    c.put(format!("{p}/app/marker"), "m", None).await.unwrap();
    w.until(CHANGE_LIMIT, "marker", |v| {
        v.contains_key(&format!("{p}/app/marker"))
    })
    .await;
    assert_eq!(w.view.len(), 1, "{:?}", w.view);

    // All of it arrived as incremental changes: no re-listing, no outage.
    assert_eq!(w.count(is_resync), 0, "{:?}", w.kinds());
    assert_eq!(w.count(is_down), 0, "{:?}", w.kinds());
    w.stop().await.unwrap();
}

/// A response over 1 MiB (here one transaction of 100 values of 12 KB) makes the watch
/// open a new stream from the next revision, so the old stream's receive buffer goes;
/// the writes that land while it does are all seen, without a re-listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_watch_response_opens_a_new_stream_that_misses_nothing() {
    let p = random_prefix();
    let (mut w, mut c) = watch_app_on_shared(&p).await;
    let big = "x".repeat(12_000);
    let ops: Vec<TxnOp> = (0..100)
        .map(|i| TxnOp::put(format!("{p}/app/big/{i:03}"), big.as_str(), None))
        .collect();
    c.txn(Txn::new().and_then(ops)).await.unwrap();
    for i in 0..20 {
        c.put(format!("{p}/app/after/{i:02}"), format!("{i}"), None)
            .await
            .unwrap();
    }
    w.until(
        CHANGE_LIMIT,
        "the large transaction and the writes after it",
        |v| v.len() == 120,
    )
    .await;
    for i in 0..20 {
        assert!(has(
            &w.view,
            &format!("{p}/app/after/{i:02}"),
            &format!("{i}")
        ));
    }
    c.delete(
        format!("{p}/app/"),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
    c.put(format!("{p}/app/marker"), "m", None).await.unwrap();
    w.until(CHANGE_LIMIT, "delete, then marker", |v| {
        v.len() == 1 && v.contains_key(&format!("{p}/app/marker"))
    })
    .await;
    assert_eq!(w.count(is_resync), 0, "{:?}", w.kinds());
    assert_eq!(w.count(is_down), 0, "{:?}", w.kinds());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_every_prefix_at_one_revision_and_pages_large_prefixes() {
    use futures_util::StreamExt as _;
    let etcd = blocking(etcd::shared);
    let p = random_prefix();
    let nodes = vec![etcd.url()];
    let mut c = writer(&nodes).await;
    // More keys than one range page (100,000) under one prefix, written 100 to a
    // transaction (etcd's limit is 128), eight transactions at a time.
    const BIG: usize = 100_100;
    let txns = (0..BIG).step_by(100).map(|from| {
        let ops: Vec<TxnOp> = (from..BIG.min(from + 100))
            .map(|i| TxnOp::put(format!("{p}/big/{i:06}"), format!("v{i}"), None))
            .collect();
        let mut c = c.clone();
        async move { c.txn(Txn::new().and_then(ops)).await.map(drop) }
    });
    let written: Vec<_> = futures_util::stream::iter(txns)
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(written.iter().all(Result::is_ok), "writing {BIG} keys");
    c.put(format!("{p}/a/x"), "1", None).await.unwrap();
    c.put(format!("{p}/ab"), "2", None).await.unwrap();
    let last = c.put(format!("{p}/c"), "3", None).await.unwrap();
    let last_rev = last.header().unwrap().revision();

    let b = connect(&config(&nodes)).await;
    let snap = b
        .list(&[format!("{p}/a"), format!("{p}/big"), format!("{p}/a/x")])
        .await
        .unwrap();
    assert!(snap.revision.unwrap() >= last_rev);
    // `/a` matches `/ab` too (string prefix, as confd); `/c` is not listed.
    assert_eq!(snap.kvs.len(), BIG + 2);
    assert!(has(&snap.kvs, &format!("{p}/ab"), "2"));
    assert!(has(&snap.kvs, &format!("{p}/big/100099"), "v100099"));
    assert!(!snap.kvs.contains_key(&format!("{p}/c")));

    // A new listing sees a later write, at a later revision.
    c.put(format!("{p}/a/y"), "4", None).await.unwrap();
    let again = b.list(&[format!("{p}/a")]).await.unwrap();
    assert!(again.revision > snap.revision);
    assert_eq!(again.kvs.len(), 3);
    c.delete(
        format!("{p}/"),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_arrives_as_delete() {
    let etcd = blocking(etcd::shared);
    let p = random_prefix();
    let nodes = vec![etcd.url()];
    let mut w = Watching::start(connect(&config(&nodes)).await, vec![p.clone()]).await;
    let mut c = writer(&nodes).await;
    let lease = c.lease_grant(1, None).await.unwrap().id();
    let k = format!("{p}/ephemeral");
    c.put(k.as_str(), "up", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    w.until(CHANGE_LIMIT, "leased put", |v| has(v, &k, "up"))
        .await;
    let t = Instant::now();
    w.until(Duration::from_secs(6), "lease expiry", |v| {
        !v.contains_key(&k)
    })
    .await;
    assert!(t.elapsed() < Duration::from_secs(6));
    assert_eq!(w.count(is_resync), 0, "{:?}", w.kinds());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_past_the_watched_revision_is_recovered_with_nothing_missed() {
    let etcd = blocking(Etcd::start);
    let p = random_prefix();
    let nodes = vec![etcd.url()];
    let b = connect(&config(&nodes)).await;
    let mut c = writer(&nodes).await;
    c.put(format!("{p}/k0"), "old", None).await.unwrap();
    let old = b.list(std::slice::from_ref(&p)).await.unwrap();

    // Changes after the snapshot, then a compaction that removes their history.
    for i in 1..=5 {
        c.put(format!("{p}/k{i}"), format!("v{i}"), None)
            .await
            .unwrap();
    }
    c.delete(format!("{p}/k0"), None).await.unwrap();
    let now = c.put(format!("{p}/k1"), "v1b", None).await.unwrap();
    let rev = now.header().unwrap().revision();
    c.compact(rev, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();

    let mut w = Watching::from_snapshot(b.clone(), vec![p.clone()], old);
    w.until_update(CHANGE_LIMIT, "resync after compaction", is_resync)
        .await;
    let k6 = format!("{p}/k6");
    c.put(k6.as_str(), "after", None).await.unwrap();
    w.until(CHANGE_LIMIT, "put after the resync", |v| {
        v.contains_key(&k6)
    })
    .await;

    let truth = b.list(std::slice::from_ref(&p)).await.unwrap();
    assert_eq!(w.view, truth.kvs, "updates: {:?}", w.kinds());
    assert!(has(&w.view, &format!("{p}/k1"), "v1b"));
    assert!(!w.view.contains_key(&format!("{p}/k0")));
    // etcd was up all along: no outage reported.
    assert_eq!(w.count(is_down), 0, "{:?}", w.kinds());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_member_loss_does_not_stop_the_watch() {
    let mut members = blocking(|| etcd::cluster(3));
    let urls: Vec<String> = members.iter().map(Etcd::url).collect();
    let p = random_prefix();
    let backend = connect(&config(&urls)).await;
    let mut w = Watching::start(backend.clone(), vec![p.clone()]).await;
    let mut c = writer(&urls).await;
    let a = format!("{p}/a");
    c.put(a.as_str(), "1", None).await.unwrap();
    w.until(CHANGE_LIMIT, "put before the loss", |v| v.contains_key(&a))
        .await;

    blocking(|| members[0].kill());
    // Write through the survivors (retrying while a new leader is elected).
    let mut survivors = writer(&urls[1..]).await;
    let b = format!("{p}/b");
    let t = Instant::now();
    let mut acked = None;
    // An attempt forwarded to the dead leader is lost and would wait out etcd's own
    // request timeout (~6 s): bound each attempt and try again.
    while acked.is_none() && t.elapsed() < CHANGE_LIMIT {
        let put = survivors.put(b.as_str(), "2", None);
        match tokio::time::timeout(Duration::from_millis(700), put).await {
            Ok(Ok(_)) => acked = Some(Instant::now()),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let acked = acked.expect("survivors accept writes within 5 s");
    w.until(CHANGE_LIMIT, "put through the survivors", |v| {
        has(v, &b, "2")
    })
    .await;
    assert!(acked.elapsed() < CHANGE_LIMIT);
    assert!(w.view.contains_key(&a));
    // Listings keep working although the client still knows the dead member.
    for _ in 0..20 {
        let snap = backend
            .list(std::slice::from_ref(&p))
            .await
            .expect("list with one member dead");
        assert_eq!(snap.kvs.len(), 2);
    }
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_outage_sends_down_then_up_and_resync_and_keeps_running() {
    let mut etcd = blocking(Etcd::start);
    let p = random_prefix();
    let nodes = vec![etcd.url()];
    let mut w = Watching::start(connect(&config(&nodes)).await, vec![p.clone()]).await;
    let a = format!("{p}/a");
    writer(&nodes)
        .await
        .put(a.as_str(), "1", None)
        .await
        .unwrap();
    w.until(CHANGE_LIMIT, "put before the outage", |v| {
        v.contains_key(&a)
    })
    .await;

    blocking(|| etcd.kill());
    w.until_update(CHANGE_LIMIT, "Down", is_down).await;
    // Still alive, still holding the last view, nothing more sent while down.
    let before = w.log.len();
    let quiet = tokio::time::timeout(Duration::from_secs(2), w.rx.recv()).await;
    assert!(quiet.is_err(), "nothing is sent while down: {:?}", quiet);
    assert_eq!(w.log.len(), before);
    assert!(!w.task.is_finished());
    assert!(w.view.contains_key(&a));

    blocking(|| etcd.restart(true));
    let b = format!("{p}/b");
    writer(&nodes)
        .await
        .put(b.as_str(), "2", None)
        .await
        .unwrap();
    w.until(Duration::from_secs(10), "put after the restart", |v| {
        has(v, &b, "2")
    })
    .await;
    let up = w
        .log
        .iter()
        .position(|u| *u == Update::Up)
        .expect("Up after the outage");
    assert!(
        w.log[up + 1..].iter().any(is_resync),
        "Resync follows Up: {:?}",
        w.kinds()
    );
    assert_eq!(w.count(is_down), 1, "Down is sent once: {:?}", w.kinds());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_right_password_works_wrong_one_is_fatal_and_never_shown() {
    let etcd = blocking(Etcd::start);
    etcd.ctl_ok(&["user", "add", "root:right-pw-4711"]);
    etcd.ctl_ok(&["auth", "enable"]);
    let p = random_prefix();
    let nodes = vec![etcd.url()];
    let with = |user: Option<&str>, pw: Option<&str>| BackendConfig {
        username: user.map(String::from),
        password: pw.map(String::from),
        ..config(&nodes)
    };

    let good = connect(&with(Some("root"), Some("right-pw-4711"))).await;
    let mut w = Watching::start(good, vec![p.clone()]).await;
    let k = format!("{p}/k");
    etcd.ctl_ok(&["--user", "root:right-pw-4711", "put", &k, "v"]);
    w.until(CHANGE_LIMIT, "put with auth", |v| has(v, &k, "v"))
        .await;
    w.stop().await.unwrap();

    let secret = "wrong-pw-0815";
    let bad = connect(&with(Some("root"), Some(secret))).await;
    let err = bad.list(std::slice::from_ref(&p)).await.unwrap_err();
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    assert!(text.contains(&etcd.url()), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!format!("{err:?}").contains(secret));
    // The watch gives up with the same fatal error instead of retrying for ever.
    let (tx, _rx) = mpsc::channel(4);
    let from = Arc::new(Snapshot::default());
    let werr = tokio::time::timeout(
        CHANGE_LIMIT,
        bad.watch(vec![p.clone()], from, tx, CancellationToken::new()),
    )
    .await
    .expect("fatal watch returns")
    .unwrap_err();
    assert!(
        !werr.is_transient() && !werr.to_string().contains(secret),
        "{werr}"
    );

    let anonymous = connect(&with(None, None)).await;
    let err = anonymous.list(std::slice::from_ref(&p)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("authentication"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate() {
    let dir = tempdir();
    let files = blocking(|| etcd::make_certs(dir.path()));
    let etcd = blocking(|| Etcd::start_with(Some(files.clone())));
    let p = random_prefix();
    let cfg = BackendConfig {
        client_cert: Some(files.client_cert.clone()),
        client_key: Some(files.client_key.clone()),
        client_ca_keys: Some(files.ca.clone()),
        ..config(&[etcd.url()])
    };
    let mut w = Watching::start(connect(&cfg).await, vec![p.clone()]).await;
    let k = format!("{p}/tls");
    etcd.ctl_ok(&["put", &k, "secure"]);
    w.until(CHANGE_LIMIT, "put over TLS", |v| has(v, &k, "secure"))
        .await;
    w.stop().await.unwrap();

    // Without a client certificate the server refuses us; the error names the endpoint.
    let no_cert = BackendConfig {
        client_cert: None,
        client_key: None,
        ..cfg.clone()
    };
    let err = connect(&no_cert)
        .await
        .list(std::slice::from_ref(&p))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&etcd.url()), "{err}");
}
