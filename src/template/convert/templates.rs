//! `{{define}}`, `{{template}}` and `{{block}}` as Tera components: a defined template
//! becomes `{% component PATH.NAME(dot) %}` where its `define` stood (components are
//! shared by every template of a Tera instance, hence the template's path in front), a
//! call `{{ <PATH.NAME dot={value} /> }}`. Go's dot is the component's `dot` argument;
//! what type it has comes from the calls, so a template is converted until those settle.

use std::collections::BTreeMap;

use crate::template::go::ast::{List, Pipe, Span};
use crate::template::go::lex::{Kind, lex};
use crate::template::go::parse::{Trees, unquote};

use super::scope::sanitize;
use super::source::Seg;
use super::texpr::TExpr;
use super::types::{Ty, Typed};
use super::{Converter, Piece, R, fail, missing};

/// Tera's limit on nested component calls (Go allows 100,000; confsync's Go engine 200).
const TERA_COMPONENT_DEPTH: usize = 20;

/// The dot of a template before its calls are known: anything.
pub(super) fn unknown_dot() -> Typed {
    Typed::new(TExpr::Var("dot".into()), Ty::Any)
}

/// What two calls of one template pass: the same value, or only what they share.
pub(super) fn join_calls(prev: Option<&Typed>, new: &Typed) -> Typed {
    let new = Typed {
        expr: TExpr::Var("dot".into()),
        literal: None,
        var: None,
        ..new.clone()
    };
    match prev {
        None => new,
        Some(p) if *p == new => new,
        Some(p) if p.ty == new.ty => Typed {
            rooted: p.rooted && new.rooted,
            nonneg: p.nonneg && new.nonneg,
            fields: None,
            json: None,
            ..new
        },
        Some(_) => Typed {
            mixed: true,
            ..unknown_dot()
        },
    }
}

/// The keyword an action starts with (`define`, `block`, ...), and the template name
/// that follows it.
fn keyword_and_name(action: &str) -> (Option<Kind>, Option<String>) {
    let tokens = lex(action);
    let mut it = tokens.iter().filter(|t| t.kind != Kind::Space).skip(1);
    let kind = it.next().map(|t| t.kind);
    let name = it
        .find(|t| matches!(t.kind, Kind::String | Kind::RawString))
        .and_then(|t| unquote(&t.text).ok());
    (kind, name)
}

impl Converter<'_> {
    /// The component a Go template is converted to.
    fn component(&mut self, name: &str) -> String {
        if let Some(c) = self.components.get(name) {
            return c.clone();
        }
        let file = self.namespace.clone();
        let base = sanitize(name);
        let mut c = format!("{file}.{base}");
        let mut n = 2;
        while self.components.values().any(|v| *v == c) {
            c = format!("{file}.{base}{n}");
            n += 1;
        }
        self.components.insert(name.to_string(), c.clone());
        c
    }

    /// At a `{{define}}` in the source (at the top level): writes it as a component
    /// definition; false when the next segment is not one.
    pub(super) fn try_define(&mut self) -> R<bool> {
        let Some(Seg::Action { start, end, .. }) = self.segs.get(self.cur).copied() else {
            return Ok(false);
        };
        let (kind, name) = keyword_and_name(self.src.get(start..end).unwrap_or(""));
        if kind != Some(Kind::Define) {
            return Ok(false);
        }
        let span = Span::new(start, end);
        let Some(name) = name else {
            return fail(span, "define without a name");
        };
        self.cur += 1;
        self.define_body(&name, span, None)?;
        Ok(true)
    }

    /// The body of the template `name` as a component, up to its `{{end}}`; after the
    /// `{% endcomponent %}` comes `call`, for a block.
    fn define_body(&mut self, name: &str, span: Span, call: Option<Piece>) -> R<()> {
        if name == self.name {
            return fail(span, "a template defined with the file's own name");
        }
        if !self.defined.insert(name.to_string()) {
            return fail(
                span,
                format!("{name:?} is defined twice (once empty): Tera components are defined once"),
            );
        }
        let Some(tree) = self.trees.trees.get(name) else {
            return fail(span, "internal error: a define without its tree");
        };
        let component = self.component(name);
        self.out
            .push(Piece::stmt(format!("component {component}(dot)")));
        let dot = self.hints.get(name).cloned().unwrap_or_else(missing);
        let dot = Typed {
            expr: TExpr::Var("dot".into()),
            ..dot
        };
        let saved_scope = std::mem::take(&mut self.scope);
        // `dot` is the component's argument: no variable may take that name.
        self.scope.fresh("dot", None);
        self.scope.bind(Trees::DOLLAR, dot.clone(), 0, None);
        let saved_dot = std::mem::replace(&mut self.dot, dot);
        let saved_depth = std::mem::replace(&mut self.depth, 0);
        let saved_controls = std::mem::replace(&mut self.controls, 1);
        self.defining.push(name.to_string());
        let r = self.body_then_end(tree);
        self.defining.pop();
        self.controls = saved_controls;
        self.depth = saved_depth;
        self.dot = saved_dot;
        self.scope = saved_scope;
        r?;
        let mut tags = vec![Piece::stmt("endcomponent")];
        tags.extend(call);
        self.emit(tags);
        Ok(())
    }

    fn body_then_end(&mut self, tree: &List) -> R<()> {
        self.list(tree)?;
        self.next_action(None)?;
        Ok(())
    }

    /// `{{template "name" pipeline}}`, or a `{{block}}`.
    pub(super) fn template_call(&mut self, name: &str, pipe: Option<&Pipe>, span: Span) -> R<()> {
        self.next_action(Some(span.start))?;
        let (kind, _) = keyword_and_name(self.src.get(span.start..span.end).unwrap_or(""));
        if !self.trees.trees.contains_key(name) {
            return fail(
                span,
                format!("template {name:?} not defined: confd fails here"),
            );
        }
        if pipe.is_some_and(|p| !p.decl.is_empty()) {
            return fail(span, "a template call that declares a variable");
        }
        let value = match pipe {
            Some(p) => self.pipeline(p)?,
            None => missing(),
        };
        if value.ty == Ty::Time {
            return fail(
                span,
                "a time as a template's dot: Tera's datetime() is a string",
            );
        }
        let joined = join_calls(self.calls.get(name), &value);
        self.calls.insert(name.to_string(), joined);
        if self.defining.iter().any(|d| d == name) {
            self.note_once(
                "recursion",
                span,
                format!("a template that calls itself: Tera stops nested components at {TERA_COMPONENT_DEPTH} levels"),
            );
        }
        let component = self.component(name);
        let arg = value.expr.render();
        let arg = if arg.starts_with('{') || arg.ends_with('}') {
            format!("{{ {arg} }}")
        } else {
            format!("{{{arg}}}")
        };
        let call = Piece::tag(super::TagKind::Expr, format!("<{component} dot={arg} />"));
        if kind != Some(Kind::Block) {
            self.emit(vec![call]);
            return Ok(());
        }
        if self.controls > 0 {
            return fail(
                span,
                "block inside another construct: Tera components are defined at the top level only",
            );
        }
        self.define_body(name, span, Some(call))
    }
}

/// The calls' dots, for templates never called the same as before.
pub(super) fn settle(
    hints: &BTreeMap<String, Typed>,
    calls: &BTreeMap<String, Typed>,
) -> BTreeMap<String, Typed> {
    hints
        .keys()
        .map(|k| (k.clone(), calls.get(k).cloned().unwrap_or_else(missing)))
        .collect()
}
