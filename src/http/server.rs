//! The metrics server's accept loop: hyper's HTTP/1.1 settings for each connection and
//! a cap on open connections that closes the oldest one to make room (see the module
//! docs of `http` for why that keeps probes answered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use nix::sys::resource::{Resource, getrlimit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::MAX_HEAD;

/// The most connections open at once.
const MAX_CONNECTIONS: usize = 1024;
/// The fewest, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 16;
/// How long writing an answer may take, on top of the read timeout, before the
/// connection is dropped.
const WRITE_ALLOWANCE: Duration = Duration::from_secs(5);
/// hyper's read buffer; it must hold a head of [`MAX_HEAD`] (hyper's minimum is 8 KiB),
/// and anything that does not fit is answered 431 as too large.
const READ_BUFFER: usize = 2 * MAX_HEAD;

/// The limits of one server.
pub(super) struct Limits {
    /// How long a client may take to send its request head.
    pub read_timeout: Duration,
    /// Connections open at once; a new one past this closes the oldest.
    pub max_connections: usize,
}

/// The connection cap for this process: [`MAX_CONNECTIONS`], or half the soft
/// `RLIMIT_NOFILE` when that is lower, so the other half stays for backends, files,
/// child processes and the log.
pub(super) fn connection_cap() -> usize {
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _hard)| soft);
    usize::try_from(soft / 2)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// Accepts connections until `shutdown` is cancelled; each is served in its own task.
pub(super) async fn run(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    limits: Limits,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .keep_alive(false)
        .max_buf_size(READ_BUFFER)
        .max_header_size(MAX_HEAD);
    let deadline = limits.read_timeout + WRITE_ALLOWANCE;
    let open = Arc::new(Open::new(limits.max_connections));
    debug!(
        max_connections = limits.max_connections,
        "metrics server accepting"
    );
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
                // Usually out of descriptors: free one, log once per episode, back off.
                open.close_oldest();
                if !accept_failing {
                    warn!(error = %err, "metrics server: accept failed");
                    accept_failing = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                }
            }
        };
        let slot = open.admit();
        let (http, app) = (http.clone(), app.clone());
        tokio::spawn(async move {
            let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            serve_one(conn, deadline, &slot).await;
        });
    }
    debug!("metrics server stopped accepting");
}

/// Serves one connection until it ends, its deadline passes or it is closed to make room.
async fn serve_one<F>(conn: F, deadline: Duration, slot: &Slot)
where
    F: Future<Output = hyper::Result<()>>,
{
    tokio::select! {
        served = conn => {
            if let Err(err) = served {
                debug!(error = %err, "metrics server: connection ended with an error");
            }
        }
        _ = tokio::time::sleep(deadline) => {
            debug!(?deadline, "metrics server: connection took too long, closed");
        }
        _ = slot.closed.cancelled() => {
            debug!("metrics server: oldest connection closed to make room");
        }
    }
}

/// The open connections, oldest first.
struct Open {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Connection number (in accept order) to what closes it.
    by_age: BTreeMap<u64, CancellationToken>,
}

impl Open {
    fn new(max: usize) -> Open {
        Open {
            max: max.max(1),
            table: Mutex::default(),
        }
    }

    /// Registers a new connection, closing the oldest ones while the table is full.
    fn admit(self: &Arc<Self>) -> Slot {
        let mut table = self.table();
        while table.by_age.len() >= self.max {
            let Some((_, oldest)) = table.by_age.pop_first() else {
                break;
            };
            oldest.cancel();
        }
        let id = table.next_id;
        table.next_id += 1;
        let closed = CancellationToken::new();
        table.by_age.insert(id, closed.clone());
        Slot {
            open: self.clone(),
            id,
            closed,
        }
    }

    /// Closes the oldest open connection, if any.
    fn close_oldest(&self) {
        if let Some((_, oldest)) = self.table().by_age.pop_first() {
            oldest.cancel();
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding the lock, and the table stays valid regardless.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One open connection's place in [`Open`]; dropping it frees the place.
struct Slot {
    open: Arc<Open>,
    id: u64,
    /// Cancelled when the connection must close to make room.
    closed: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.table().by_age.remove(&self.id);
    }
}

/// The number of connections the table holds (for tests).
#[cfg(test)]
fn open_count(open: &Open) -> usize {
    open.table().by_age.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_closes_the_oldest() {
        let open = Arc::new(Open::new(2));
        let a = open.admit();
        let b = open.admit();
        assert!(!a.closed.is_cancelled());
        let c = open.admit();
        assert!(a.closed.is_cancelled(), "the oldest makes room");
        assert!(!b.closed.is_cancelled() && !c.closed.is_cancelled());
        assert_eq!(open_count(&open), 2);
        drop(a);
        assert_eq!(open_count(&open), 2, "an evicted slot is already out");
        drop(b);
        assert_eq!(open_count(&open), 1);
        open.close_oldest();
        assert!(c.closed.is_cancelled());
        assert_eq!(open_count(&open), 0);
    }

    #[test]
    fn the_cap_follows_the_descriptor_limit() {
        let cap = connection_cap();
        assert!((MIN_CONNECTIONS..=MAX_CONNECTIONS).contains(&cap), "{cap}");
    }
}
