use super::*;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::metrics;

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    status: Arc<Status>,
}

async fn start(read_timeout: Duration) -> Server {
    start_with(read_timeout, 1024).await
}

async fn start_with(read_timeout: Duration, max_connections: usize) -> Server {
    let listener = bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    let health = Health::new();
    let status = Status::new();
    let shutdown = CancellationToken::new();
    let limits = Limits {
        read_timeout,
        max_connections,
    };
    let app = routes::router(metrics.clone(), health.clone(), status.clone());
    let task = tokio::spawn(server::run(listener, app, shutdown.clone(), limits));
    Server {
        addr,
        shutdown,
        task,
        metrics,
        health,
        status,
    }
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `raw` as is and reads until the server closes.
async fn send(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("server did not close")
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("no blank line");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = header(head, "content-length").unwrap().parse().unwrap();
    assert!(
        body.is_empty() || body.len() == length,
        "length {length}, body {body:?}"
    );
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn metrics_route() {
    let s = start(READ_TIMEOUT).await;
    s.metrics.rendered("haproxy");
    let a = get(s.addr, "/metrics").await;
    assert_eq!(a.status, 200);
    assert_eq!(header(&a.head, "content-type"), Some(metrics::CONTENT_TYPE));
    assert!(
        a.body
            .contains("confsync_renders_total{resource=\"haproxy\"} 1"),
        "{}",
        a.body
    );
    assert!(a.body.ends_with("# EOF\n"));
    s.metrics.rendered("haproxy");
    let a = get(s.addr, "/metrics?x=1").await;
    assert!(
        a.body
            .contains("confsync_renders_total{resource=\"haproxy\"} 2")
    );
}

#[tokio::test]
async fn health_route() {
    let s = start(READ_TIMEOUT).await;
    assert_eq!(get(s.addr, "/health").await.status, 503);
    s.health.set_running(true);
    let a = get(s.addr, "/health").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    s.health.set_running(false);
    assert_eq!(get(s.addr, "/health").await.status, 503);
}

#[tokio::test]
async fn ready_follows_first_render_and_backends() {
    let s = start(READ_TIMEOUT).await;
    s.health.set_running(true);
    s.health.set_backend_up("etcd", false);
    s.health.set_backend_up("redis", true);
    let a = get(s.addr, "/ready").await;
    assert_eq!(a.status, 503);
    assert!(a.body.starts_with("not ready: "), "{}", a.body);
    assert!(a.body.contains("first render"), "{}", a.body);
    assert!(
        a.body.contains("etcd") && !a.body.contains("redis"),
        "{}",
        a.body
    );

    s.health.set_first_render_done();
    let a = get(s.addr, "/ready").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body, "not ready: backend down: etcd\n");

    s.health.set_backend_up("etcd", true);
    assert!(s.health.is_ready());
    let a = get(s.addr, "/ready").await;
    assert_eq!((a.status, a.body.as_str()), (200, "ready\n"));

    s.health.set_backend_up("redis", false);
    let a = get(s.addr, "/ready").await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "not ready: backend down: redis\n")
    );

    s.health.remove_backend("redis");
    assert_eq!(get(s.addr, "/ready").await.status, 200);

    s.health.set_running(false);
    assert_eq!(get(s.addr, "/ready").await.status, 503);
}

#[tokio::test]
async fn unknown_path_and_method() {
    let s = start(READ_TIMEOUT).await;
    assert_eq!(get(s.addr, "/nothing-here").await.status, 404);
    assert_eq!(get(s.addr, "/metrics/x").await.status, 404);
    let a = send(
        s.addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(header(&a.head, "allow"), Some("GET,HEAD"));
    let a = send(s.addr, b"HEAD /health HTTP/1.1\r\n\r\n").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body, "");
    // Bare LF line ends are accepted.
    assert_eq!(send(s.addr, b"GET /nope HTTP/1.0\n\n").await.status, 404);
}

#[tokio::test]
async fn status_page_and_json_escape_hostile_names_and_forbid_scripts() {
    let s = start(READ_TIMEOUT).await;
    let mut r = crate::config::resource::test_resource();
    r.name = "web".into();
    r.dest = "/srv/<b id=x>.cfg".into();
    r.mode = Some(0o644);
    s.status.add_resource(&r);
    s.status.add_backend("default", "file");
    let a = get(s.addr, "/").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        header(&a.head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&a.head, "content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'unsafe-inline'"),
        "{csp}"
    );
    assert_eq!(header(&a.head, "x-content-type-options"), Some("nosniff"));
    assert!(a.body.contains("/srv/&lt;b id=x&gt;.cfg"), "{}", a.body);
    assert!(!a.body.contains("<b id"), "{}", a.body);
    let j = get(s.addr, "/status.json").await;
    assert_eq!(j.status, 200);
    assert_eq!(header(&j.head, "content-type"), Some("application/json"));
    let rep: crate::status::Report = serde_json::from_str(&j.body).unwrap();
    assert_eq!(rep.resources[0].dest, "/srv/<b id=x>.cfg");
    assert_eq!(rep.backends[0].kind, "file");
}

#[tokio::test]
async fn malformed_requests() {
    let s = start(READ_TIMEOUT).await;
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"GET /health\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\n\r\n",
        b"GET /health SPDY/3\r\n\r\n",
        b"\xff\xfe /health HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(send(s.addr, raw).await.status, 400, "{raw:?}");
    }
    // hyper takes a target without a leading slash for an authority: no route has it.
    assert_eq!(
        send(s.addr, b"GET health HTTP/1.1\r\n\r\n").await.status,
        404
    );
    // A client that closes early gets nothing, and the server lives on.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /hea").await.unwrap();
    drop(c);
    s.health.set_running(true);
    assert_eq!(get(s.addr, "/health").await.status, 200);
}

#[tokio::test]
async fn oversized_head_is_rejected() {
    let s = start(READ_TIMEOUT).await;
    let mut raw = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while raw.len() < MAX_HEAD + 2048 {
        raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    let a = send(s.addr, &raw).await;
    assert_eq!(a.status, 431);
    // A head of exactly the limit is still fine.
    let mut raw = b"GET /health HTTP/1.1\r\nX-Pad: ".to_vec();
    raw.resize(MAX_HEAD - 4, b'a');
    raw.extend_from_slice(b"\r\n\r\n");
    assert_eq!(raw.len(), MAX_HEAD);
    assert_eq!(send(s.addr, &raw).await.status, 503);
}

#[tokio::test]
async fn slow_client_does_not_block_others_and_times_out() {
    let s = start(Duration::from_millis(300)).await;
    s.health.set_running(true);
    // Silent clients: connected, sending a partial head or nothing.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    partial.write_all(b"GET /health HT").await.unwrap();
    let started = Instant::now();
    let a = get(s.addr, "/health").await;
    assert_eq!(a.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // Both are closed after the read timeout, without an answer (hyper sends no 408).
    for stream in [&mut silent, &mut partial] {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
            .await
            .expect("not closed after the read timeout")
            .unwrap();
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }
}

/// Whether the server still holds `c` open (no answer, no close).
fn still_open(c: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

// Issue 12: 300 slow clients made 35 of 52 `/health` probes fail. The head timeout is
// longer than the test here, so only the connection cap's room keeps probes answered.
#[tokio::test]
async fn three_hundred_slow_clients_do_not_keep_health_out() {
    let s = start(Duration::from_secs(30)).await;
    s.health.set_running(true);
    let mut silent = Vec::new();
    let mut dribbling = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        if i % 2 == 0 {
            silent.push(c);
        } else {
            c.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
            dribbling.push(c);
        }
    }
    let stop = CancellationToken::new();
    let dribbler = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.is_cancelled() {
                for c in &mut dribbling {
                    c.write_all(b"X").await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            dribbling
        }
    });
    let mut slowest = Duration::ZERO;
    for probe in 0..50 {
        let started = Instant::now();
        let a = tokio::time::timeout(Duration::from_secs(2), get(s.addr, "/health"))
            .await
            .unwrap_or_else(|_| panic!("probe {probe} not answered within 2 s"));
        assert_eq!((a.status, a.body.as_str()), (200, "ok\n"), "probe {probe}");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let dribbling = dribbler.await.unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "slowest probe {slowest:?}"
    );
    // The slow clients held their connections all along.
    let open = silent.iter().chain(&dribbling).filter(|c| still_open(c));
    assert_eq!(open.count(), 300);
}

#[tokio::test]
async fn a_full_server_closes_its_oldest_connection_for_a_new_one() {
    let s = start_with(Duration::from_secs(30), 8).await;
    s.health.set_running(true);
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    for _ in 0..5 {
        assert_eq!(get(s.addr, "/health").await.status, 200);
    }
    // The first ones were closed to make room, without an answer.
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle[0].read_to_end(&mut out))
        .await
        .expect("the oldest connection was not closed")
        .unwrap();
    assert!(out.is_empty());
    let last = idle.last().unwrap();
    assert!(still_open(last), "the newest idle connection is kept");
}

#[tokio::test]
async fn stops_accepting_on_shutdown() {
    let s = start(READ_TIMEOUT).await;
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .expect("serve did not return")
        .unwrap();
    // The listener is dropped: connecting fails (or, at worst, gets no answer).
    if let Ok(mut c) = TcpStream::connect(s.addr).await {
        let _ = c.write_all(b"GET /health HTTP/1.1\r\n\r\n").await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(1), c.read_to_end(&mut out)).await;
        assert!(out.is_empty(), "answered after shutdown: {read:?}");
    }
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let held = bind("127.0.0.1:0").await.unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let err = bind(&addr).await.unwrap_err();
    assert!(err.to_string().contains(&addr), "{err}");
    let err = bind("not an address").await.unwrap_err();
    assert!(err.to_string().contains("not an address"), "{err}");
}

#[tokio::test]
async fn ready_tolerates_an_outage_until_max_staleness() {
    let s = start(READ_TIMEOUT).await;
    s.health.set_running(true);
    s.health.set_first_render_done();
    s.health
        .set_max_staleness("etcd", Some(Duration::from_secs(30)));
    s.health.set_backend_up("etcd", false);
    assert_eq!(
        get(s.addr, "/ready").await.body,
        "not ready: backend down: etcd\n",
        "never current: nothing to serve"
    );
    s.health
        .backend_current("etcd", Duration::from_secs(10), false);
    let a = get(s.addr, "/ready").await;
    assert_eq!(a.status, 200);
    assert!(
        a.body
            .starts_with("ready; backend etcd: down, last current 10s ago"),
        "{}",
        a.body
    );
    s.health
        .backend_current("etcd", Duration::from_secs(40), true);
    let a = get(s.addr, "/ready").await;
    assert_eq!(a.status, 503);
    assert_eq!(
        a.body,
        "not ready: backend stale: etcd (serving saved state, last current 40s ago, max_staleness 30s)\n"
    );
    s.health.set_max_staleness("etcd", None);
    assert_eq!(get(s.addr, "/ready").await.status, 200, "no limit");
    s.health.set_backend_up("etcd", true);
    s.health.backend_current("etcd", Duration::ZERO, false);
    assert_eq!(get(s.addr, "/ready").await.body, "ready\n");
}
