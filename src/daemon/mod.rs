//! The daemon: one feed task per backend and one worker task per resource, started as a
//! generation; SIGHUP swaps in a new generation when the new configuration is valid;
//! systemd and the health endpoints are told what is going on.

mod changes;
mod exec_hook;
mod feed;
mod generation;
mod onetime;
mod owed;
mod pace;
mod rounds;
mod route;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::backend::BackendError;
use crate::config::{ConfigError, ResourceSet, RunConfig};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::resource::Limits;
use crate::status::Status;
use crate::systemd::Notifier;

use generation::{Generation, Prepared, Shared};
use owed::OwedReloads;

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
    /// Exec mode: the status of a child that exited by itself, which confsync exits with.
    pub exec_status: Option<u8>,
}

/// What every task reports to.
#[derive(Clone)]
pub struct Services {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The status page's records.
    pub status: Arc<Status>,
    pub notifier: Arc<Notifier>,
}

/// Loads the configuration again (for SIGHUP); runs on a blocking thread.
pub type Reload = Arc<dyn Fn() -> Result<(RunConfig, ResourceSet), Vec<ConfigError>> + Send + Sync>;

/// Longest wait for in-flight syncs when stopping.
const DRAIN: Duration = Duration::from_secs(30);

/// A SIGHUP's new generation being prepared.
type Preparing = Pin<Box<dyn Future<Output = Result<Prepared, Vec<String>>> + Send>>;

/// Runs until `shutdown` is cancelled (or once, with `onetime`).
pub async fn run(
    cfg: RunConfig,
    set: ResourceSet,
    services: Services,
    reload: Reload,
    shutdown: CancellationToken,
) -> Result<RunSummary, DaemonError> {
    if cfg.onetime {
        return onetime::onetime(cfg, set).await;
    }
    if let Some(addr) = &cfg.metrics_addr {
        let listener = crate::http::bind(addr).await.map_err(DaemonError::Bind)?;
        info!(addr = %addr, "serving /metrics, /health, /ready and the status page (/, /status.json)");
        tokio::spawn(crate::http::serve(
            listener,
            services.metrics.clone(),
            services.health.clone(),
            services.status.clone(),
            shutdown.clone(),
        ));
    }
    services.health.set_running(true);
    tokio::spawn(crate::memory::run(shutdown.clone()));
    let state_dir = cfg.state_dir();
    let owed = OwedReloads::open(state_dir.as_deref());
    owed.retain(set.resources.iter().map(|r| r.dest.as_path()));
    let shared = Shared {
        services: services.clone(),
        owed: Arc::new(owed),
        limits: Arc::new(Limits::new(cfg.parallel_commands)),
        locks: Arc::default(),
        retry_now: Arc::default(),
        child: cfg.exec.as_ref().map(|_| Arc::default()),
    };
    let mut exec = exec_hook::ExecRun::new(&cfg, shared.child.clone());
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // Once per process, not per generation: a SIGHUP generation overlaps a draining one
    // whose stage files are live.
    crate::resource::stage::sweep(&set.resources).await;
    let mut current = match generation::prepare(cfg, set, &shared).await {
        Ok(p) => p.start(),
        Err(mut fatal) => {
            let (name, e) = fatal.remove(0);
            return Err(DaemonError::Fatal(name, e));
        }
    };
    let mut ready = false;
    let mut preparing: Option<Preparing> = None;
    // A SIGHUP that came while another was being prepared.
    let mut again = false;
    // Old generations finishing their last syncs.
    let mut draining: JoinSet<()> = JoinSet::new();
    let watchdog = services.notifier.watchdog_interval();
    let mut tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let mut exec_status = None;
    let result = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(()) = recv_opt(&mut hup) => {
                if preparing.is_some() {
                    info!("SIGHUP while the last one is still being prepared; reloading again after it");
                    again = true;
                } else {
                    preparing = Some(reconfigure(reload.clone(), shared.clone()));
                }
            }
            r = async { preparing.as_mut().expect("guarded").await }, if preparing.is_some() => {
                preparing = None;
                match r {
                    Ok(next) => {
                        let old = std::mem::replace(&mut current, next.start());
                        // Owed reloads of resources the new set dropped are moot.
                        shared.owed.retain(current.dests.iter().map(PathBuf::as_path));
                        switch(old, &current, &services, &mut draining);
                        ready = ready || current.pending == 0;
                    }
                    Err(errors) => {
                        for e in &errors {
                            error!("{e}");
                        }
                        error!(errors = errors.len(), "new configuration rejected; the running one stays");
                        shared.retry_now.notify_waiters();
                        services.notifier.ready();
                    }
                }
                if std::mem::take(&mut again) {
                    preparing = Some(reconfigure(reload.clone(), shared.clone()));
                }
            }
            Some(()) = current.first_render.recv(), if !ready => {
                current.pending = current.pending.saturating_sub(1);
                if current.pending == 0 {
                    ready = true;
                    // Every resource has had its first sync: the child reads rendered files.
                    exec.start();
                    services.health.set_first_render_done();
                    services.notifier.ready();
                    services.notifier.status(&format!("watching {} resource(s)", current.names.len()));
                    info!(resources = current.names.len(), "first render done");
                }
            }
            Some((name, e)) = current.fatal.recv() => break Err(DaemonError::Fatal(name, e)),
            Some(_) = draining.join_next(), if !draining.is_empty() => {}
            status = exec.exited(), if exec.running() => {
                exec_status = Some(status);
                break Ok(());
            }
            _ = tick.tick(), if watchdog.is_some() => services.notifier.watchdog(),
        }
    };
    services.notifier.stopping();
    services.health.set_running(false);
    drop(preparing);
    // The child stops (within its kill timeout) while the workers finish.
    let exec_stopped = tokio::spawn(exec.stop());
    let mut tasks = current.stop();
    let deadline = Instant::now() + DRAIN;
    loop {
        tokio::select! {
            r = tasks.join_next(), if !tasks.is_empty() => if r.is_none() { continue },
            r = draining.join_next(), if !draining.is_empty() => if r.is_none() { continue },
            _ = tokio::time::sleep_until(deadline.into()) => {
                warn!("in-flight syncs did not finish within {DRAIN:?}; stopping them (their commands are killed; a reload owed is recorded and runs at the next start when a state dir is set)");
                tasks.shutdown().await;
                draining.shutdown().await;
                break;
            }
            _ = tick.tick(), if watchdog.is_some() => services.notifier.watchdog(),
        }
        if tasks.is_empty() && draining.is_empty() {
            break;
        }
    }
    let _ = exec_stopped.await;
    info!("confsync stopped");
    result.map(|()| RunSummary {
        failed: 0,
        exec_status,
    })
}

/// Parses the configuration again (on a blocking thread) and prepares its generation.
fn reconfigure(reload: Reload, shared: Shared) -> Preparing {
    Box::pin(async move {
        shared.services.notifier.reloading();
        info!("SIGHUP: reloading the configuration");
        let parsed = tokio::task::spawn_blocking(move || reload())
            .await
            .map_err(|e| vec![format!("reading the configuration failed: {e}")])?;
        let (cfg, set) =
            parsed.map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        generation::prepare(cfg, set, &shared)
            .await
            .map_err(|fatal| {
                fatal
                    .into_iter()
                    .map(|(name, e)| format!("backend {name}: {e}"))
                    .collect()
            })
    })
}

/// Hands over from `old` to `new` (already started): `old` stops watching at once and
/// finishes its in-flight syncs in the background.
fn switch(old: Generation, new: &Generation, services: &Services, draining: &mut JoinSet<()>) {
    for b in &old.backends {
        if !new.backends.contains(b) {
            services.health.remove_backend(b);
            services.status.remove_backend(b);
        }
    }
    services.health.retain_resources(&new.names);
    services.status.retain_resources(&new.names);
    let mut tasks = old.stop();
    draining.spawn(async move { while tasks.join_next().await.is_some() {} });
    services.notifier.ready();
    services
        .notifier
        .status(&format!("watching {} resource(s)", new.names.len()));
    info!(resources = new.names.len(), "configuration reloaded");
}

async fn recv_opt(sig: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
