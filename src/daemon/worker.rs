//! One task per resource, so a slow or hung check or reload (killed at its timeout)
//! never delays another resource. Changes are paced by [`Pace`]; a sync that failed for a
//! reason that may pass by itself (a reload, a full disk, a command that could not start
//! or timed out) is retried with capped exponential backoff and jitter until it works,
//! a newer change supersedes it, or the daemon stops. A reload still owed is in the
//! [`OwedReloads`] ledger, so the next sync runs it even when the file already matches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, watch};
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::backend::{Backoff, KvMap};
use crate::config::Resource;
use crate::http::ResourceState;
use crate::resource::{self, CommandEnv, Ledger, Limits, Outcome, Pass, SyncError, SyncOptions};
use crate::template::{Engine, EntryCache};

use super::Services;
use super::owed::OwedReloads;
use super::pace::{Pace, Pending};
use super::route::Route;

/// First and longest delay of a retry.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);

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
    /// Changes (publishes touching this resource) since the last sync began: two or
    /// more make a burst.
    pub changes: Arc<AtomicUsize>,
    /// The keys changed up to each snapshot taken (the cache learns them).
    pub log: Arc<super::changes::ChangeLog>,
    /// Entries of the last render, reused by the next.
    pub cache: Arc<EntryCache>,
    pub opts: SyncOptions,
    pub pace: Pace,
    pub services: Services,
    /// Reloads owed, shared by every generation of the run.
    pub owed: Arc<OwedReloads>,
    pub limits: Arc<Limits>,
    /// The environment of its check and reload commands (`command_env`).
    pub command_env: Arc<CommandEnv>,
    /// Held while syncing, shared with the next generation's worker for the same
    /// destination, which so starts its first sync only once this one's is over.
    pub dest_lock: Arc<Mutex<()>>,
    /// Woken to retry a failed sync at once (a SIGHUP).
    pub retry_now: Arc<Notify>,
    /// Told once, after this resource's first sync (for READY=1).
    pub first_done: tokio::sync::mpsc::Sender<()>,
    /// Its reload step: once per round with the resources sharing it, and the exec
    /// child's signal.
    pub route: Arc<Route>,
}

/// What one sync left to do.
struct Ended {
    /// The destination was replaced (for `min_reload_interval`).
    replaced: bool,
    /// Worth trying again without a new change.
    retry: bool,
}

impl Worker {
    /// Runs until `stop` is cancelled; a sync in progress is finished first.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut last_end: Option<Instant> = None;
        let mut last_update: Option<Instant> = None;
        let mut first = Some(self.first_done.clone());
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_CAP);
        let mut retry_at: Option<Instant> = None;
        // Since when the store has been ahead of the file (for the latency histogram).
        let mut behind_since: Option<Instant> = None;
        loop {
            let changed = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                r = self.dirty.changed() => if r.is_err() { return } else { true },
                _ = sleep_until(retry_at.unwrap_or_else(Instant::now).into()), if retry_at.is_some() => false,
                _ = self.retry_now.notified(), if retry_at.is_some() => false,
            };
            if changed {
                let Some(since) = *self.dirty.borrow_and_update() else {
                    continue;
                };
                behind_since.get_or_insert(since);
                if !self.coalesce(since, last_end, &stop).await {
                    return;
                }
            } else {
                debug!(resource = %self.res.name, "retrying the failed sync");
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
            // Changes that arrive from here on are synced by the next round.
            self.dirty.borrow_and_update();
            self.changes.store(0, Ordering::Relaxed);
            // The feed takes the snapshot back for a moment while it applies a batch.
            let kvs = loop {
                let snapshot = &mut self.snapshot;
                if let Some((kvs, changed)) = self.log.take(|| snapshot.borrow_and_update().clone())
                {
                    self.cache.basis().note(changed);
                    break kvs;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.snapshot.changed() => if r.is_err() { return },
                }
            };
            let ended = {
                let _dest = self.dest_lock.lock().await;
                self.sync(kvs, behind_since.unwrap_or_else(Instant::now))
                    .await
            };
            let now = Instant::now();
            if ended.replaced {
                last_update = Some(now);
            }
            last_end = Some(now);
            if ended.retry {
                let delay = backoff.next_delay();
                debug!(resource = %self.res.name, delay_ms = delay.as_millis() as u64, "sync will be retried");
                retry_at = Some(now + delay);
            } else {
                backoff.reset();
                retry_at = None;
                behind_since = None;
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(()).await;
            }
        }
    }

    /// Waits until the pending change that arrived at `since` is due; false when
    /// stopped (or the feed went away) meanwhile.
    async fn coalesce(
        &mut self,
        since: Instant,
        last_end: Option<Instant>,
        stop: &CancellationToken,
    ) -> bool {
        let mut pending = Pending {
            first: since,
            latest: since,
            burst: self.changes.load(Ordering::Relaxed) >= 2,
        };
        loop {
            let Some(at) = self.pace.due(last_end, pending, Instant::now()) else {
                return true;
            };
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = sleep_until(at.into()) => return true,
                r = self.dirty.changed() => {
                    if r.is_err() {
                        return false;
                    }
                    if let Some(t) = *self.dirty.borrow_and_update() {
                        pending.latest = t;
                    }
                    pending.burst = true;
                }
            }
        }
    }

    /// One sync with its logs, metrics and readiness.
    async fn sync(&self, kvs: Arc<KvMap>, behind_since: Instant) -> Ended {
        let res = &self.res;
        let m = &self.services.metrics;
        let started = Instant::now();
        let keys_changed = self.changed_keys.swap(0, Ordering::Relaxed);
        let _busy = self.route.enter();
        let observer = self.services.status.observer(res);
        let pass = Pass {
            cache: Some(&self.cache),
            limits: Some(&self.limits),
            ledger: Some(self.owed.as_ref()),
            shared_engine: Some(&self.engine),
            env: Some(self.command_env.as_ref()),
            reloads: Some(self.route.as_ref()),
            observer: Some(&observer),
        };
        let result = resource::sync(res, &self.engine, kvs, self.opts, pass).await;
        let owed_after = self.owed.is_owed(res);
        m.set_reload_pending(&res.name, owed_after);
        let state;
        // The reload step that ran, for the status page.
        let mut reload = None;
        let ended = match &result {
            Ok(s) => {
                m.rendered(&res.name);
                for e in &s.excluded {
                    m.guard_refused(&res.name, e.guard);
                }
                let replaced = match &s.outcome {
                    Outcome::Unchanged => {
                        debug!(resource = %res.name, "unchanged");
                        false
                    }
                    Outcome::WouldChange(diff) => {
                        print!("{diff}");
                        false
                    }
                    Outcome::Reloaded(d) => {
                        reload = Some(("reload", true));
                        m.reloaded(&res.name);
                        info!(resource = %res.name, dest = %res.dest.display(), reload_ms = ms(*d), "reloaded (it was owed)");
                        false
                    }
                    Outcome::Updated(t) => {
                        let (path, runtime) = runtime_path(res, m, s.runtime.as_ref());
                        if path == "runtime" {
                            reload = Some(("runtime", true));
                        } else if !self.opts.sync_only
                            && resource::apply::owes_reload(res, Some(self.route.as_ref()))
                        {
                            reload = Some(("reload", true));
                            m.reloaded(&res.name);
                        }
                        m.observe_change_latency(behind_since.elapsed().as_secs_f64());
                        info!(
                            resource = %res.name,
                            dest = %res.dest.display(),
                            keys_changed,
                            render_ms = ms(t.render),
                            check_ms = ms(t.check),
                            reload_ms = ms(t.reload),
                            total_ms = ms(started.elapsed()),
                            path,
                            runtime_ms = ms(runtime),
                            "updated"
                        );
                        true
                    }
                };
                state = if owed_after {
                    ResourceState::Retrying("reload pending".into())
                } else {
                    ResourceState::InStep
                };
                Ended {
                    replaced,
                    retry: owed_after,
                }
            }
            Err(e) => {
                match e {
                    SyncError::Render { .. } if e.is_render_timeout() => {
                        m.render_timed_out(&res.name);
                        warn!(resource = %res.name, timeout = ?res.render_timeout, "render stuck: still running after render_timeout; abandoned");
                    }
                    SyncError::Render { .. } => m.render_failed(&res.name),
                    SyncError::Io { .. } => m.write_failed(&res.name),
                    SyncError::Guard { .. } => m.guard_refused(&res.name, "min_keys"),
                    SyncError::Check { .. } => m.check_failed(&res.name),
                    SyncError::Reload { .. } => {
                        reload = Some(("reload", false));
                        m.reload_failed(&res.name);
                    }
                }
                let retry = e.may_pass() || owed_after;
                if retry {
                    error!(resource = %res.name, stage = e.stage(), "{e}; will retry");
                } else {
                    error!(resource = %res.name, stage = e.stage(), "{e}");
                }
                let what = if e.is_render_timeout() {
                    "render stuck".to_string()
                } else if owed_after {
                    "reload pending".to_string()
                } else {
                    format!("{} failed", e.stage())
                };
                state = if retry {
                    ResourceState::Retrying(what)
                } else {
                    ResourceState::Refused(what)
                };
                Ended {
                    // A failed reload still replaced the file.
                    replaced: matches!(e, SyncError::Reload { .. }),
                    retry,
                }
            }
        };
        let ending = crate::status::Ending {
            result: result.as_ref(),
            reload,
            pending: owed_after,
            state: &state,
        };
        self.services.status.synced(res, ending);
        self.services.health.set_resource(&res.name, state);
        ended
    }
}

/// Counts how a change reached HAProxy and logs a fallback's reason; `"runtime"` or
/// `"reload"` and the time the Runtime API took, for the log line.
fn runtime_path(
    res: &crate::config::Resource,
    m: &crate::metrics::Metrics,
    runtime: Option<&crate::haproxy::Attempt>,
) -> (&'static str, Duration) {
    match runtime {
        Some(Ok(a)) => {
            m.runtime_updated(&res.name);
            ("runtime", a.elapsed)
        }
        Some(Err(f)) => {
            m.runtime_fell_back(&res.name, f.reason.as_str());
            info!(resource = %res.name, reason = f.reason.as_str(), "not through the runtime API ({}); reloading", f.detail);
            ("reload", Duration::ZERO)
        }
        None => ("reload", Duration::ZERO),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
