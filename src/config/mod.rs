//! Configuration: `confsync.toml` and the command line merged into a [`RunConfig`], and the
//! resource files with their templates. Raw input is parsed without side effects, then
//! validated; validation reports every error at once, each with its file and line.

pub mod duration;
pub mod exec;
pub mod resource;
mod room;
pub mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{BackendConfig, BackendKind};
use crate::template::Engine;

pub use resource::Resource;
pub use settings::Settings;

/// One problem in one file, with the line where it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault (or `<command line>`).
    pub file: PathBuf,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl ConfigError {
    fn cli(message: impl Into<String>) -> Self {
        Self {
            file: PathBuf::from("<command line>"),
            line: None,
            message: message.into(),
        }
    }
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated settings of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Holds `confsync.toml`, `conf.d/` and `templates/`.
    pub confdir: PathBuf,
    /// Valid backends by name: `default` (the flags and top-level settings) and every
    /// `[backends.NAME]` table.
    pub backends: BTreeMap<String, BackendConfig>,
    /// Errors of backends that did not validate; reported only when a resource uses
    /// them (a default file backend without `--file` is fine if nobody reads it).
    pub backend_errors: BTreeMap<String, Vec<ConfigError>>,
    /// Joined in front of every resource prefix.
    pub prefix: String,
    /// Render once and exit.
    pub onetime: bool,
    /// Print diffs; touch nothing.
    pub noop: bool,
    /// Write without check or reload.
    pub sync_only: bool,
    /// Keep a staged file whose check failed.
    pub keep_stage_file: bool,
    /// Log filter (`info`, `debug`, or a tracing directive).
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Default coalescing of bursts for every resource.
    pub wait: Wait,
    /// Address for /metrics, /health and /ready.
    pub metrics_addr: Option<String>,
    /// `state_dir` as given: `None` for the default, `""` for none; see
    /// [`RunConfig::state_dir`].
    pub state_dir_setting: Option<PathBuf>,
    /// Most check and reload commands running at once, over all resources.
    pub parallel_commands: usize,
    /// What check and reload commands see of the environment (`command_env`): never
    /// confsync's secrets.
    pub command_env: crate::resource::CommandEnv,
    /// `--exec`: the child run beside the files, if any.
    pub exec: Option<exec::ExecConfig>,
    /// Most random delay before a reload, for resources without their own `splay`.
    pub splay: Duration,
}

/// How often a watching backend is listed in full when `resync_interval` is not set.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(600);

/// Where state is kept when `state_dir` is not set.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/confsync";

impl RunConfig {
    /// Where state that must survive a restart is kept: `state_dir` as given (`""` turns
    /// it off), else [`DEFAULT_STATE_DIR`] if it exists and is writable or can be created
    /// (so this may create it; call it when the daemon starts, not when checking).
    pub fn state_dir(&self) -> Option<PathBuf> {
        state_dir(self.state_dir_setting.clone())
    }
}

fn state_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    match given {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p),
        None => {
            let p = PathBuf::from(DEFAULT_STATE_DIR);
            let usable = std::fs::create_dir_all(&p).is_ok()
                && nix::unistd::access(&p, nix::unistd::AccessFlags::W_OK).is_ok();
            usable.then_some(p)
        }
    }
}

/// The name of the backend the command line and top-level settings define.
pub const DEFAULT_BACKEND: &str = "default";

impl RunConfig {
    /// Errors for every backend a resource uses that is unknown or invalid.
    pub fn check_backends(&self, resources: &[Resource]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut reported = std::collections::BTreeSet::new();
        for r in resources {
            if self.backends.contains_key(&r.backend) {
                continue;
            }
            match self.backend_errors.get(&r.backend) {
                Some(es) => {
                    if reported.insert(r.backend.clone()) {
                        errors.extend(es.iter().cloned());
                    }
                }
                None => errors.push(ConfigError {
                    file: r.file.clone(),
                    line: None,
                    message: format!(
                        "unknown backend `{}` (define it as [backends.{}] in confsync.toml)",
                        r.backend, r.backend
                    ),
                }),
            }
        }
        errors
    }
}

/// Coalescing of bursts: render once changes have been quiet for `min`, and never later
/// than `max` after the first change not yet rendered. A change after a quiet spell is
/// rendered at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Quiet period that ends a burst.
    pub min: Duration,
    /// Longest delay of a pending change while a burst goes on.
    pub max: Duration,
}

impl Default for Wait {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }
}

impl Wait {
    /// Parses `"min:max"`, or `"min"` alone (max is then 4 x min, as consul-template does).
    pub fn parse(text: &str) -> Result<Wait, String> {
        let (min, max) = match text.split_once(':') {
            Some((a, b)) => (duration::parse(a)?, duration::parse(b)?),
            None => {
                let m = duration::parse(text)?;
                (m, m.saturating_mul(4))
            }
        };
        if max < min {
            return Err(format!("wait {text:?}: max is less than min"));
        }
        Ok(Wait { min, max })
    }
}

/// Where the daemon config file is: `--config-file`, else `CONFDIR/confsync.toml` if present.
pub fn config_file_path(confdir: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = confdir.join("confsync.toml");
            p.is_file().then_some(p)
        }
    }
}

/// Validates settings merged by the caller, reading no file (confd's command line and
/// confd.toml, merged by confd's rules in [`crate::confd`]).
pub fn run_config_from(confdir: &Path, settings: Settings) -> Result<RunConfig, Vec<ConfigError>> {
    validate(confdir, settings)
}

/// Reads the settings file (flags and env already sit in `cli`) and merges:
/// flag > env > file > default.
pub fn run_config(
    confdir: &Path,
    config_file: Option<&Path>,
    cli: Settings,
) -> Result<RunConfig, Vec<ConfigError>> {
    let file_settings = match config_file_path(confdir, config_file) {
        None => Settings::default(),
        Some(path) => read_settings(&path)?,
    };
    validate(confdir, cli.or(file_settings))
}

fn read_settings(path: &Path) -> Result<Settings, Vec<ConfigError>> {
    let err = |line, message: String| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line,
            message,
        }]
    };
    let text = std::fs::read(path).map_err(|e| err(None, e.to_string()))?;
    let text = String::from_utf8(text).map_err(|e| {
        err(
            None,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let s: Settings = toml::from_str(&text).map_err(|e| {
        err(
            e.span().map(|s| line_of(&text, s.start)),
            e.message().trim().to_string(),
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(s.anchor_paths(dir))
}

fn validate(confdir: &Path, s: Settings) -> Result<RunConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let log_format = match s.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(f) => {
            errors.push(ConfigError::cli(format!(
                "unknown log format `{f}` (use text or json)"
            )));
            LogFormat::Text
        }
    };
    let interval = s.interval.unwrap_or(600);
    if interval == 0 || interval > duration::MAX.as_secs() {
        errors.push(ConfigError::cli(
            "interval must be between 1 second and 365 days",
        ));
    }
    let wait = match s.wait.as_deref().map(Wait::parse) {
        None => Wait::default(),
        Some(Ok(w)) => w,
        Some(Err(e)) => {
            errors.push(ConfigError::cli(e));
            Wait::default()
        }
    };
    let watch = s.watch.unwrap_or(false);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let parallel_commands = s.parallel_commands.unwrap_or(4 * cpus);
    if parallel_commands == 0 {
        errors.push(ConfigError::cli("parallel_commands must be at least 1"));
    }
    let command_env = crate::resource::CommandEnv::new(s.command_env.clone().map(|v| {
        // `--command-env ""` (or an empty variable) is an empty list.
        v.into_iter().filter(|n| !n.is_empty()).collect()
    }))
    .unwrap_or_else(|e| {
        errors.push(ConfigError::cli(e));
        crate::resource::CommandEnv::INHERIT
    });
    let exec = exec::exec_config(&s, &mut errors);
    let splay = exec::splay(&s, &mut errors);
    let mut backends = BTreeMap::new();
    let mut backend_errors = BTreeMap::new();
    let mut tables = vec![(
        DEFAULT_BACKEND.to_string(),
        s.default_backend(),
        ConfigError::cli(""),
    )];
    for (name, t) in s.backends.clone().unwrap_or_default() {
        let origin = ConfigError {
            file: confdir.join("confsync.toml"),
            line: None,
            message: format!("[backends.{name}]: "),
        };
        if name == DEFAULT_BACKEND {
            errors.push(ConfigError {
                message: "[backends.default]: the name `default` is taken by the top-level backend settings".into(),
                ..origin
            });
            continue;
        }
        tables.push((name, t, origin));
    }
    for (name, t, origin) in tables {
        let top = (
            s.resync_interval.as_ref(),
            s.max_staleness.as_ref(),
            s.max_value_size,
            s.max_keys,
        );
        match backend_config(t, watch, interval, top, &origin) {
            Ok(b) => {
                backends.insert(name, b);
            }
            Err(es) => {
                backend_errors.insert(name, es);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RunConfig {
        confdir: confdir.to_path_buf(),
        backends,
        backend_errors,
        prefix: s.prefix.unwrap_or_default(),
        onetime: s.onetime.unwrap_or(false),
        noop: s.noop.unwrap_or(false),
        sync_only: s.sync_only.unwrap_or(false),
        keep_stage_file: s.keep_stage_file.unwrap_or(false),
        log_level: s.log_level.unwrap_or_else(|| "info".into()),
        log_format,
        wait,
        metrics_addr: s.metrics_addr.filter(|a| !a.is_empty()),
        state_dir_setting: s.state_dir,
        parallel_commands,
        command_env,
        exec,
        splay,
    })
}

/// The password given directly, else the first line of `file` (an error names the file).
pub fn password(
    given: Option<settings::Secret>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    match (given, file) {
        (Some(p), _) => Ok(Some(p.0)),
        (None, None) => Ok(None),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| ConfigError {
                file: f.to_path_buf(),
                line: None,
                message: format!("cannot read the password file: {e}"),
            }),
    }
}

/// Validates one backend's settings; `origin` says where they came from in messages.
/// The top-level settings a backend table falls back to: `resync_interval`,
/// `max_staleness`, `max_value_size`, `max_keys`.
type TopLevel<'a> = (
    Option<&'a duration::Raw>,
    Option<&'a duration::Raw>,
    Option<usize>,
    Option<usize>,
);

fn backend_config(
    t: settings::BackendTable,
    watch: bool,
    interval: u64,
    top: TopLevel<'_>,
    origin: &ConfigError,
) -> Result<BackendConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let err = |message: String| ConfigError {
        message: format!("{}{message}", origin.message),
        ..origin.clone()
    };
    let kind = BackendKind::parse(&t.kind).unwrap_or_else(|| {
        errors.push(err(format!(
            "unknown backend `{}` (use file, env, etcd, redis, zookeeper or docker)",
            t.kind
        )));
        BackendKind::File
    });
    let password = password(t.password, t.password_file.as_deref()).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if matches!(
        kind,
        BackendKind::Etcd | BackendKind::Redis | BackendKind::Zookeeper
    ) && t.nodes.is_empty()
    {
        errors.push(err(format!(
            "the {} backend needs at least one --node",
            kind.name()
        )));
    }
    if kind == BackendKind::File && t.file.is_empty() {
        errors.push(err(
            "the file backend needs at least one --file (or `file = [...]` in confsync.toml)"
                .into(),
        ));
    }
    let docker_host_ip = t.docker_host_ip.as_deref().and_then(|ip| {
        ip.trim().parse::<std::net::IpAddr>().map_or_else(
            |_| {
                errors.push(err(format!("docker_host_ip {ip:?} is not an IP address")));
                None
            },
            Some,
        )
    });
    if kind != BackendKind::Docker && (t.docker_host_ip.is_some() || !t.docker_label.is_empty()) {
        errors.push(err(format!(
            "docker_host_ip and docker_label apply to the docker backend only, not {}",
            kind.name()
        )));
    }
    if kind != BackendKind::Zookeeper && (t.session_timeout.is_some() || t.nerve.is_some()) {
        errors.push(err(format!(
            "session_timeout and nerve apply to the zookeeper backend only, not {}",
            kind.name()
        )));
    }
    let session_timeout = match t.session_timeout.as_ref().map(duration::optional) {
        None => None,
        Some(Ok(Some(d))) if d >= Duration::from_millis(100) && d <= Duration::from_secs(3600) => {
            Some(d)
        }
        Some(Ok(_)) => {
            errors.push(err("session_timeout must be between 100ms and 1h".into()));
            None
        }
        Some(Err(e)) => {
            errors.push(err(format!("session_timeout: {e}")));
            None
        }
    };
    let interval = t.interval.unwrap_or(interval);
    if interval == 0 || interval > duration::MAX.as_secs() {
        errors.push(err("interval must be between 1 second and 365 days".into()));
    }
    let watch = t.watch.unwrap_or(watch);
    let mut optional = |name: &str, given: Option<&duration::Raw>| {
        let d = given.map(duration::optional).transpose();
        d.unwrap_or_else(|e| {
            errors.push(err(format!("{name}: {e}")));
            None
        })
    };
    let resync_interval = match t.resync_interval.as_ref().or(top.0) {
        None => Some(DEFAULT_RESYNC_INTERVAL),
        given => optional("resync_interval", given).flatten(),
    };
    // The default tolerates two missed syncs: a watcher confirms itself continuously
    // and re-lists every resync_interval; a poller's data ages by `interval` between polls.
    let period = resync_interval
        .filter(|_| watch)
        .unwrap_or(Duration::from_secs(interval));
    let max_staleness = match t.max_staleness.as_ref().or(top.1) {
        None => Some(period.saturating_mul(3)),
        given => optional("max_staleness", given).flatten(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let store_limits = crate::store::StoreLimits {
        max_value_size: t
            .max_value_size
            .or(top.2)
            .unwrap_or(crate::store::DEFAULT_MAX_VALUE_SIZE),
        max_keys: t
            .max_keys
            .or(top.3)
            .unwrap_or(crate::store::DEFAULT_MAX_KEYS),
    };
    Ok(BackendConfig {
        store_limits,
        resync_interval,
        max_staleness,
        kind,
        nodes: t.nodes,
        files: t.file,
        watch,
        username: t.username,
        password,
        client_cert: t.client_cert,
        client_key: t.client_key,
        client_ca_keys: t.client_ca_keys,
        separator: t.separator,
        sentinel_master: t.sentinel_master,
        docker_host_ip,
        docker_labels: t.docker_label,
        session_timeout,
        nerve: t.nerve.unwrap_or(false),
        interval: Some(Duration::from_secs(interval)),
    })
}

/// Both results, or every error of either.
pub fn both<A, B>(
    a: Result<A, Vec<ConfigError>>,
    b: Result<B, Vec<ConfigError>>,
) -> Result<(A, B), Vec<ConfigError>> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(a
            .err()
            .into_iter()
            .flatten()
            .chain(b.err().into_iter().flatten())
            .collect()),
    }
}

/// Resources and their parsed templates.
pub struct ResourceSet {
    /// Every resource, in file name order.
    pub resources: Vec<Resource>,
    /// Their templates, each parsed once.
    pub engine: Engine,
}

/// Whose rules resource files follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// confsync's: `conf.d/*.toml`, unknown keys are errors, the global prefix is joined
    /// in front of each resource's prefix, a relative `dest` is relative to the confdir.
    #[default]
    Confsync,
    /// confd's (in confd mode): every `*toml` below `conf.d`, keys matched ignoring case,
    /// unknown keys ignored (with a warning), a global prefix replaces each resource's
    /// prefix, a relative `dest` is relative to the working directory.
    Confd,
}

/// Loads every `CONFDIR/conf.d/*.toml` and its template; reports every error at once.
#[cfg(test)]
pub fn load_resources(
    confdir: &Path,
    global_prefix: &str,
) -> Result<ResourceSet, Vec<ConfigError>> {
    load_resources_as(confdir, global_prefix, Dialect::Confsync).map(|(set, _)| set)
}

/// Loads every resource file below `CONFDIR/conf.d` by `dialect`'s rules and its
/// template; reports every error at once, and returns warnings (keys confd ignores).
pub fn load_resources_as(
    confdir: &Path,
    global_prefix: &str,
    dialect: Dialect,
) -> Result<(ResourceSet, Vec<ConfigError>), Vec<ConfigError>> {
    load_resources_with(confdir, global_prefix, dialect, None)
}

/// [`load_resources_as`], with the settings file given on the command line
/// (`--config-file`, which may live outside the confdir) protected as a destination too.
pub fn load_resources_with(
    confdir: &Path,
    global_prefix: &str,
    dialect: Dialect,
    settings_file: Option<&Path>,
) -> Result<(ResourceSet, Vec<ConfigError>), Vec<ConfigError>> {
    let confd = confdir.join("conf.d");
    let templates = confdir.join("templates");
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let listed = match dialect {
        Dialect::Confsync => std::fs::read_dir(&confd).map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        }),
        Dialect::Confd => crate::confd::resource::files(&confd),
    };
    let mut files: Vec<PathBuf> = match listed {
        Ok(files) => files,
        Err(e) => {
            return Err(vec![ConfigError {
                file: confd,
                line: None,
                message: format!("cannot read the resource directory: {e}"),
            }]);
        }
    };
    files.sort();
    if files.is_empty() {
        errors.push(ConfigError {
            file: confd.clone(),
            line: None,
            message: "no resource files (*.toml) found".into(),
        });
    }
    let mut resources = Vec::new();
    let mut engine = Engine::new();
    for f in files {
        match resource::load_as(&f, confdir, &templates, global_prefix, dialect) {
            Ok((r, mut w)) => {
                warnings.append(&mut w);
                if !engine.contains(&r.src)
                    && let Err(e) = engine.add_file(&r.src, &r.src_path, r.engine)
                {
                    errors.push(ConfigError {
                        file: r.src_path.clone(),
                        line: None,
                        message: match e {
                            crate::template::TemplateError::Load { message, .. } => message,
                            other => other.to_string(),
                        },
                    });
                }
                resources.push(r);
            }
            Err(mut es) => errors.append(&mut es),
        }
    }
    errors.extend(resource::duplicate_dests(&resources));
    errors.extend(room::dest_errors(
        &resources,
        confdir,
        dialect,
        settings_file,
    ));
    if errors.is_empty() {
        Ok((ResourceSet { resources, engine }, warnings))
    } else {
        Err(errors)
    }
}

impl fmt::Debug for ResourceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceSet")
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
