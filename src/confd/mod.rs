//! confd's command line and confd.toml, so that confsync can replace the `confd` binary
//! with nothing else changed.
//!
//! The binary takes confd's command line when it is invoked as `confd` (a symlink or a
//! copy of that name), or when its first argument is a single-dash long flag such as
//! `-onetime` or `-backend=etcd` ([`detect`]). The flags ([`args`]), then confd.toml
//! ([`toml`]), then the `CONFD_CLIENT_*` variables make confd's settings, in confd's order;
//! [`settings`] maps them onto confsync's [`Settings`](crate::config::Settings), and
//! [`Confd::load`] builds the same [`RunConfig`] and [`ResourceSet`] `confsync run` does,
//! with the resources read by confd's rules ([`resource`], [`Dialect::Confd`]).

pub mod args;
pub mod resource;
pub mod settings;
pub mod spec;
pub mod toml;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use args::{Parsed, UsageError, parse, usage};

use crate::config::{self, ConfigError, Dialect, ResourceSet, RunConfig};

/// The confd release whose command line and confd.toml confsync follows.
pub const CONFD_VERSION: &str = "0.16.0";

/// The line `-version` prints.
pub fn version() -> String {
    format!(
        "confsync {} (confd {CONFD_VERSION} command line)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Whether `argv` (with the program name first) is a confd command line: the program's
/// file name is `confd`, or the first argument is a single-dash long flag (`-onetime`,
/// `-backend=etcd`; not `-h`).
pub fn detect(argv: &[OsString]) -> bool {
    let named_confd = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "confd");
    let single_dash_long = argv
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a.len() > 2 && a.starts_with('-') && !a.starts_with("--"));
    named_confd || single_dash_long
}

/// Everything one run needs, loaded the way confd loads it.
#[derive(Debug)]
pub struct Loaded {
    /// The run's settings.
    pub run: RunConfig,
    /// The resources and their templates.
    pub resources: ResourceSet,
    /// Settings and resource keys that were accepted but are ignored (as in confd).
    pub warnings: Vec<ConfigError>,
}

/// A confd command line, ready to load (at start and again on SIGHUP).
#[derive(Debug, Clone)]
pub struct Confd {
    flags: spec::Config,
}

impl Confd {
    /// The parsed flags of one command line.
    pub fn new(flags: spec::Config) -> Self {
        Self { flags }
    }

    /// confd's settings: the flags, then confd.toml (`-config-file`) over them, then
    /// `CONFD_CLIENT_CAKEYS`, `CONFD_CLIENT_CERT` and `CONFD_CLIENT_KEY` where still empty;
    /// mapped onto confsync's settings. `env` looks up environment variables.
    pub fn settings(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<settings::Mapped, Vec<ConfigError>> {
        let mut cfg = self.flags.clone();
        let file = PathBuf::from(cfg.str("config-file"));
        let mut warnings = toml::read_file(&mut cfg, &file)?;
        toml::apply_env(&mut cfg, env);
        let mut mapped = settings::map(&cfg, env)?;
        warnings.append(&mut mapped.warnings);
        mapped.warnings = warnings;
        Ok(mapped)
    }

    /// Reads confd.toml, the environment, conf.d and the templates; every error at once.
    pub fn load(&self) -> Result<Loaded, Vec<ConfigError>> {
        let env = |k: &str| std::env::var(k).ok();
        let mapped = self.settings(&env)?;
        let prefix = mapped.settings.prefix.clone().unwrap_or_default();
        let run = config::run_config_from(&mapped.confdir, mapped.settings);
        // confd.toml may live outside the confdir (`-config-file`): never a destination.
        let file = PathBuf::from(self.flags.str("config-file"));
        let file = Some(file.as_path()).filter(|f| !f.as_os_str().is_empty());
        let set = config::load_resources_with(&mapped.confdir, &prefix, Dialect::Confd, file);
        let (run, (resources, mut res_warnings)) = config::both(run, set)?;
        let errors = run.check_backends(&resources.resources);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut warnings = mapped.warnings;
        warnings.append(&mut res_warnings);
        Ok(Loaded {
            run,
            resources,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests;
