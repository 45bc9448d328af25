//! Configuration: `confsync.toml` and the command line merged into a [`RunConfig`], and the
//! resource files with their templates. Raw input is parsed without side effects, then
//! validated; validation reports every error at once, each with its file and line.

pub mod duration;
pub mod resource;
pub mod settings;

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
    /// The backend every resource reads.
    pub backend: BackendConfig,
    /// Joined in front of every resource prefix.
    pub prefix: String,
    /// Poll interval when not watching.
    pub interval: Duration,
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

/// Reads the settings file (flags and env already sit in `cli`) and merges:
/// flag > env > file > default.
pub fn run_config(confdir: &Path, config_file: Option<&Path>, cli: Settings) -> Result<RunConfig, Vec<ConfigError>> {
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
        err(None, format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    let s: Settings = toml::from_str(&text)
        .map_err(|e| err(e.span().map(|s| line_of(&text, s.start)), e.message().trim().to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(s.anchor_paths(dir))
}

fn validate(confdir: &Path, s: Settings) -> Result<RunConfig, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let kind = match s.backend.as_deref() {
        None => BackendKind::File,
        Some(k) => BackendKind::parse(k).unwrap_or_else(|| {
            errors.push(ConfigError::cli(format!(
                "unknown backend `{k}` (use file, env, etcd or redis)"
            )));
            BackendKind::File
        }),
    };
    let mut password = s.password;
    if let Some(pf) = &s.password_file {
        match std::fs::read_to_string(pf) {
            Ok(p) => password = password.or(Some(p.trim_end_matches(['\r', '\n']).to_string())),
            Err(e) => errors.push(ConfigError {
                file: pf.clone(),
                line: None,
                message: format!("cannot read password_file: {e}"),
            }),
        }
    }
    let nodes = s.nodes.unwrap_or_default();
    if matches!(kind, BackendKind::Etcd | BackendKind::Redis) && nodes.is_empty() {
        errors.push(ConfigError::cli(format!(
            "the {} backend needs at least one --node",
            kind.name()
        )));
    }
    let files = s.file.unwrap_or_default();
    if kind == BackendKind::File && files.is_empty() {
        errors.push(ConfigError::cli(
            "the file backend needs at least one --file (or `file = [...]` in confsync.toml)",
        ));
    }
    let log_format = match s.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(f) => {
            errors.push(ConfigError::cli(format!("unknown log format `{f}` (use text or json)")));
            LogFormat::Text
        }
    };
    let interval = s.interval.unwrap_or(600);
    if interval == 0 {
        errors.push(ConfigError::cli("interval must be at least 1 second"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RunConfig {
        confdir: confdir.to_path_buf(),
        backend: BackendConfig {
            kind,
            nodes,
            files,
            watch: s.watch.unwrap_or(false),
            username: s.username,
            password,
            client_cert: s.client_cert,
            client_key: s.client_key,
            client_ca_keys: s.client_ca_keys,
            separator: s.separator,
            sentinel_master: s.sentinel_master,
            interval: Some(Duration::from_secs(interval)),
        },
        prefix: s.prefix.unwrap_or_default(),
        interval: Duration::from_secs(interval),
        onetime: s.onetime.unwrap_or(false),
        noop: s.noop.unwrap_or(false),
        sync_only: s.sync_only.unwrap_or(false),
        keep_stage_file: s.keep_stage_file.unwrap_or(false),
        log_level: s.log_level.unwrap_or_else(|| "info".into()),
        log_format,
    })
}

/// Resources and their parsed templates.
pub struct ResourceSet {
    /// Every resource, in file name order.
    pub resources: Vec<Resource>,
    /// Their templates, each parsed once.
    pub engine: Engine,
}

/// Loads every `CONFDIR/conf.d/*.toml` and its template; reports every error at once.
pub fn load_resources(confdir: &Path, global_prefix: &str) -> Result<ResourceSet, Vec<ConfigError>> {
    let confd = confdir.join("conf.d");
    let templates = confdir.join("templates");
    let mut errors = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&confd) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
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
        match resource::load(&f, confdir, &templates, global_prefix) {
            Ok(r) => {
                if !engine.contains(&r.src) {
                    if let Err(e) = engine.add_file(&r.src, &r.src_path) {
                        errors.push(ConfigError {
                            file: r.src_path.clone(),
                            line: None,
                            message: match e {
                                crate::template::TemplateError::Load { message, .. } => message,
                                other => other.to_string(),
                            },
                        });
                    }
                }
                resources.push(r);
            }
            Err(mut es) => errors.append(&mut es),
        }
    }
    if errors.is_empty() {
        Ok(ResourceSet { resources, engine })
    } else {
        Err(errors)
    }
}

impl fmt::Debug for ResourceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceSet").field("resources", &self.resources).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
