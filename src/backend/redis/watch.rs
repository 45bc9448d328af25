//! Watching Redis: keyspace notifications on a dedicated pub/sub connection, one fetch
//! per key an event names, and a reconnect loop that re-lists after every reconnect
//! (notifications are fire-and-forget, so anything may have been missed).
//!
//! One session: connect (asking Sentinel where the master is), make sure notifications
//! are on (`CONFIG SET notify-keyspace-events`, which Redis forgets on restart), subscribe,
//! then list, so that no change falls between the listing and the subscription. If
//! `CONFIG` is refused the session polls instead (with one warning per backend).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
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
use crate::backend::{BackendError, Backoff, Change, KvMap, Snapshot, Update, under_any};

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
    /// The daemon's view when the watch started, until the first listing is compared
    /// with it (then dropped: it is a full copy of the keys).
    from: Option<Arc<Snapshot>>,
    /// What has been sent since, in brief.
    sent: Sent,
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
        from: Some(from),
        sent: Sent::new(RandomState::new()),
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

    let (kvs, sent) = listing(backend, &mut conn, &node, prefixes, &state.sent).await?;
    // Compared with the daemon's first view once; after a reconnect the daemon diffs it
    // against its store (two Redis keys may stand for one confsync key, which no
    // comparison of Redis keys sees).
    let unchanged = state.from.take().is_some_and(|from| from.kvs == kvs);
    let keys = kvs.len();
    // The listing goes to the daemon or goes now: this function runs for the whole
    // session, and a binding kept to its end held a second copy of every key.
    let resync = if state.down || !unchanged {
        Some(Update::Resync(snapshot_of(kvs)))
    } else {
        drop(kvs);
        None
    };
    if state.down {
        tracing::info!(endpoint = %node.shown, keys, "redis is reachable again");
        if tx.send(Update::Up).await.is_err() {
            return Ok(End::Stop);
        }
        state.down = false;
    }
    if let Some(resync) = resync
        && tx.send(resync).await.is_err()
    {
        return Ok(End::Stop);
    }
    state.backoff.reset();
    state.sent = sent;
    let sent = &mut state.sent;
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
        let update = tokio::select! {
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
                    Some(_) => None,
                    None => {
                        tracing::debug!("Sentinel subscription closed; relying on the master connection");
                        switches = None;
                        None
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
                let changes = on_events(backend, &mut conn, &node, prefixes, &channel_prefix, &batch, sent).await?;
                (!changes.is_empty()).then_some(Update::Changes(changes))
            }
            _ = tick.tick(), if polling => {
                Some(relist(backend, &mut conn, &node, prefixes, sent).await?.0)
            }
            _ = resync.tick(), if resyncing => {
                let (resync, keys) = relist(backend, &mut conn, &node, prefixes, sent).await?;
                if keys > 0 {
                    tracing::info!(endpoint = %node.shown, keys, "periodic resync found keys no notification reported");
                }
                Some(resync)
            }
        };
        if let Some(u) = update
            && tx.send(u).await.is_err()
        {
            return Ok(End::Stop);
        }
    }
}

/// A full listing: its keys and values, and a fresh [`Sent`] for them (comparable with
/// `like`).
async fn listing(
    backend: &RedisBackend,
    conn: &mut MultiplexedConnection,
    node: &Node,
    prefixes: &[String],
    like: &Sent,
) -> Result<(KvMap, Sent), BackendError> {
    let mut kvs = KvMap::new();
    let mut sent = like.fresh();
    list_entries(conn, &node.shown, &backend.keys, prefixes, |k, e| {
        sent.learn(k, &e);
        e.add_to(&mut kvs);
    })
    .await?;
    Ok((kvs, sent))
}

/// Lists again (polling, periodic resync): a `Resync` and how many Redis keys differ
/// from what was sent. The `Resync` goes whatever that count: the daemon diffs it
/// against its store, so only the keys that really changed render, and a key two Redis
/// keys stand for (a string and a hash field) is put right, which no comparison of
/// Redis keys sees.
async fn relist(
    backend: &RedisBackend,
    conn: &mut MultiplexedConnection,
    node: &Node,
    prefixes: &[String],
    sent: &mut Sent,
) -> Result<(Update, usize), BackendError> {
    let (kvs, fresh) = listing(backend, conn, node, prefixes, sent).await?;
    let differ = sent.differs(&fresh);
    *sent = fresh;
    Ok((Update::Resync(snapshot_of(kvs)), differ))
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
    sent: &mut Sent,
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
    let to_fetch: Vec<String> = order
        .iter()
        .filter(|k| last.get(*k) == Some(&false))
        .cloned()
        .collect();
    let mut fetched: HashMap<String, Entry> = HashMap::with_capacity(to_fetch.len());
    if !to_fetch.is_empty() {
        let mut strict = Strict::new(KIND, &node.shown);
        fetch(
            conn,
            &mut strict,
            &backend.keys,
            prefixes,
            &to_fetch,
            |k, e| {
                fetched.insert(k.to_string(), e);
            },
        )
        .await?;
    }
    let mut changes = Vec::new();
    for key in order {
        let entry = fetched.remove(&key).unwrap_or(Entry::Nothing);
        let as_string = Some(backend.keys.to_logical(&key)).filter(|k| under_any(k, prefixes));
        changes.extend(sent.update(key, as_string, entry));
    }
    Ok(changes)
}

/// What the watch has sent the daemon, in brief. The daemon's store holds the keys and
/// values (and drops changes that change nothing), so the watch keeps no copy of them:
/// - a string key stands for one confsync key by a pure function ([`super::KeyMap`]),
///   so an event on it just sends its current value, or its deletion;
/// - a hash stands for one confsync key per field, so the fields it produced are kept
///   (sorted) to tell HDEL and DEL which keys to delete;
/// - each Redis key's output has a 64-bit fingerprint, 16 bytes a key, so a periodic
///   resync can say how many Redis keys changed without a notification (its `Resync`
///   goes either way; the daemon's diff decides what renders). The hasher is keyed at
///   random per watch, so keys written to collide on purpose cannot hide a change.
struct Sent {
    /// Redis hash -> the confsync keys its fields produced under the prefixes, sorted
    /// and unique; only hashes that produced any.
    hashes: HashMap<String, Box<[Box<str>]>>,
    /// Fingerprint of a Redis key -> fingerprint of what it produced (keys that
    /// produced nothing are absent).
    prints: HashMap<u64, u64>,
    /// Fingerprint of a confsync key -> how many hash fields in `hashes` produce it:
    /// whether a string's key is also a hash field's, in O(1) instead of a look at
    /// every hash.
    fields: HashMap<u64, u32>,
    hasher: RandomState,
}

impl Sent {
    fn new(hasher: RandomState) -> Self {
        Self {
            hashes: HashMap::new(),
            prints: HashMap::new(),
            fields: HashMap::new(),
            hasher,
        }
    }

    /// An empty record whose fingerprints compare with this one's.
    fn fresh(&self) -> Self {
        Self::new(self.hasher.clone())
    }

    /// A listing found `entry` at Redis key `key`.
    fn learn(&mut self, key: &str, entry: &Entry) {
        if let Some(p) = self.print(entry) {
            self.prints.insert(self.hasher.hash_one(key), p);
        }
        if let Some(fields) = field_set(entry) {
            self.count(&fields, true);
            if let Some(old) = self.hashes.insert(key.to_string(), fields) {
                self.count(&old, false);
            }
        }
    }

    /// Counts the keys of a hash's field set in or out of `fields`.
    fn count(&mut self, keys: &[Box<str>], add: bool) {
        for k in keys {
            let id = self.hasher.hash_one(&**k);
            if add {
                *self.fields.entry(id).or_default() += 1;
            } else if let Some(n) = self.fields.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    self.fields.remove(&id);
                }
            }
        }
    }

    /// How many Redis keys produce something else in `other` (added, changed or gone).
    fn differs(&self, other: &Sent) -> usize {
        let changed = other
            .prints
            .iter()
            .filter(|(k, p)| self.prints.get(k) != Some(p))
            .count();
        let gone = self
            .prints
            .keys()
            .filter(|k| !other.prints.contains_key(k))
            .count();
        changed + gone
    }

    /// Redis key `key` now holds `entry`; `as_string` is the confsync key it stands for
    /// as a string, when that is under the prefixes. Returns the changes to send, in
    /// O(fields): deletions first, then every key the entry produces (so a key both
    /// removed and produced ends up set).
    fn update(&mut self, key: String, as_string: Option<String>, entry: Entry) -> Vec<Change> {
        let id = self.hasher.hash_one(&key);
        match self.print(&entry) {
            Some(p) => self.prints.insert(id, p),
            None => self.prints.remove(&id),
        };
        shrink(&mut self.prints);
        let fresh = field_set(&entry);
        let (key, old) = match self.hashes.remove_entry(&key) {
            Some((k, old)) => {
                self.count(&old, false);
                (k, Some(old))
            }
            None => (key, None),
        };
        let mut changes: Vec<Change> = match old {
            // It was a hash: the fields it no longer has go.
            Some(old) => removed(old, fresh.as_deref().unwrap_or_default())
                .map(|k| (k.into_string(), None))
                .collect(),
            // It was a string, or nothing seen: unless a string now, the string it may
            // have been goes (the store ignores the deletion of a key it does not hold).
            // A field of a hash that maps to the same key is not the string's: it stays.
            None if !matches!(entry, Entry::Value(..)) => as_string
                .filter(|k| !self.fields.contains_key(&self.hasher.hash_one(k.as_str())))
                .map(|k| (k, None))
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        if let Some(fields) = fresh {
            self.count(&fields, true);
            self.hashes.insert(key, fields);
        }
        shrink(&mut self.hashes);
        shrink(&mut self.fields);
        match entry {
            Entry::Nothing => {}
            Entry::Value(k, v) => changes.push((k, Some(v))),
            Entry::Fields(f) => changes.extend(f.into_iter().map(|(k, v)| (k, Some(v)))),
        }
        changes
    }

    /// Fingerprint of what `entry` produces; `None` for nothing. A hash's fields are
    /// summed, since HGETALL's order is not fixed.
    fn print(&self, entry: &Entry) -> Option<u64> {
        match entry {
            Entry::Nothing => None,
            Entry::Fields(f) if f.is_empty() => None,
            Entry::Value(k, v) => Some(self.hasher.hash_one((0u8, k, v))),
            Entry::Fields(f) => {
                let sum = f
                    .iter()
                    .fold(0u64, |sum, kv| sum.wrapping_add(self.hasher.hash_one(kv)));
                Some(self.hasher.hash_one((1u8, sum, f.len())))
            }
        }
    }
}

/// Gives back most of `map`'s room once it holds under a quarter of it (a deleted prefix
/// of 100,000 keys left 2 MB of empty table behind); amortised O(1) per removal.
fn shrink<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// The confsync keys a hash entry produces, sorted and unique (each copied once);
/// `None` for a string, or a hash with nothing under the prefixes.
fn field_set(entry: &Entry) -> Option<Box<[Box<str>]>> {
    let Entry::Fields(f) = entry else {
        return None;
    };
    if f.is_empty() {
        return None;
    }
    let mut keys: Vec<Box<str>> = f.iter().map(|(k, _)| Box::from(k.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    Some(keys.into_boxed_slice())
}

/// The keys of `old` missing from `new` (both sorted), in one merge walk.
fn removed(old: Box<[Box<str>]>, new: &[Box<str>]) -> impl Iterator<Item = Box<str>> {
    let mut new = new.iter().peekable();
    old.into_vec().into_iter().filter(move |k| {
        while new.next_if(|n| *n < k).is_some() {}
        new.peek().is_none_or(|n| *n != k)
    })
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

    fn fields(pairs: &[(&str, &str)]) -> Entry {
        Entry::Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn value(k: &str, v: &str) -> Entry {
        Entry::Value(k.into(), v.into())
    }

    fn put(k: &str, v: &str) -> Change {
        (k.into(), Some(v.into()))
    }

    fn del(k: &str) -> Change {
        (k.into(), None)
    }

    /// An event on Redis key `key` (under the prefixes, default separator).
    fn event(s: &mut Sent, key: &str, entry: Entry) -> Vec<Change> {
        s.update(key.into(), Some(key.into()), entry)
    }

    fn listed(entries: &[(&str, Entry)]) -> Sent {
        let mut s = Sent::new(RandomState::new());
        for (k, e) in entries {
            s.learn(k, e);
        }
        s
    }

    #[test]
    fn tracks_hash_fields_and_keeps_nothing_for_strings() {
        let mut s = listed(&[
            ("/h", fields(&[("/h/b", "2"), ("/h/a", "1")])),
            ("/h/c", value("/h/c", "3")),
        ]);
        assert_eq!(s.hashes.len(), 1);
        assert_eq!(&*s.hashes["/h"], [Box::from("/h/a"), Box::from("/h/b")]);
        assert_eq!(s.prints.len(), 2);
        // HDEL b, HSET a=9 and d=4: b goes first, then every field the hash has.
        let c = event(&mut s, "/h", fields(&[("/h/d", "4"), ("/h/a", "9")]));
        assert_eq!(c, vec![del("/h/b"), put("/h/d", "4"), put("/h/a", "9")]);
        assert_eq!(&*s.hashes["/h"], [Box::from("/h/a"), Box::from("/h/d")]);
        // A string event sends its value (the store drops it when unchanged).
        assert_eq!(
            event(&mut s, "/h/c", value("/h/c", "3")),
            vec![put("/h/c", "3")]
        );
        assert_eq!(event(&mut s, "/h/c", Entry::Nothing), vec![del("/h/c")]);
        assert_eq!(s.hashes.len(), 1);
    }

    #[test]
    fn another_type_at_a_key_a_hash_field_maps_to_leaves_the_field() {
        // Hash /h has field a (/h/a); a list at the Redis key /h/a changes: the key it
        // would have been as a string is the hash's, and stays.
        let mut s = listed(&[("/h", fields(&[("/h/a", "1")]))]);
        assert_eq!(event(&mut s, "/h/a", Entry::Nothing), vec![]);
        assert_eq!(&*s.hashes["/h"], [Box::from("/h/a")]);
        // Another hash gives /h/a too: until both are gone, the key stays theirs.
        event(&mut s, "/h/", fields(&[("/h/a", "2")]));
        event(&mut s, "/h", Entry::Nothing);
        assert_eq!(event(&mut s, "/h/a", Entry::Nothing), vec![]);
        event(&mut s, "/h/", Entry::Nothing);
        assert_eq!(event(&mut s, "/h/a", Entry::Nothing), vec![del("/h/a")]);
        assert!(s.fields.is_empty());
    }

    #[test]
    fn del_of_a_hash_deletes_its_fields_only() {
        let mut s = listed(&[("/h", fields(&[("/h/a", "1"), ("/h/b", "2")]))]);
        let c = event(&mut s, "/h", Entry::Nothing);
        assert_eq!(c, vec![del("/h/a"), del("/h/b")]);
        assert!(s.hashes.is_empty() && s.prints.is_empty());
        // The next event on it knows no fields: only the string it may have become goes.
        assert_eq!(event(&mut s, "/h", Entry::Nothing), vec![del("/h")]);
        // A hash left with no field under the prefixes is forgotten too.
        let mut s = listed(&[("/h", fields(&[("/h/a", "1")]))]);
        assert_eq!(event(&mut s, "/h", fields(&[])), vec![del("/h/a")]);
        assert!(s.hashes.is_empty());
    }

    #[test]
    fn a_key_that_changes_type_leaves_nothing_behind() {
        let mut s = listed(&[("/t", value("/t", "1"))]);
        // string -> hash: the string's key goes, the fields come.
        let c = event(&mut s, "/t", fields(&[("/t/x", "1"), ("/t/y", "2")]));
        assert_eq!(c, vec![del("/t"), put("/t/x", "1"), put("/t/y", "2")]);
        // hash -> string: every field goes.
        let c = event(&mut s, "/t", value("/t", "2"));
        assert_eq!(c, vec![del("/t/x"), del("/t/y"), put("/t", "2")]);
        assert!(s.hashes.is_empty());
        // string -> list (not mapped): the string's key goes.
        assert_eq!(event(&mut s, "/t", Entry::Nothing), vec![del("/t")]);
        // A hash above the prefixes: its own name is outside them, so nothing of it.
        let c = s.update("/a".into(), None, fields(&[("/a/b/x", "1")]));
        assert_eq!(c, vec![put("/a/b/x", "1")]);
        assert_eq!(
            s.update("/a".into(), None, Entry::Nothing),
            vec![del("/a/b/x")]
        );
    }

    #[test]
    fn a_large_hash_updates_in_one_pass() {
        let n = 10_000;
        let hash = |range: std::ops::Range<usize>| {
            Entry::Fields(
                range
                    .map(|i| (format!("/h/{i:05}"), i.to_string()))
                    .collect(),
            )
        };
        let mut s = listed(&[("/h", hash(0..n))]);
        // Half the fields removed, as many added: quadratic would be 10^8 comparisons.
        let c = event(&mut s, "/h", hash(n / 2..n + n / 2));
        assert_eq!(c.iter().filter(|(_, v)| v.is_none()).count(), n / 2);
        assert_eq!(c.iter().filter(|(_, v)| v.is_some()).count(), n);
        assert_eq!(c[0], del("/h/00000"));
        assert_eq!(s.hashes["/h"].len(), n);
        assert_eq!(&*s.hashes["/h"][0], "/h/05000");
    }

    #[test]
    fn deleting_most_keys_gives_the_tables_room_back() {
        let mut s = Sent::new(RandomState::new());
        for i in 0..20_000 {
            let k = format!("/k{i}");
            s.learn(&k, &value(&k, "1"));
            let h = format!("/h{i}");
            s.learn(&h, &fields(&[(&format!("{h}/x"), "1")]));
        }
        let full = s.prints.capacity();
        for i in 0..19_990 {
            event(&mut s, &format!("/h{i}"), Entry::Nothing);
        }
        for i in 0..19_990 {
            event(&mut s, &format!("/k{i}"), Entry::Nothing);
        }
        assert_eq!((s.prints.len(), s.hashes.len()), (20, 10));
        assert!(
            s.prints.capacity() <= 2048 && full > 30_000,
            "{}",
            s.prints.capacity()
        );
        assert!(s.hashes.capacity() <= 2048, "{}", s.hashes.capacity());
    }

    #[test]
    fn listings_compare_by_fingerprint() {
        let a = listed(&[
            ("/a", value("/a", "1")),
            ("/h", fields(&[("/h/x", "1"), ("/h/y", "2")])),
        ]);
        let same = |entries: &[(&str, Entry)]| {
            let mut s = a.fresh();
            for (k, e) in entries {
                s.learn(k, e);
            }
            a.differs(&s)
        };
        // HGETALL's order does not matter.
        let h = fields(&[("/h/y", "2"), ("/h/x", "1")]);
        assert_eq!(same(&[("/h", h.clone()), ("/a", value("/a", "1"))]), 0);
        assert_eq!(same(&[("/h", h.clone()), ("/a", value("/a", "2"))]), 1);
        assert_eq!(same(&[("/h", h.clone())]), 1);
        assert_eq!(same(&[("/h", fields(&[("/h/x", "1")]))]), 2);
        assert_eq!(
            same(&[
                ("/h", h),
                ("/a", value("/a", "1")),
                ("/b", value("/b", "1"))
            ]),
            1
        );
        // Events keep the fingerprints current: after them, the same listing is no change.
        let mut b = a.fresh();
        b.learn("/a", &value("/a", "1"));
        event(&mut b, "/a", value("/a", "5"));
        event(&mut b, "/h", fields(&[("/h/x", "1"), ("/h/y", "2")]));
        let mut c = a.fresh();
        c.learn("/a", &value("/a", "5"));
        c.learn("/h", &fields(&[("/h/x", "1"), ("/h/y", "2")]));
        assert_eq!(b.differs(&c), 0);
        event(&mut b, "/a", Entry::Nothing);
        assert_eq!(b.differs(&c), 1);
    }
}
