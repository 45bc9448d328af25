//! Watching Redis: keyspace notifications on a dedicated pub/sub connection, one fetch
//! per key an event names, and a reconnect loop that re-lists after every reconnect
//! (notifications are fire-and-forget, so anything may have been missed).
//!
//! One session: connect (asking Sentinel where the master is), make sure notifications
//! are on (`CONFIG SET notify-keyspace-events`, which Redis forgets on restart), subscribe,
//! then list, so that no change falls between the listing and the subscription. If
//! `CONFIG` is refused the session polls instead (with one warning per backend).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::conn::{KIND, Node, classify, describe, is_refusal};
use super::keys::glob_escape;
use super::{Entry, RedisBackend, fetch, list_entries, snapshot_of};
use crate::backend::text::Strict;
use crate::backend::{BackendError, Backoff, Change, KvMap, Snapshot, Update};

/// Most pub/sub messages handled as one batch (one fetch pipeline, one `Changes`).
const MAX_BATCH: usize = 1024;
/// Flags confsync needs in `notify-keyspace-events`: keyspace channels (K) for generic
/// (g), string ($), hash (h), expired (x) and evicted (e) events. `A` covers g$hxe.
const NEEDED_FLAGS: [char; 5] = ['g', '$', 'h', 'x', 'e'];

/// What the watch has told the daemon, carried from one session to the next.
struct LinkState {
    /// A `Down` was sent and no `Up` yet.
    down: bool,
    backoff: Backoff,
    /// The daemon's view as sent so far (starting from `from`): a new session's listing
    /// is compared with it to decide whether a `Resync` is needed.
    mirror: Mirror,
}

/// How a session ended without an error.
enum End {
    /// Shutdown, or the daemon stopped listening.
    Stop,
    /// Sentinel announced a new master: reconnect at once (no `Down`).
    Switched,
}

/// Runs sessions until `shutdown`, backing off between them.
pub(super) async fn run(
    backend: &RedisBackend,
    prefixes: Vec<String>,
    from: Arc<Snapshot>,
    tx: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) -> Result<(), BackendError> {
    let mut state = LinkState {
        down: false,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
        mirror: Mirror::from_kvs(from.kvs.clone()),
    };
    for _attempt in 0u64.. {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let err = match session(backend, &prefixes, &tx, &shutdown, &mut state).await {
            Ok(End::Stop) => return Ok(()),
            Ok(End::Switched) => continue,
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, "redis watch stopped");
                return Err(e);
            }
            Err(e) => e,
        };
        if !state.down {
            tracing::warn!(error = %err, "redis is unreachable; keeping the last good snapshot");
            state.down = true;
            if tx.send(Update::Down(err.to_string())).await.is_err() {
                return Ok(());
            }
        } else {
            tracing::debug!(error = %err, "redis still unreachable");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(state.backoff.next_delay()) => {}
        }
    }
    Ok(())
}

/// Whether keyspace notifications could be turned on.
enum Notify {
    On,
    /// `CONFIG` was refused (renamed away, or the ACL user lacks +config): the reason.
    Refused(String),
}

/// One connection's life: returns how it ended, or `Err` when the connection is lost
/// or a fatal error shows.
async fn session(
    backend: &RedisBackend,
    prefixes: &[String],
    tx: &mpsc::Sender<Update>,
    shutdown: &CancellationToken,
    state: &mut LinkState,
) -> Result<End, BackendError> {
    let mut switches = backend.target.switch_events().await;
    let (node, mut conn) = backend.target.connect().await?;
    let mut notify = ensure_notifications(&mut conn, &node).await?;
    let channel_prefix = format!("__keyspace@{}__:", node.db());

    // Subscribe before listing, so that a change made during the listing still arrives.
    let mut pubsub = node.pubsub().await?;
    for pattern in patterns(backend, prefixes, &channel_prefix) {
        if let Err(e) = pubsub.psubscribe(&pattern).await {
            if !is_refusal(&e) {
                return Err(classify(&node.shown, &e));
            }
            notify = Notify::Refused(format!("PSUBSCRIBE refused: {}", describe(&e)));
            break;
        }
    }
    let polling = matches!(notify, Notify::Refused(_));
    if let Notify::Refused(reason) = &notify
        && !backend.warned_polling.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            endpoint = %node.shown,
            interval = ?backend.poll_interval,
            "cannot enable Redis keyspace notifications ({reason}); falling back to polling \
             every {:?}. To watch instead, set `notify-keyspace-events KEA` in redis.conf \
             (or Kg$hxe) and allow CONFIG and PSUBSCRIBE for this user",
            backend.poll_interval
        );
    }
    let mut stream: Option<PubSubStream> =
        (!matches!(notify, Notify::Refused(ref r) if r.starts_with("PSUBSCRIBE")))
            .then(|| pubsub.into_on_message());

    let entries = list_entries(&mut conn, &node.shown, &backend.keys, prefixes).await?;
    let snapshot = snapshot_of(&entries);
    if state.down {
        tracing::info!(endpoint = %node.shown, keys = snapshot.kvs.len(), "redis is reachable again");
        if tx.send(Update::Up).await.is_err() || tx.send(Update::Resync(snapshot)).await.is_err() {
            return Ok(End::Stop);
        }
        state.down = false;
    } else if snapshot.kvs != state.mirror.kvs && tx.send(Update::Resync(snapshot)).await.is_err() {
        return Ok(End::Stop);
    }
    state.backoff.reset();
    state.mirror = Mirror::new(entries);
    let mirror = &mut state.mirror;
    let master_name = backend.target.master_name().unwrap_or_default();

    let mut tick = tokio::time::interval(backend.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // A full listing now and then: a notification lost anywhere (a reconnect of the
    // pub/sub link, a `notify-keyspace-events` changed behind our back) is repaired.
    // Events that arrive during it are handled after it and fetch the current value,
    // so they can only bring newer data than the listing.
    let every = backend.resync.unwrap_or(Duration::from_secs(3600));
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let resyncing = backend.resync.is_some() && !polling;
    loop {
        let changes = tokio::select! {
            _ = shutdown.cancelled() => return Ok(End::Stop),
            msg = next_message(&mut switches) => {
                match msg {
                    Some(m) if String::from_utf8_lossy(m.get_payload_bytes()).split(' ').next() == Some(master_name) => {
                        tracing::info!(
                            from = %node.shown,
                            switch = %String::from_utf8_lossy(m.get_payload_bytes()),
                            "Sentinel switched the master; reconnecting"
                        );
                        return Ok(End::Switched);
                    }
                    Some(_) => Vec::new(),
                    None => {
                        tracing::debug!("Sentinel subscription closed; relying on the master connection");
                        switches = None;
                        Vec::new()
                    }
                }
            }
            msg = next_message(&mut stream) => {
                let Some(first) = msg else {
                    return Err(BackendError::transient(KIND, &node.shown, "pub/sub connection closed (server restarted, failed over or gone)"));
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match stream.as_mut().and_then(|s| s.next().now_or_never()) {
                        Some(Some(m)) => batch.push(m),
                        _ => break,
                    }
                }
                on_events(backend, &mut conn, &node, prefixes, &channel_prefix, &batch, mirror).await?
            }
            _ = tick.tick(), if polling => {
                let entries = list_entries(&mut conn, &node.shown, &backend.keys, prefixes).await?;
                mirror.replace(entries)
            }
            _ = resync.tick(), if resyncing => {
                let entries = list_entries(&mut conn, &node.shown, &backend.keys, prefixes).await?;
                let changes = mirror.replace(entries);
                if !changes.is_empty() {
                    tracing::info!(endpoint = %node.shown, keys = changes.len(), "periodic resync found keys no notification reported");
                }
                changes
            }
        };
        if !changes.is_empty() && tx.send(Update::Changes(changes)).await.is_err() {
            return Ok(End::Stop);
        }
    }
}

async fn next_message(stream: &mut Option<PubSubStream>) -> Option<redis::Msg> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Keyspace channel patterns: everything under each prefix, plus each ancestor key
/// exactly (a hash `/app` has fields under `/app/servers`).
fn patterns(backend: &RedisBackend, prefixes: &[String], channel_prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in prefixes {
        out.push(format!("{channel_prefix}{}", backend.keys.scan_pattern(p)));
        for a in backend.keys.ancestor_keys(p) {
            out.push(format!("{channel_prefix}{}", glob_escape(&a)));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Makes sure `notify-keyspace-events` has what confsync needs, merging with the flags
/// already set.
async fn ensure_notifications(
    conn: &mut MultiplexedConnection,
    node: &Node,
) -> Result<Notify, BackendError> {
    let got: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(conn)
        .await;
    let current = match got {
        Ok(v) => v.get(1).cloned().unwrap_or_default(),
        Err(e) if is_refusal(&e) => {
            return Ok(Notify::Refused(format!(
                "CONFIG GET refused: {}",
                describe(&e)
            )));
        }
        Err(e) => return Err(classify(&node.shown, &e)),
    };
    let Some(wanted) = merge_flags(&current) else {
        return Ok(Notify::On);
    };
    let set: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg(&wanted)
        .query_async(conn)
        .await;
    match set {
        Ok(()) => {
            tracing::info!(endpoint = %node.shown, from = %current, to = %wanted, "enabled Redis keyspace notifications");
            Ok(Notify::On)
        }
        Err(e) if is_refusal(&e) => Ok(Notify::Refused(format!(
            "CONFIG SET refused: {}",
            describe(&e)
        ))),
        Err(e) => Err(classify(&node.shown, &e)),
    }
}

/// `current` plus the flags confsync needs, or `None` when nothing is missing.
pub(super) fn merge_flags(current: &str) -> Option<String> {
    let mut out = current.to_string();
    if !out.contains('K') {
        out.push('K');
    }
    if !out.contains('A') {
        for f in NEEDED_FLAGS {
            if !out.contains(f) {
                out.push(f);
            }
        }
    }
    (out != current).then_some(out)
}

/// Events that say the key is gone.
fn is_gone(event: &str) -> bool {
    matches!(
        event,
        "del" | "expired" | "evicted" | "rename_from" | "move_from"
    )
}

/// Events that do not change a value (TTL changes, the `new` key event that precedes the write).
fn is_noop(event: &str) -> bool {
    matches!(event, "expire" | "persist" | "new")
}

/// Turns a batch of keyspace events into changes: gone keys are dropped at once, every
/// other named key is fetched (once, however many events it had).
async fn on_events(
    backend: &RedisBackend,
    conn: &mut MultiplexedConnection,
    node: &Node,
    prefixes: &[String],
    channel_prefix: &str,
    batch: &[redis::Msg],
    mirror: &mut Mirror,
) -> Result<Vec<Change>, BackendError> {
    let mut order: Vec<String> = Vec::new();
    let mut last: HashMap<String, bool> = HashMap::new();
    for msg in batch {
        // A key that is not UTF-8 comes as the channel "?" and is skipped here; listings
        // name it (see `crate::backend::text`).
        let Some(key) = msg.get_channel_name().strip_prefix(channel_prefix) else {
            continue;
        };
        if crate::backend::dropped_for_tests(key) {
            continue;
        }
        let event = String::from_utf8_lossy(msg.get_payload_bytes());
        if is_noop(&event) {
            continue;
        }
        if last.insert(key.to_string(), is_gone(&event)).is_none() {
            order.push(key.to_string());
        }
    }
    let mut changes = Vec::new();
    let to_fetch: Vec<String> = order
        .iter()
        .filter(|k| last.get(*k) == Some(&false))
        .cloned()
        .collect();
    let mut fetched = if to_fetch.is_empty() {
        HashMap::new()
    } else {
        let mut strict = Strict::new(KIND, &node.shown);
        fetch(conn, &mut strict, &backend.keys, prefixes, &to_fetch).await?
    };
    for key in order {
        let entry = fetched.remove(&key).unwrap_or_default();
        changes.extend(mirror.update(&key, entry));
    }
    Ok(changes)
}

/// What the daemon holds, by Redis key, so an event on one key yields exact changes
/// (a deleted hash removes every field it had; a field removed by HDEL goes too).
struct Mirror {
    kvs: KvMap,
    /// Redis key -> the confsync keys it produced.
    owners: HashMap<String, Vec<String>>,
}

impl Mirror {
    /// A view known only as keys and values (the daemon's `from`): which Redis key owns
    /// what is learnt from the first listing.
    fn from_kvs(kvs: KvMap) -> Self {
        Self {
            kvs,
            owners: HashMap::new(),
        }
    }

    fn new(entries: HashMap<String, Entry>) -> Self {
        let mut m = Self {
            kvs: KvMap::new(),
            owners: HashMap::new(),
        };
        for (k, e) in entries {
            m.update(&k, e);
        }
        m
    }

    /// Redis key `key` now holds `entry` (empty: gone); returns what changed.
    fn update(&mut self, key: &str, entry: Entry) -> Vec<Change> {
        let old = self.owners.remove(key).unwrap_or_default();
        let mut changes = Vec::new();
        let new_keys: Vec<String> = entry.iter().map(|(k, _)| k.clone()).collect();
        for (k, v) in entry {
            if self.kvs.get(&k) != Some(&v) {
                self.kvs.insert(k.clone(), v.clone());
                changes.push((k, Some(v)));
            }
        }
        for k in old {
            if !new_keys.contains(&k) && self.kvs.remove(&k).is_some() {
                changes.push((k, None));
            }
        }
        if !new_keys.is_empty() {
            self.owners.insert(key.to_string(), new_keys);
        }
        changes
    }

    /// A fresh listing replaces everything; returns the difference.
    fn replace(&mut self, entries: HashMap<String, Entry>) -> Vec<Change> {
        let fresh = Mirror::new(entries);
        let mut changes: Vec<Change> = Vec::new();
        for (k, v) in &fresh.kvs {
            if self.kvs.get(k) != Some(v) {
                changes.push((k.clone(), Some(v.clone())));
            }
        }
        for k in self.kvs.keys() {
            if !fresh.kvs.contains_key(k) {
                changes.push((k.clone(), None));
            }
        }
        *self = fresh;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_notification_flags() {
        assert_eq!(merge_flags("").as_deref(), Some("Kg$hxe"));
        assert_eq!(merge_flags("KEA"), None);
        assert_eq!(merge_flags("AE").as_deref(), Some("AEK"));
        assert_eq!(merge_flags("Elg").as_deref(), Some("ElgK$hxe"));
        assert_eq!(merge_flags("Kg$hxe"), None);
    }

    fn e(pairs: &[(&str, &str)]) -> Entry {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mirror_tracks_hash_fields() {
        let mut m = Mirror::new(HashMap::from([
            ("/h".to_string(), e(&[("/h/a", "1"), ("/h/b", "2")])),
            ("/h/c".to_string(), e(&[("/h/c", "3")])),
        ]));
        // HDEL b, HSET a=9
        let c = m.update("/h", e(&[("/h/a", "9")]));
        assert_eq!(
            c,
            vec![("/h/a".into(), Some("9".into())), ("/h/b".into(), None)]
        );
        // DEL of the hash leaves the string key /h/c alone.
        let c = m.update("/h", Vec::new());
        assert_eq!(c, vec![("/h/a".into(), None)]);
        assert_eq!(m.kvs.keys().collect::<Vec<_>>(), vec!["/h/c"]);
        // Same value again: no change.
        assert!(m.update("/h/c", e(&[("/h/c", "3")])).is_empty());
    }

    #[test]
    fn mirror_replace_diffs() {
        let mut m = Mirror::new(HashMap::from([("/a".to_string(), e(&[("/a", "1")]))]));
        let c = m.replace(HashMap::from([("/b".to_string(), e(&[("/b", "2")]))]));
        assert_eq!(
            c,
            vec![("/b".into(), Some("2".into())), ("/a".into(), None)]
        );
    }
}
