//! The `{key, value}` entries `get` and `gets` return, and the per-resource cache that
//! hands a render the entries its resource's previous render built.
//!
//! Building an entry (a small Tera map) and dropping it again costs more than the rest
//! of a loop iteration that prints it; in the daemon a watch event changes a few keys of
//! thousands, so a re-render reuses every entry whose key and value are unchanged.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tera::Value;

use super::basis::Basis;
use super::fragments::FragmentCache;

#[derive(serde::Serialize)]
struct Kv<'a> {
    key: &'a str,
    value: &'a str,
}

/// One entry, as the Tera map `{key, value}`.
pub fn entry(key: &str, value: &str) -> Value {
    Value::from_serializable(&Kv { key, value })
}

/// The key and value of an entry [`entry`] built.
fn parts(e: &Value) -> Option<(&str, &str)> {
    let m = e.as_map()?;
    let (_, k) = m.get_index(0)?;
    let (_, v) = m.get_index(1)?;
    Some((k.as_str()?, v.as_str()?))
}

/// The lists `gets` returned during one resource's last render, by pattern. An entry is
/// a pure function of its key and value, so reusing one can never change the output.
/// It also holds the resource's loop fragments ([`FragmentCache`]), which live and die
/// with the same renders, and what its last good render knew ([`Basis`]).
#[derive(Debug, Default)]
pub struct EntryCache {
    lists: Mutex<Lists>,
    fragments: FragmentCache,
    basis: Basis,
}

#[derive(Debug, Default)]
struct Lists {
    /// Pattern -> (the render that last asked for it, its list).
    by_pattern: HashMap<String, (u64, Value)>,
    /// Counts renders, so lists no longer asked for can be dropped.
    render: u64,
}

impl EntryCache {
    /// The entries for `fresh` (key, value pairs in key order) as a Tera list, reusing
    /// the previous list for `pattern` wherever key and value are the same.
    pub fn list<'a>(
        &self,
        pattern: &str,
        fresh: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Value {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let render = lists.render;
        let previous = lists.by_pattern.remove(pattern).map(|(_, list)| list);
        let mut old = previous
            .as_ref()
            .and_then(Value::as_array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|e| parts(e).map(|kv| (kv, e)))
            .peekable();
        let list: Vec<Value> = fresh
            .map(|(key, value)| {
                // Both lists are in key order: one merge walk.
                while old.next_if(|((k, _), _)| *k < key).is_some() {}
                match old.next_if(|(kv, _)| *kv == (key, value)) {
                    Some((_, e)) => e.clone(),
                    None => entry(key, value),
                }
            })
            .collect();
        let list = Value::from(list);
        lists
            .by_pattern
            .insert(pattern.to_string(), (render, list.clone()));
        list
    }

    /// The loop fragments of the resource's last render.
    pub fn fragments(&self) -> &FragmentCache {
        &self.fragments
    }

    /// The keys changed since the resource's last good render, and its counts.
    pub fn basis(&self) -> &Basis {
        &self.basis
    }

    /// Ends a render: lists and loop fragments it did not ask for are dropped.
    pub fn finish_render(&self) {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let render = lists.render;
        lists.by_pattern.retain(|_, (used, _)| *used == render);
        lists.render += 1;
        self.fragments.finish_render();
    }

    /// How many entries the cache holds.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        lists
            .by_pattern
            .values()
            .filter_map(|(_, l)| l.as_array().map(<[Value]>::len))
            .sum()
    }

    /// True when the cache holds no entry.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &Value) -> Vec<(String, String)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let (k, v) = parts(e).unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn reuses_unchanged_entries_and_builds_the_rest() {
        let c = EntryCache::default();
        let first = c.list(
            "/s/*",
            [("/s/a", "1"), ("/s/b", "2"), ("/s/c", "3")].into_iter(),
        );
        c.finish_render();
        let second = c.list(
            "/s/*",
            [("/s/a", "1"), ("/s/b", "9"), ("/s/d", "4")].into_iter(),
        );
        c.finish_render();
        assert_eq!(
            keys(&second),
            [("/s/a", "1"), ("/s/b", "9"), ("/s/d", "4")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let (a1, a2) = (
            &first.as_array().unwrap()[0],
            &second.as_array().unwrap()[0],
        );
        assert!(
            std::ptr::eq(a1.as_map().unwrap(), a2.as_map().unwrap()),
            "unchanged entry reused"
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn lists_no_render_asked_for_are_dropped() {
        let c = EntryCache::default();
        c.list("/a/*", [("/a/x", "1")].into_iter());
        c.list("/b/*", [("/b/x", "1")].into_iter());
        c.finish_render();
        assert_eq!(c.len(), 2);
        c.list("/a/*", [("/a/x", "1")].into_iter());
        c.finish_render();
        assert_eq!(c.len(), 1);
        c.finish_render();
        assert!(c.is_empty());
    }
}
