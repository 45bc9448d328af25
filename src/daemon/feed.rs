//! One task per backend: the first good listing, then watch or poll; every change goes
//! into the backend's [`Store`], a new snapshot is published, and the resources whose
//! prefixes the changed keys fall under are told.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::{
    Backend, BackendConfig, BackendError, Backoff, KvMap, Snapshot, Update, under_any,
};
use crate::store::Store;

use super::Services;

/// A resource that wants to hear about changes under `prefixes`.
pub struct Subscriber {
    /// Full key prefixes the resource reads.
    pub prefixes: Vec<String>,
    /// Set to the time of the latest change that touches the resource.
    pub dirty: watch::Sender<Option<Instant>>,
    /// Keys changed under `prefixes` since the resource last took the count (for logs).
    pub changed_keys: Arc<AtomicUsize>,
    /// Changes published that touch the resource, since it last reset the count (two or
    /// more before a sync make a burst).
    pub changes: Arc<AtomicUsize>,
}

/// One backend's feed.
pub struct Feed {
    /// The backend's name (`default` or a `[backends.NAME]`).
    pub name: String,
    pub backend: Arc<dyn Backend>,
    pub cfg: BackendConfig,
    /// Every prefix its resources need.
    pub prefixes: Vec<String>,
    pub subscribers: Vec<Subscriber>,
    /// The latest good snapshot; `None` until the first listing succeeds.
    pub snapshot: watch::Sender<Option<Arc<KvMap>>>,
    pub services: Services,
    /// Where a fatal backend error (bad credentials) is reported, with the backend's name.
    pub fatal: mpsc::Sender<(String, BackendError)>,
    /// Told how the first listing attempt went (`Err` says why the backend is down); a
    /// fatal error goes to `fatal` instead and this is dropped.
    pub first_try: Option<oneshot::Sender<Result<(), String>>>,
}

impl Feed {
    /// Runs until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let mut feed = Running {
            store: Store::default(),
            up: true,
            feed: self,
        };
        let Some(first) = feed.first_listing(&stop).await else {
            return;
        };
        // The watch starts from what the store holds (its revision, and for Redis its keys).
        let from = Arc::new(first.clone());
        feed.store.replace(first.kvs);
        feed.publish(None);
        let f = &feed.feed;
        if f.cfg.watch && f.backend.can_watch() {
            feed.watch_loop(from, &stop).await;
        } else {
            if f.cfg.watch {
                warn!(backend = %f.name, kind = f.backend.kind(), "this backend cannot watch; polling instead");
            }
            feed.poll_loop(&stop).await;
        }
    }
}

struct Running {
    feed: Feed,
    store: Store,
    /// Whether the backend answered last time (state changes are logged, not retries).
    up: bool,
}

impl Running {
    fn set_up(&mut self, up: bool, why: Option<&str>) {
        let f = &self.feed;
        f.services.metrics.set_backend_up(&f.name, up);
        f.services.health.set_backend_up(&f.name, up);
        if !up {
            f.services.metrics.backend_error(&f.name);
        }
        if up == self.up {
            return;
        }
        self.up = up;
        if up {
            info!(backend = %f.name, "backend reachable again");
            f.services
                .notifier
                .status(&format!("backend {} reachable again", f.name));
        } else {
            let why = why.unwrap_or("unreachable");
            warn!(backend = %f.name, error = %why, "backend unreachable; keeping the last good snapshot");
            f.services
                .notifier
                .status(&format!("backend {} unreachable: {why}", f.name));
        }
    }

    /// Lists until it works; nothing is rendered before a good listing.
    async fn first_listing(&mut self, stop: &CancellationToken) -> Option<Snapshot> {
        let mut backoff = Backoff::default();
        loop {
            match self.feed.backend.list(&self.feed.prefixes).await {
                Ok(s) => {
                    self.set_up(true, None);
                    if let Some(tx) = self.feed.first_try.take() {
                        let _ = tx.send(Ok(()));
                    }
                    return Some(s);
                }
                Err(e) if !e.is_transient() => {
                    let _ = self.feed.fatal.send((self.feed.name.clone(), e)).await;
                    return None;
                }
                Err(e) => {
                    self.set_up(false, Some(&e.to_string()));
                    if let Some(tx) = self.feed.first_try.take() {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// Publishes the store and marks the resources that `changed` touches (all of them
    /// for `None`, the first listing).
    fn publish(&self, changed: Option<&[String]>) {
        let f = &self.feed;
        let now = Instant::now();
        f.services.metrics.set_keys_held(&f.name, self.store.len());
        f.services.metrics.synced(&f.name);
        f.snapshot.send_replace(Some(self.store.snapshot()));
        for s in &f.subscribers {
            let hits = match changed {
                None => self.store.len(),
                Some(keys) => keys.iter().filter(|k| under_any(k, &s.prefixes)).count(),
            };
            if hits > 0 || changed.is_none() {
                s.changed_keys.fetch_add(hits, Ordering::Relaxed);
                s.changes.fetch_add(1, Ordering::Relaxed);
                s.dirty.send_replace(Some(now));
            }
        }
    }

    async fn watch_loop(&mut self, from: Arc<Snapshot>, stop: &CancellationToken) {
        let (tx, mut rx) = mpsc::channel::<Update>(1024);
        let backend = self.feed.backend.clone();
        let prefixes = self.feed.prefixes.clone();
        let watcher = tokio::spawn({
            let stop = stop.clone();
            async move { backend.watch(prefixes, from, tx, stop).await }
        });
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                u = rx.recv() => u,
            };
            let Some(first) = first else { break };
            // Take the published snapshot back so the store patches its map in place
            // instead of copying every key; workers wait for the next one meanwhile.
            self.feed.snapshot.send_replace(None);
            let mut changed = self.apply(first);
            // Take everything already queued: one publish per burst.
            while let Ok(more) = rx.try_recv() {
                changed.extend(self.apply(more));
            }
            if changed.is_empty() {
                self.feed.snapshot.send_replace(Some(self.store.snapshot()));
            } else {
                self.publish(Some(&changed));
            }
        }
        if let Ok(Err(e)) = watcher.await {
            let _ = self.feed.fatal.send((self.feed.name.clone(), e)).await;
        }
    }

    fn apply(&mut self, u: Update) -> Vec<String> {
        match u {
            Update::Changes(c) => self.store.apply(c),
            Update::Resync(s) => {
                self.set_up(true, None);
                self.store.replace(s.kvs)
            }
            Update::Down(why) => {
                self.set_up(false, Some(&why));
                Vec::new()
            }
            Update::Up => {
                self.set_up(true, None);
                Vec::new()
            }
        }
    }

    async fn poll_loop(&mut self, stop: &CancellationToken) {
        let interval = self
            .feed
            .cfg
            .interval
            .unwrap_or(std::time::Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.feed.backend.list(&self.feed.prefixes).await {
                Ok(s) => {
                    self.set_up(true, None);
                    let changed = self.store.replace(s.kvs);
                    if !changed.is_empty() {
                        self.publish(Some(&changed));
                    }
                }
                Err(e) => self.set_up(false, Some(&e.to_string())),
            }
        }
    }
}
