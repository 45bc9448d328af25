//! The Docker registrar's keepers: one [`keeper::keep`](super::keeper::keep) task per
//! registered container, started when a container becomes wanted and stopped (which
//! deregisters it at once) when it is not any more or its key or value changed.
//!
//! One keeper per container, each with its own etcd lease, rather than one shared lease:
//! a container leaves by revoking its own lease (its key and ownership record go in one
//! step, and nothing of another container's), a refresh failure of one key never touches
//! the others, and the keeper's tested outage handling is used unchanged.

use std::collections::HashMap;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::docker_owner::{self, Owner};
use super::keeper::{self, Outcome};
use super::{RegisterError, Registration};
use crate::backend::BackendConfig;

/// A container that is to be registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// Its name, for logs.
    pub name: String,
    pub reg: Registration,
}

/// A running keeper.
struct Active {
    key: String,
    value: String,
    stop: CancellationToken,
}

/// What a finished keeper task reports: its container id and how it ended.
type Finished = (String, Result<Outcome, RegisterError>);

/// Every container's keeper.
pub struct Keepers<'a> {
    cfg: &'a BackendConfig,
    owner: &'a Owner,
    shutdown: CancellationToken,
    /// Each known container's registration, by container id (a container that is not
    /// running, not healthy or whose templates were refused is absent).
    wanted: HashMap<String, Wanted>,
    /// The keepers running, by container id.
    active: HashMap<String, Active>,
    tasks: JoinSet<Finished>,
    /// Set when a keeper could not deregister at its end.
    left_behind: bool,
}

impl<'a> Keepers<'a> {
    pub fn new(cfg: &'a BackendConfig, owner: &'a Owner, shutdown: CancellationToken) -> Self {
        Keepers {
            cfg,
            owner,
            shutdown,
            wanted: HashMap::new(),
            active: HashMap::new(),
            tasks: JoinSet::new(),
            left_behind: false,
        }
    }

    /// Replaces what is wanted with a full listing: containers missing from it go.
    pub async fn replace_all(&mut self, all: HashMap<String, Wanted>) -> Result<(), RegisterError> {
        let gone: Vec<String> = self
            .wanted
            .keys()
            .chain(self.active.keys())
            .filter(|id| !all.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            self.set(&id, None).await?;
        }
        for (id, w) in all {
            self.set(&id, Some(w)).await?;
        }
        Ok(())
    }

    /// Sets what container `id` wants (`None`: not registered) and starts or stops its
    /// keeper to match; a key another container holds is left to that container.
    pub async fn set(&mut self, id: &str, want: Option<Wanted>) -> Result<(), RegisterError> {
        match want {
            Some(w) => {
                self.wanted.insert(id.to_string(), w);
            }
            None => {
                self.wanted.remove(id);
            }
        }
        let freed = self.sync(id).await?;
        if let Some(key) = freed {
            // Another container that wanted the same key may have it now.
            let waiting: Vec<String> = self
                .wanted
                .iter()
                .filter(|(other, w)| w.reg.key == key && !self.active.contains_key(*other))
                .map(|(other, _)| other.clone())
                .collect();
            for other in waiting {
                self.sync(&other).await?;
            }
        }
        Ok(())
    }

    /// Brings container `id`'s keeper in line with what it wants; returns a key it let go.
    async fn sync(&mut self, id: &str) -> Result<Option<String>, RegisterError> {
        let want = self.wanted.get(id).cloned();
        let mut freed = None;
        if let Some(a) = self.active.get(id) {
            let same = want
                .as_ref()
                .is_some_and(|w| w.reg.key == a.key && w.reg.value == a.value);
            if same {
                return Ok(None);
            }
            a.stop.cancel();
            if let Some(a) = self.active.remove(id) {
                info!(container = %id, key = %a.key, "deregistering");
                freed = Some(a.key);
            }
        }
        let Some(w) = want else {
            return Ok(freed);
        };
        if let Some((holder, _)) = self.active.iter().find(|(_, a)| a.key == w.reg.key) {
            warn!(container = %w.name, key = %w.reg.key, holder = %holder,
                "not registered: another container holds this key");
            return Ok(freed);
        }
        let store = docker_owner::store(self.cfg, &w.reg, self.owner)
            .await
            .map_err(|source| RegisterError::Fatal {
                key: w.reg.key.clone(),
                source,
            })?;
        let stop = self.shutdown.child_token();
        info!(container = %w.name, key = %w.reg.key, value = %w.reg.value, "registering");
        self.active.insert(
            id.to_string(),
            Active {
                key: w.reg.key.clone(),
                value: w.reg.value.clone(),
                stop: stop.clone(),
            },
        );
        let id = id.to_string();
        let reg = w.reg;
        self.tasks
            .spawn(async move { (id, keeper::keep(reg, store, stop).await) });
        Ok(freed)
    }

    /// Waits for a keeper to end; a fatal store error is returned (the registrar stops).
    /// Pending while no keeper runs.
    pub async fn next_end(&mut self) -> Result<(), RegisterError> {
        let Some(joined) = self.tasks.join_next().await else {
            return std::future::pending().await;
        };
        match joined {
            Ok((_, Ok(Outcome::Clean))) => Ok(()),
            Ok((_, Ok(Outcome::LeftBehind))) => {
                self.left_behind = true;
                Ok(())
            }
            Ok((id, Err(e))) => {
                self.active.remove(&id);
                Err(e)
            }
            Err(e) => {
                warn!(error = %e, "a registration task failed");
                self.left_behind = true;
                Ok(())
            }
        }
    }

    /// Stops every keeper (each deregisters) and waits for them.
    pub async fn finish(mut self) -> Outcome {
        self.shutdown.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            if !matches!(joined, Ok((_, Ok(Outcome::Clean)))) {
                self.left_behind = true;
            }
        }
        if self.left_behind {
            Outcome::LeftBehind
        } else {
            Outcome::Clean
        }
    }
}
