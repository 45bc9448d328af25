//! One task per resource, so a slow or hung check or reload (killed at its timeout)
//! never delays another resource. Bursts of changes are coalesced: a change after a
//! quiet spell is rendered at once; changes that arrive while a sync runs, or soon after
//! it, wait until they have been quiet for `wait.min` (never longer than `wait.max`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use crate::backend::KvMap;
use crate::config::{Resource, Wait};
use crate::resource::{self, Outcome, SyncError, SyncOptions};
use crate::template::{Engine, EntryCache};

use super::Services;

/// One resource's task.
pub struct Worker {
    pub res: Resource,
    pub engine: Arc<Engine>,
    /// The backend's latest good snapshot.
    pub snapshot: watch::Receiver<Option<Arc<KvMap>>>,
    /// Time of the latest change that touches this resource.
    pub dirty: watch::Receiver<Option<Instant>>,
    /// Keys changed since the last sync, counted by the feed (for logs).
    pub changed_keys: Arc<AtomicUsize>,
    /// Entries of the last render, reused by the next.
    pub cache: Arc<EntryCache>,
    pub opts: SyncOptions,
    pub wait: Wait,
    pub services: Services,
    /// Told once, after this resource's first sync (for READY=1).
    pub first_done: tokio::sync::mpsc::Sender<()>,
}

/// When the pending changes should be rendered: `None` means now.
///
/// `idle` is whether the last sync ended at least `wait.min` ago (or never ran);
/// `first` and `last` are the first and latest pending changes.
pub fn due(wait: Wait, idle: bool, first: Instant, last: Instant, now: Instant) -> Option<Instant> {
    if idle {
        return None;
    }
    let at = (last + wait.min).min(first + wait.max);
    (at > now).then_some(at)
}

impl Worker {
    /// Runs until `stop` is cancelled; a sync in progress is finished first.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut last_sync_end: Option<Instant> = None;
        let mut last_update: Option<Instant> = None;
        let mut first = Some(self.first_done.clone());
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = self.dirty.changed() => if r.is_err() { return },
            }
            let Some(pending_since) = *self.dirty.borrow_and_update() else {
                continue;
            };
            let idle = last_sync_end.is_none_or(|t| t.elapsed() >= self.wait.min);
            // Coalesce: wait for quiet, extending on every new change, up to max.
            loop {
                let latest = (*self.dirty.borrow_and_update()).unwrap_or(pending_since);
                let Some(at) = due(self.wait, idle, pending_since, latest, Instant::now()) else {
                    break;
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = sleep_until(at.into()) => break,
                    r = self.dirty.changed() => if r.is_err() { return },
                }
            }
            if let Some(t) = last_update {
                let next = t + self.res.min_reload_interval;
                if next > Instant::now() {
                    debug!(resource = %self.res.name, "waiting for min_reload_interval");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = sleep_until(next.into()) => {}
                    }
                }
            }
            // Changes that arrive from here on are rendered by the next round.
            self.dirty.borrow_and_update();
            // The feed takes the snapshot back for a moment while it applies a batch.
            let kvs = loop {
                if let Some(kvs) = self.snapshot.borrow_and_update().clone() {
                    break kvs;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.snapshot.changed() => if r.is_err() { return },
                }
            };
            if self.sync(kvs, pending_since).await {
                last_update = Some(Instant::now());
            }
            last_sync_end = Some(Instant::now());
            if let Some(tx) = first.take() {
                let _ = tx.send(()).await;
            }
        }
    }

    /// One sync with its logs and metrics; true when the destination was replaced.
    async fn sync(&self, kvs: Arc<KvMap>, pending_since: Instant) -> bool {
        let res = &self.res;
        let m = &self.services.metrics;
        let started = Instant::now();
        let keys_changed = self.changed_keys.swap(0, Ordering::Relaxed);
        let result = resource::sync(res, &self.engine, kvs, Some(&self.cache), self.opts).await;
        match result {
            Ok(s) => {
                m.rendered(&res.name);
                for _ in &s.excluded {
                    m.guard_refused(&res.name, "value_pattern");
                }
                match s.outcome {
                    Outcome::Unchanged => {
                        debug!(resource = %res.name, "unchanged");
                        false
                    }
                    Outcome::WouldChange(diff) => {
                        print!("{diff}");
                        false
                    }
                    Outcome::Updated(t) => {
                        if res.reload_cmd.is_some() && !self.opts.sync_only {
                            m.reloaded(&res.name);
                        }
                        m.observe_change_latency(pending_since.elapsed().as_secs_f64());
                        info!(
                            resource = %res.name,
                            dest = %res.dest.display(),
                            keys_changed,
                            render_ms = ms(t.render),
                            check_ms = ms(t.check),
                            reload_ms = ms(t.reload),
                            total_ms = ms(started.elapsed()),
                            "updated"
                        );
                        true
                    }
                }
            }
            Err(e) => {
                match &e {
                    SyncError::Render { .. } | SyncError::Io { .. } => m.render_failed(&res.name),
                    SyncError::Guard { .. } => m.guard_refused(&res.name, "min_keys"),
                    SyncError::Check { .. } => m.check_failed(&res.name),
                    SyncError::Reload { .. } => m.reload_failed(&res.name),
                }
                error!(resource = %res.name, stage = e.stage(), "{e}");
                // A failed reload still replaced the file.
                matches!(e, SyncError::Reload { .. })
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times() {
        let w = Wait {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let t0 = Instant::now();
        assert_eq!(
            due(w, true, t0, t0, t0),
            None,
            "after a quiet spell: at once"
        );
        assert_eq!(
            due(w, false, t0, t0, t0),
            Some(t0 + Duration::from_millis(100))
        );
        let last = t0 + Duration::from_millis(950);
        assert_eq!(
            due(w, false, t0, last, last),
            Some(t0 + Duration::from_secs(1)),
            "capped by max"
        );
        assert_eq!(
            due(w, false, t0, t0, t0 + Duration::from_secs(2)),
            None,
            "overdue: now"
        );
    }
}
