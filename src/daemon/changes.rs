//! The keys that changed for one resource between two snapshots its worker took: the
//! feed notes them as it publishes, the worker takes them with its snapshot, and its
//! entry cache learns them (`template::basis`), so a render looks only at those keys.
//!
//! Taking and noting are one step each under the log's lock, and the feed holds every
//! resource's lock while it publishes (notes, then sends the snapshot): a worker
//! always takes exactly the keys that changed up to the snapshot it takes.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::store::{Held, note_held};

/// Full keys changed since the last take, each with whether the store held it before;
/// `None` when not known (at the start, after a full listing, past
/// [`crate::store::MAX_TRACKED`]).
type Pending = Held;

/// One resource's changed keys.
#[derive(Debug, Default)]
pub struct ChangeLog {
    pending: Mutex<Pending>,
}

/// The feed's hold on one log while it publishes.
pub struct Noting<'a>(MutexGuard<'a, Pending>);

impl ChangeLog {
    /// Locks the log for the feed, until the snapshot is sent.
    pub fn lock(&self) -> Noting<'_> {
        Noting(self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes the snapshot `snapshot` gives (the latest published) and the keys changed
    /// up to it since the last take; nothing is taken when there is no snapshot.
    pub fn take<T>(&self, snapshot: impl FnOnce() -> Option<T>) -> Option<(T, Pending)> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let snap = snapshot()?;
        Some((snap, pending.replace(HashMap::new())))
    }
}

impl Noting<'_> {
    /// Notes `key`, changed now, which the store held before or not.
    pub fn note(&mut self, key: &str, held: bool) {
        note_held(&mut self.0, key, held);
    }

    /// Which keys changed is not known.
    pub fn unknown(&mut self) {
        *self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_TRACKED;

    #[test]
    fn a_take_gets_the_keys_noted_since_the_last_one() {
        let log = ChangeLog::default();
        assert_eq!(log.take(|| None::<u8>), None, "no snapshot: nothing taken");
        let (snap, pending) = log.take(|| Some(1)).unwrap();
        assert_eq!((snap, pending), (1, None), "not known at the start");
        {
            let mut n = log.lock();
            n.note("/a", true);
            n.note("/a", false);
            n.note("/b", false);
        }
        let (_, pending) = log.take(|| Some(2)).unwrap();
        let want: HashMap<String, bool> = [("/a".into(), true), ("/b".into(), false)].into();
        assert_eq!(pending, Some(want), "the first note of a key wins");
        assert_eq!(log.take(|| Some(3)).unwrap().1, Some(HashMap::new()));
        {
            let mut n = log.lock();
            for i in 0..=MAX_TRACKED {
                n.note(&i.to_string(), true);
            }
        }
        assert_eq!(log.take(|| Some(4)).unwrap().1, None, "too many");
        log.lock().unknown();
        assert_eq!(log.take(|| Some(5)).unwrap().1, None);
    }
}
