//! confd's settings mapped onto confsync's [`Settings`]: backends, default nodes, log
//! levels, auth and TLS as confd uses them. A setting confsync cannot honour is an error
//! naming the flag (or the file and line, or the variable) it came from; a setting confd
//! itself ignores in this configuration is accepted with a warning that says so.

use std::path::{Path, PathBuf};

use super::spec::{Config, Origin, spec_of};
use crate::config::{ConfigError, Settings};

/// confd's settings in confsync's terms.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// `-confdir` (or confd.toml's `confdir`).
    pub confdir: PathBuf,
    /// Everything else; `prefix` replaces each resource's own (see `Dialect::Confd`).
    pub settings: Settings,
    /// Settings accepted but ignored, as confd ignores them.
    pub warnings: Vec<ConfigError>,
}

/// Backends confd has and confsync does not (yet): every backend word after the five
/// confsync reads; the last three are the fork's.
/// Backend words confsync serves; the rest of [`super::spec::BACKEND_WORDS`] are refused.
const SUPPORTED_BACKENDS: &[&str] = &["etcd", "etcdv3", "redis", "env", "file", "zookeeper"];

/// Flags whose only use is something confsync does not do: accepted only when empty.
const ONLY_FOR: &[(&str, &str)] = &[
    (
        "app-id",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "auth-token",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "auth-type",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "path",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "role-id",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "secret-id",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "user-id",
        "is only used by confd's vault backend, which confsync does not support",
    ),
    (
        "table",
        "is only used by confd's dynamodb backend, which confsync does not support",
    ),
    (
        "secret-keyring",
        "enables confd's crypt functions (cget, cgets, cgetv, cgetvs), which confsync does not provide; decrypt values before they reach the store",
    ),
    (
        "srv-domain",
        "finding nodes through DNS SRV records is not supported by confsync; list them with -node",
    ),
    (
        "srv-record",
        "finding nodes through DNS SRV records is not supported by confsync; list them with -node",
    ),
];

/// Where the system's CA bundle is on Debian and its relatives.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// An error or warning about setting `name`, pointing at where its value came from.
pub fn about(cfg: &Config, name: &str, message: &str) -> ConfigError {
    let key = spec_of(name).map_or(name, |s| if s.key.is_empty() { name } else { s.key });
    match cfg.origin(name) {
        Origin::File { path, line } => ConfigError {
            file: path.clone(),
            line: Some(*line),
            message: format!("`{key}`: {message}"),
        },
        Origin::Env(var) => ConfigError {
            file: PathBuf::from("<environment>"),
            line: None,
            message: format!("{var}: {message}"),
        },
        Origin::Default | Origin::Flag => ConfigError {
            file: PathBuf::from("<command line>"),
            line: None,
            message: format!("-{name}: {message}"),
        },
    }
}

/// Maps `cfg` (flags, confd.toml and env already applied); `env` looks up variables
/// (`ETCDCTL_PEERS`). Reports every error at once.
pub fn map(cfg: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Mapped, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let given = |name: &str| !cfg.str(name).is_empty();
    let ignored = |names: &[&str], why: &str, warnings: &mut Vec<ConfigError>| {
        for n in names {
            let set = given(n) || cfg.flag(n) || !cfg.list(n).is_empty();
            if set {
                warnings.push(about(
                    cfg,
                    n,
                    &format!("ignored {why}, as confd ignores it"),
                ));
            }
        }
    };

    for (name, why) in ONLY_FOR {
        if given(name) {
            errors.push(about(cfg, name, &format!("not supported: it {why}")));
        }
    }
    if !matches!(cfg.str("scheme"), "" | "http") {
        errors.push(about(cfg, "scheme", "not supported: it only applies to nodes found through DNS SRV records, which confsync does not support; give https:// URLs with -node"));
    }
    if cfg.flag("client-insecure") {
        errors.push(about(cfg, "client-insecure", "not supported: confsync always verifies the server's certificate; give the CA that signed it with -client-ca-keys"));
    }

    let backend = cfg.str("backend");
    let kind = match backend {
        "" | "etcd" | "etcdv3" => "etcd",
        "redis" | "env" | "file" | "zookeeper" => backend,
        b if super::spec::BACKEND_WORDS.contains(&b) && !SUPPORTED_BACKENDS.contains(&b) => {
            errors.push(about(cfg, "backend", &format!("the {b} backend is not supported by confsync yet (use etcd, etcdv3, redis, zookeeper, env or file)")));
            "file"
        }
        b => {
            errors.push(about(
                cfg,
                "backend",
                &format!("unknown backend `{b}` (use etcd, etcdv3, redis, zookeeper, env or file)"),
            ));
            "file"
        }
    };

    let log_level = match cfg.str("log-level").to_ascii_lowercase().as_str() {
        "" | "info" => "info",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        other => {
            errors.push(about(
                cfg,
                "log-level",
                &format!(
                    "not a valid level: {other:?} (use debug, info, warn, error, fatal or panic)"
                ),
            ));
            "info"
        }
    };

    let (watch, onetime) = (cfg.flag("watch"), cfg.flag("onetime"));
    let interval = cfg.int("interval");
    let max = crate::config::duration::MAX.as_secs();
    let interval = match u64::try_from(interval) {
        Ok(i @ 1..) if i <= max => Some(i),
        _ if watch || onetime => None, // not used: confd does not poll in these modes
        Ok(0) | Err(_) => {
            errors.push(about(
                cfg,
                "interval",
                "must be at least 1 (seconds between polls)",
            ));
            None
        }
        Ok(_) => {
            errors.push(about(
                cfg,
                "interval",
                &format!("must be at most {max} (365 days)"),
            ));
            None
        }
    };

    let mut nodes: Vec<String> = cfg.list("node").to_vec();
    if nodes.is_empty() {
        nodes = match backend {
            "" | "etcd" => env("ETCDCTL_PEERS")
                .map(|p| {
                    p.split(',')
                        .filter(|n| !n.is_empty())
                        .map(String::from)
                        .collect()
                })
                .filter(|v: &Vec<String>| !v.is_empty())
                .unwrap_or_else(|| vec!["http://127.0.0.1:2379".into()]),
            "etcdv3" => vec!["127.0.0.1:2379".into()],
            "redis" => vec!["127.0.0.1:6379".into()],
            "zookeeper" => vec!["127.0.0.1:2181".into()],
            _ => Vec::new(),
        };
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if kind == "file" {
        files = cfg.list("file").iter().map(PathBuf::from).collect();
        if files.is_empty() && backend == "file" {
            // confd read no keys at all then; a template would see an empty store.
            errors.push(about(
                cfg,
                "file",
                "the file backend needs at least one -file (a YAML or JSON file of keys)",
            ));
        }
        if cfg.str("filter") != "*"
            && let Some(dir) = files.iter().find(|f| f.is_dir())
        {
            errors.push(about(cfg, "filter", &format!("not supported with a directory in -file ({}): confsync reads every .yaml, .yml, .json and .toml file in it; list the files with -file instead", dir.display())));
        }
    } else {
        ignored(&["file"], "without -backend=file", &mut warnings);
        if cfg.str("filter") != "*" {
            ignored(&["filter"], "without -backend=file", &mut warnings);
        }
    }
    if matches!(kind, "env" | "file") {
        ignored(&["node"], &format!("with -backend={kind}"), &mut warnings);
        nodes.clear();
    }

    let path = |name: &str| given(name).then(|| PathBuf::from(cfg.str(name)));
    let (mut username, mut password) = (None, None);
    let (mut cert, mut key, mut cas) = (None, None, None);
    let mut separator = None;
    match kind {
        "etcd" => {
            if cfg.flag("basic-auth") {
                username = given("username").then(|| cfg.str("username").to_string());
                password = given("password").then(|| cfg.str("password").to_string());
            } else {
                ignored(
                    &["username", "password"],
                    "without -basic-auth",
                    &mut warnings,
                );
            }
            (cert, key, cas) = (
                path("client-cert"),
                path("client-key"),
                path("client-ca-keys"),
            );
            if cert.is_some() != key.is_some() {
                ignored(
                    &["client-cert", "client-key"],
                    "unless both are given",
                    &mut warnings,
                );
                (cert, key) = (None, None);
            }
            // Where confd verifies the server against the system's CAs, so does confsync.
            let tls = cert.is_some() || nodes.iter().any(|n| n.starts_with("https://"));
            if tls && cas.is_none() && Path::new(SYSTEM_CAS).is_file() {
                cas = Some(PathBuf::from(SYSTEM_CAS));
            }
            ignored(&["separator"], "without -backend=redis", &mut warnings);
        }
        "redis" => {
            // confd hands -client-key to Redis as its password.
            password = given("client-key").then(|| cfg.str("client-key").to_string());
            ignored(
                &[
                    "username",
                    "password",
                    "basic-auth",
                    "client-cert",
                    "client-ca-keys",
                ],
                "with -backend=redis",
                &mut warnings,
            );
            separator = given("separator").then(|| cfg.str("separator").to_string());
        }
        _ => {
            let names = [
                "username",
                "password",
                "basic-auth",
                "client-cert",
                "client-key",
                "client-ca-keys",
                "separator",
            ];
            ignored(&names, &format!("with -backend={kind}"), &mut warnings);
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let settings = Settings {
        backend: Some(kind.to_string()),
        nodes: Some(nodes),
        file: Some(files),
        prefix: Some(cfg.str("prefix").to_string()),
        watch: Some(watch),
        interval,
        onetime: Some(onetime),
        noop: Some(cfg.flag("noop")),
        sync_only: Some(cfg.flag("sync-only")),
        keep_stage_file: Some(cfg.flag("keep-stage-file")),
        log_level: Some(log_level.to_string()),
        username,
        password: password.map(crate::config::settings::Secret),
        client_cert: cert,
        client_key: key,
        client_ca_keys: cas,
        separator,
        ..Settings::default()
    };
    Ok(Mapped {
        confdir: PathBuf::from(cfg.str("confdir")),
        settings,
        warnings,
    })
}
