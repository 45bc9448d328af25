//! Tera 2 set up for proxy configs: no autoescaping, confd's functions and filters, every
//! template parsed once at load time and rendered against a [`View`] of the store.

mod base64;
pub mod entries;
pub mod funcs;
pub mod glob;
pub mod view;

use std::path::Path;

use tera::{Context, Tera};

pub use entries::EntryCache;
pub use view::{View, join_key};

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
}

/// Every template of one configuration, parsed and ready to render.
pub struct Engine {
    tera: Tera,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An engine with confsync's functions and filters and no templates yet.
    pub fn new() -> Self {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&'static str>::new());
        funcs::register(&mut tera);
        Self { tera }
    }

    /// Parses `text` as the template `name` (used for its error messages too).
    pub fn add_raw(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        self.tera
            .add_raw_template(name, text)
            .map_err(|e| TemplateError::Load {
                path: name.to_string(),
                message: e.to_string(),
            })
    }

    /// Reads and parses the file at `path` as the template `name`.
    pub fn add_file(&mut self, name: &str, path: &Path) -> Result<(), TemplateError> {
        let load = |message: String| TemplateError::Load {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| load(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            load(format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        self.add_raw(name, &text).map_err(|e| match e {
            TemplateError::Load { message, .. } => load(message),
            other => other,
        })
    }

    /// True when a template called `name` is loaded.
    pub fn contains(&self, name: &str) -> bool {
        self.tera.contains_template(name)
    }

    /// Renders `name` with the store functions reading `view`.
    pub fn render(&self, name: &str, view: View) -> Result<String, TemplateError> {
        let ctx = Context::new();
        let cache = view.cache().cloned();
        let out = funcs::with_view(view, || self.tera.render(name, &ctx));
        if let Some(cache) = cache {
            cache.finish_render();
        }
        out.map_err(|e| TemplateError::Render {
            name: name.to_string(),
            message: error_text(&e),
        })
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
mod tests;
