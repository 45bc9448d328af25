//! One registration's loop: put the key while healthy, refresh it, take it out when the
//! check fails or at shutdown, and ride out store outages with backoff.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{RegisterError, Registration, check};
use crate::backend::{BackendError, Backoff};

/// Longest wait for the final deregistration at shutdown.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);
/// Shortest wait between two attempts while the store is down.
const RETRY_BASE: Duration = Duration::from_millis(100);
/// Longest wait between two attempts while the store is down.
const RETRY_CAP: Duration = Duration::from_secs(5);

/// What deregistering found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    not(any(feature = "etcd", feature = "redis", feature = "zookeeper")),
    allow(dead_code)
)]
pub enum Removed {
    /// Our key was deleted (or our lease revoked).
    Deleted,
    /// Nothing of ours was there: the key is gone or another instance holds it.
    NotOurs,
}

/// How one registration (or all of them) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Deregistered, or nothing was left to deregister.
    Clean,
    /// The final deregistration failed: the key expires with its TTL.
    LeftBehind,
}

/// A store a registration lives in.
#[async_trait]
pub trait Store: Send {
    /// Checks the configuration with the store (authenticates); a fatal error means the
    /// configuration is wrong, a transient one that the store is not there yet.
    async fn connect(&mut self) -> Result<(), BackendError>;
    /// Puts the key from scratch (a new lease in etcd).
    async fn put(&mut self) -> Result<(), BackendError>;
    /// Keeps the key alive; an error means it must be put again.
    async fn refresh(&mut self) -> Result<(), BackendError>;
    /// Takes our key out (only ours: never another instance's value).
    async fn remove(&mut self) -> Result<Removed, BackendError>;
    /// How often to refresh.
    fn refresh_every(&self) -> Duration;
}

/// Keeps `reg` in `store` until `shutdown`, then deregisters.
pub async fn keep(
    reg: Registration,
    mut store: Box<dyn Store>,
    shutdown: CancellationToken,
) -> Result<Outcome, RegisterError> {
    let key = reg.key.clone();
    let fatal = |source: BackendError| RegisterError::Fatal {
        key: key.clone(),
        source,
    };
    let (tx, mut health) = watch::channel(None::<bool>);
    let checker_stop = shutdown.child_token();
    let mut checking = match reg.check.clone() {
        Some(spec) => {
            tokio::spawn(check::run_checker(
                spec,
                key.clone(),
                tx,
                checker_stop.clone(),
            ));
            true
        }
        None => false,
    };
    let _stop_checker = checker_stop.drop_guard();
    // Without a check the key is wanted for as long as the process runs.
    let mut want = !checking;
    // The key is in the store and refreshed.
    let mut present = false;
    // The key may be in the store (a put was tried and not undone).
    let mut maybe = false;
    // The store error being retried, so an outage is logged once.
    let mut outage: Option<BackendError> = None;
    let mut backoff = Backoff::new(
        RETRY_BASE,
        RETRY_CAP.min(store.refresh_every().max(RETRY_BASE)),
    );
    let mut next = Instant::now();

    match store.connect().await {
        Ok(()) => {}
        Err(e) if !e.is_transient() => return Err(fatal(e)),
        Err(e) => {
            warn!(key = %key, error = %e, "store unreachable; will keep trying");
            outage = Some(e);
        }
    }
    if checking {
        info!(key = %key, "waiting for the first health check");
    }
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            changed = health.changed(), if checking => {
                if changed.is_err() {
                    checking = false;
                    continue;
                }
                want = *health.borrow_and_update() == Some(true);
                next = Instant::now();
            }
            _ = tokio::time::sleep_until(next), if want || maybe => {
                let result = if want {
                    if present {
                        store.refresh().await
                    } else {
                        maybe = true;
                        store.put().await
                    }
                } else {
                    store.remove().await.map(|r| {
                        info!(key = %key, found = ?r, "deregistered (unhealthy)");
                    })
                };
                match result {
                    Ok(()) => {
                        if let Some(e) = outage.take() {
                            info!(key = %key, was = %e, "store reachable again");
                        }
                        backoff.reset();
                        if want {
                            if !present {
                                info!(key = %key, value = %reg.value, ttl = reg.ttl, "registered");
                            }
                            present = true;
                            next = Instant::now() + store.refresh_every();
                        } else {
                            present = false;
                            maybe = false;
                        }
                    }
                    Err(e) if !e.is_transient() => {
                        finish(&key, store.as_mut(), maybe).await;
                        return Err(fatal(e));
                    }
                    Err(e) => {
                        if outage.is_none() {
                            warn!(key = %key, error = %e, "store unreachable or key lost; retrying with backoff");
                        }
                        outage = Some(e);
                        present = false;
                        next = Instant::now() + backoff.next_delay();
                    }
                }
            }
        }
    }
    Ok(finish(&key, store.as_mut(), maybe).await)
}

/// The final deregistration, bounded by [`SHUTDOWN_LIMIT`].
async fn finish(key: &str, store: &mut dyn Store, maybe: bool) -> Outcome {
    if !maybe {
        return Outcome::Clean;
    }
    match tokio::time::timeout(SHUTDOWN_LIMIT, store.remove()).await {
        Ok(Ok(Removed::Deleted)) => {
            info!(key = %key, "deregistered");
            Outcome::Clean
        }
        Ok(Ok(Removed::NotOurs)) => {
            info!(key = %key, "not deregistered: the key is gone or holds another instance's value");
            Outcome::Clean
        }
        Ok(Err(e)) => {
            warn!(key = %key, error = %e, "could not deregister; the key expires with its TTL");
            Outcome::LeftBehind
        }
        Err(_) => {
            warn!(key = %key, "deregistration timed out after {SHUTDOWN_LIMIT:?}; the key expires with its TTL");
            Outcome::LeftBehind
        }
    }
}
