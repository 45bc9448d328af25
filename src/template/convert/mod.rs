//! `confsync convert`: confd's Go templates turned into Tera templates that render the
//! same bytes from the same keys.
//!
//! The conversion works on the parsed Go template ([`GoTemplate`]): the source is cut
//! into text, actions and comments (`source`) so that Go's trim markers and comments
//! carry over; the trees are walked (`walk`, `controls`, and `templates` for
//! `define`/`template`/`block`) with Go's scopes mapped onto Tera's (`scope`, `names`);
//! pipelines become Tera expressions (`expr`, `calls`, `collections`, `store`,
//! `printing`) built as a small tree (`texpr`) that prints only the parentheses Tera
//! needs, guided by what is known of each value's Go type (`types`). Where Tera would
//! print or decide differently the converter uses confsync's Go-compatible filters
//! (`go_print`, `format`, `atoi`, ...), and where the meaning can be kept only in the
//! common case it says so in a [`Note`]. Anything it cannot keep is [`NotConvertible`],
//! with the line, the construct and why. [`command`] is the `confsync convert`
//! subcommand, `resource_file` its `--write` edit of a resource file.

mod calls;
mod collections;
pub mod command;
mod controls;
mod expr;
mod names;
mod printing;
mod resource_file;
mod scope;
mod source;
mod store;
mod templates;
mod texpr;
mod types;
mod walk;

use std::collections::{BTreeMap, BTreeSet};

use crate::template::go::ast::Span;
use crate::template::go::parse::Trees;
use crate::template::go::{GoTemplate, excerpt};

use scope::Scope;
use source::{Seg, content, escape};
use types::{Ty, Typed};

/// A change of meaning the converted template has next to the Go original, with the Go
/// line it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line in the Go template.
    pub line: usize,
    /// What changed.
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A converted template.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The Tera template.
    pub text: String,
    /// What changed meaning, in line order.
    pub notes: Vec<Note>,
}

/// Why a template cannot be converted: the first construct that has no Tera form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {}{reason}", shown_construct(construct))]
pub struct NotConvertible {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The construct, as written (shortened).
    pub construct: String,
    /// Why.
    pub reason: String,
}

/// `<construct>: ` as Go's errors show one, or nothing when there is none to show.
fn shown_construct(construct: &str) -> String {
    if construct.is_empty() {
        String::new()
    } else {
        format!("<{construct}>: ")
    }
}

/// A construct that stops the conversion, inside the converter.
#[derive(Debug, Clone)]
struct Fail {
    span: Span,
    reason: String,
}

type R<T> = Result<T, Fail>;

fn fail<T>(span: Span, reason: impl Into<String>) -> R<T> {
    Err(Fail {
        span,
        reason: reason.into(),
    })
}

/// What a Tera tag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// `{{ ... }}`
    Expr,
    /// `{% ... %}`
    Stmt,
    /// `{# ... #}`
    Comment,
}

/// One piece of the Tera output.
#[derive(Debug, Clone)]
enum Piece {
    /// Source text, untrimmed, with the trimming Go applies to either end.
    Text {
        raw: String,
        go_left: bool,
        go_right: bool,
    },
    /// A tag; the trim markers are chosen when the output is assembled.
    Tag {
        kind: TagKind,
        body: String,
        left: bool,
        right: bool,
    },
}

impl Piece {
    fn expr(e: &texpr::TExpr) -> Self {
        Self::tag(TagKind::Expr, e.render())
    }

    fn stmt(body: impl Into<String>) -> Self {
        Self::tag(TagKind::Stmt, body.into())
    }

    fn tag(kind: TagKind, body: String) -> Self {
        Piece::Tag {
            kind,
            body,
            left: false,
            right: false,
        }
    }
}

/// The state of one conversion.
struct Converter<'a> {
    src: &'a str,
    /// The main template's name (the file's).
    name: &'a str,
    /// What the components' names start with (the template's path, as an identifier).
    namespace: String,
    trees: &'a Trees,
    segs: Vec<Seg>,
    /// The next segment to emit.
    cur: usize,
    out: Vec<Piece>,
    notes: Vec<Note>,
    /// Notes given once per template, by topic.
    noted: BTreeSet<&'static str>,
    scope: Scope,
    /// How many Tera `for` loops enclose the point being converted.
    depth: usize,
    /// What `.` is here.
    dot: Typed,
    /// How many control bodies (or a define) enclose the point being converted.
    controls: usize,
    /// The dot each defined template gets, from the calls of the previous pass.
    hints: BTreeMap<String, Typed>,
    /// The dots the calls of this pass pass, joined per template.
    calls: BTreeMap<String, Typed>,
    /// Templates whose component is written.
    defined: BTreeSet<String>,
    /// The templates being converted, innermost last.
    defining: Vec<String>,
    /// Component names by Go template name.
    components: BTreeMap<String, String>,
    /// `set`s the pipeline being converted needs before its action's tags.
    pre: Vec<Piece>,
    /// How many `and`/`or` operands that may not run enclose the point being converted.
    lazy: usize,
}

/// Go's "no value" in Tera: a name that is never set reads as undefined.
fn missing() -> Typed {
    Typed::new(texpr::TExpr::Var("nil".into()), Ty::Missing)
}

/// Passes that learn what defined templates are called with before the converter gives up.
const MAX_PASSES: usize = 4;

/// Converts a parsed Go template into Tera.
pub fn convert(t: &GoTemplate) -> Result<Converted, NotConvertible> {
    convert_for(t, t.name())
}

/// Converts the Go template a resource reads as `path` (its `src`): the components its
/// defined templates become are named after `path`, so that two converted templates of
/// one confdir never define the same component.
pub fn convert_for(t: &GoTemplate, path: &str) -> Result<Converted, NotConvertible> {
    let namespace = scope::sanitize(&path.replace('/', "_"));
    let src = t.source();
    let at_start = |reason: String| NotConvertible {
        line: 1,
        column: 1,
        construct: excerpt(src.get(..40).unwrap_or(src)),
        reason,
    };
    let segs = source::segments(src).map_err(at_start)?;
    let trees = t.trees();
    let Some(root) = trees.trees.get(t.name()) else {
        return Err(at_start("the template has no main tree".into()));
    };
    // Each pass learns what the calls of defined templates pass; the next converts
    // their bodies with that. Two passes settle all but recursive templates.
    let mut hints: BTreeMap<String, Typed> = trees
        .trees
        .keys()
        .filter(|k| k.as_str() != t.name())
        .map(|k| (k.clone(), templates::unknown_dot()))
        .collect();
    let mut pass = 0;
    let mut c = loop {
        let mut c = Converter {
            src,
            name: t.name(),
            namespace: namespace.clone(),
            trees,
            segs: segs.clone(),
            cur: 0,
            out: Vec::new(),
            notes: Vec::new(),
            noted: BTreeSet::new(),
            scope: Scope::new(),
            depth: 0,
            dot: missing(),
            controls: 0,
            hints: hints.clone(),
            calls: BTreeMap::new(),
            defined: BTreeSet::new(),
            defining: Vec::new(),
            components: BTreeMap::new(),
            pre: Vec::new(),
            lazy: 0,
        };
        c.scope.bind(Trees::DOLLAR, missing(), 0, None);
        let result = c.list(root).and_then(|()| c.finish());
        let next = templates::settle(&hints, &c.calls);
        pass += 1;
        let settled = next == hints;
        match result {
            // A failure with dots not yet known may go away once they are.
            Err(f) if settled || pass == MAX_PASSES => return Err(c.not_convertible(f)),
            Ok(()) if settled => break c,
            // Converted with dots the calls do not pass: its output would be wrong.
            Ok(()) if pass == MAX_PASSES => {
                return Err(at_start(format!(
                    "the types of the defined templates' dots do not settle in {MAX_PASSES} passes"
                )));
            }
            _ => hints = next,
        }
    };
    let text = assemble(&mut c.out);
    if let Err(e) = check_tera(&text) {
        return Err(at_start(format!(
            "the converted template does not compile as Tera: {e}"
        )));
    }
    let mut notes = c.notes;
    notes.sort_by_key(|n| n.line);
    notes.dedup();
    Ok(Converted { text, notes })
}

/// The converted text must be a Tera template with confsync's functions.
fn check_tera(text: &str) -> Result<(), String> {
    let mut engine = crate::template::Engine::new();
    engine.add_raw("converted.tera", text).map_err(|e| match e {
        crate::template::TemplateError::Load { message, .. } => message,
        other => other.to_string(),
    })
}

impl Converter<'_> {
    /// Line and column (1-based) of byte `pos`.
    fn position(&self, pos: usize) -> (usize, usize) {
        let mut pos = pos.min(self.src.len());
        while !self.src.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &self.src[..pos];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[start..].chars().count() + 1)
    }

    fn not_convertible(&self, f: Fail) -> NotConvertible {
        let (line, column) = self.position(f.span.start);
        let text = self.src.get(f.span.start..f.span.end).unwrap_or("");
        NotConvertible {
            line,
            column,
            construct: excerpt(text),
            reason: f.reason,
        }
    }

    /// Records a note for the Go construct at `span`.
    fn note(&mut self, span: Span, message: impl Into<String>) {
        let (line, _) = self.position(span.start);
        self.notes.push(Note {
            line,
            message: message.into(),
        });
    }

    /// Records a note once per template.
    fn note_once(&mut self, topic: &'static str, span: Span, message: impl Into<String>) {
        if self.noted.insert(topic) {
            self.note(span, message);
        }
    }

    /// The source of `span`, shortened, for notes.
    fn shown(&self, span: Span) -> String {
        excerpt(self.src.get(span.start..span.end).unwrap_or(""))
    }
}

/// The Tera text of the pieces: each text written so that Tera's trimming gives Go's,
/// the trim markers set on the tags beside it.
fn assemble(out: &mut [Piece]) -> String {
    let is_tag = |p: Option<&Piece>| matches!(p, Some(Piece::Tag { .. }));
    let mut texts: Vec<Option<String>> = vec![None; out.len()];
    for i in 0..out.len() {
        let Piece::Text {
            raw,
            go_left,
            go_right,
        } = &out[i]
        else {
            continue;
        };
        let before = i > 0 && is_tag(out.get(i - 1));
        let after = is_tag(out.get(i + 1));
        // Trimming toward a neighbour that is not a tag is done here.
        let raw = source::go_trim(raw, *go_left && !before, *go_right && !after);
        let c = content(raw, *go_left && before, *go_right && after);
        texts[i] = Some(escape(&c.text, after));
        if c.left
            && let Some(Piece::Tag { right, .. }) = out.get_mut(i - 1)
        {
            *right = true;
        }
        if c.right
            && let Some(Piece::Tag { left, .. }) = out.get_mut(i + 1)
        {
            *left = true;
        }
    }
    let mut s = String::new();
    for (i, p) in out.iter().enumerate() {
        match p {
            Piece::Text { .. } => s.push_str(texts[i].as_deref().unwrap_or("")),
            Piece::Tag {
                kind,
                body,
                left,
                right,
            } => {
                let (open, close) = match kind {
                    TagKind::Expr => ("{{", "}}"),
                    TagKind::Stmt => ("{%", "%}"),
                    TagKind::Comment => ("{#", "#}"),
                };
                s.push_str(open);
                if *left {
                    s.push('-');
                }
                if *kind == TagKind::Comment {
                    let body = body.replace("#}", "# }");
                    if !*left && body.starts_with('-') {
                        s.push(' ');
                    }
                    s.push_str(&body);
                    if !*right && body.ends_with('-') {
                        s.push(' ');
                    }
                } else {
                    s.push(' ');
                    s.push_str(body);
                    s.push(' ');
                }
                if *right {
                    s.push('-');
                }
                s.push_str(close);
            }
        }
    }
    s
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
