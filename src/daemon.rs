//! The render loop: list, keep the last good snapshot, watch or poll, re-render only the
//! resources whose keys changed, and keep running through every transient failure.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::backend::{self, Backend, BackendError, Backoff, Snapshot, Update};
use crate::config::{ResourceSet, RunConfig};
use crate::resource::{self, Outcome, SyncOptions};
use crate::store::{self, Store};

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The backend cannot work with this configuration (bad URL, wrong password).
    #[error("backend: {0}")]
    Fatal(BackendError),
    /// `--onetime` could not read the backend.
    #[error("backend: {0}")]
    Unreachable(BackendError),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Resources whose last sync failed (render, check, write or reload).
    pub failed: usize,
}

/// The running daemon's state.
struct Daemon {
    cfg: RunConfig,
    set: ResourceSet,
    backend: Arc<dyn Backend>,
    /// Every prefix the resources need, listed and watched together.
    prefixes: Vec<String>,
    store: Store,
    opts: SyncOptions,
    /// Per resource: whether its last sync failed (so a later success is logged).
    failing: Vec<bool>,
}

/// Runs until `shutdown` is cancelled (or once, with `onetime`).
pub async fn run(cfg: RunConfig, set: ResourceSet, shutdown: CancellationToken) -> Result<RunSummary, DaemonError> {
    let backend = backend::build(&cfg.backend).await.map_err(DaemonError::Fatal)?;
    let prefixes = store::watch_prefixes(&set.resources);
    let opts = SyncOptions {
        noop: cfg.noop,
        sync_only: cfg.sync_only,
        keep_stage_file: cfg.keep_stage_file,
    };
    let failing = vec![false; set.resources.len()];
    let mut d = Daemon {
        cfg,
        set,
        backend,
        prefixes,
        store: Store::default(),
        opts,
        failing,
    };
    if d.cfg.onetime {
        let snap = d.backend.list(&d.prefixes).await.map_err(|e| {
            if e.is_transient() { DaemonError::Unreachable(e) } else { DaemonError::Fatal(e) }
        })?;
        d.store.replace(snap.kvs);
        let all: Vec<usize> = (0..d.set.resources.len()).collect();
        d.sync(&all, d.store.len()).await;
        return Ok(d.summary());
    }
    info!(
        backend = d.backend.kind(),
        resources = d.set.resources.len(),
        prefixes = ?d.prefixes,
        watch = d.cfg.backend.watch,
        "confsync started"
    );
    let Some(first) = d.first_listing(&shutdown).await? else {
        return Ok(d.summary());
    };
    let from = Arc::new(first.clone());
    d.store.replace(first.kvs);
    let all: Vec<usize> = (0..d.set.resources.len()).collect();
    d.sync(&all, d.store.len()).await;
    if d.cfg.backend.watch && d.backend.can_watch() {
        d.watch_loop(from, &shutdown).await?;
    } else {
        if d.cfg.backend.watch {
            warn!(backend = d.backend.kind(), interval = ?d.cfg.interval, "this backend cannot watch; polling instead");
        }
        d.poll_loop(&shutdown).await;
    }
    info!("confsync stopped");
    Ok(d.summary())
}

impl Daemon {
    fn summary(&self) -> RunSummary {
        RunSummary {
            failed: self.failing.iter().filter(|f| **f).count(),
        }
    }

    /// Lists until it works (or shutdown); nothing is rendered before a good listing.
    async fn first_listing(&self, shutdown: &CancellationToken) -> Result<Option<Snapshot>, DaemonError> {
        let mut backoff = Backoff::default();
        let mut warned = false;
        loop {
            match self.backend.list(&self.prefixes).await {
                Ok(s) => {
                    if warned {
                        info!(backend = self.backend.kind(), "backend reachable");
                    }
                    return Ok(Some(s));
                }
                Err(e) if !e.is_transient() => return Err(DaemonError::Fatal(e)),
                Err(e) => {
                    if !warned {
                        warn!(error = %e, "backend unreachable; nothing is rendered until it answers");
                        warned = true;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    async fn watch_loop(&mut self, from: Arc<Snapshot>, shutdown: &CancellationToken) -> Result<(), DaemonError> {
        let (tx, mut rx) = mpsc::channel::<Update>(1024);
        let backend = self.backend.clone();
        let prefixes = self.prefixes.clone();
        let stop = shutdown.child_token();
        let watcher = tokio::spawn({
            let stop = stop.clone();
            async move { backend.watch(prefixes, from, tx, stop).await }
        });
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                u = rx.recv() => u,
            };
            let Some(first) = first else { break };
            let mut changed = self.apply(first);
            // Take everything already queued: a burst becomes one render per resource.
            while let Ok(more) = rx.try_recv() {
                changed.extend(self.apply(more));
            }
            if !changed.is_empty() {
                self.changed(&changed).await;
            }
        }
        stop.cancel();
        match watcher.await {
            Ok(Err(e)) => {
                error!(error = %e, "watch stopped");
                Err(DaemonError::Fatal(e))
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, u: Update) -> Vec<String> {
        match u {
            Update::Changes(c) => self.store.apply(c),
            Update::Resync(s) => self.store.replace(s.kvs),
            Update::Down(why) => {
                warn!(backend = self.backend.kind(), error = %why, "backend unreachable; keeping the last good snapshot");
                Vec::new()
            }
            Update::Up => {
                info!(backend = self.backend.kind(), "backend reachable again");
                Vec::new()
            }
        }
    }

    async fn poll_loop(&mut self, shutdown: &CancellationToken) {
        let mut down = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.interval) => {}
            }
            match self.backend.list(&self.prefixes).await {
                Ok(s) => {
                    if down {
                        info!(backend = self.backend.kind(), "backend reachable again");
                        down = false;
                    }
                    let changed = self.store.replace(s.kvs);
                    if !changed.is_empty() {
                        self.changed(&changed).await;
                    }
                }
                Err(e) => {
                    if !down {
                        warn!(error = %e, "listing failed; keeping the last good snapshot");
                        down = true;
                    }
                }
            }
        }
    }

    async fn changed(&mut self, keys: &[String]) {
        let hit = store::touched(&self.set.resources, keys);
        debug!(keys = keys.len(), resources = hit.len(), "change");
        self.sync(&hit, keys.len()).await;
    }

    async fn sync(&mut self, which: &[usize], keys_changed: usize) {
        let kvs = self.store.snapshot();
        for &i in which {
            let res = &self.set.resources[i];
            let started = Instant::now();
            match resource::sync(res, &self.set.engine, kvs.clone(), self.opts).await {
                Ok(Outcome::Unchanged) => {
                    debug!(resource = %res.name, "unchanged");
                    self.recovered(i);
                }
                Ok(Outcome::WouldChange(diff)) => {
                    print!("{diff}");
                    self.recovered(i);
                }
                Ok(Outcome::Updated(t)) => {
                    info!(
                        resource = %res.name,
                        dest = %res.dest.display(),
                        keys_changed,
                        render_ms = t.render.as_secs_f64() * 1e3,
                        check_ms = t.check.as_secs_f64() * 1e3,
                        reload_ms = t.reload.as_secs_f64() * 1e3,
                        total_ms = started.elapsed().as_secs_f64() * 1e3,
                        "updated"
                    );
                    self.failing[i] = false;
                }
                Err(e) => {
                    error!(resource = %res.name, stage = e.stage(), "{e}");
                    self.failing[i] = true;
                }
            }
        }
    }

    fn recovered(&mut self, i: usize) {
        self.failing[i] = false;
    }
}
