//! The daemon's copy of a backend's keys: replaced by listings, patched by watch events,
//! and diffed so that only resources whose keys changed are rendered again.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::backend::{Change, KvMap};

/// The last good view of one backend.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// Shared with renders in progress; changed copy-on-write.
    kvs: Arc<KvMap>,
}

impl Store {
    /// The current keys, cheap to clone.
    pub fn snapshot(&self) -> Arc<KvMap> {
        self.kvs.clone()
    }

    /// Replaces everything under `prefixes` with a fresh listing; returns the keys that
    /// were added, changed or removed.
    pub fn replace(&mut self, fresh: KvMap) -> Vec<String> {
        let changed = diff_keys(&self.kvs, &fresh);
        if !changed.is_empty() {
            // A copy made in key order lays keys and values out in the order renders walk
            // them; a listing arrives in the store's order (Redis SCAN: random), and
            // rendering from it took half again as long at 10,000 keys. Collected, not
            // cloned, its nodes are full (a clone keeps the listing's half-empty ones).
            self.kvs = Arc::new(fresh.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        }
        changed
    }

    /// Applies watch events; returns the keys whose value really changed.
    pub fn apply(&mut self, changes: Vec<Change>) -> Vec<String> {
        let mut changed = Vec::new();
        for (key, value) in changes {
            let same = self.kvs.get(&key) == value.as_ref();
            if same {
                continue;
            }
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
    let mut out = Vec::new();
    let (mut ia, mut ib) = (a.iter().peekable(), b.iter().peekable());
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
        assert_eq!(s.replace(a.clone()).len(), 3);
        assert!(s.replace(a).is_empty());
    }

    #[test]
    fn apply_skips_no_ops() {
        let mut s = Store::default();
        s.replace(map(&[("/a", "1")]));
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
    fn covered_prefixes_are_dropped() {
        let a = vec!["/app/servers".to_string(), "/app".to_string()];
        let b = vec!["/other".to_string(), "/app/x".to_string()];
        assert_eq!(
            watch_prefixes_of([a.as_slice(), b.as_slice()].into_iter()),
            vec!["/app", "/other"]
        );
    }
}
