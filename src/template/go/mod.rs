//! confd's template dialect: Go's `text/template` with confd's function map, rendered
//! byte for byte as confd renders it.
//!
//! A template is lexed and parsed once ([`lex`], [`parse`]) into [`ast`] trees (the main
//! one and every `define`/`block`), checked as Go checks it (functions exist, variables
//! are declared), and evaluated ([`exec`]) over the render's view of the store with
//! memkv's semantics ([`store`]). Values ([`value`]) borrow the store's keys and values,
//! so a loop over 100,000 keys copies none of them; [`fmt`] prints them as Go's `fmt`
//! does (checked against Go 1.19's own output in `vectors`), with Go's quoting
//! ([`quote`], [`isprint`]), escapers ([`escape`]) and `time.Time` ([`time`]). Function
//! signatures are in [`funcs`], their bodies in [`builtins`] and [`confd`] (Go 1.19's case
//! mapping in `case`). Loops whose body depends on its element alone ([`incr`]) reuse,
//! across a daemon's renders, what unchanged elements rendered last time (`exec/cached`).

pub mod ast;
pub mod base64;
mod builtins;
mod call;
mod case;
pub mod confd;
pub mod escape;
pub mod exec;
pub mod fmt;
pub mod funcs;
pub mod incr;
pub mod isprint;
mod letters;
pub mod lex;
pub mod parse;
pub mod quote;
pub mod sort;
pub mod srv;
pub mod store;
pub mod time;
pub mod token;
pub mod value;
#[cfg(test)]
mod vectors;

use super::view::View;

/// Where an error happened and what it was, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The construct, as written (empty for syntax errors).
    pub construct: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for GoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.column)?;
        if !self.construct.is_empty() {
            write!(f, "at <{}>: ", self.construct)?;
        }
        f.write_str(&self.message)
    }
}

/// The stack of a render that calls templates: [`exec::MAX_RENDER_NESTING`] levels of nested
/// `range`s (the largest frames) take about 25 MiB in a debug build, less in a release
/// one. Only the pages a render touches are ever used.
const CALLS_STACK: usize = 64 << 20;

/// One parsed Go template file.
#[derive(Debug)]
pub struct GoTemplate {
    /// The name it is executed by (the file's base name, as confd names it).
    name: String,
    /// The source, for error positions.
    src: String,
    /// The main tree and every defined one.
    trees: parse::Trees,
    /// The size of the last output, so the next render's buffer starts big enough.
    last_len: std::sync::atomic::AtomicUsize,
    /// The name and a digest of the source: what the fragment cache knows this
    /// template's loops by, so an edited template never reuses the old one's output.
    loops_key: String,
}

/// Line and column (1-based) of byte `pos` in `src`.
pub(super) fn position(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let mut pos = pos;
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// At most 60 characters of `s` on one line (a construct quoted in a message).
pub(crate) fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        let head: String = one.chars().take(57).collect();
        format!("{head}...")
    } else {
        one
    }
}

impl GoTemplate {
    /// Parses `src`; `name` is what `{{template}}` calls and messages show.
    pub fn parse(name: &str, src: String) -> Result<Self, GoError> {
        Self::parse_text(name, src, false)
    }

    /// Parses a template file's bytes; text outside actions need not be UTF-8 (it is
    /// written out byte for byte, as confd does).
    pub fn parse_bytes(name: &str, bytes: &[u8]) -> Result<Self, GoError> {
        match parse::escape_raw_bytes(bytes) {
            Some(text) => Self::parse_text(name, text, true),
            None => Self::parse_text(name, String::from_utf8_lossy(bytes).into_owned(), false),
        }
    }

    fn parse_text(name: &str, src: String, raw_bytes: bool) -> Result<Self, GoError> {
        match parse::parse(name, &src, raw_bytes) {
            Ok(mut trees) => {
                trees.cacheable = incr::cacheable_loops(&trees);
                Ok(Self {
                    name: name.to_string(),
                    loops_key: crate::template::fragments::LoopKey::template_id(name, &src),
                    src,
                    trees,
                    last_len: std::sync::atomic::AtomicUsize::new(0),
                })
            }
            Err(e) => {
                let (line, column) = position(&src, e.pos);
                Err(GoError {
                    line,
                    column,
                    construct: String::new(),
                    message: e.message,
                })
            }
        }
    }

    /// The trees, for the converter.
    pub fn trees(&self) -> &parse::Trees {
        &self.trees
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// The main template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders with confd's store functions reading `view`.
    ///
    /// The evaluator recurses. One tree nests at most 100 levels, which any thread's stack
    /// holds; template calls nest deeper ([`exec::MAX_RENDER_NESTING`] levels), so a template
    /// that makes them renders on a thread of its own with a stack sized for that.
    pub fn render(&self, view: &View) -> Result<Vec<u8>, GoError> {
        self.render_with(view, &crate::template::RenderLimits::default())
    }

    /// [`GoTemplate::render`] within `limits` (output size, cancel flag).
    pub fn render_with(
        &self,
        view: &View,
        limits: &crate::template::RenderLimits,
    ) -> Result<Vec<u8>, GoError> {
        if !self.trees.calls_templates {
            return self.render_here(view, limits);
        }
        std::thread::scope(|s| {
            let started = std::thread::Builder::new()
                .name("go-template".into())
                .stack_size(CALLS_STACK)
                .spawn_scoped(s, || self.render_here(view, limits));
            match started {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(e) => Err(GoError {
                    line: 1,
                    column: 1,
                    construct: String::new(),
                    message: format!("cannot start a thread to render on: {e}"),
                }),
            }
        })
    }

    fn render_here(
        &self,
        view: &View,
        limits: &crate::template::RenderLimits,
    ) -> Result<Vec<u8>, GoError> {
        use std::sync::atomic::Ordering::Relaxed;
        let store = store::Store::new(view);
        let hint = self.last_len.load(Relaxed);
        let incr = view.cache().map(|c| exec::Incremental {
            cache: c.fragments(),
            template: &self.loops_key,
        });
        let out = exec::render(
            &self.trees,
            &self.src,
            &self.name,
            &store,
            hint + hint / 16,
            limits,
            incr,
        );
        if let Ok(o) = &out {
            self.last_len.store(o.len(), Relaxed);
        }
        out.map_err(|e| {
            let (line, column) = position(&self.src, e.span.start);
            GoError {
                line,
                column,
                construct: excerpt(self.src.get(e.span.start..e.span.end).unwrap_or("")),
                message: e.message,
            }
        })
    }
}

#[cfg(test)]
mod incr_tests;
#[cfg(test)]
mod tests;
