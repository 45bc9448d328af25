//! The HTTP/1.1 server for `/metrics`, `/health`, `/ready` and the status page
//! (`--metrics-addr`).
//!
//! The routes are an axum [`Router`](axum::Router) (`routes.rs`) served connection by
//! connection through hyper (`server.rs`), so the limits stay in confsync's hands: one
//! request per connection (every answer carries `Connection: close`), a request head of
//! at most [`MAX_HEAD`] that must arrive within [`READ_TIMEOUT`], a whole connection
//! bounded by [`READ_TIMEOUT`] plus a write allowance, and a cap on open connections.
//! When the cap is reached, a new connection closes the *oldest* open one instead of
//! being refused: an answer takes milliseconds, so the oldest connections are the idle
//! or dribbling ones, and a crowd of slow clients can never keep a probe out. The cap is
//! 1024, or half the soft `RLIMIT_NOFILE` when that is lower, so the listener never
//! takes the descriptors the rest of the daemon needs; when `accept` fails anyway (out of
//! descriptors), the oldest connection is closed too.
//!
//! | request | answer |
//! |---|---|
//! | `GET /metrics` | 200, [`Metrics::encode`] as OpenMetrics text |
//! | `GET /health` | 200 `ok` while the daemon loop runs, else 503 |
//! | `GET /ready` | 200 `ready` (or `ready; <notes>`: backends down or on saved state but fresh enough, resources whose new render was refused) once [`Health::is_ready`], else 503 `not ready: <why>` |
//! | `GET /` | 200, the status page: HTML, no script, `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; ...` ([`crate::status`]) |
//! | `GET /status.json` | 200, the same as JSON ([`crate::status::Report`]) |
//! | other path | 404 |
//! | other method | 405 with `Allow: GET,HEAD` (`HEAD` is answered like `GET`, without the body) |
//! | head over 8 KiB | 431; malformed head 400 (both answered by hyper) |
//! | head not complete within 5 s | the connection is closed without an answer (hyper sends no 408) |

mod behind;
mod freshness;
mod routes;
mod server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::status::Status;

pub use behind::{Behind, ResourceState};
use freshness::{Freshness, Verdict};
use server::Limits;

/// The largest request head (request line and headers) accepted; larger ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

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
    status: Arc<Status>,
    shutdown: CancellationToken,
) {
    let limits = Limits {
        read_timeout: READ_TIMEOUT,
        max_connections: server::connection_cap(),
    };
    server::run(
        listener,
        routes::router(metrics, health, status),
        shutdown,
        limits,
    )
    .await;
}

#[cfg(test)]
mod tests;
