//! The keys of the mappings being read, so that a key given twice in one mapping is
//! found again (yaml.v2 decodes into a Go map: the later value replaces the earlier one).
//! Each key remembers which entries its value wrote, for the walker to kill them.

use std::hash::BuildHasher;
use std::ops::Range;

use hashbrown::HashTable;

/// Mappings with at most this many keys are searched in a row, not through a table.
const LINEAR: usize = 8;

#[derive(Debug, Clone)]
struct KeyRec {
    hash: u64,
    /// The key's text in `Keys::text`.
    text: Range<usize>,
    /// The entries its value wrote.
    entries: Range<usize>,
}

/// One open mapping's keys: `recs[start..]` while it is the innermost.
#[derive(Debug)]
struct Scope {
    start: usize,
    text_start: usize,
    /// An index of the scope's keys, once it has more than [`LINEAR`].
    table: Option<HashTable<usize>>,
}

/// The keys of every open mapping, innermost last.
#[derive(Debug, Default)]
pub(super) struct Keys {
    recs: Vec<KeyRec>,
    text: String,
    scopes: Vec<Scope>,
    hasher: foldhash::fast::RandomState,
}

impl Keys {
    /// A mapping starts (keys go to the innermost one; a merged mapping opens none).
    pub(super) fn open(&mut self) {
        self.scopes.push(Scope {
            start: self.recs.len(),
            text_start: self.text.len(),
            table: None,
        });
    }

    /// The innermost mapping ends.
    pub(super) fn close(&mut self) {
        if let Some(s) = self.scopes.pop() {
            self.recs.truncate(s.start);
            self.text.truncate(s.text_start);
        }
    }

    /// `key` in the innermost mapping, whose value's entries start at `at`: its index,
    /// and the entries an earlier value of the same key wrote (empty for a new key).
    pub(super) fn find_or_add(&mut self, key: &str, at: usize) -> (usize, Range<usize>) {
        let hash = self.hasher.hash_one(key);
        let Some(scope) = self.scopes.last_mut() else {
            unreachable!("a key outside any mapping")
        };
        let (recs, text) = (&self.recs, &self.text);
        let same = |i: &usize| recs[*i].hash == hash && &text[recs[*i].text.clone()] == key;
        let found = match &scope.table {
            Some(table) => table.find(hash, same).copied(),
            None => (scope.start..recs.len()).find(same),
        };
        if let Some(i) = found {
            let old = std::mem::replace(&mut self.recs[i].entries, at..at);
            return (i, old);
        }
        let i = self.recs.len();
        let start = self.text.len();
        self.text.push_str(key);
        self.recs.push(KeyRec {
            hash,
            text: start..self.text.len(),
            entries: at..at,
        });
        let recs = &self.recs;
        if let Some(table) = &mut scope.table {
            table.insert_unique(hash, i, |j| recs[*j].hash);
        } else if i - scope.start >= LINEAR {
            let mut table = HashTable::with_capacity(2 * (i - scope.start + 1));
            for (j, r) in recs.iter().enumerate().skip(scope.start) {
                table.insert_unique(r.hash, j, |j| recs[*j].hash);
            }
            scope.table = Some(table);
        }
        (i, at..at)
    }

    /// The value of key `i` wrote the entries up to `end`.
    pub(super) fn set_end(&mut self, i: usize, end: usize) {
        self.recs[i].entries.end = end;
    }
}
