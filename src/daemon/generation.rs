//! The tasks of one configuration. A generation is prepared first (backends built,
//! feeds started, each backend's first listing tried) while the running one goes on;
//! only then are its workers started. A worker takes its destination's lock for each
//! sync, and the lock outlives generations, so a new worker's first sync waits for the
//! old worker's last one on the same file and never for any other resource's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::{self, BackendError, KvMap};
use crate::config::{ResourceSet, RunConfig};
use crate::resource::{Limits, SyncOptions};
use crate::store;

use super::owed::OwedReloads;
use super::pace::Pace;
use super::{Services, feed, route, worker};

/// How long a new generation waits for each backend's first answer before it starts
/// anyway (that backend then starts down, as at start-up).
const FIRST_TRY_LIMIT: Duration = Duration::from_secs(10);

/// What outlives generations.
#[derive(Clone)]
pub struct Shared {
    pub services: Services,
    pub owed: Arc<OwedReloads>,
    pub limits: Arc<Limits>,
    /// One lock per destination.
    pub locks: Arc<std::sync::Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>,
    /// Wakes every worker that waits to retry (a SIGHUP).
    pub retry_now: Arc<Notify>,
    /// Exec mode: the child every generation signals.
    pub child: Option<Arc<crate::exec::ChildHandle>>,
}

impl Shared {
    fn lock_for(&self, dest: &std::path::Path) -> Arc<Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(dest.to_path_buf()).or_default().clone()
    }
}

/// A running configuration.
pub struct Generation {
    pub stop: CancellationToken,
    pub tasks: JoinSet<()>,
    /// One message per resource after its first sync.
    pub first_render: mpsc::Receiver<()>,
    /// Resources that have not reported their first sync yet.
    pub pending: usize,
    /// Resource names, for readiness.
    pub names: Vec<String>,
    /// Their destinations.
    pub dests: Vec<PathBuf>,
    /// Backend names, for readiness.
    pub backends: Vec<String>,
    pub fatal: mpsc::Receiver<(String, BackendError)>,
}

/// A generation whose feeds run and whose workers wait to be started.
pub struct Prepared {
    generation: Generation,
    workers: Vec<worker::Worker>,
}

/// Builds the backends and starts the feeds of `cfg`/`set`, and waits (up to
/// [`FIRST_TRY_LIMIT`]) for each backend's first listing to succeed or fail. A backend
/// that cannot work with its configuration (fatal) fails the whole preparation; one
/// that is down does not.
pub async fn prepare(
    cfg: RunConfig,
    set: ResourceSet,
    shared: &Shared,
) -> Result<Prepared, Vec<(String, BackendError)>> {
    let services = &shared.services;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let n = set.resources.len();
    let (first_tx, first_render) = mpsc::channel(n.max(1));
    let (fatal_tx, mut fatal) = mpsc::channel(8);
    let engine = Arc::new(set.engine);
    let opts = SyncOptions {
        noop: cfg.noop,
        sync_only: cfg.sync_only,
        keep_stage_file: cfg.keep_stage_file,
    };
    let command_env = Arc::new(cfg.command_env.clone());
    let names: Vec<String> = set.resources.iter().map(|r| r.name.clone()).collect();
    let dests: Vec<PathBuf> = set.resources.iter().map(|r| r.dest.clone()).collect();
    let exec = shared
        .child
        .clone()
        .zip(cfg.exec.as_ref())
        .map(|(child, e)| route::ExecSignal {
            child,
            signal: e.reload_signal,
        });
    let routes = route::routes(
        &set.resources,
        exec,
        cfg.splay,
        &command_env,
        &shared.limits,
    );
    let mut by_backend: BTreeMap<String, Vec<(crate::config::Resource, Arc<route::Route>)>> =
        BTreeMap::new();
    for (r, route) in set.resources.into_iter().zip(routes) {
        by_backend
            .entry(r.backend.clone())
            .or_default()
            .push((r, route));
    }
    info!(resources = n, backends = by_backend.len(), "starting");
    let state_dir = cfg.state_dir();
    let mut workers = Vec::new();
    let mut first_tries = Vec::new();
    let mut fatal_errors = Vec::new();
    let backends: Vec<String> = by_backend.keys().cloned().collect();
    for (name, resources) in by_backend {
        let Some(bcfg) = cfg.backends.get(&name).cloned() else {
            continue;
        };
        let backend = match backend::build(&bcfg).await {
            Ok(b) => b,
            Err(e) => {
                fatal_errors.push((name, e));
                continue;
            }
        };
        services.health.set_backend_up(&name, false);
        services.status.add_backend(&name, backend.kind());
        let (snap_tx, snap_rx) = watch::channel::<Option<Arc<KvMap>>>(None);
        let mut subscribers = Vec::new();
        for (res, route) in resources {
            let (dirty_tx, dirty_rx) = watch::channel(None);
            let changed_keys = Arc::default();
            let changes = Arc::new(AtomicUsize::new(0));
            let log = Arc::new(super::changes::ChangeLog::default());
            subscribers.push(feed::Subscriber {
                prefixes: res.key_prefixes(),
                dirty: dirty_tx,
                changed_keys: Arc::clone(&changed_keys),
                changes: Arc::clone(&changes),
                log: Arc::clone(&log),
            });
            services.metrics.init_resource(&res.name);
            services.status.add_resource(&res);
            let commands = !opts.sync_only
                && (res.check_cmd.is_some()
                    || crate::resource::apply::owes_reload(&res, Some(route.as_ref())));
            workers.push(worker::Worker {
                pace: Pace::new(res.wait.unwrap_or(cfg.wait), commands),
                dest_lock: shared.lock_for(&res.dest),
                res,
                engine: engine.clone(),
                snapshot: snap_rx.clone(),
                dirty: dirty_rx,
                changed_keys,
                changes,
                log,
                cache: Arc::default(),
                opts,
                services: services.clone(),
                owed: shared.owed.clone(),
                limits: shared.limits.clone(),
                command_env: command_env.clone(),
                retry_now: shared.retry_now.clone(),
                first_done: first_tx.clone(),
                route,
            });
        }
        let prefixes = store::watch_prefixes_of(subscribers.iter().map(|s| s.prefixes.as_slice()));
        info!(backend = %name, kind = backend.kind(), prefixes = ?prefixes, watch = bcfg.watch, "backend");
        let (try_tx, try_rx) = oneshot::channel();
        first_tries.push((name.clone(), try_rx));
        let f = feed::Feed {
            name,
            backend,
            cfg: bcfg,
            prefixes,
            subscribers,
            snapshot: snap_tx,
            services: services.clone(),
            fatal: fatal_tx.clone(),
            first_try: Some(try_tx),
            state_dir: state_dir.clone(),
        };
        tasks.spawn(f.run(stop.clone()));
    }
    let deadline = Instant::now() + FIRST_TRY_LIMIT;
    for (name, rx) in first_tries {
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(why))) => {
                warn!(backend = %name, error = %why, "backend down; starting without it, as at start-up")
            }
            // The feed ended without an answer: it reported a fatal error.
            Ok(Err(_)) => {}
            Err(_) => {
                warn!(backend = %name, "backend has not answered yet; starting without it, as at start-up")
            }
        }
    }
    while let Ok(e) = fatal.try_recv() {
        fatal_errors.push(e);
    }
    if !fatal_errors.is_empty() {
        stop.cancel();
        tasks.shutdown().await;
        return Err(fatal_errors);
    }
    Ok(Prepared {
        generation: Generation {
            stop,
            tasks,
            first_render,
            pending: n,
            names,
            dests,
            backends,
            fatal,
        },
        workers,
    })
}

impl Prepared {
    /// Starts the workers: from here on this generation writes files.
    pub fn start(self) -> Generation {
        let mut g = self.generation;
        for w in self.workers {
            g.tasks.spawn(w.run(g.stop.clone()));
        }
        g
    }
}

impl Generation {
    /// Stops watching; in-flight syncs finish (each bounded by its command timeouts).
    /// Returns the tasks to wait for.
    pub fn stop(self) -> JoinSet<()> {
        self.stop.cancel();
        self.tasks
    }
}
