//! The etcd watch loop: incremental events while the stream is healthy; a fresh listing
//! and a new watch after a compaction, a broken stream or an outage.
//!
//! Events are hints and a listing is the truth: whenever the stream ends for any reason
//! the loop re-lists at a fresh revision (sent as [`Update::Resync`]) and watches again
//! from that revision + 1, so nothing that happened in between is lost. While the stream
//! is healthy it also lists every `resync_interval`, so an event lost by any part of the
//! path can never stay lost (see [`Pump::run`] for how that is ordered against events).

use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchOptions, WatchStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EtcdBackend, KIND, MAX_MESSAGE, RETRY_PAUSE, key_range, minimal_prefixes};
use crate::backend::text::Strict;
use crate::backend::{Backend, BackendError, Backoff, Change, Update};

/// Bound on opening the watch stream (the server answers it at once when it is up).
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failed attempts before the store counts as down. A member dying breaks
/// the stream, and the very next request may still be routed to it; one quick retry
/// goes through a survivor, so losing one member does not report an outage.
const DOWN_AFTER: u32 = 2;
/// Reconnect backoff: first step and cap.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Why a watch stream stopped.
enum End {
    /// Shutdown was requested or the receiver is gone: stop quietly.
    Stop,
    /// The start revision was compacted away (the compact revision).
    Compacted(i64),
    /// The stream failed or was closed.
    Broken(String),
    /// A large response was handled: watch again from this revision on a new stream
    /// (the old one's receive buffer stays the size of its largest message).
    Resume(i64),
}

/// Bytes of keys and values in one response past which the stream is opened again.
/// A range delete of a 100,000-key prefix comes as one 5 MB response, and the buffer it
/// was read into stayed with the stream for its life.
const REOPEN_AFTER: usize = 1 << 20;

/// Tracks reachability so `Down`/`Up` and the log lines happen once per state change.
struct Health<'a> {
    endpoint: &'a str,
    /// Consecutive failed attempts.
    failures: u32,
    /// Whether `Down` was sent and no `Up` since.
    down: bool,
}

impl Health<'_> {
    /// Records a failed attempt; returns the `Down` to send, if this one changes the state.
    fn failed(&mut self, err: &BackendError) -> Option<Update> {
        self.failures = self.failures.saturating_add(1);
        if self.down || self.failures < DOWN_AFTER {
            tracing::debug!(backend = KIND, endpoint = self.endpoint, error = %err, "etcd attempt failed");
            return None;
        }
        self.down = true;
        tracing::warn!(
            backend = KIND,
            endpoint = self.endpoint,
            error = %err,
            "etcd unreachable; keeping the last snapshot and retrying with backoff"
        );
        Some(Update::Down(err.to_string()))
    }

    /// Records a successful listing; returns `Up` when the store was down.
    fn listed(&mut self) -> Option<Update> {
        self.failures = 0;
        if !std::mem::take(&mut self.down) {
            return None;
        }
        tracing::info!(
            backend = KIND,
            endpoint = self.endpoint,
            "etcd reachable again; resyncing"
        );
        Some(Update::Up)
    }
}

/// Runs the watch loop until `shutdown`; returns `Err` only for fatal errors.
pub(super) async fn run(
    be: &EtcdBackend,
    prefixes: &[String],
    from_revision: Option<i64>,
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
) -> Result<(), BackendError> {
    let prefixes = minimal_prefixes(prefixes);
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP);
    let mut health = Health {
        endpoint: &be.endpoint,
        failures: 0,
        down: false,
    };
    // Where the next watch starts; `None` means a listing is needed first.
    let mut revision = from_revision;
    loop {
        if shutdown.is_cancelled() || tx.is_closed() {
            return Ok(());
        }
        let rev = match revision {
            Some(rev) => rev,
            None => {
                let listed = tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = be.list(&prefixes) => r,
                };
                match listed {
                    Ok(snap) => {
                        let rev = snap.revision.unwrap_or_default();
                        if let Some(up) = health.listed()
                            && !send(tx, shutdown, up).await
                        {
                            return Ok(());
                        }
                        if !send(tx, shutdown, Update::Resync(snap)).await {
                            return Ok(());
                        }
                        rev
                    }
                    Err(e) => {
                        fail(&mut health, &mut backoff, e, tx, shutdown).await?;
                        continue;
                    }
                }
            }
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = open(be, &prefixes, rev + 1) => r,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Unknown whether the stream would have missed anything: list again.
                revision = None;
                fail(&mut health, &mut backoff, e, tx, shutdown).await?;
                continue;
            }
        };
        let opened = Instant::now();
        let pumping = Pump {
            be,
            prefixes: &prefixes,
            tx,
            shutdown,
        };
        let end = pumping.run(stream, &mut backoff).await;
        revision = None;
        match end {
            End::Stop => return Ok(()),
            End::Resume(next) => {
                tracing::debug!(
                    backend = KIND,
                    from = next,
                    "etcd watch opened again after a large response"
                );
                revision = Some(next - 1);
            }
            End::Compacted(at) => {
                tracing::info!(
                    backend = KIND,
                    endpoint = %be.endpoint,
                    from = rev + 1,
                    compacted = at,
                    "etcd watch start revision was compacted; re-listing"
                );
            }
            End::Broken(why) => {
                tracing::warn!(
                    backend = KIND,
                    endpoint = %be.endpoint,
                    error = %why,
                    after_ms = opened.elapsed().as_millis() as u64,
                    "etcd watch stream broke; re-listing and watching again"
                );
                if !sleep(backoff.next_delay(), shutdown).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Handles a failed attempt: fatal errors end the loop, transient ones may send `Down`
/// and then wait out the backoff.
async fn fail(
    health: &mut Health<'_>,
    backoff: &mut Backoff,
    e: BackendError,
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
) -> Result<(), BackendError> {
    if !e.is_transient() {
        tracing::error!(backend = KIND, error = %e, "etcd watch stopped: fatal error");
        return Err(e);
    }
    if let Some(down) = health.failed(&e)
        && !send(tx, shutdown, down).await
    {
        return Ok(());
    }
    sleep(backoff.next_delay(), shutdown).await;
    Ok(())
}

/// Opens one watch stream with one watcher per prefix, all from `start`.
async fn open(
    be: &EtcdBackend,
    prefixes: &[String],
    start: i64,
) -> Result<Option<WatchStream>, BackendError> {
    let Some((first, rest)) = prefixes.split_first() else {
        return Ok(None);
    };
    let opts = |p: &str| {
        let (key, end) = key_range(p);
        (
            key,
            WatchOptions::new()
                .with_range(end)
                .with_start_revision(start),
        )
    };
    let mut wc = be
        .client()
        .await?
        .watch_client()
        .max_decoding_message_size(MAX_MESSAGE);
    let opening = async {
        let mut failures = 0;
        loop {
            let attempt = async {
                let (key, o) = opts(first);
                let mut stream = wc.watch(key, Some(o)).await?;
                for p in rest {
                    let (key, o) = opts(p);
                    stream.watch(key, Some(o)).await?;
                }
                Ok::<_, etcd_client::Error>(stream)
            };
            let err = match attempt.await {
                Ok(stream) => return Ok(stream),
                Err(e) => be.error(e),
            };
            failures += 1;
            // Quick retries reach a live member when the balancer picked a dead one.
            if !err.is_transient() || failures >= be.attempts() {
                return Err(err);
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    };
    match tokio::time::timeout(OPEN_TIMEOUT, opening).await {
        Ok(r) => r.map(Some),
        Err(_) => Err(BackendError::transient(
            KIND,
            be.endpoint.clone(),
            format!(
                "no answer to the watch request within {} s",
                OPEN_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Forwards one stream's events, and lists in full every `resync_interval`.
struct Pump<'a> {
    be: &'a EtcdBackend,
    prefixes: &'a [String],
    tx: &'a mpsc::Sender<Update>,
    shutdown: &'a CancellationToken,
}

impl Pump<'_> {
    /// Forwards events until the stream ends; the backoff is reset once every prefix's
    /// watcher is created (the store is healthy).
    ///
    /// A periodic listing happens between two responses, so every event sent before it
    /// is at or below its revision R (a linearizable read sees everything committed):
    /// the `Resync` undoes nothing newer. Events the stream delivers afterwards with a
    /// revision up to R are already in the listing and are skipped, so an older value
    /// never flickers back.
    async fn run(&self, stream: Option<WatchStream>, backoff: &mut Backoff) -> End {
        let Some(mut stream) = stream else {
            // No prefixes: nothing can change; idle until shutdown.
            self.shutdown.cancelled().await;
            return End::Stop;
        };
        let every = self.be.resync.unwrap_or(Duration::from_secs(3600));
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut listed_at = 0i64;
        let mut created = 0usize;
        loop {
            let msg = tokio::select! {
                _ = self.shutdown.cancelled() => return End::Stop,
                m = stream.message() => m,
                _ = resync.tick(), if self.be.resync.is_some() => {
                    match self.be.list(self.prefixes).await {
                        Ok(snap) => {
                            listed_at = snap.revision.unwrap_or_default();
                            tracing::debug!(backend = KIND, revision = listed_at, keys = snap.kvs.len(), "periodic etcd resync");
                            if !send(self.tx, self.shutdown, Update::Resync(snap)).await {
                                return End::Stop;
                            }
                            continue;
                        }
                        Err(e) => return End::Broken(format!("periodic resync listing failed: {e}")),
                    }
                }
            };
            let resp = match msg {
                Ok(Some(r)) => r,
                Ok(None) => return End::Broken("the server closed the watch stream".into()),
                Err(e) => return End::Broken(e.to_string()),
            };
            if resp.canceled() {
                if resp.compact_revision() > 0 {
                    return End::Compacted(resp.compact_revision());
                }
                return End::Broken(format!(
                    "watch cancelled by the server: {}",
                    resp.cancel_reason()
                ));
            }
            if resp.created() {
                created += 1;
                if created == self.prefixes.len() {
                    backoff.reset();
                }
            }
            let mut strict = Strict::new(KIND, &self.be.endpoint);
            // Its size and last revision: whether to open a new stream, and from where.
            let (bytes, last) = resp.events().iter().filter_map(|ev| ev.kv()).fold(
                (0usize, None::<i64>),
                |(bytes, last), kv| {
                    let rev = last.map_or(kv.mod_revision(), |l| l.max(kv.mod_revision()));
                    (bytes + kv.key().len() + kv.value().len(), Some(rev))
                },
            );
            let changes: Vec<Change> = resp
                .events()
                .iter()
                .filter_map(|ev| {
                    let kv = ev.kv()?;
                    if kv.mod_revision() <= listed_at {
                        return None;
                    }
                    event_change(&mut strict, ev.event_type(), kv.key(), kv.value())
                })
                .collect();
            drop(strict);
            if !changes.is_empty() && !send(self.tx, self.shutdown, Update::Changes(changes)).await
            {
                return End::Stop;
            }
            // One watcher: every event up to `last` is delivered (a revision's events come
            // in one response), so a new stream from `last + 1` misses nothing. With
            // several, another's events below `last` may still be on their way.
            if let Some(last) = last
                && bytes >= REOPEN_AFTER
                && self.prefixes.len() == 1
                && created == 1
            {
                return End::Resume(last + 1);
            }
        }
    }
}

/// The change one event makes, strictly as text (see [`crate::backend::text`]): a key
/// that is not UTF-8 was never in the snapshot, so its events are skipped; a good key
/// whose new value is not UTF-8 leaves the snapshot, as the next listing would leave it
/// out.
fn event_change(strict: &mut Strict, kind: EventType, key: &[u8], value: &[u8]) -> Option<Change> {
    let key = match kind {
        EventType::Put => strict.key(key.to_vec())?,
        // A delete of a key that is not text: nothing to remove, nothing to warn about.
        EventType::Delete => String::from_utf8(key.to_vec()).ok()?,
    };
    if crate::backend::dropped_for_tests(&key) {
        return None;
    }
    let value = match kind {
        EventType::Put => strict.value(&key, value.to_vec()),
        // Deletes (and lease expiries) carry an empty value: the key is gone.
        EventType::Delete => None,
    };
    Some((key, value))
}

/// Sends `u` unless shutdown comes first; false when the loop should stop.
async fn send(tx: &mpsc::Sender<Update>, shutdown: &CancellationToken, u: Update) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        r = tx.send(u) => r.is_ok(),
    }
}

/// Sleeps `d` unless shutdown comes first; false on shutdown.
async fn sleep(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_that_are_not_utf8_are_left_out_or_remove_their_key() {
        let mut s = Strict::new(KIND, "test");
        let put = EventType::Put;
        assert_eq!(
            event_change(&mut s, put, b"/a", b"1"),
            Some(("/a".into(), Some("1".into())))
        );
        // A key that is not text never reaches the store, whichever event it is.
        assert_eq!(event_change(&mut s, put, b"/a\xff", b"1"), None);
        assert_eq!(
            event_change(&mut s, EventType::Delete, b"/a\xff", b""),
            None
        );
        // A good key whose value is not text leaves the store, as a listing leaves it out.
        assert_eq!(
            event_change(&mut s, put, b"/a", b"1\xff"),
            Some(("/a".into(), None))
        );
        assert_eq!(
            event_change(&mut s, EventType::Delete, b"/a", b""),
            Some(("/a".into(), None))
        );
        assert_eq!(s.count(), 2);
    }
}
