use super::*;
use std::net::SocketAddr;
use std::time::Instant;

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

async fn start(read_timeout: Duration) -> Server {
    let listener = bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    let health = Health::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_with(
        listener,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
        read_timeout,
    ));
    Server {
        addr,
        shutdown,
        task,
        metrics,
        health,
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
    assert_eq!(get(s.addr, "/").await.status, 404);
    assert_eq!(get(s.addr, "/metrics/x").await.status, 404);
    let a = send(
        s.addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(header(&a.head, "allow"), Some("GET, HEAD"));
    let a = send(s.addr, b"HEAD /health HTTP/1.1\r\n\r\n").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body, "");
    // Bare LF line ends are accepted.
    assert_eq!(send(s.addr, b"GET /nope HTTP/1.0\n\n").await.status, 404);
}

#[tokio::test]
async fn malformed_requests() {
    let s = start(READ_TIMEOUT).await;
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"GET /health\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\n\r\n",
        b"GET health HTTP/1.1\r\n\r\n",
        b"GET /health SPDY/3\r\n\r\n",
        b"\xff\xfe /health HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(send(s.addr, raw).await.status, 400, "{raw:?}");
    }
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
    // Both are answered 408 and closed after the read timeout.
    for stream in [&mut silent, &mut partial] {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
            .await
            .expect("not closed after the read timeout")
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    }
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

#[test]
fn head_end_finds_the_blank_line() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
    assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
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
