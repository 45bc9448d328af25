//! A running backend `watch` for tests, with the view its updates add up to (as the
//! daemon's store would hold it), every update received, and bounded waits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confsync::backend::{Backend, BackendConfig, BackendError, KvMap, Snapshot, Update};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A running `watch` with the view it implies, for assertions.
pub struct Watching {
    pub rx: mpsc::Receiver<Update>,
    /// The keys the updates so far add up to.
    pub view: KvMap,
    /// Every update received, in order.
    pub log: Vec<Update>,
    shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), BackendError>>,
}

impl Watching {
    /// Lists `prefixes` and watches from that snapshot.
    pub async fn start(backend: Arc<dyn Backend>, prefixes: impl Into<Vec<String>>) -> Watching {
        let prefixes = prefixes.into();
        let snap = backend.list(&prefixes).await.expect("initial list");
        Watching::from_snapshot(backend, prefixes, snap)
    }

    /// Watches from `snap` (which may be old).
    pub fn from_snapshot(
        backend: Arc<dyn Backend>,
        prefixes: Vec<String>,
        snap: Snapshot,
    ) -> Watching {
        let (tx, rx) = mpsc::channel(1024);
        let shutdown = CancellationToken::new();
        let view = snap.kvs.clone();
        let token = shutdown.clone();
        let task =
            tokio::spawn(async move { backend.watch(prefixes, Arc::new(snap), tx, token).await });
        Watching {
            rx,
            view,
            log: Vec::new(),
            shutdown,
            task,
        }
    }

    pub fn apply(&mut self, u: Update) {
        match &u {
            Update::Changes(changes) => {
                for (k, v) in changes {
                    match v {
                        Some(v) => self.view.insert(k.clone(), v.clone()),
                        None => self.view.remove(k),
                    };
                }
            }
            Update::Resync(snap) => self.view = snap.kvs.clone(),
            Update::Down(_) | Update::Up => {}
        }
        self.log.push(u);
    }

    /// Applies updates until `pred(view)` holds; panics after `limit`.
    pub async fn until(&mut self, limit: Duration, what: &str, pred: impl Fn(&KvMap) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !pred(&self.view) {
            self.next(deadline, limit, what).await;
        }
    }

    /// Applies updates until one satisfies `pred`; returns when it arrived; panics after
    /// `limit`.
    pub async fn until_update(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Update) -> bool,
    ) -> Instant {
        let deadline = tokio::time::Instant::now() + limit;
        let start = self.log.len();
        while !self.log[start..].iter().any(&pred) {
            self.next(deadline, limit, what).await;
        }
        Instant::now()
    }

    async fn next(&mut self, deadline: tokio::time::Instant, limit: Duration, what: &str) {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(u)) => self.apply(u),
            Ok(None) => panic!(
                "watch ended while waiting for {what}; updates: {:?}",
                self.kinds()
            ),
            Err(_) => panic!(
                "no {what} within {limit:?}; view: {:?}; updates: {:?}",
                self.view,
                self.kinds()
            ),
        }
    }

    /// The updates so far, summarised (Changes with their keys, Resync with its size).
    pub fn kinds(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|u| match u {
                Update::Changes(c) => format!("Changes{:?}", c),
                Update::Resync(s) => format!("Resync({} keys @ {:?})", s.kvs.len(), s.revision),
                Update::Down(m) => format!("Down({m})"),
                Update::Up => "Up".into(),
            })
            .collect()
    }

    pub fn count(&self, pred: impl Fn(&Update) -> bool) -> usize {
        self.log.iter().filter(|u| pred(u)).count()
    }

    pub async fn stop(self) -> Result<(), BackendError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("watch stops within 5 s after shutdown")
            .expect("watch task")
    }
}

/// The backend `cfg` describes (panics with the error when it cannot be built).
pub async fn build(cfg: &BackendConfig) -> Arc<dyn Backend> {
    confsync::backend::build(cfg)
        .await
        .unwrap_or_else(|e| panic!("build the {} backend: {e}", cfg.kind.name()))
}

/// A key map from `(key, value)` pairs.
pub fn kv(pairs: &[(&str, &str)]) -> KvMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
