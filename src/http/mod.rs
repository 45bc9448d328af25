//! A small HTTP/1.1 server for `/metrics`, `/health` and `/ready` (`--metrics-addr`).
//!
//! Deliberately minimal, with no HTTP library: one request per connection, the request
//! head is read with a size limit ([`MAX_HEAD`]) and a timeout ([`READ_TIMEOUT`]), the
//! answer always carries `Connection: close`, and the body of a request is ignored.
//! Each connection runs in its own task, so a slow or silent client holds only its own
//! task (and only until the timeout), never the accept loop or other clients.
//!
//! | request | answer |
//! |---|---|
//! | `GET /metrics` | 200, [`Metrics::encode`] as OpenMetrics text |
//! | `GET /health` | 200 `ok` while the daemon loop runs, else 503 |
//! | `GET /ready` | 200 `ready` (or `ready; <notes>`: backends down or on saved state but fresh enough, resources whose new render was refused) once [`Health::is_ready`], else 503 `not ready: <why>` |
//! | other path | 404 |
//! | other method | 405 (`HEAD` is answered like `GET`, without the body) |
//! | head over 8 KiB | 431; malformed head 400; silent for 5 s 408 |

mod behind;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics::{self, Metrics};

mod freshness;
pub use behind::{Behind, ResourceState};
use freshness::{Freshness, Verdict};

/// The largest request head (request line and headers) read; larger ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the answer may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once rather than queued, so a flood
/// of idle connections costs at most this many tasks and buffers.
const MAX_CONNECTIONS: usize = 256;

/// What `/health` and `/ready` report, updated by the daemon.
///
/// `/ready` is 200 when all of these hold: the loop runs ([`Health::set_running`]), the
/// first render of every resource is done ([`Health::set_first_render_done`]), and every
/// backend reported through [`Health::set_backend_up`] is fresh: up, or down but with
/// keys ([`Health::backend_current`]) no older than its max staleness (see
/// `freshness.rs`). A backend never reported does not count, so the daemon should
/// report each one (as down) when it starts.
#[derive(Debug, Default)]
pub struct Health {
    running: AtomicBool,
    first_render_done: AtomicBool,
    /// Backend name to its state; sorted so `/ready` names backends in a stable order.
    backends: Mutex<BTreeMap<String, Freshness>>,
    /// Resources behind the store.
    behind: Behind,
}

impl Health {
    /// Not running, first render not done, no backends known.
    pub fn new() -> Arc<Health> {
        Arc::new(Health::default())
    }

    /// Sets whether the daemon loop runs: `/health` answers 200 while it does, 503
    /// before and after (and `/ready` is 503 whenever it does not).
    pub fn set_running(&self, yes: bool) {
        self.running.store(yes, Ordering::SeqCst);
    }

    /// Whether the daemon loop runs (what `/health` answers).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Records that every resource has been rendered once; `/ready` needs it.
    pub fn set_first_render_done(&self) {
        self.first_render_done.store(true, Ordering::SeqCst);
    }

    /// Records whether `backend` is reachable; `/ready` needs every reported backend up.
    pub fn set_backend_up(&self, backend: &str, up: bool) {
        self.backend(backend, |b| b.up = up);
    }

    /// Records that `backend`'s keys are current now, or were `age` ago (a saved
    /// snapshot), and whether they come from saved state.
    pub fn backend_current(&self, backend: &str, age: Duration, saved: bool) {
        self.backend(backend, |b| {
            b.current = Some((Instant::now(), age));
            b.serving_saved = saved;
        });
    }

    /// Sets the age past which `backend`'s keys make `/ready` fail (`None`: no limit).
    pub fn set_max_staleness(&self, backend: &str, max: Option<Duration>) {
        self.backend(backend, |b| b.max_staleness = max);
    }

    fn backend(&self, backend: &str, f: impl FnOnce(&mut Freshness)) {
        f(self.backends().entry(backend.to_owned()).or_default());
    }

    /// Records where `resource` stands after a sync: one being retried makes `/ready`
    /// 503; one whose render was refused is named but keeps it 200.
    pub fn set_resource(&self, resource: &str, state: ResourceState) {
        self.behind.set(resource, state);
    }

    /// Forgets every resource not in `keep` (after a SIGHUP removed them).
    pub fn retain_resources(&self, keep: &[String]) {
        self.behind.retain(keep);
    }

    /// Forgets `backend` (after a SIGHUP removed it from the configuration).
    pub fn remove_backend(&self, backend: &str) {
        self.backends().remove(backend);
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    /// Why `/ready` answers 503, or `None` if it answers 200.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.assess(Instant::now()).0
    }

    /// Why `/ready` answers 503, or `None`; and what a 200 should mention (backends
    /// down or serving saved state while still fresh enough).
    fn assess(&self, now: Instant) -> (Option<String>, Option<String>) {
        let mut why = Vec::new();
        if !self.is_running() {
            why.push("not running".to_owned());
        }
        if !self.first_render_done.load(Ordering::SeqCst) {
            why.push("first render not done".to_owned());
        }
        let (mut down, mut stale, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for (name, b) in self.backends().iter() {
            match b.verdict(now) {
                Verdict::Fine => {}
                Verdict::NeverSynced => down.push(name.clone()),
                Verdict::Stale(s) => stale.push(format!("backend stale: {name} ({s})")),
                Verdict::Note(s) => notes.push(format!("backend {name}: {s}")),
            }
        }
        if !down.is_empty() {
            why.push(format!("backend down: {}", down.join(", ")));
        }
        why.extend(stale);
        if let Some(r) = self.behind.retrying() {
            why.push(format!("behind the store, retrying: {r}"));
        }
        if let Some(r) = self.behind.refused() {
            notes.push(format!("new render refused, last good file kept: {r}"));
        }
        let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join("; "));
        (join(why), join(notes))
    }

    fn backends(&self) -> MutexGuard<'_, BTreeMap<String, Freshness>> {
        // Nothing panics while holding the lock, and the map stays valid regardless.
        self.backends.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Binds the metrics listener; the error names the address.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves connections from `listener` until `shutdown` is cancelled, then stops
/// accepting (connections already accepted finish on their own, bounded by timeouts).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    serve_with(listener, metrics, health, shutdown, READ_TIMEOUT).await;
}

async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
    read_timeout: Duration,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut accept_failing = false;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                accept_failing = false;
                stream
            }
            Err(err) => {
                // Usually out of file descriptors: log once per episode, back off a bit.
                if !accept_failing {
                    warn!(error = %err, "metrics server: accept failed");
                    accept_failing = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!("metrics server: too many connections, closing a new one");
            continue;
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            handle(stream, &metrics, &health, read_timeout).await;
            drop(permit);
        });
    }
    debug!("metrics server stopped accepting");
}

/// An answer before it is written out.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    /// Extra header lines, each ending in CRLF.
    extra: &'static str,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: u16, body: impl Into<String>) -> Response {
    Response {
        status,
        content_type: TEXT,
        body: body.into(),
        extra: "",
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics, health: &Health, read_timeout: Duration) {
    let mut buf = vec![0u8; MAX_HEAD];
    let (response, head_only) =
        match tokio::time::timeout(read_timeout, read_head(&mut stream, &mut buf)).await {
            Err(_) => (text(408, "request timeout\n"), false),
            Ok(Err(err)) => {
                debug!(error = %err, "metrics server: reading request failed");
                return;
            }
            Ok(Ok(Head::TooLarge)) => (text(431, "request head too large\n"), false),
            Ok(Ok(Head::Closed)) => return,
            Ok(Ok(Head::Complete(len))) => route(&buf[..len], metrics, health),
        };
    let bytes = encode_response(&response, head_only);
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            debug!(error = %err, "metrics server: writing answer failed");
            return;
        }
        Err(_) => return,
    }
    // Read what the client still sends (a body, the rest of an oversized head) before
    // closing: closing with unread data makes the kernel send a reset, which can make
    // the client lose the answer. Bounded in time and size.
    let drain = async {
        let mut total = 0usize;
        while total < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

enum Head {
    /// The head ends within the first `len` bytes of the buffer.
    Complete(usize),
    /// The buffer filled before the head ended.
    TooLarge,
    /// The client closed before sending a whole head.
    Closed,
}

async fn read_head(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<Head> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Ok(Head::TooLarge);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        // Look for the blank line from a little before the new data, in case its
        // CRLFs were split across reads.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = head_end(&buf[from..len]) {
            return Ok(Head::Complete(from + end));
        }
    }
}

/// The length of the head up to and including its blank line (CRLF CRLF, or bare LF LF).
fn head_end(data: &[u8]) -> Option<usize> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Answers a complete request head; the flag says to leave the body out (HEAD).
fn route(head: &[u8], metrics: &Metrics, health: &Health) -> (Response, bool) {
    let Some(line) = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
    else {
        return (text(400, "bad request\n"), false);
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (text(400, "bad request\n"), false);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return (text(400, "bad request\n"), false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        let mut response = text(405, "method not allowed\n");
        response.extra = "Allow: GET, HEAD\r\n";
        return (response, false);
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let response = match path {
        "/metrics" => Response {
            status: 200,
            content_type: metrics::CONTENT_TYPE,
            body: metrics.encode(),
            extra: "",
        },
        "/health" if health.is_running() => text(200, "ok\n"),
        "/health" => text(503, "not running\n"),
        "/ready" => match health.assess(Instant::now()) {
            (None, None) => text(200, "ready\n"),
            (None, Some(notes)) => text(200, format!("ready; {notes}\n")),
            (Some(why), _) => text(503, format!("not ready: {why}\n")),
        },
        _ => text(404, "not found\n"),
    };
    (response, head_only)
}

fn encode_response(response: &Response, head_only: bool) -> Vec<u8> {
    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        response.extra,
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(response.body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests;
