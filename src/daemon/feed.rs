//! One task per backend: the first good listing, then watch or poll; every change goes
//! into the backend's [`Store`], a new snapshot is published, and the resources whose
//! prefixes the changed keys fall under are told.
//!
//! Freshness: the keys are current at every good listing and, while a watch is
//! connected, all along (confirmed every [`CONFIRM_EVERY`] to the metrics and `/ready`).
//! A watch also lists in full every `resync_interval` (inside the backend's watch loop
//! where it [resyncs by itself](Backend::resyncs_while_watching), else here).
//!
//! Saved state: with a state directory, every published snapshot is also written to disk
//! ([`crate::state`]); when the first listing after start fails, the saved one is served
//! until the backend answers, and that first listing is then diffed against it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::{
    Backend, BackendConfig, BackendError, Backoff, KvMap, Snapshot, Update, under_any,
};
use crate::state::{self, Identity};
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
    /// Which keys changed, for the resource's worker to take with its snapshot.
    pub log: Arc<super::changes::ChangeLog>,
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
    /// The state directory: the last good snapshot is kept in it across restarts.
    pub state_dir: Option<PathBuf>,
}

/// How often a connected watch is confirmed as current (metrics and `/ready`).
const CONFIRM_EVERY: Duration = Duration::from_secs(5);

impl Feed {
    /// Runs until `stop` is cancelled; with a state directory, the snapshot writer runs
    /// beside it and writes the last state once the feed has stopped.
    pub async fn run(self, stop: CancellationToken) {
        self.services.metrics.init_backend(&self.name);
        let max = self.cfg.max_staleness;
        self.services.health.set_max_staleness(&self.name, max);
        let saved = self.state_dir.as_deref().map(|dir| {
            let id = Identity::new(&self.cfg, &self.prefixes);
            (id.path_in(dir), id)
        });
        let (synced, synced_rx) = watch::channel(None);
        let writer = saved
            .clone()
            .map(|(path, id)| state::run_writer(path, id, self.snapshot.subscribe(), synced_rx));
        let feed = Running {
            store: Store::limited(&self.name, self.cfg.store_limits)
                .counted_in(self.services.metrics.clone()),
            up: true,
            feed: self,
            saved,
            serving_saved: false,
            synced,
            watching: false,
        };
        match writer {
            Some(writer) => drop(tokio::join!(feed.run(&stop), writer)),
            None => feed.run(&stop).await,
        }
    }
}

struct Running {
    feed: Feed,
    store: Store,
    /// Whether the backend answered last time (state changes are logged, not retries).
    up: bool,
    /// Where the snapshot is saved, for whom.
    saved: Option<(PathBuf, Identity)>,
    /// The store holds a snapshot saved by an earlier run, not yet confirmed.
    serving_saved: bool,
    /// When the keys were last known current (tells the snapshot writer).
    synced: watch::Sender<Option<SystemTime>>,
    /// In the watch loop: a connected watch keeps the keys current.
    watching: bool,
}

impl Running {
    async fn run(mut self, stop: &CancellationToken) {
        let Some(first) = self.first_listing(stop).await else {
            return;
        };
        // The watch starts from the listing itself (its revision, and for Redis its keys):
        // no copy of it is made for the watch. Where the watch needs only the revision
        // and no saved snapshot is served, the store keeps the listing itself.
        let resynced = std::mem::take(&mut self.serving_saved);
        let from = if !resynced && self.feed.backend.listing_can_be_kept() {
            let revision = first.revision;
            self.store.adopt(first.kvs);
            self.publish(None);
            Arc::new(Snapshot {
                kvs: KvMap::new(),
                revision,
            })
        } else {
            let changed = self.store.replace(&first.kvs);
            if resynced {
                let f = &self.feed;
                info!(backend = %f.name, changed = changed.len(), "backend answered; resynced from the saved snapshot (only resources whose keys changed render again)");
                f.services.metrics.set_serving_saved_state(&f.name, false);
                self.publish(Some(&changed));
            } else {
                self.publish(None);
            }
            // The keys of the whole first listing are not kept for the life of the watch.
            Arc::new(first)
        };
        self.synced();
        let f = &self.feed;
        if f.cfg.watch && f.backend.can_watch() {
            self.watching = true;
            self.watch_loop(from, stop).await;
        } else {
            if f.cfg.watch {
                warn!(backend = %f.name, kind = f.backend.kind(), "this backend cannot watch; polling instead");
            }
            self.poll_loop(stop).await;
        }
    }

    /// The keys are current now: metrics, `/ready` and the snapshot writer are told.
    fn synced(&self) {
        let f = &self.feed;
        let now = SystemTime::now();
        f.services.metrics.synced_at(&f.name, now);
        f.services
            .health
            .backend_current(&f.name, Duration::ZERO, false);
        f.services.status.backend_current(&f.name, now, false);
        self.synced.send_replace(Some(now));
    }

    /// At start with the backend unreachable: serves the snapshot an earlier run saved.
    async fn serve_saved(&mut self) {
        let Some((path, id)) = self.saved.clone() else {
            return;
        };
        let file = path.display().to_string();
        let name = self.feed.name.clone();
        let loaded = tokio::task::spawn_blocking(move || state::load(&path, &id)).await;
        let saved = match loaded {
            Ok(Ok(Some(saved))) => saved,
            Ok(Ok(None)) => {
                info!(backend = %name, file, "no saved snapshot; nothing renders until the backend answers");
                return;
            }
            Ok(Err(e)) => {
                warn!(backend = %name, error = %e, "ignoring the saved snapshot; nothing renders until the backend answers");
                return;
            }
            Err(e) => {
                warn!(backend = %name, error = %e, "loading the saved snapshot failed");
                return;
            }
        };
        let age = saved.age();
        warn!(backend = %name, file, age_s = age.as_secs(), keys = saved.kvs.len(), "backend unreachable at start; serving its saved snapshot until it answers");
        let s = &self.feed.services;
        s.notifier
            .status(&format!("backend {name} unreachable: serving saved state"));
        s.metrics.set_serving_saved_state(&name, true);
        s.metrics.synced_at(&name, saved.synced_at);
        s.health.backend_current(&name, age, true);
        s.status.backend_current(&name, saved.synced_at, true);
        self.serving_saved = true;
        self.store.replace(&saved.kvs);
        self.publish(None);
    }

    fn set_up(&mut self, up: bool, why: Option<&str>) {
        if !up && self.up && self.watching {
            // A connected watch was current until it broke, a moment ago.
            self.synced();
        }
        let f = &self.feed;
        f.services.metrics.set_backend_up(&f.name, up);
        f.services.health.set_backend_up(&f.name, up);
        f.services.status.backend_up(&f.name, up, why);
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
        let mut tried_saved = false;
        loop {
            match self.feed.backend.list(&self.feed.prefixes).await {
                Ok(s) => {
                    self.set_up(true, None);
                    self.feed.services.status.backend_listed(&self.feed.name);
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
                    if !std::mem::replace(&mut tried_saved, true) {
                        self.serve_saved().await;
                    }
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
    fn publish(&mut self, changed: Option<&[String]>) {
        let f = &self.feed;
        let now = Instant::now();
        f.services.metrics.set_keys_held(&f.name, self.store.len());
        f.services.status.backend_keys(&f.name, self.store.len());
        // Every resource's changed keys are noted and the snapshot sent while their logs
        // are held, so that a worker takes a snapshot with exactly its keys.
        let held = self.store.take_held();
        let mut logs: Vec<_> = f.subscribers.iter().map(|s| s.log.lock()).collect();
        for (s, log) in f.subscribers.iter().zip(&mut logs) {
            match (changed, &held) {
                (Some(keys), Some(held)) => {
                    for k in keys.iter().filter(|k| under_any(k, &s.prefixes)) {
                        match held.get(k) {
                            Some(&h) => log.note(k, h),
                            None => log.unknown(),
                        }
                    }
                }
                _ => log.unknown(),
            }
        }
        f.snapshot.send_replace(Some(self.store.snapshot()));
        drop(logs);
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
        let mut confirm = every(Some(CONFIRM_EVERY));
        // Backends that do not resync inside their watch are listed here, beside it.
        let resync = self
            .feed
            .cfg
            .resync_interval
            .filter(|_| !self.feed.backend.resyncs_while_watching());
        let mut resync_tick = every(resync);
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                u = rx.recv() => match u {
                    Some(u) => u,
                    None => break,
                },
                _ = confirm.tick() => {
                    if self.up {
                        self.synced();
                    }
                    continue;
                }
                _ = resync_tick.tick(), if resync.is_some() => {
                    match self.feed.backend.list(&self.feed.prefixes).await {
                        Ok(s) => Update::Resync(s),
                        Err(e) => {
                            // The watch reports outages itself; this only counts it.
                            warn!(backend = %self.feed.name, error = %e, "periodic resync listing failed");
                            self.feed.services.metrics.backend_error(&self.feed.name);
                            continue;
                        }
                    }
                }
            };
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
            if self.up {
                self.synced();
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
                self.feed.services.status.backend_listed(&self.feed.name);
                let changed = self.store.replace(&s.kvs);
                if !changed.is_empty() {
                    debug!(backend = %self.feed.name, keys = changed.len(), "a full listing changed keys");
                }
                changed
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
                    self.feed.services.status.backend_listed(&self.feed.name);
                    let changed = self.store.replace(&s.kvs);
                    if !changed.is_empty() {
                        self.publish(Some(&changed));
                    }
                    self.synced();
                }
                Err(e) => self.set_up(false, Some(&e.to_string())),
            }
        }
    }
}

/// A timer ticking every `period` (first after one period); never, for `None`.
fn every(period: Option<Duration>) -> tokio::time::Interval {
    let period = period.unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}
