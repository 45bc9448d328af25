//! Run settings: one struct read from the command line (flags, then `CONFSYNC_*` env
//! vars, through clap) and from `confsync.toml` (through serde), merged with a clear
//! precedence: flag > env > file > default.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use serde::Deserialize;

/// Every setting of `run` and `render`; `None` means "not given at this layer".
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Backend kind: file, env, etcd or redis [default: file]
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
    pub password: Option<String>,
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
        }
    }

    /// Makes the relative paths of a settings file relative to the file's directory, so a
    /// config means the same whatever directory confsync is started from.
    pub fn anchor_paths(mut self, dir: &std::path::Path) -> Settings {
        let fix = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
        self.file = self.file.map(|v| v.into_iter().map(fix).collect());
        self.password_file = self.password_file.map(fix);
        self.client_cert = self.client_cert.map(fix);
        self.client_key = self.client_key.map(fix);
        self.client_ca_keys = self.client_ca_keys.map(fix);
        self
    }
}
