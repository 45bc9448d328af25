//! The daemon: one feed task per backend and one worker task per resource, started as a
//! generation; SIGHUP swaps in a new generation when the new configuration is valid;
//! systemd and the health endpoints are told what is going on.

mod feed;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backend::{self, BackendError, KvMap};
use crate::config::{ConfigError, ResourceSet, RunConfig};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::resource::{self, Outcome, SyncOptions};
use crate::store;
use crate::systemd::Notifier;

pub use worker::due;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A backend cannot work with this configuration (bad URL, wrong password).
    #[error("backend {0}: {1}")]
    Fatal(String, BackendError),
    /// `--onetime` could not read a backend.
    #[error("backend {0}: {1}")]
    Unreachable(String, BackendError),
    /// The metrics address could not be bound.
    #[error("metrics address: {0}")]
    Bind(std::io::Error),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Resources whose last sync failed (render, guard, check, write or reload).
    pub failed: usize,
}

/// What every task reports to.
#[derive(Clone)]
pub struct Services {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub notifier: Arc<Notifier>,
}

/// Loads the configuration again (for SIGHUP).
pub type Reload = Box<dyn Fn() -> Result<(RunConfig, ResourceSet), Vec<ConfigError>> + Send + Sync>;

/// Longest wait for in-flight syncs when stopping or reloading.
const DRAIN: Duration = Duration::from_secs(30);

/// Runs until `shutdown` is cancelled (or once, with `onetime`).
pub async fn run(
    cfg: RunConfig,
    set: ResourceSet,
    services: Services,
    reload: Reload,
    shutdown: CancellationToken,
) -> Result<RunSummary, DaemonError> {
    if cfg.onetime {
        return onetime(cfg, set).await;
    }
    if let Some(addr) = &cfg.metrics_addr {
        let listener = crate::http::bind(addr).await.map_err(DaemonError::Bind)?;
        info!(addr = %addr, "serving /metrics, /health and /ready");
        tokio::spawn(crate::http::serve(
            listener,
            services.metrics.clone(),
            services.health.clone(),
            shutdown.clone(),
        ));
    }
    services.health.set_running(true);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Once per process, not per generation: a SIGHUP generation may overlap a draining
    // one whose stage files are live.
    resource::stage::sweep(&set.resources).await;
    let mut current = Generation::start(cfg, set, &services).await;
    let mut ready = false;
    let watchdog = services.notifier.watchdog_interval();
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(()) = recv_opt(&mut hup) => {
                services.notifier.reloading();
                info!("SIGHUP: reloading the configuration");
                match reload() {
                    Ok((cfg, set)) => {
                        current.stop().await;
                        current = Generation::start(cfg, set, &services).await;
                        ready = false;
                        info!("configuration reloaded");
                    }
                    Err(errors) => {
                        for e in &errors {
                            error!("{e}");
                        }
                        error!(errors = errors.len(), "new configuration rejected; the running one stays");
                        services.notifier.ready();
                    }
                }
            }
            Some(()) = current.first_render.recv(), if !ready => {
                current.pending -= 1;
                if current.pending == 0 {
                    ready = true;
                    services.health.set_first_render_done();
                    services.notifier.ready();
                    services.notifier.status(&format!("watching {} resource(s)", current.resources));
                    info!(resources = current.resources, "first render done");
                }
            }
            Some((name, e)) = current.fatal.recv() => break Err(DaemonError::Fatal(name, e)),
            _ = tick.tick(), if watchdog.is_some() => services.notifier.watchdog(),
        }
    };
    services.notifier.stopping();
    services.health.set_running(false);
    current.stop().await;
    info!("confsync stopped");
    result.map(|()| RunSummary { failed: 0 })
}

async fn recv_opt(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// The tasks of one configuration.
struct Generation {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    /// One message per resource after its first sync.
    first_render: mpsc::Receiver<()>,
    /// Resources that have not reported their first sync yet.
    pending: usize,
    resources: usize,
    fatal: mpsc::Receiver<(String, BackendError)>,
}

impl Generation {
    async fn start(cfg: RunConfig, set: ResourceSet, services: &Services) -> Generation {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let n = set.resources.len();
        let (first_tx, first_render) = mpsc::channel(n.max(1));
        let (fatal_tx, fatal) = mpsc::channel(8);
        let engine = Arc::new(set.engine);
        let opts = SyncOptions {
            noop: cfg.noop,
            sync_only: cfg.sync_only,
            keep_stage_file: cfg.keep_stage_file,
        };
        let mut by_backend: BTreeMap<String, Vec<crate::config::Resource>> = BTreeMap::new();
        for r in set.resources {
            by_backend.entry(r.backend.clone()).or_default().push(r);
        }
        info!(resources = n, backends = by_backend.len(), "starting");
        for (name, resources) in by_backend {
            let Some(bcfg) = cfg.backends.get(&name).cloned() else {
                continue;
            };
            let backend = match backend::build(&bcfg).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = fatal_tx.send((name, e)).await;
                    continue;
                }
            };
            services.health.set_backend_up(&name, false);
            let (snap_tx, snap_rx) = watch::channel::<Option<Arc<KvMap>>>(None);
            let mut subscribers = Vec::new();
            for res in resources {
                let (dirty_tx, dirty_rx) = watch::channel(None);
                let changed_keys = Arc::default();
                subscribers.push(feed::Subscriber {
                    prefixes: res.key_prefixes(),
                    dirty: dirty_tx,
                    changed_keys: Arc::clone(&changed_keys),
                });
                let w = worker::Worker {
                    wait: res.wait.unwrap_or(cfg.wait),
                    res,
                    engine: engine.clone(),
                    snapshot: snap_rx.clone(),
                    dirty: dirty_rx,
                    changed_keys,
                    cache: Arc::default(),
                    opts,
                    services: services.clone(),
                    first_done: first_tx.clone(),
                };
                tasks.spawn(w.run(stop.clone()));
            }
            let prefixes =
                store::watch_prefixes_of(subscribers.iter().map(|s| s.prefixes.as_slice()));
            info!(backend = %name, kind = backend.kind(), prefixes = ?prefixes, watch = bcfg.watch, "backend");
            let f = feed::Feed {
                name,
                backend,
                cfg: bcfg,
                prefixes,
                subscribers,
                snapshot: snap_tx,
                services: services.clone(),
                fatal: fatal_tx.clone(),
            };
            tasks.spawn(f.run(stop.clone()));
        }
        Generation {
            stop,
            tasks,
            first_render,
            pending: n,
            resources: n,
            fatal,
        }
    }

    /// Stops watching and lets in-flight syncs finish (bounded by [`DRAIN`]).
    async fn stop(mut self) {
        self.stop.cancel();
        let drained = tokio::time::timeout(DRAIN, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("in-flight syncs did not finish within {DRAIN:?}; abandoning them");
            self.tasks.abort_all();
        }
    }
}

/// `--onetime`: list every backend once, sync every resource, report.
async fn onetime(cfg: RunConfig, set: ResourceSet) -> Result<RunSummary, DaemonError> {
    resource::stage::sweep(&set.resources).await;
    let opts = SyncOptions {
        noop: cfg.noop,
        sync_only: cfg.sync_only,
        keep_stage_file: cfg.keep_stage_file,
    };
    let mut snapshots: BTreeMap<String, Arc<KvMap>> = BTreeMap::new();
    for r in &set.resources {
        if snapshots.contains_key(&r.backend) {
            continue;
        }
        let Some(bcfg) = cfg.backends.get(&r.backend) else {
            continue;
        };
        let lists: Vec<Vec<String>> = set
            .resources
            .iter()
            .filter(|x| x.backend == r.backend)
            .map(|x| x.key_prefixes())
            .collect();
        let prefixes = store::watch_prefixes_of(lists.iter().map(Vec::as_slice));
        let b = backend::build(bcfg)
            .await
            .map_err(|e| DaemonError::Fatal(r.backend.clone(), e))?;
        let snap = b.list(&prefixes).await.map_err(|e| {
            if e.is_transient() {
                DaemonError::Unreachable(r.backend.clone(), e)
            } else {
                DaemonError::Fatal(r.backend.clone(), e)
            }
        })?;
        snapshots.insert(r.backend.clone(), Arc::new(snap.kvs));
    }
    let mut failed = 0;
    for r in &set.resources {
        let Some(kvs) = snapshots.get(&r.backend) else {
            continue;
        };
        match resource::sync(r, &set.engine, kvs.clone(), None, opts).await {
            Ok(s) => match s.outcome {
                Outcome::Updated(t) => info!(
                    resource = %r.name,
                    dest = %r.dest.display(),
                    render_ms = t.render.as_secs_f64() * 1e3,
                    check_ms = t.check.as_secs_f64() * 1e3,
                    reload_ms = t.reload.as_secs_f64() * 1e3,
                    "updated"
                ),
                Outcome::WouldChange(diff) => print!("{diff}"),
                Outcome::Unchanged => {}
            },
            Err(e) => {
                error!(resource = %r.name, stage = e.stage(), "{e}");
                failed += 1;
            }
        }
    }
    Ok(RunSummary { failed })
}
