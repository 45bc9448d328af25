//! Tera 2 set up for proxy configs: no autoescaping, confd's functions and filters, every
//! template parsed once at load time and rendered against a [`View`] of the store.

pub mod basis;
pub mod confd_funcs;
pub mod convert;
pub mod entries;
pub mod fragments;
pub mod funcs;
pub mod glob;
pub mod go;
pub mod incremental;
pub mod limits;
pub mod loops;
pub mod safe;
pub mod view;

use std::collections::HashMap;
use std::path::Path;

use tera::{Context, Tera};

pub use entries::EntryCache;
pub use go::GoTemplate;
pub use limits::RenderLimits;
pub use view::{View, join_key};

/// Environment variables a template may not read: confsync's and confd's own settings,
/// which hold the backends' passwords.
pub fn is_secret_env(name: &str) -> bool {
    name.starts_with("CONFSYNC_") || name.starts_with("CONFD_")
}

/// The error for a template that asks for one of them.
pub fn secret_env_error(name: &str) -> String {
    format!(
        "getenv {name:?}: templates may not read confsync's or confd's own settings (CONFSYNC_*, CONFD_*), which hold the backends' passwords"
    )
}

/// A template that failed to load or render; the text names the file and, where Tera
/// knows it, the line with a caret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read or parsed.
    #[error("template {path}: {message}")]
    Load { path: String, message: String },
    /// Rendering failed (a missing key in `getv`, a bad filter argument, ...).
    #[error("rendering template {name}: {message}")]
    Render { name: String, message: String },
    /// The render was still running at the resource's `render_timeout`: it was told to
    /// stop and whatever it returns is discarded.
    #[error(
        "render stuck: template {name} still running after render_timeout ({timeout:?}); abandoned, its result will be discarded"
    )]
    TimedOut {
        name: String,
        timeout: std::time::Duration,
    },
}

/// Which language a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// confd's Go `text/template` dialect.
    Go,
    /// Tera 2 with confsync's functions.
    Tera,
}

impl EngineKind {
    /// `go` or `tera`, as a resource's `engine` field spells it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "go" => Some(EngineKind::Go),
            "tera" => Some(EngineKind::Tera),
            _ => None,
        }
    }

    /// The name a resource's `engine` field uses.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Go => "go",
            EngineKind::Tera => "tera",
        }
    }
}

/// Every template of one configuration, parsed and ready to render.
pub struct Engine {
    tera: Tera,
    /// The same templates with their cacheable loops rendered through the resource's
    /// fragment cache, for renders that have one.
    incremental: incremental::Incremental,
    /// Go templates by name (a resource's `src`).
    go: HashMap<String, GoTemplate>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// True when `text` uses Tera's own tags, which Go templates print as text.
fn has_tera_tags(text: &str) -> bool {
    text.contains("{%") || text.contains("{#")
}

/// True when `text` calls a function with a named argument (`f(key=`), Tera's syntax.
fn has_named_arguments(text: &str) -> bool {
    static CALL: std::sync::OnceLock<regex_lite::Regex> = std::sync::OnceLock::new();
    CALL.get_or_init(|| {
        regex_lite::Regex::new(r"[A-Za-z_][A-Za-z0-9_]*\(\s*[A-Za-z_][A-Za-z0-9_]*\s*=[^=]")
            .expect("a valid pattern")
    })
    .is_match(text)
}

impl Engine {
    /// An engine with confsync's functions and filters and no templates yet.
    pub fn new() -> Self {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&'static str>::new());
        funcs::register(&mut tera);
        confd_funcs::register(&mut tera);
        Self {
            incremental: incremental::Incremental::new(&tera),
            tera,
            go: HashMap::new(),
        }
    }

    /// Parses `text` as the Tera template `name` (used for its error messages too).
    pub fn add_raw(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        self.tera
            .add_raw_template(name, text)
            .map_err(|e| TemplateError::Load {
                path: name.to_string(),
                message: e.to_string(),
            })?;
        self.incremental.add(name, text, &self.tera);
        Ok(())
    }

    /// Parses `text` as the Go template `name`.
    pub fn add_go_raw(&mut self, name: &str, text: &[u8]) -> Result<(), TemplateError> {
        let base = name.rsplit('/').next().unwrap_or(name);
        let t = GoTemplate::parse_bytes(base, text).map_err(|e| TemplateError::Load {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        self.go.insert(name.to_string(), t);
        Ok(())
    }

    /// Reads and parses the file at `path` as the template `name`, in the language
    /// `kind` names or, without it, the one [`Engine::detect`] finds.
    pub fn add_file(
        &mut self,
        name: &str,
        path: &Path,
        kind: Option<EngineKind>,
    ) -> Result<EngineKind, TemplateError> {
        let load = |message: String| TemplateError::Load {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| load(e.to_string()))?;
        let kind = match kind {
            Some(k) => k,
            None if path.extension().is_some_and(|e| e == "tera") => EngineKind::Tera,
            None => return self.add_detected(name, &bytes).map_err(&load),
        };
        let relabel = |e: TemplateError| match e {
            TemplateError::Load { message, .. } => load(message),
            other => other,
        };
        match kind {
            EngineKind::Go => self.add_go_raw(name, &bytes).map_err(relabel)?,
            EngineKind::Tera => {
                let text = String::from_utf8(bytes).map_err(|e| {
                    load(format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ))
                })?;
                self.add_raw(name, &text).map_err(relabel)?;
            }
        }
        Ok(kind)
    }

    /// The language rule for a template without `engine`: a file with Tera's own tags
    /// (`{%`, `{#`, which Go prints as text) is Tera; otherwise a file that parses as a
    /// Go template is Go; otherwise one that calls a function with named arguments
    /// (`getv(key=...)`, which Go cannot express) and parses as Tera is Tera; otherwise
    /// the Go parser's error is reported (so a Go template calling an unknown function
    /// fails at load time, with its line and column).
    fn add_detected(&mut self, name: &str, bytes: &[u8]) -> Result<EngineKind, String> {
        let text = std::str::from_utf8(bytes).ok();
        if let Some(text) = text.filter(|t| has_tera_tags(t)) {
            return match self.add_raw(name, text) {
                Ok(()) => Ok(EngineKind::Tera),
                Err(e) => Err(format!(
                    "{} (read as a Tera template because it has {{% or {{# tags; set engine = \"go\" in the resource to read it as a Go template)",
                    match e {
                        TemplateError::Load { message, .. } => message,
                        other => other.to_string(),
                    }
                )),
            };
        }
        let go = match self.add_go_raw(name, bytes) {
            Ok(()) => return Ok(EngineKind::Go),
            Err(TemplateError::Load { message, .. }) => message,
            Err(other) => other.to_string(),
        };
        if let Some(text) = text.filter(|t| has_named_arguments(t))
            && self.add_raw(name, text).is_ok()
        {
            return Ok(EngineKind::Tera);
        }
        Err(format!(
            "{go} (read as a Go template; set engine = \"tera\" in the resource to read it as Tera)"
        ))
    }

    /// True when a template called `name` is loaded.
    pub fn contains(&self, name: &str) -> bool {
        self.go.contains_key(name) || self.tera.contains_template(name)
    }

    /// The language of the template `name`, if loaded.
    pub fn kind_of(&self, name: &str) -> Option<EngineKind> {
        if self.go.contains_key(name) {
            Some(EngineKind::Go)
        } else if self.tera.contains_template(name) {
            Some(EngineKind::Tera)
        } else {
            None
        }
    }

    /// The Go template `name`, if it is one.
    pub fn go_template(&self, name: &str) -> Option<&GoTemplate> {
        self.go.get(name)
    }

    /// Renders `name` with the store functions reading `view`, within the default limits.
    pub fn render(&self, name: &str, view: View) -> Result<Vec<u8>, TemplateError> {
        self.render_with(name, view, &RenderLimits::default())
    }

    /// Renders `name` with the store functions reading `view`, within `limits`: a render
    /// that reaches `max_size` bytes or is cancelled stops with an error saying so.
    pub fn render_with(
        &self,
        name: &str,
        view: View,
        limits: &RenderLimits,
    ) -> Result<Vec<u8>, TemplateError> {
        if let Some(t) = self.go.get(name) {
            let out = t.render_with(&view, limits);
            if let Some(cache) = view.cache() {
                if out.is_ok() {
                    view.commit();
                }
                cache.finish_render();
            }
            return out.map_err(|e| TemplateError::Render {
                name: name.to_string(),
                message: e.to_string(),
            });
        }
        let ctx = Context::new();
        let cache = view.cache().cloned();
        let basis = view.clone();
        let mut out = limits::LimitedWriter::new(limits);
        let rewritten = cache.as_ref().and_then(|_| self.incremental.tera());
        let (done, loop_stopped) = limits::with_cancel(limits.cancel.clone(), || {
            if let Some(rewritten) = rewritten {
                self.incremental.with_loops(limits, || {
                    funcs::with_view(view, || rewritten.render_to(name, &ctx, &mut out))
                })
            } else {
                let done = funcs::with_view(view, || self.tera.render_to(name, &ctx, &mut out));
                (done, None)
            }
        });
        if let Some(cache) = cache {
            if done.is_ok() {
                basis.commit();
            }
            cache.finish_render();
        }
        match (done, out.stopped.or(loop_stopped)) {
            (Ok(()), _) => Ok(out.out),
            (Err(_), Some(why)) => Err(TemplateError::Render {
                name: name.to_string(),
                message: why,
            }),
            (Err(e), None) => Err(TemplateError::Render {
                name: name.to_string(),
                message: error_text(&e),
            }),
        }
    }
}

/// Tera's error with its chain of causes.
fn error_text(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

#[cfg(test)]
mod incremental_tests;
#[cfg(test)]
mod tests;
