//! Resources whose live file or proxy is behind the store, for `/ready`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Where a resource stands after its last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceState {
    /// The file and the proxy run what the store says.
    InStep,
    /// Behind, and being retried (a reload owed, a full disk, a command that could
    /// not start): `/ready` is 503 until it catches up.
    Retrying(String),
    /// Behind because the new render was refused (a template error, a failed check, a
    /// guard): the last good file keeps serving and retrying cannot help until the data
    /// changes, so `/ready` stays 200 and names it.
    Refused(String),
}

/// Every resource not in step, by name (sorted, so `/ready` is stable).
#[derive(Debug, Default)]
pub struct Behind {
    states: Mutex<BTreeMap<String, ResourceState>>,
}

impl Behind {
    /// Records `resource`'s state.
    pub fn set(&self, resource: &str, state: ResourceState) {
        let mut map = self.map();
        if state == ResourceState::InStep {
            map.remove(resource);
        } else {
            map.insert(resource.to_owned(), state);
        }
    }

    /// Forgets every resource not in `keep` (after a SIGHUP removed them).
    pub fn retain(&self, keep: &[String]) {
        self.map().retain(|name, _| keep.contains(name));
    }

    /// `name (why), ...` of the resources being retried, if any.
    pub fn retrying(&self) -> Option<String> {
        self.list(|s| match s {
            ResourceState::Retrying(why) => Some(why),
            _ => None,
        })
    }

    /// `name (why), ...` of the resources whose render was refused, if any.
    pub fn refused(&self) -> Option<String> {
        self.list(|s| match s {
            ResourceState::Refused(why) => Some(why),
            _ => None,
        })
    }

    fn list(&self, pick: impl Fn(&ResourceState) -> Option<&String>) -> Option<String> {
        let map = self.map();
        let items: Vec<String> = map
            .iter()
            .filter_map(|(name, s)| pick(s).map(|why| format!("{name} ({why})")))
            .collect();
        (!items.is_empty()).then(|| items.join(", "))
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, ResourceState>> {
        // Nothing panics while holding the lock; the map stays valid regardless.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_and_refused_are_listed_apart_and_cleared_when_in_step() {
        let b = Behind::default();
        b.set("web", ResourceState::Retrying("reload pending".into()));
        b.set("api", ResourceState::Refused("check failed".into()));
        assert_eq!(b.retrying().as_deref(), Some("web (reload pending)"));
        assert_eq!(b.refused().as_deref(), Some("api (check failed)"));
        b.set("web", ResourceState::InStep);
        assert_eq!(b.retrying(), None);
        b.retain(&[]);
        assert_eq!(b.refused(), None);
    }
}
