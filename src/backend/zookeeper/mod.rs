//! ZooKeeper backend (3.6 or later): a znode's path is the key and its data the value,
//! read as confd's ZooKeeper backend reads them (see [`tree`] for the exact rules).
//!
//! A prefix names a znode: the listing is that node and every node below it (not a
//! string prefix as in etcd: `/app/servers` does not take in `/app/servers2`). Listing
//! reads each level of the tree with pipelined multi-reads, so one node's data and
//! children always come from one request; `/zookeeper` is never listed.
//!
//! Watching (see [`watch`]) sets one persistent recursive watch (`addWatch`) per prefix
//! *before* listing, so no change can fall between the listing and the first event.
//! Each event is applied by re-reading only the node it names (and, for a create or
//! delete, its parent, whose child count decides whether it is a key). After a
//! disconnect the watches are set again (the client does not restore persistent ones)
//! and the prefixes listed again, since events sent meanwhile are lost (ZOOKEEPER-4698);
//! after a session expiry a new session is made, watched and listed. While the ensemble
//! is unreachable, or a prefix turns unreadable (its ACL changed), the daemon keeps the
//! last good snapshot and the watch keeps trying: a watch never stops the daemon.
//!
//! # Layout
//! - `mod.rs`: the [`ZkBackend`] and its listing entry point.
//! - `conn.rs`: the connect string, digest auth, the session, error classification
//!   (shared with `confsync register`).
//! - `tree.rs`: znodes to keys, the level-by-level listing, re-reading named nodes;
//!   with `--nerve`, registrations read as `host:port` (see [`super::nerve`]).
//! - `watch.rs`: the watch loop, reconnects and session expiry.

pub(crate) mod conn;
mod tree;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::{Backend, BackendConfig, BackendError, Snapshot, Update};
use conn::{KIND, Target};
use tree::Reader;

/// Reads and watches prefixes in a ZooKeeper ensemble.
pub struct ZkBackend {
    target: Target,
    /// Read nerve's registrations as `host:port`.
    nerve: bool,
    /// How often a watch lists in full beside its events (`None`: only on reconnects).
    resync: Option<Duration>,
    /// The session `list` reuses; replaced once it has ended.
    cached: Mutex<Option<zk::Client>>,
}

impl ZkBackend {
    /// Checks the nodes and auth in `cfg`; no connection is made until the first `list`
    /// or `watch`.
    pub fn new(cfg: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            target: Target::from_config(cfg)?,
            nerve: cfg.nerve,
            resync: cfg.resync_interval,
            cached: Mutex::new(None),
        })
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            target: &self.target,
            nerve: self.nerve,
        }
    }

    /// One listing on the cached session, making one first when there is none or it
    /// has ended.
    async fn list_once(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        let mut guard = self.cached.lock().await;
        if guard.as_ref().is_none_or(|c| c.state().is_terminated()) {
            *guard = Some(self.target.connect().await?);
        }
        let Some(client) = guard.as_ref() else {
            return Err(BackendError::transient(
                KIND,
                self.target.shown(),
                "no session",
            ));
        };
        match self.reader().list(client, &tree::roots_of(prefixes)).await {
            Ok(kvs) => Ok(Snapshot {
                kvs,
                revision: None,
            }),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Backend for ZkBackend {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError> {
        match self.list_once(prefixes).await {
            // The cached session may have been lost since the last call: one retry on a
            // new one before reporting the ensemble as down.
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
        // Not needed (the watch re-lists): the copy of the first listing goes at once.
        drop(from);
        watch::run(self, prefixes, tx, shutdown).await
    }
}
