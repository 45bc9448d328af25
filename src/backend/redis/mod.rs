//! Redis backend: standalone servers or a master found through Sentinel.
//!
//! Keys map as in confd (see [`keys`]): a string key is one value, a hash `k` gives
//! `k/field` per field, and `--separator` stands for `/` in stores that use `:`.
//! Listing walks the prefixes with `SCAN MATCH` (never `KEYS`) and reads the values with
//! pipelined `GET`/`HGETALL`; a key that vanishes in between is simply absent. A key,
//! hash field or value that is not UTF-8 is left out with a warning naming it (see
//! [`super::text`]), in listings and in the fetches that follow events alike.
//!
//! Watching (see [`watch`]) subscribes to keyspace notifications on a dedicated pub/sub
//! connection, enabling them with `CONFIG SET` when they are off, and fetches only the
//! key an event names. Where `CONFIG` is not allowed it warns once and polls. Every
//! `resync_interval` it also lists in full, since notifications are fire-and-forget.
//!
//! # Layout
//! - `mod.rs`: the [`RedisBackend`], listing and fetching keys.
//! - `conn.rs`: node parsing, Sentinel, connections, error classification.
//! - `keys.rs`: the key mapping and glob patterns.
//! - `watch.rs`: keyspace notifications, the reconnect loop, the polling fallback.

// pub(crate): `confsync register` connects (and follows Sentinel) the same way.
pub(crate) mod conn;
mod keys;
mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::text::Strict;
use super::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update, under_any};
use conn::{KIND, Node, Target, classify};
pub use keys::KeyMap;

/// How often to poll when keyspace notifications cannot be enabled and no interval is set.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Keys per SCAN step and per fetch pipeline.
const BATCH: usize = 1000;
/// Upper bound on SCAN steps for one prefix (a guard; SCAN always ends long before).
const MAX_SCAN_STEPS: usize = 10_000_000;

/// What one Redis key contributes under the watched prefixes. The type is kept (not just
/// the pairs) because a watch handles a string and a hash differently: a string maps to
/// its confsync key by a pure function, a hash's fields have to be remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Gone, another type (list, set...), a value that is not text, or outside the prefixes.
    Nothing,
    /// A string key: its confsync key and value.
    Value(String, String),
    /// A hash: a confsync key and value per field under the prefixes (maybe none).
    Fields(Vec<(String, String)>),
}

impl Entry {
    /// Only what falls under `prefixes` (a hash above a prefix has fields outside it).
    fn under(self, prefixes: &[String]) -> Self {
        match self {
            Self::Value(k, _) if !under_any(&k, prefixes) => Self::Nothing,
            Self::Fields(mut f) => {
                f.retain(|(k, _)| under_any(k, prefixes));
                Self::Fields(f)
            }
            other => other,
        }
    }

    /// Moves the keys and values into `kvs`. When a hash field and a string key stand for
    /// the same confsync key, the Redis key added last wins (listings add in key order).
    pub(crate) fn add_to(self, kvs: &mut KvMap) {
        match self {
            Self::Nothing => {}
            Self::Value(k, v) => {
                kvs.insert(k, v);
            }
            Self::Fields(f) => kvs.extend(f),
        }
    }
}

/// Reads and watches prefixes in Redis.
pub struct RedisBackend {
    /// Servers or Sentinels to connect to.
    target: Target,
    /// confsync keys <-> Redis keys.
    keys: KeyMap,
    /// Poll interval when keyspace notifications cannot be enabled.
    poll_interval: Duration,
    /// The command connection `list` reuses, with the node it is connected to; dropped
    /// after any connection error so the next call reconnects (and re-asks Sentinel).
    cached: Mutex<Option<(Node, MultiplexedConnection)>>,
    /// Set once the "cannot enable notifications, polling" warning has been logged, so
    /// reconnects do not repeat it.
    warned_polling: AtomicBool,
    /// How often a watch lists in full beside keyspace events (`None`: only on reconnects).
    resync: Option<Duration>,
}

impl RedisBackend {
    /// Parses the nodes in `cfg`; no connection is made until the first `list` or `watch`.
    pub async fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            target: Target::from_config(cfg)?,
            keys: KeyMap::new(cfg.separator.as_deref()),
            poll_interval: cfg
                .interval
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_POLL_INTERVAL),
            cached: Mutex::new(None),
            warned_polling: AtomicBool::new(false),
            resync: cfg.resync_interval,
        })
    }

    /// One listing over the cached connection, connecting first when there is none.
    async fn list_once(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let mut guard = self.cached.lock().await;
        // Behind Sentinel, ask where the master is on every listing: after a failover the
        // old master keeps answering (with stale data) until Sentinel reconfigures it.
        if self.target.master_name().is_some() {
            let master = self.target.master().await?;
            if guard.as_ref().is_some_and(|(n, _)| n.shown != master.shown) {
                *guard = None;
            }
        }
        if guard.is_none() {
            *guard = Some(self.target.connect().await?);
        }
        let Some((node, conn)) = guard.as_mut() else {
            return Err(BackendError::transient(
                KIND,
                self.target.shown(),
                "no connection",
            ));
        };
        let mut kvs = KvMap::new();
        let listed = list_entries(conn, &node.shown, &self.keys, prefixes, |_, e| {
            e.add_to(&mut kvs)
        });
        match listed.await {
            Ok(()) => Ok(snapshot_of(kvs)),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        match self.list_once(prefixes).await {
            // A cached connection may have died since the last call (restart, failover):
            // one retry on a fresh connection before reporting the store as down.
            Err(e) if e.is_transient() => self.list_once(prefixes).await,
            other => other,
        }
    }

    fn can_watch(&self) -> bool {
        true
    }

    fn resyncs_while_watching(&self) -> bool {
        true
    }

    async fn watch(
        &self,
        prefixes: Vec<String>,
        from: Arc<Snapshot>,
        tx: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Result<(), BackendError> {
        watch::run(self, prefixes, from, tx, shutdown).await
    }
}

/// A listing's keys as a snapshot (Redis has no revision).
fn snapshot_of(kvs: KvMap) -> Snapshot {
    Snapshot {
        kvs,
        revision: None,
    }
}

/// Hands every Redis key under `prefixes` (plus ancestors that may be hashes) to `each`
/// with what it contributes, in key order, so that callers build their map as the replies
/// come instead of holding every entry first and copying them.
async fn list_entries(
    conn: &mut MultiplexedConnection,
    shown: &str,
    keys: &KeyMap,
    prefixes: &[String],
    each: impl FnMut(&str, Entry) + Send,
) -> Result<(), BackendError> {
    let mut strict = Strict::new(KIND, shown);
    let mut store_keys = BTreeSet::new();
    for p in prefixes {
        scan(conn, &mut strict, &keys.scan_pattern(p), &mut store_keys).await?;
        store_keys.extend(keys.ancestor_keys(p));
    }
    let store_keys: Vec<String> = store_keys.into_iter().collect();
    fetch(conn, &mut strict, keys, prefixes, &store_keys, each).await
}

/// Adds every key matching `pattern` to `out`, walking SCAN to the end; keys that are
/// not UTF-8 are left out (with a warning).
async fn scan(
    conn: &mut MultiplexedConnection,
    strict: &mut Strict<'_>,
    pattern: &str,
    out: &mut BTreeSet<String>,
) -> Result<(), BackendError> {
    let shown = strict.endpoint();
    let mut cursor: u64 = 0;
    for _ in 0..MAX_SCAN_STEPS {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(conn)
            .await
            .map_err(|e| classify(shown, &e))?;
        out.extend(batch.into_iter().filter_map(|k| strict.key(k)));
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
    Err(BackendError::transient(
        KIND,
        shown,
        format!("SCAN MATCH {pattern} did not finish"),
    ))
}

/// Reads `store_keys` with pipelined `GET` + `HGETALL` (one of the two fails with
/// WRONGTYPE, which is how the type shows) and hands each to `each`, in order. Every
/// requested key gets an entry, [`Entry::Nothing`] when the key is gone, is another type,
/// or has nothing under `prefixes`.
async fn fetch(
    conn: &mut MultiplexedConnection,
    strict: &mut Strict<'_>,
    keys: &KeyMap,
    prefixes: &[String],
    store_keys: &[String],
    mut each: impl FnMut(&str, Entry) + Send,
) -> Result<(), BackendError> {
    let shown = strict.endpoint();
    for chunk in store_keys.chunks(BATCH) {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for k in chunk {
            pipe.cmd("GET").arg(k).cmd("HGETALL").arg(k);
        }
        let replies: Vec<RedisResult<Value>> = pipe
            .query_async(conn)
            .await
            .map_err(|e| classify(shown, &e))?;
        if replies.len() != chunk.len() * 2 {
            return Err(BackendError::transient(
                KIND,
                shown,
                "pipeline answered with the wrong number of replies",
            ));
        }
        for (i, k) in chunk.iter().enumerate() {
            let entry = decode(strict, keys, k, &replies[2 * i], &replies[2 * i + 1])?;
            each(k, entry.under(prefixes));
        }
    }
    Ok(())
}

/// What key `k` holds, from its GET and HGETALL replies; fields and values that are not
/// UTF-8 are left out (with a warning).
fn decode(
    strict: &mut Strict<'_>,
    keys: &KeyMap,
    k: &str,
    get: &RedisResult<Value>,
    hgetall: &RedisResult<Value>,
) -> Result<Entry, BackendError> {
    let wrongtype = |r: &RedisResult<Value>| matches!(r, Err(e) if e.code() == Some("WRONGTYPE"));
    let failed = |strict: &Strict, e| classify(&format!("{} key {k}", strict.endpoint()), e);
    match get {
        Ok(Value::BulkString(v)) => {
            let key = keys.to_logical(k);
            return Ok(match strict.value(&key, v.clone()) {
                Some(v) => Entry::Value(key, v),
                None => Entry::Nothing,
            });
        }
        Ok(Value::Nil) => return Ok(Entry::Nothing),
        Ok(_) => {}
        Err(_) if wrongtype(get) => {}
        Err(e) => return Err(failed(strict, e)),
    }
    let pairs: Vec<(&Value, &Value)> = match hgetall {
        Ok(Value::Array(items)) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        Ok(Value::Map(pairs)) => pairs.iter().map(|(f, v)| (f, v)).collect(),
        Ok(_) => return Ok(Entry::Nothing),
        // Lists, sets, sorted sets and streams are not part of the key mapping.
        Err(_) if wrongtype(hgetall) => return Ok(Entry::Nothing),
        Err(e) => return Err(failed(strict, e)),
    };
    Ok(Entry::Fields(
        pairs
            .into_iter()
            .filter_map(|(f, v)| field(strict, keys, k, bytes_of(f)?, bytes_of(v)?))
            .collect(),
    ))
}

/// One hash field as a key and value, when both are text.
fn field(
    strict: &mut Strict<'_>,
    keys: &KeyMap,
    k: &str,
    f: &[u8],
    v: &[u8],
) -> Option<(String, String)> {
    let Ok(f) = std::str::from_utf8(f) else {
        // Shown as the whole `hash/field` name, so the warning names the hash too.
        let mut name = format!("{k}/").into_bytes();
        name.extend_from_slice(f);
        strict.key(name);
        return None;
    };
    let key = keys.field_key(k, f);
    let value = strict.value(&key, v.to_vec())?;
    Some((key, value))
}

fn bytes_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(b: &[u8]) -> RedisResult<Value> {
        Ok(Value::BulkString(b.to_vec()))
    }

    #[test]
    fn values_and_fields_that_are_not_utf8_are_left_out() {
        let keys = KeyMap::new(None);
        let mut s = Strict::new(KIND, "test");
        let nil = Ok(Value::Nil);
        let got = decode(&mut s, &keys, "/k", &bulk(b"v\xff"), &nil).unwrap();
        assert_eq!(got, Entry::Nothing);
        let got = decode(&mut s, &keys, "/k", &bulk("é".as_bytes()), &nil).unwrap();
        assert_eq!(got, Entry::Value("/k".to_string(), "é".to_string()));
        let hash = Ok(Value::Array(
            [&b"a\xff"[..], b"1", b"b", b"2\xfe", b"c", b"3"]
                .iter()
                .map(|b| Value::BulkString(b.to_vec()))
                .collect(),
        ));
        let got = decode(&mut s, &keys, "/h", &Ok(Value::Int(0)), &hash).unwrap();
        assert_eq!(
            got,
            Entry::Fields(vec![("/h/c".to_string(), "3".to_string())])
        );
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn entries_keep_what_is_under_the_prefixes_and_build_the_map_directly() {
        let p = vec!["/a/b".to_string()];
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        // A hash above the prefix keeps the fields under it; a string above it is left out.
        let h = Entry::Fields(vec![pair("/a/b/x", "1"), pair("/a/c", "2")]);
        assert_eq!(h.under(&p), Entry::Fields(vec![pair("/a/b/x", "1")]));
        let s = Entry::Value("/a".into(), "v".into());
        assert_eq!(s.under(&p), Entry::Nothing);
        // A string key and a hash field standing for the same key: the later one wins.
        let mut kvs = KvMap::new();
        Entry::Fields(vec![pair("/a/b/x", "field")]).add_to(&mut kvs);
        Entry::Value("/a/b/x".into(), "string".into()).add_to(&mut kvs);
        Entry::Nothing.add_to(&mut kvs);
        assert_eq!(kvs, KvMap::from([pair("/a/b/x", "string")]));
    }
}
