//! Run settings: one struct read from the command line (flags, then `CONFSYNC_*` env
//! vars, through clap) and from `confsync.toml` (through serde), merged with a clear
//! precedence: flag > env > file > default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use serde::Deserialize;

use super::duration;

/// Every setting of `run` and `render`; `None` means "not given at this layer".
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Backend kind: file, env, etcd, redis or docker [default: file]
    #[arg(long, env = "CONFSYNC_BACKEND")]
    pub backend: Option<String>,
    /// Backend endpoint; repeat for every cluster member (etcd URL, Redis host:port[/db])
    #[arg(long = "node", env = "CONFSYNC_NODE", value_delimiter = ',')]
    #[serde(alias = "node")]
    pub nodes: Option<Vec<String>>,
    /// Data file or directory for the file backend (YAML, JSON, TOML); repeatable
    #[arg(long = "file", env = "CONFSYNC_FILE", value_delimiter = ',')]
    #[serde(alias = "files")]
    pub file: Option<Vec<PathBuf>>,
    /// Prefix joined in front of every resource's own prefix
    #[arg(long, env = "CONFSYNC_PREFIX")]
    pub prefix: Option<String>,
    /// Watch the backend for changes instead of polling
    #[arg(long, env = "CONFSYNC_WATCH", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub watch: Option<bool>,
    /// Seconds between polls when not watching [default: 600]
    #[arg(long, env = "CONFSYNC_INTERVAL")]
    pub interval: Option<u64>,
    /// Watching: a full listing this often repairs any event the watch lost, e.g. "10m";
    /// 0 or "off" turns it off [default: 10m]
    #[arg(long, env = "CONFSYNC_RESYNC_INTERVAL", value_parser = duration::raw_arg)]
    #[serde(alias = "resync-interval")]
    pub resync_interval: Option<duration::Raw>,
    /// /ready turns 503 once a backend's data is older than this (it is down, or its
    /// listings fail), e.g. "30m"; 0 or "off" never [default: 3 x resync_interval when
    /// watching, 3 x interval when polling]
    #[arg(long, env = "CONFSYNC_MAX_STALENESS", value_parser = duration::raw_arg)]
    #[serde(alias = "max-staleness")]
    pub max_staleness: Option<duration::Raw>,
    /// A value longer than this many bytes is dropped with its key, with a warning
    /// [default: 1048576 (1 MiB)]
    #[arg(long, env = "CONFSYNC_MAX_VALUE_SIZE")]
    #[serde(alias = "max-value-size")]
    pub max_value_size: Option<usize>,
    /// A listing with more keys than this is refused and the last good keys kept
    /// [default: 1000000]
    #[arg(long, env = "CONFSYNC_MAX_KEYS")]
    #[serde(alias = "max-keys")]
    pub max_keys: Option<usize>,
    /// Render every resource once and exit
    #[arg(long, env = "CONFSYNC_ONETIME", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub onetime: Option<bool>,
    /// Show what would change as a diff; touch nothing
    #[arg(long, env = "CONFSYNC_NOOP", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub noop: Option<bool>,
    /// Write destinations without running check or reload commands
    #[arg(long, env = "CONFSYNC_SYNC_ONLY", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    #[serde(alias = "sync-only")]
    pub sync_only: Option<bool>,
    /// Keep the staged file when its check fails (for debugging)
    #[arg(long, env = "CONFSYNC_KEEP_STAGE_FILE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    #[serde(alias = "keep-stage-file")]
    pub keep_stage_file: Option<bool>,
    /// Log level: error, warn, info, debug, trace [default: info]
    #[arg(long, env = "CONFSYNC_LOG_LEVEL")]
    #[serde(alias = "log-level")]
    pub log_level: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "CONFSYNC_LOG_FORMAT")]
    #[serde(alias = "log-format")]
    pub log_format: Option<String>,
    /// Backend user (etcd user, Redis ACL user)
    #[arg(long, env = "CONFSYNC_USERNAME")]
    pub username: Option<String>,
    /// Backend password (prefer CONFSYNC_PASSWORD or password_file; never logged)
    #[arg(long, env = "CONFSYNC_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// File holding the backend password
    #[arg(long, env = "CONFSYNC_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// TLS client certificate (PEM)
    #[arg(long, env = "CONFSYNC_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// TLS client key (PEM)
    #[arg(long, env = "CONFSYNC_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// TLS CA certificates (PEM) that sign the server's certificate
    #[arg(long, env = "CONFSYNC_CLIENT_CA_KEYS")]
    pub client_ca_keys: Option<PathBuf>,
    /// Redis: the separator that stands for `/` in stored keys [default: /]
    #[arg(long, env = "CONFSYNC_SEPARATOR")]
    pub separator: Option<String>,
    /// Redis: the nodes are Sentinels; follow the master with this name
    #[arg(long, env = "CONFSYNC_SENTINEL_MASTER")]
    pub sentinel_master: Option<String>,
    /// Docker: the address written for ports published on 0.0.0.0 or :: [default: 127.0.0.1]
    #[arg(long, env = "CONFSYNC_DOCKER_HOST_IP")]
    #[serde(alias = "docker-host-ip")]
    pub docker_host_ip: Option<String>,
    /// Docker: only containers with this label (key or key=value); repeatable, all must match
    #[arg(long = "docker-label", env = "CONFSYNC_DOCKER_LABEL")]
    #[serde(alias = "docker-label", alias = "docker_labels")]
    pub docker_label: Option<Vec<String>>,
    /// ZooKeeper: the session timeout to ask for, e.g. "10s" (the server bounds it to
    /// 2-20 ticks) [default: 10s]
    #[arg(long, env = "CONFSYNC_SESSION_TIMEOUT", value_parser = duration::raw_arg)]
    #[serde(alias = "session-timeout")]
    pub session_timeout: Option<duration::Raw>,
    /// ZooKeeper: read nerve's registrations (`{"host":..,"port":..}` znodes) as
    /// `host:port` values
    #[arg(long, env = "CONFSYNC_NERVE", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub nerve: Option<bool>,
    /// Coalescing of bursts, "min:max" (e.g. "100ms:1s"): render once changes have been
    /// quiet for min, or max after the first unrendered change [default: 100ms:1s]
    #[arg(long, env = "CONFSYNC_WAIT")]
    pub wait: Option<String>,
    /// Serve /metrics, /health and /ready on this address (e.g. 127.0.0.1:9117)
    #[arg(long, env = "CONFSYNC_METRICS_ADDR")]
    #[serde(alias = "metrics-addr")]
    pub metrics_addr: Option<String>,
    /// Directory for state that must survive a restart (reloads still owed, backends'
    /// last good snapshots); "" turns it off [default: /var/lib/confsync when writable]
    #[arg(long, env = "CONFSYNC_STATE_DIR")]
    #[serde(alias = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// Most check and reload commands run at once [default: 4 x the CPUs]
    #[arg(long, env = "CONFSYNC_PARALLEL_COMMANDS")]
    #[serde(alias = "parallel-commands")]
    pub parallel_commands: Option<usize>,
    /// The only environment variables check and reload commands get (NAME or PREFIX*,
    /// comma-separated); CONFSYNC_* and CONFD_* never reach them [default: the whole
    /// environment but those]
    #[arg(long, env = "CONFSYNC_COMMAND_ENV", value_delimiter = ',')]
    #[serde(alias = "command-env")]
    pub command_env: Option<Vec<String>>,
    /// Exec mode: after the first render, run this command as a child (split into words
    /// like a shell would, without expansion), signal it on changes, stop with it
    #[arg(long, env = "CONFSYNC_EXEC")]
    pub exec: Option<String>,
    /// Exec mode: the signal that tells the child to reload [default: HUP]
    #[arg(long, env = "CONFSYNC_EXEC_RELOAD_SIGNAL")]
    #[serde(alias = "exec-reload-signal")]
    pub exec_reload_signal: Option<String>,
    /// Exec mode: the signal that asks the child to stop [default: TERM]
    #[arg(long, env = "CONFSYNC_EXEC_KILL_SIGNAL")]
    #[serde(alias = "exec-kill-signal")]
    pub exec_kill_signal: Option<String>,
    /// Exec mode: how long the child has to stop before SIGKILL, e.g. "10s" [default: 10s]
    #[arg(long, env = "CONFSYNC_EXEC_KILL_TIMEOUT", value_parser = duration::raw_arg)]
    #[serde(alias = "exec-kill-timeout")]
    pub exec_kill_timeout: Option<duration::Raw>,
    /// Exec mode: start the child again (backing off) when it exits, instead of exiting
    /// with its status
    #[arg(long, env = "CONFSYNC_EXEC_RESTART", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    #[serde(alias = "exec-restart")]
    pub exec_restart: Option<bool>,
    /// Wait a random time up to this long before each reload, e.g. "2s", so a fleet
    /// watching one prefix does not reload at once; a resource's `splay` overrides it
    #[arg(long, env = "CONFSYNC_SPLAY", value_parser = duration::raw_arg)]
    pub splay: Option<duration::Raw>,
    /// Named backends (`[backends.NAME]` in confsync.toml) that resources pick with
    /// `backend = "NAME"`; the flags above define the default backend.
    #[arg(skip)]
    pub backends: Option<BTreeMap<String, BackendTable>>,
}

/// One `[backends.NAME]` table: the backend settings, nothing else.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTable {
    /// file, env, etcd, redis or docker.
    pub kind: String,
    /// Endpoints.
    #[serde(default, alias = "node")]
    pub nodes: Vec<String>,
    /// Data files or directories (file backend).
    #[serde(default, alias = "files")]
    pub file: Vec<PathBuf>,
    /// Watch instead of polling [default: the top-level `watch`].
    pub watch: Option<bool>,
    /// Poll interval in seconds [default: the top-level `interval`].
    pub interval: Option<u64>,
    /// Full listing while watching [default: the top-level `resync_interval`].
    pub resync_interval: Option<duration::Raw>,
    /// Age past which `/ready` fails [default: the top-level `max_staleness`].
    pub max_staleness: Option<duration::Raw>,
    /// Longest value kept, in bytes [default: the top-level `max_value_size`].
    pub max_value_size: Option<usize>,
    /// Most keys a listing may hold [default: the top-level `max_keys`].
    pub max_keys: Option<usize>,
    /// Auth user.
    pub username: Option<String>,
    /// Auth password (prefer `password_file`).
    pub password: Option<Secret>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// TLS client certificate.
    pub client_cert: Option<PathBuf>,
    /// TLS client key.
    pub client_key: Option<PathBuf>,
    /// TLS CA bundle.
    pub client_ca_keys: Option<PathBuf>,
    /// Redis key separator.
    pub separator: Option<String>,
    /// Redis Sentinel master name.
    pub sentinel_master: Option<String>,
    /// Docker: address for ports published on 0.0.0.0 or ::.
    #[serde(alias = "docker-host-ip")]
    pub docker_host_ip: Option<String>,
    /// Docker: label filters (`key` or `key=value`), all must match.
    #[serde(default, alias = "docker-label", alias = "docker_labels")]
    pub docker_label: Vec<String>,
    /// ZooKeeper: the session timeout to ask for.
    #[serde(alias = "session-timeout")]
    pub session_timeout: Option<duration::Raw>,
    /// ZooKeeper: nerve's registrations read as `host:port`.
    pub nerve: Option<bool>,
}

/// A password: its text is never shown in `Debug` output (`"***"`), so settings can be
/// logged or printed whole.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// Shows whether a secret is set, never its text, in `Debug` output.
pub struct Redacted<'a>(pub &'a Option<String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(\"***\")"),
            None => f.write_str("None"),
        }
    }
}

impl Settings {
    /// Each field from `self` where set, else from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            backend: self.backend.or(lower.backend),
            nodes: self.nodes.or(lower.nodes),
            file: self.file.or(lower.file),
            prefix: self.prefix.or(lower.prefix),
            watch: self.watch.or(lower.watch),
            interval: self.interval.or(lower.interval),
            resync_interval: self.resync_interval.or(lower.resync_interval),
            max_staleness: self.max_staleness.or(lower.max_staleness),
            max_value_size: self.max_value_size.or(lower.max_value_size),
            max_keys: self.max_keys.or(lower.max_keys),
            onetime: self.onetime.or(lower.onetime),
            noop: self.noop.or(lower.noop),
            sync_only: self.sync_only.or(lower.sync_only),
            keep_stage_file: self.keep_stage_file.or(lower.keep_stage_file),
            log_level: self.log_level.or(lower.log_level),
            log_format: self.log_format.or(lower.log_format),
            username: self.username.or(lower.username),
            password: self.password.or(lower.password),
            password_file: self.password_file.or(lower.password_file),
            client_cert: self.client_cert.or(lower.client_cert),
            client_key: self.client_key.or(lower.client_key),
            client_ca_keys: self.client_ca_keys.or(lower.client_ca_keys),
            separator: self.separator.or(lower.separator),
            sentinel_master: self.sentinel_master.or(lower.sentinel_master),
            docker_host_ip: self.docker_host_ip.or(lower.docker_host_ip),
            docker_label: self.docker_label.or(lower.docker_label),
            session_timeout: self.session_timeout.or(lower.session_timeout),
            nerve: self.nerve.or(lower.nerve),
            wait: self.wait.or(lower.wait),
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            state_dir: self.state_dir.or(lower.state_dir),
            parallel_commands: self.parallel_commands.or(lower.parallel_commands),
            command_env: self.command_env.or(lower.command_env),
            exec: self.exec.or(lower.exec),
            exec_reload_signal: self.exec_reload_signal.or(lower.exec_reload_signal),
            exec_kill_signal: self.exec_kill_signal.or(lower.exec_kill_signal),
            exec_kill_timeout: self.exec_kill_timeout.or(lower.exec_kill_timeout),
            exec_restart: self.exec_restart.or(lower.exec_restart),
            splay: self.splay.or(lower.splay),
            backends: self.backends.or(lower.backends),
        }
    }

    /// Makes the relative paths of a settings file relative to the file's directory, so a
    /// config means the same whatever directory confsync is started from.
    pub fn anchor_paths(mut self, dir: &std::path::Path) -> Settings {
        let fix = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
        self.file = self.file.map(|v| v.into_iter().map(fix).collect());
        self.password_file = self.password_file.map(fix);
        self.state_dir = self
            .state_dir
            .map(|p| if p.as_os_str().is_empty() { p } else { fix(p) });
        self.client_cert = self.client_cert.map(fix);
        self.client_key = self.client_key.map(fix);
        self.client_ca_keys = self.client_ca_keys.map(fix);
        if let Some(tables) = self.backends.as_mut() {
            for t in tables.values_mut() {
                t.file = t.file.drain(..).map(fix).collect();
                t.password_file = t.password_file.take().map(fix);
                t.client_cert = t.client_cert.take().map(fix);
                t.client_key = t.client_key.take().map(fix);
                t.client_ca_keys = t.client_ca_keys.take().map(fix);
            }
        }
        self
    }

    /// The default backend's settings as a table (kind `file` when none is given).
    pub fn default_backend(&self) -> BackendTable {
        BackendTable {
            kind: self.backend.clone().unwrap_or_else(|| "file".into()),
            nodes: self.nodes.clone().unwrap_or_default(),
            file: self.file.clone().unwrap_or_default(),
            watch: self.watch,
            interval: self.interval,
            resync_interval: self.resync_interval.clone(),
            max_staleness: self.max_staleness.clone(),
            max_value_size: self.max_value_size,
            max_keys: self.max_keys,
            username: self.username.clone(),
            password: self.password.clone(),
            password_file: self.password_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            client_ca_keys: self.client_ca_keys.clone(),
            separator: self.separator.clone(),
            sentinel_master: self.sentinel_master.clone(),
            docker_host_ip: self.docker_host_ip.clone(),
            docker_label: self.docker_label.clone().unwrap_or_default(),
            session_timeout: self.session_timeout.clone(),
            nerve: self.nerve,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_password() {
        let table = BackendTable {
            kind: "etcd".into(),
            password: Some("hunter2-table".into()),
            ..BackendTable::default()
        };
        let s = Settings {
            password: Some("hunter2-flag".into()),
            backends: Some(BTreeMap::from([("b".to_string(), table.clone())])),
            ..Settings::default()
        };
        for text in [format!("{s:?}"), format!("{s:#?}"), format!("{table:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
        assert!(format!("{:?}", s.default_backend()).contains("***"));
        assert!(!format!("{:?}", s.default_backend()).contains("hunter2"));
    }
}
