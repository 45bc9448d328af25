//! Key/value backends: the [`Backend`] trait, what a listing returns and what a watch sends.
//!
//! A backend reads key prefixes from one store. `list` is the truth: every key under the
//! prefixes, read at one consistent point. `watch` (where the store can push) sends
//! [`Update`]s until it is cancelled; it owns its own reconnect loop and sends a fresh
//! [`Update::Resync`] listing after every reconnect (and, for etcd and Redis, every
//! `resync_interval`), because events are only hints.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "docker")]
pub mod docker;
pub mod env;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod file;
pub mod nerve;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(
    feature = "etcd",
    feature = "redis",
    feature = "docker",
    feature = "zookeeper"
))]
pub(crate) mod text;
#[cfg(feature = "zookeeper")]
pub mod zookeeper;

/// Keys to values, sorted by key (so prefix scans are range scans).
pub type KvMap = BTreeMap<String, String>;

/// Every key under a set of prefixes, read at one point in time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Full keys (with the prefix) to values.
    pub kvs: KvMap,
    /// The store's revision the listing was read at, where the store has one (etcd);
    /// a watch resumes from `revision + 1`.
    pub revision: Option<i64>,
}

/// One key changed: `Some(value)` for a put, `None` for a delete or expiry.
pub type Change = (String, Option<String>);

/// What a watching backend sends to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Incremental changes, in the order the store made them.
    Changes(Vec<Change>),
    /// A complete fresh listing of the watched prefixes (after a reconnect, a compaction or
    /// a lost event stream); the store diffs it against what it holds.
    Resync(Snapshot),
    /// The backend became unreachable: the daemon keeps the last good snapshot.
    Down(String),
    /// The backend is reachable again (a `Resync` follows).
    Up,
}

/// Why a backend call failed, and whether retrying can help.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// The store is unreachable or timed out: retry with backoff, keep the last snapshot.
    #[error("{backend} at {endpoint}: {message}")]
    Transient {
        backend: &'static str,
        endpoint: String,
        message: String,
    },
    /// Bad configuration (wrong password, bad URL, unreadable certificate): retrying will not help.
    #[error("{backend} at {endpoint}: {message}")]
    Fatal {
        backend: &'static str,
        endpoint: String,
        message: String,
    },
}

impl BackendError {
    /// A transient error from `backend` talking to `endpoint`.
    pub fn transient(
        backend: &'static str,
        endpoint: impl Into<String>,
        message: impl fmt::Display,
    ) -> Self {
        Self::Transient {
            backend,
            endpoint: endpoint.into(),
            message: message.to_string(),
        }
    }

    /// A fatal (configuration) error from `backend` for `endpoint`.
    pub fn fatal(
        backend: &'static str,
        endpoint: impl Into<String>,
        message: impl fmt::Display,
    ) -> Self {
        Self::Fatal {
            backend,
            endpoint: endpoint.into(),
            message: message.to_string(),
        }
    }

    /// True when a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// A key/value store confsync reads from.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short kind name for logs and metrics: "etcd", "redis", "zookeeper", "docker",
    /// "env", "file".
    fn kind(&self) -> &'static str;

    /// Every key under every prefix, read at one consistent point. Prefixes match as
    /// string prefixes (as confd does): `/app/servers` also matches `/app/servers2/x`.
    async fn list(&self, prefixes: &[String]) -> Result<Snapshot, BackendError>;

    /// True when [`Backend::watch`] is implemented; poll-only backends return false and
    /// the daemon calls `list` every interval instead.
    fn can_watch(&self) -> bool {
        false
    }

    /// True when the daemon may keep this backend's first listing as it is: its listings
    /// are laid out in key order and its watch reads only their revision (the daemon
    /// then hands the watch a snapshot without keys). Otherwise the watch gets the
    /// listing and the store keeps a key-ordered copy.
    fn listing_can_be_kept(&self) -> bool {
        false
    }

    /// True when [`Backend::watch`] itself lists in full every `resync_interval` (and
    /// sends the result as updates), ordered against its own events; otherwise the daemon
    /// lists on that interval beside the watch.
    fn resyncs_while_watching(&self) -> bool {
        false
    }

    /// Sends updates for `prefixes` until `shutdown` is cancelled. `from` is the snapshot
    /// the daemon already holds (its revision is where a watch resumes; where
    /// [`Backend::listing_can_be_kept`], the daemon may pass the revision without the
    /// keys, which the store kept). Reconnects with
    /// capped backoff by itself; sends `Down` once when the store goes away and `Up`
    /// followed by a `Resync` when it returns. Returns `Err` only for fatal errors.
    async fn watch(
        &self,
        prefixes: Vec<String>,
        from: Arc<Snapshot>,
        tx: mpsc::Sender<Update>,
        shutdown: CancellationToken,
    ) -> Result<(), BackendError> {
        let _ = (prefixes, from, tx, shutdown);
        Ok(())
    }
}

/// Which store a backend talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// YAML/JSON/TOML files (the default: needs no server).
    #[default]
    File,
    /// Environment variables (`/foo/bar` is `FOO_BAR`).
    Env,
    /// etcd v3.
    Etcd,
    /// Redis (standalone or behind Sentinel).
    Redis,
    /// The Docker engine's running containers.
    Docker,
    /// ZooKeeper (3.6+: persistent recursive watches).
    Zookeeper,
}

impl BackendKind {
    /// Parses a kind name as given on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "env" => Some(Self::Env),
            "etcd" | "etcdv3" => Some(Self::Etcd),
            "redis" => Some(Self::Redis),
            "docker" => Some(Self::Docker),
            "zookeeper" | "zk" => Some(Self::Zookeeper),
            _ => None,
        }
    }

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Env => "env",
            Self::Etcd => "etcd",
            Self::Redis => "redis",
            Self::Docker => "docker",
            Self::Zookeeper => "zookeeper",
        }
    }
}

/// Everything needed to connect one backend, already validated.
#[derive(Clone, Default)]
pub struct BackendConfig {
    /// Which store.
    pub kind: BackendKind,
    /// Endpoints: etcd URLs, Redis `host:port[/db]`, socket paths or URLs, Sentinels.
    pub nodes: Vec<String>,
    /// Data files or directories for the file backend; later ones override earlier ones.
    pub files: Vec<std::path::PathBuf>,
    /// Watch for changes instead of polling.
    pub watch: bool,
    /// Auth user (etcd user, Redis ACL user).
    pub username: Option<String>,
    /// Auth password; never logged (see the `Debug` impl).
    pub password: Option<String>,
    /// TLS client certificate (PEM).
    pub client_cert: Option<std::path::PathBuf>,
    /// TLS client key (PEM).
    pub client_key: Option<std::path::PathBuf>,
    /// TLS CA bundle (PEM) to verify the server.
    pub client_ca_keys: Option<std::path::PathBuf>,
    /// Redis: the character that stands for `/` in the store's keys (default `/`).
    pub separator: Option<String>,
    /// Redis: the nodes are Sentinels and this is the master's name.
    pub sentinel_master: Option<String>,
    /// How often a watching backend polls when it cannot watch after all (Redis with
    /// `CONFIG` forbidden, so keyspace notifications cannot be enabled); `None` means the
    /// backend's own default.
    pub interval: Option<std::time::Duration>,
    /// While watching, a full listing this often repairs any event the watch lost
    /// (`None`: never, beyond the listings after reconnects).
    pub resync_interval: Option<std::time::Duration>,
    /// Data older than this makes `/ready` fail (`None`: never).
    pub max_staleness: Option<std::time::Duration>,
    /// Bounds on the values and keys taken from it (`max_value_size`, `max_keys`).
    pub store_limits: crate::store::StoreLimits,
    /// Docker: the address written for ports published on 0.0.0.0 or `::` (`None`:
    /// 127.0.0.1).
    pub docker_host_ip: Option<std::net::IpAddr>,
    /// Docker: `--docker-label` filters as given (`key` or `key=value`).
    pub docker_labels: Vec<String>,
    /// ZooKeeper: the session timeout to ask for (`None`: the backend's default).
    pub session_timeout: Option<std::time::Duration>,
    /// ZooKeeper: znodes holding nerve's JSON registrations are read as `host:port`.
    pub nerve: bool,
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("kind", &self.kind)
            .field("nodes", &self.nodes)
            .field("files", &self.files)
            .field("watch", &self.watch)
            .field("username", &self.username)
            .field(
                "password",
                &crate::config::settings::Redacted(&self.password),
            )
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("client_ca_keys", &self.client_ca_keys)
            .field("separator", &self.separator)
            .field("sentinel_master", &self.sentinel_master)
            .field("interval", &self.interval)
            .field("resync_interval", &self.resync_interval)
            .field("max_staleness", &self.max_staleness)
            .field("store_limits", &self.store_limits)
            .field("docker_host_ip", &self.docker_host_ip)
            .field("docker_labels", &self.docker_labels)
            .field("session_timeout", &self.session_timeout)
            .field("nerve", &self.nerve)
            .finish()
    }
}

/// Connects the backend `cfg` describes. Connecting does not prove the store is up: the
/// first `list` does.
pub async fn build(cfg: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    match cfg.kind {
        BackendKind::File => Ok(Arc::new(file::FileBackend::new(cfg)?)),
        BackendKind::Env => Ok(Arc::new(env::EnvBackend::new())),
        #[cfg(feature = "etcd")]
        BackendKind::Etcd => Ok(Arc::new(etcd::EtcdBackend::connect(cfg).await?)),
        #[cfg(feature = "redis")]
        BackendKind::Redis => Ok(Arc::new(redis::RedisBackend::connect(cfg).await?)),
        #[cfg(feature = "docker")]
        BackendKind::Docker => Ok(Arc::new(docker::DockerBackend::connect(cfg)?)),
        #[cfg(feature = "zookeeper")]
        BackendKind::Zookeeper => Ok(Arc::new(zookeeper::ZkBackend::new(cfg)?)),
        #[allow(unreachable_patterns)]
        other => Err(not_built(other)),
    }
}

/// The error for a backend whose cargo feature this binary was built without: it says
/// how to build one that has it. (The feature has the backend's name.)
pub fn not_built(kind: BackendKind) -> BackendError {
    let name = kind.name();
    BackendError::fatal(
        name,
        "-",
        format!(
            "this build of confsync does not include the {name} backend (cargo feature `{name}` off); \
             build one that has it with `cargo build --release --features {name}` \
             (the default features include it: leave out `--no-default-features`)"
        ),
    )
}

/// Test hook, in debug builds only: true when a watch must drop its events for `key`,
/// because `key` contains `CONFSYNC_TEST_DROP_WATCH_EVENTS` (so tests can lose an event
/// the way a real store sometimes does, and see a resync repair it).
#[cfg(any(feature = "etcd", feature = "redis"))]
pub(crate) fn dropped_for_tests(key: &str) -> bool {
    #[cfg(debug_assertions)]
    {
        static DROP: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let drop = DROP.get_or_init(|| {
            std::env::var("CONFSYNC_TEST_DROP_WATCH_EVENTS")
                .ok()
                .filter(|s| !s.is_empty())
        });
        if let Some(d) = drop {
            return key.contains(d.as_str());
        }
    }
    let _ = key;
    false
}

/// True when `key` lies under any of `prefixes` (string prefix match).
pub fn under_any(key: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| key.starts_with(p.as_str()))
}

/// Capped exponential backoff with full jitter, for reconnect loops.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
}

impl Backoff {
    /// Backoff starting at `base`, never above `cap`.
    pub fn new(base: std::time::Duration, cap: std::time::Duration) -> Self {
        Self {
            attempt: 0,
            base,
            cap,
        }
    }

    /// The next delay to wait (between half and all of the exponential step).
    pub fn next_delay(&mut self) -> std::time::Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let step = exp.min(self.cap);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Start again from `base` after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_password() {
        let cfg = BackendConfig {
            kind: BackendKind::Redis,
            password: Some("hunter2-cfg".into()),
            ..BackendConfig::default()
        };
        let text = format!("{cfg:?} {cfg:#?}");
        assert!(!text.contains("hunter2") && text.contains("***"), "{text}");
    }

    #[test]
    fn prefixes_match_as_strings_like_confd() {
        let p = ["/app/servers".to_string()];
        assert!(under_any("/app/servers/web1", &p));
        assert!(under_any("/app/servers2/x", &p), "string prefix, as confd");
        assert!(!under_any("/app/server", &p));
    }

    #[test]
    fn a_backend_left_out_says_how_to_build_it_in() {
        let e = not_built(BackendKind::Redis).to_string();
        assert!(
            e.contains("cargo build --release --features redis")
                && e.contains("no-default-features"),
            "{e}"
        );
    }

    #[test]
    fn backoff_is_capped() {
        let mut b = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        );
        for _ in 0..40 {
            assert!(b.next_delay() <= std::time::Duration::from_secs(5));
        }
    }
}
