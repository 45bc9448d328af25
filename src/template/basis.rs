//! What a resource's last good render knew, so that the next one starts from it: the
//! keys changed since (each with whether the store held it then), and how many keys
//! the render saw. A daemon's worker notes the changes of each snapshot it takes
//! ([`Basis::note`]); a render that knows them counts its keys from the changed ones
//! alone and splices its `gets` loops (see `template::fragments`) instead of walking
//! every key.
//!
//! Only a superset of the real changes is ever needed: a key noted that did not change
//! is looked at again for nothing. When the changes are not known (the first render, a
//! full listing, more than [`crate::store::MAX_TRACKED`] keys since the last good
//! render, a cache nobody notes changes to) every render walks every key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::MAX_TRACKED;

/// Full keys changed since the last good render, each with whether the store held it
/// then.
pub type Changed = BTreeMap<String, bool>;

/// How many keys a render saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Visible keys, once per visible prefix they are under (`View::len`).
    pub visible: usize,
    /// Visible keys whose memkv name is not their own (a Go render then builds
    /// memkv's map).
    pub renamed: usize,
}

/// What a render starts from: its cache's state when it began.
#[derive(Debug, Clone)]
pub struct Since {
    /// Which notes the render saw (a commit after later notes is refused).
    epoch: u64,
    /// The keys changed since the last good render, when known.
    pub changed: Option<Arc<Changed>>,
    /// The last good render's counts, when known.
    pub counts: Option<Counts>,
    /// The epoch the last good render began at: loop fragments it left carry it, and a
    /// loop splices only fragments of that render (not those of a render abandoned at
    /// its timeout, or of one that failed after them).
    pub committed: Option<u64>,
}

impl Since {
    /// The epoch this render began at (what the fragments it leaves carry).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// One resource's basis, kept in its entry cache.
#[derive(Debug, Default)]
pub struct Basis {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Counts the notes.
    epoch: u64,
    /// Someone notes changes (else no render may trust an empty list).
    noted: bool,
    changed: Option<Arc<Changed>>,
    counts: Option<Counts>,
    committed: Option<u64>,
}

impl Basis {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the keys changed since the last note (each with whether the store held it
    /// before), or `None` when they are not known.
    pub fn note(&self, changed: Option<HashMap<String, bool>>) {
        let mut s = self.state();
        s.epoch += 1;
        s.noted = true;
        s.changed = match (s.changed.take(), changed) {
            (Some(mut all), Some(new)) if all.len() + new.len() <= MAX_TRACKED => {
                let m = Arc::make_mut(&mut all);
                for (k, held) in new {
                    // The first note of a key says whether the last good render had it.
                    m.entry(k).or_insert(held);
                }
                Some(all)
            }
            _ => None,
        };
    }

    /// What a render beginning now starts from.
    pub fn since(&self) -> Since {
        let s = self.state();
        Since {
            epoch: s.epoch,
            changed: s.changed.clone().filter(|_| s.noted),
            counts: s.counts,
            committed: s.committed,
        }
    }

    /// A render that began from `since` succeeded, with `counts` when it worked them out
    /// without a guard: it is the new basis, unless changes were noted meanwhile.
    pub fn commit(&self, since: &Since, counts: Option<Counts>) {
        let mut s = self.state();
        if s.epoch != since.epoch {
            return;
        }
        s.changed = Some(Arc::default());
        s.counts = counts;
        s.committed = Some(since.epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[(&str, bool)]) -> Option<HashMap<String, bool>> {
        Some(k.iter().map(|(k, h)| (k.to_string(), *h)).collect())
    }

    #[test]
    fn changes_are_known_only_once_noted_after_a_good_render() {
        let b = Basis::default();
        assert!(b.since().changed.is_none(), "nothing rendered yet");
        let first = b.since();
        b.commit(&first, Some(Counts::default()));
        assert!(b.since().changed.is_none(), "nobody notes changes");
        b.note(None);
        let s = b.since();
        assert!(s.changed.is_none());
        b.commit(&s, None);
        assert_eq!(b.since().changed.as_deref(), Some(&Changed::new()));
        assert_eq!(b.since().committed, Some(s.epoch()));
        b.note(keys(&[("/a", false)]));
        b.note(keys(&[("/a", true), ("/b", true)]));
        let s = b.since();
        let want: Changed = [("/a".into(), false), ("/b".into(), true)].into();
        assert_eq!(
            s.changed.as_deref(),
            Some(&want),
            "the first note of a key wins"
        );
        b.note(keys(&[("/c", true)]));
        b.commit(&s, None);
        assert_eq!(
            b.since().changed.unwrap().len(),
            3,
            "a note came after: refused"
        );
        b.note(None);
        assert!(
            b.since().changed.is_none(),
            "unknown stays unknown until a commit"
        );
    }

    #[test]
    fn too_many_changes_are_not_known() {
        let b = Basis::default();
        b.note(None);
        let s = b.since();
        b.commit(&s, None);
        let many: HashMap<String, bool> =
            (0..=MAX_TRACKED).map(|i| (i.to_string(), true)).collect();
        b.note(Some(many));
        assert!(b.since().changed.is_none());
    }
}
