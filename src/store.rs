//! The daemon's copy of a backend's keys: replaced by listings, patched by watch events,
//! and diffed so that only resources whose keys changed are rendered again.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use tracing::{error, warn};

use crate::backend::{Change, KvMap};

/// A backend's `max_value_size` when it sets none: 1 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 1 << 20;
/// A backend's `max_keys` when it sets none.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// Keys replaced or changed at once past which the memory freed is handed back to the
/// system ([`crate::memory::freed`]).
const LARGE: usize = 10_000;
/// Keys changed between two publishes past which which ones they were is not kept: the
/// resources then walk every key once (see `template::basis`).
pub const MAX_TRACKED: usize = 4096;

/// What one backend's data may hold. Keys and values are written by the instances
/// themselves, so a huge value or a million keys must not reach a template that loops
/// over them. Checked here, where every backend's listings and events enter; Redis and
/// etcd have already read a whole value by then, which bounds renders, not the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// A value longer than this (bytes) is dropped with its key, with a warning.
    pub max_value_size: usize,
    /// A listing with more keys than this is refused (the last good keys stay); watch
    /// events adding keys past it are dropped.
    pub max_keys: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// The last good view of one backend.
#[derive(Clone)]
pub struct Store {
    /// Shared with renders in progress; changed copy-on-write.
    kvs: Arc<KvMap>,
    /// Bounds on what it takes in.
    limits: StoreLimits,
    /// The backend's name, for warnings.
    backend: String,
    /// Keys dropped or listings refused by the limits so far.
    refused: u64,
    /// Where refusals are counted (`confsync_data_refused_total`).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Keys changed by watch events since memory was last handed back.
    churn: usize,
    /// Keys changed since [`Store::take_held`] was last called, each with whether the
    /// store held it before its first change; `None` past [`MAX_TRACKED`].
    held: Held,
}

/// Keys changed, each with whether the store held it before its first change; `None`
/// when there were more than [`MAX_TRACKED`] of them (or which is not known).
pub type Held = Option<HashMap<String, bool>>;

/// Notes in `held` that `key` changes, which the store `had` before or not: a key's
/// first note stays; a key past [`MAX_TRACKED`] makes the whole list unknown.
pub fn note_held(held: &mut Held, key: &str, had: bool) {
    if let Some(h) = held {
        if h.len() >= MAX_TRACKED && !h.contains_key(key) {
            *held = None;
        } else {
            h.entry(key.to_string()).or_insert(had);
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self {
            kvs: Arc::default(),
            limits: StoreLimits::default(),
            backend: String::new(),
            refused: 0,
            metrics: None,
            churn: 0,
            held: Some(HashMap::new()),
        }
    }
}

impl Store {
    /// Notes that `key` changes now, and whether the store held it before.
    fn hold(&mut self, key: &str, held: bool) {
        note_held(&mut self.held, key, held);
    }

    /// The keys changed since the last call, each with whether the store held it before
    /// its first change (`None`: more than [`MAX_TRACKED`] of them).
    pub fn take_held(&mut self) -> Held {
        self.held.replace(HashMap::new())
    }

    /// An empty store of `backend` held to `limits`.
    pub fn limited(backend: &str, limits: StoreLimits) -> Self {
        Self {
            limits,
            backend: backend.to_string(),
            ..Self::default()
        }
    }

    /// Counts refusals in `metrics` too.
    pub fn counted_in(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count_refusal(&mut self) {
        self.refused += 1;
        if let Some(m) = &self.metrics {
            m.data_refused(&self.backend);
        }
    }

    /// How many keys the limits dropped and listings they refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// True (after a warning) when `value` of `key` is over `max_value_size`.
    fn too_big(&mut self, key: &str, value: &str) -> bool {
        if value.len() <= self.limits.max_value_size {
            return false;
        }
        self.count_refusal();
        warn!(backend = %self.backend, key = %key, size = value.len(), max_value_size = self.limits.max_value_size, "value larger than max_value_size; key dropped");
        true
    }

    /// The current keys, cheap to clone.
    pub fn snapshot(&self) -> Arc<KvMap> {
        self.kvs.clone()
    }

    /// Replaces everything under `prefixes` with a fresh listing; returns the keys that
    /// were added, changed or removed.
    /// A listing over `max_keys` is refused: the store keeps what it had and nothing
    /// changes; values over `max_value_size` are dropped with their keys.
    /// The listing is only read: its caller may still need it (the feed hands the first
    /// one to the watch), and the store keeps its own copy, made in key order.
    pub fn replace(&mut self, fresh: &KvMap) -> Vec<String> {
        if self.refuses(fresh) {
            return Vec::new();
        }
        let max = self.limits.max_value_size;
        for (k, v) in fresh.iter().filter(|(_, v)| v.len() > max) {
            self.too_big(k, v);
        }
        let kept = || fresh.iter().filter(|(_, v)| v.len() <= max);
        let before = self.kvs.len();
        let changed = diff_iters(self.kvs.iter(), kept());
        if changed.len() > MAX_TRACKED {
            self.held = None;
        } else {
            for k in &changed {
                let held = self.kvs.contains_key(k);
                self.hold(k, held);
            }
        }
        if !changed.is_empty() {
            // A copy made in key order lays keys and values out in the order renders walk
            // them; a listing arrives in the store's order (Redis SCAN: random), and
            // rendering from it took half again as long at 10,000 keys. Collected, not
            // cloned, its nodes are full (a clone keeps the listing's half-empty ones).
            self.kvs = Arc::new(kept().map(|(k, v)| (k.clone(), v.clone())).collect());
        }
        if fresh.len() + before >= LARGE {
            // The map it replaced goes now, and the listing once its caller drops it.
            crate::memory::freed();
        }
        changed
    }

    /// True (after an error) when `fresh` has more keys than `max_keys`.
    fn refuses(&mut self, fresh: &KvMap) -> bool {
        if fresh.len() <= self.limits.max_keys {
            return false;
        }
        self.count_refusal();
        error!(backend = %self.backend, keys = fresh.len(), max_keys = self.limits.max_keys, "listing has more keys than max_keys; refused, keeping the last good keys");
        true
    }

    /// [`Store::replace`] with a listing the store may keep, one laid out in key order
    /// (as an etcd listing is built) that nothing else reads, for a caller that takes
    /// every key as changed. A store that holds no key yet keeps it as it is, without the
    /// key-ordered copy; one that holds keys diffs and copies as `replace` does.
    pub fn adopt(&mut self, mut fresh: KvMap) {
        if !self.kvs.is_empty() {
            self.replace(&fresh);
            return;
        }
        if self.refuses(&fresh) {
            return;
        }
        let max = self.limits.max_value_size;
        if fresh.values().any(|v| v.len() > max) {
            fresh.retain(|k, v| !self.too_big(k, v));
        }
        if fresh.len() > MAX_TRACKED {
            self.held = None;
        } else {
            for k in fresh.keys() {
                note_held(&mut self.held, k, false);
            }
        }
        if fresh.len() >= LARGE {
            // The listing's pages and buffers went as it was built.
            crate::memory::freed();
        }
        self.kvs = Arc::new(fresh);
    }

    /// Applies watch events; returns the keys whose value really changed.
    pub fn apply(&mut self, changes: Vec<Change>) -> Vec<String> {
        let mut changed = Vec::new();
        for (key, mut value) in changes {
            if value.as_ref().is_some_and(|v| self.too_big(&key, v)) {
                // Dropped: the key goes as if it were deleted.
                value = None;
            }
            if value.is_some()
                && !self.kvs.contains_key(&key)
                && self.kvs.len() >= self.limits.max_keys
            {
                self.count_refusal();
                warn!(backend = %self.backend, key = %key, max_keys = self.limits.max_keys, "the store already holds max_keys keys; new key dropped");
                continue;
            }
            let old = self.kvs.get(&key);
            if old == value.as_ref() {
                continue;
            }
            let held = old.is_some();
            self.hold(&key, held);
            let kvs = Arc::make_mut(&mut self.kvs);
            match value {
                Some(v) => {
                    kvs.insert(key.clone(), v);
                }
                None => {
                    kvs.remove(&key);
                }
            }
            changed.push(key);
        }
        // Events come in batches (a deleted prefix of 100,000 keys in hundreds): what
        // counts is how much changed since the last hint.
        self.churn += changed.len();
        if self.churn >= LARGE {
            self.churn = 0;
            crate::memory::freed();
        }
        changed
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    /// True when the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }
}

/// Keys present in only one of `a` and `b`, or with different values (one merge walk).
pub fn diff_keys(a: &KvMap, b: &KvMap) -> Vec<String> {
    diff_iters(a.iter(), b.iter())
}

/// [`diff_keys`] of two walks in key order.
fn diff_iters<'a, 'b>(
    a: impl Iterator<Item = (&'a String, &'a String)>,
    b: impl Iterator<Item = (&'b String, &'b String)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let (mut ia, mut ib) = (a.peekable(), b.peekable());
    loop {
        match (ia.peek(), ib.peek()) {
            (None, None) => return out,
            (Some((k, _)), None) => {
                out.push((*k).clone());
                ia.next();
            }
            (None, Some((k, _))) => {
                out.push((*k).clone());
                ib.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                Ordering::Less => {
                    out.push((*ka).clone());
                    ia.next();
                }
                Ordering::Greater => {
                    out.push((*kb).clone());
                    ib.next();
                }
                Ordering::Equal => {
                    if va != vb {
                        out.push((*ka).clone());
                    }
                    ia.next();
                    ib.next();
                }
            },
        }
    }
}

/// The prefixes to list and watch for resources reading `lists` of key prefixes: every
/// prefix, without those already covered by a shorter one.
pub fn watch_prefixes_of<'a>(lists: impl Iterator<Item = &'a [String]>) -> Vec<String> {
    let mut all: Vec<String> = lists.flatten().cloned().collect();
    all.sort();
    all.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in all {
        if !out.iter().any(|q| p.starts_with(q.as_str())) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_value_size: usize, max_keys: usize) -> StoreLimits {
        StoreLimits {
            max_value_size,
            max_keys,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> KvMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn diff_finds_adds_changes_and_removals() {
        let a = map(&[("/a", "1"), ("/b", "2"), ("/c", "3")]);
        let b = map(&[("/a", "1"), ("/b", "X"), ("/d", "4")]);
        assert_eq!(diff_keys(&a, &b), vec!["/b", "/c", "/d"]);
        let mut s = Store::default();
        assert_eq!(s.replace(&a).len(), 3);
        assert!(s.replace(&a).is_empty());
    }

    #[test]
    fn an_empty_store_adopts_a_listing_and_a_full_one_diffs_it() {
        let mut s = Store::limited("b", limits(3, 3));
        s.adopt(map(&[("/a", "1"), ("/b", "2"), ("/c", "3"), ("/d", "4")]));
        assert!(s.is_empty(), "over max_keys: refused");
        assert!(s.take_held().expect("nothing noted").is_empty());
        s.adopt(map(&[("/a", "1"), ("/b", "long"), ("/c", "3")]));
        assert_eq!(*s.snapshot(), map(&[("/a", "1"), ("/c", "3")]));
        assert_eq!(s.refused(), 2, "the refused listing and the long value");
        let held = s.take_held().expect("two keys are tracked");
        assert_eq!(held.len(), 2);
        assert!(held.values().all(|had| !had), "neither was held before");
        s.adopt(map(&[("/a", "1"), ("/c", "4")]));
        assert_eq!(*s.snapshot(), map(&[("/a", "1"), ("/c", "4")]), "diffed");
        let held = s.take_held().expect("tracked");
        assert_eq!(held.len(), 1, "only the changed key: {held:?}");
        assert_eq!(held.get("/c"), Some(&true));
    }

    #[test]
    fn apply_skips_no_ops() {
        let mut s = Store::default();
        s.replace(&map(&[("/a", "1")]));
        let changed = s.apply(vec![
            ("/a".into(), Some("1".into())),
            ("/b".into(), Some("2".into())),
            ("/zz".into(), None),
            ("/a".into(), None),
        ]);
        assert_eq!(changed, vec!["/b", "/a"]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn changed_keys_are_held_with_whether_the_store_had_them() {
        let mut s = Store::default();
        s.replace(&map(&[("/a", "1"), ("/b", "2")]));
        let held = |s: &mut Store| {
            let mut v: Vec<(String, bool)> = s.take_held().unwrap().into_iter().collect();
            v.sort();
            v
        };
        assert_eq!(held(&mut s), [("/a".into(), false), ("/b".into(), false)]);
        s.apply(vec![
            ("/a".into(), None),
            ("/a".into(), Some("new".into())),
            ("/b".into(), Some("2".into())),
            ("/c".into(), Some("3".into())),
        ]);
        assert_eq!(
            held(&mut s),
            [("/a".into(), true), ("/c".into(), false)],
            "the first change of a key says whether it was there; a no-op is no change"
        );
        s.replace(&map(&[("/c", "3")]));
        assert_eq!(held(&mut s), [("/a".into(), true), ("/b".into(), true)]);
        let many: KvMap = (0..=MAX_TRACKED)
            .map(|i| (format!("/k{i}"), "v".into()))
            .collect();
        s.replace(&many);
        assert_eq!(s.take_held(), None, "too many to track");
        assert_eq!(s.take_held(), Some(HashMap::new()));
    }

    #[test]
    fn covered_prefixes_are_dropped() {
        let a = vec!["/app/servers".to_string(), "/app".to_string()];
        let b = vec!["/other".to_string(), "/app/x".to_string()];
        assert_eq!(
            watch_prefixes_of([a.as_slice(), b.as_slice()].into_iter()),
            vec!["/app", "/other"]
        );
    }

    #[test]
    fn values_over_max_value_size_are_dropped_with_their_key() {
        let mut s = Store::limited("b", limits(4, 10));
        let changed = s.replace(&map(&[("/a", "1234"), ("/big", "12345")]));
        assert_eq!(changed, vec!["/a"]);
        assert_eq!(s.refused(), 1);
        // An event growing a value past the limit removes the key.
        let changed = s.apply(vec![("/a".into(), Some("123456".into()))]);
        assert_eq!(changed, vec!["/a"]);
        assert!(s.is_empty());
        assert_eq!(s.refused(), 2);
    }

    #[test]
    fn a_listing_over_max_keys_is_refused_and_the_last_good_keys_stay() {
        let mut s = Store::limited("b", limits(100, 2));
        s.replace(&map(&[("/a", "1"), ("/b", "2")]));
        let changed = s.replace(&map(&[("/a", "1"), ("/b", "2"), ("/c", "3")]));
        assert!(changed.is_empty());
        assert_eq!(s.len(), 2);
        // Events cannot add past it either, but may change what is there.
        let changed = s.apply(vec![
            ("/c".into(), Some("3".into())),
            ("/a".into(), Some("9".into())),
        ]);
        assert_eq!(changed, vec!["/a"]);
        assert_eq!(s.refused(), 2);
    }
}
