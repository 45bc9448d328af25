//! The status page's registry: what the daemon last did with each resource and heard
//! from each backend, kept where it happens (the workers and feeds report here next to
//! their metrics) and served by [`crate::http`] as `GET /` (an HTML page) and
//! `GET /status.json` (a [`Report`]); `confsync status` prints the JSON as a table.
//!
//! Memory is bounded by the configuration: one record per resource and per backend, a
//! diff of at most [`diff::MAX_DIFF`] bytes (and [`MAX_REPORT_DIFFS`] over all
//! resources in one report) and error texts of at most 16 KiB each
//! (`record::MAX_TEXT`). Records of resources and backends a SIGHUP removed
//! are dropped.
//!
//! Secrets: a resource whose file is not world-readable (its mode has no `o+r`, as
//! for `mode = "0600"` or `"0640"`) is *secret*: the page shows its times, states and
//! counts, never its diff, error messages or command output, which may quote its
//! contents. Until a sync has seen the mode of a resource without a `mode`, it counts
//! as secret. Everything else is shown, capped, and escaped by whoever prints it: keys
//! and values are written by the instances that register themselves.
//!
//! - `model`: the serde types of the report; `record`: what is kept per resource and
//!   backend; `diff`: the capped unified diff; `clock`: UTC dates and ages;
//!   `html`: the page; `table`: the terminal table; `fetch`: `confsync status`'s client.

pub mod clock;
pub mod diff;
pub mod fetch;
pub mod html;
pub mod model;
mod record;
pub mod table;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::config::Resource;
use crate::http::ResourceState;
use crate::resource::observe::Observer;
use crate::resource::{SyncError, Synced};

pub use model::Report;

/// Most bytes of diff in one report, over all resources.
pub const MAX_REPORT_DIFFS: usize = 8 * 1024 * 1024;
use record::{BackendRecord, FailureRecord, ResourceRecord};

/// Every resource's and backend's record.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    resources: BTreeMap<String, ResourceRecord>,
    backends: BTreeMap<String, BackendRecord>,
}

/// How a sync ended, for [`Status::synced`].
pub struct Ending<'a> {
    pub result: Result<&'a Synced, &'a SyncError>,
    /// The reload step that ran: `runtime` or `reload`, and whether it worked.
    pub reload: Option<(&'static str, bool)>,
    /// The file in place still owes its reload.
    pub pending: bool,
    pub state: &'a ResourceState,
}

impl Status {
    /// An empty registry.
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    /// Records `res` (at start and for each SIGHUP generation); a resource known
    /// already keeps its history and takes the new settings.
    pub fn add_resource(&self, res: &Resource) {
        let (dest, template) = (res.dest.display().to_string(), res.src.clone());
        let mut inner = self.lock();
        match inner.resources.get_mut(&res.name) {
            Some(r) if r.dest == dest => {
                r.backend.clone_from(&res.backend);
                r.template = template;
                if let Some(m) = res.mode {
                    r.set_secret(m & 0o004 == 0);
                }
            }
            _ => {
                let r = ResourceRecord::new(dest, res.backend.clone(), template, res.mode);
                inner.resources.insert(res.name.clone(), r);
            }
        }
    }

    /// Forgets every resource not in `keep` (after a SIGHUP removed them).
    pub fn retain_resources(&self, keep: &[String]) {
        self.lock().resources.retain(|name, _| keep.contains(name));
    }

    /// What a sync of `res` tells as it goes (its [`crate::resource::Pass`]'s observer).
    pub fn observer<'a>(self: &Arc<Self>, res: &'a Resource) -> Tracker<'a> {
        Tracker {
            status: Arc::clone(self),
            res,
        }
    }

    /// Records how a sync of `res` ended.
    pub fn synced(&self, res: &Resource, end: Ending<'_>) {
        let now = SystemTime::now();
        self.resource(res, |r| {
            r.state = Some(end.state.clone());
            r.pending = end.pending;
            match end.result {
                Ok(s) => {
                    r.last_render = Some(now);
                    r.keys_left_out = s.excluded.len();
                    r.guard_refusal = None;
                }
                Err(e) => {
                    match e {
                        SyncError::Render { .. } => {}
                        SyncError::Guard { .. } => r.guard_refusal = Some(e.to_string()),
                        SyncError::Io { .. }
                        | SyncError::Check { .. }
                        | SyncError::Reload { .. } => r.last_render = Some(now),
                    }
                    r.last_error = Some(r.failure(e));
                }
            }
            if let Some((path, ok)) = end.reload {
                r.last_reload = Some((now, path, ok));
            }
        });
    }

    /// Records `backend` of `kind` (at start and for each SIGHUP generation), down until
    /// it answers; one known already keeps its history.
    pub fn add_backend(&self, backend: &str, kind: &str) {
        let mut inner = self.lock();
        let b = inner.backends.entry(backend.to_owned()).or_default();
        kind.clone_into(&mut b.kind);
    }

    /// Forgets `backend` (after a SIGHUP removed it).
    pub fn remove_backend(&self, backend: &str) {
        self.lock().backends.remove(backend);
    }

    /// Records whether `backend` answers, and why not.
    pub fn backend_up(&self, backend: &str, up: bool, why: Option<&str>) {
        self.backend(backend, |b| {
            b.up = up;
            if let (false, Some(why)) = (up, why) {
                b.last_error = Some(FailureRecord::backend(why));
            }
        });
    }

    /// Records that `backend`'s keys were current at `at`, and whether they come from
    /// a snapshot an earlier run saved.
    pub fn backend_current(&self, backend: &str, at: SystemTime, saved: bool) {
        self.backend(backend, |b| {
            b.last_sync = Some(at);
            b.serving_saved = saved;
        });
    }

    /// Records a successful full listing of `backend` now.
    pub fn backend_listed(&self, backend: &str) {
        self.backend(backend, |b| b.last_listing = Some(SystemTime::now()));
    }

    /// Records how many keys `backend`'s last good snapshot holds.
    pub fn backend_keys(&self, backend: &str, n: usize) {
        self.backend(backend, |b| b.keys = Some(n));
    }

    /// Everything, as of now.
    pub fn report(&self) -> Report {
        let now = SystemTime::now();
        let inner = self.lock();
        Report {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_unix: clock::unix(now),
            backends: inner
                .backends
                .iter()
                .map(|(name, b)| b.report(name, now))
                .collect(),
            resources: within_budget(
                inner
                    .resources
                    .iter()
                    .map(|(name, r)| r.report(name, now))
                    .collect(),
            ),
        }
    }

    /// Updates the record of `res`, if it is still configured (a draining generation's
    /// last sync of a resource a SIGHUP removed is not recorded again).
    fn resource(&self, res: &Resource, f: impl FnOnce(&mut ResourceRecord)) {
        if let Some(r) = self.lock().resources.get_mut(&res.name) {
            f(r);
        }
    }

    fn backend(&self, backend: &str, f: impl FnOnce(&mut BackendRecord)) {
        if let Some(b) = self.lock().backends.get_mut(backend) {
            f(b);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock, and the records stay valid regardless.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `resources` with the diffs past [`MAX_REPORT_DIFFS`] bytes in all left out (and
/// said so), so a configuration with many resources still gives a page of bounded size.
fn within_budget(mut resources: Vec<model::ResourceReport>) -> Vec<model::ResourceReport> {
    let mut spent = 0;
    for r in &mut resources {
        let Some(d) = &r.diff else { continue };
        spent += d.text.len();
        if spent > MAX_REPORT_DIFFS {
            r.diff = None;
            r.diff_withheld = Some(format!(
                "left out: the diffs of one report are capped at {} MiB in all",
                MAX_REPORT_DIFFS >> 20
            ));
        }
    }
    resources
}

/// A resource's [`Observer`]: keys seen, the file's mode, and the diff of each change.
pub struct Tracker<'a> {
    status: Arc<Status>,
    res: &'a Resource,
}

/// A file this large, freed after its diff, is worth handing back to the system.
const LARGE_FILE: usize = 1 << 20;

impl Observer for Tracker<'_> {
    fn rendered(&self, keys: usize, mode: u32) {
        self.status.resource(self.res, |r| {
            r.keys_seen = Some(keys);
            r.set_secret(mode & 0o004 == 0);
        });
    }

    fn replaced(&self, old: Option<crate::resource::stage::Old>, new: Vec<u8>) {
        let mut change = None;
        self.status.resource(self.res, |r| {
            r.last_change = Some(SystemTime::now());
            r.diff = None;
            r.changes += 1;
            // A secret file's contents never reach the registry, not even capped.
            change = (!r.secret).then_some(r.changes);
        });
        let Some(change) = change else {
            return;
        };
        // The diff is for the page, not the sync: it is worked out beside the worker
        // (which goes on to the reload), from the two versions the sync handed over.
        let (status, name) = (Arc::clone(&self.status), self.res.name.clone());
        let dest = self.res.dest.display().to_string();
        let work = move || {
            // An old file that cannot be read shows as empty.
            let old = old.and_then(|o| o.into_bytes().ok()).unwrap_or_default();
            let diff = diff::capped(&old, &new, &dest, diff::MAX_DIFF);
            // Both versions of a large file go here, after the sync's own hint.
            if old.len().max(new.len()) >= LARGE_FILE {
                drop((old, new));
                crate::memory::freed();
            }
            if let Some(r) = status.lock().resources.get_mut(&name)
                && r.changes == change
            {
                r.diff = Some(diff);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(work)),
            Err(_) => work(),
        }
    }
}

#[cfg(test)]
mod tests;
