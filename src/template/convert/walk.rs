//! The walk over a Go template's nodes: text, actions, `if`, `with`, `range`, `break`
//! and `continue`, each written as Tera tags in the place of the Go action it comes
//! from, so that Go's trim markers, comments and layout carry over.

use crate::template::go::ast::{List, Node, Pipe, Span, VarRef};

use super::source::{Seg, go_trim};
use super::texpr::TExpr;
use super::types::{Ty, Typed};
use super::{Converter, Piece, R, TagKind, fail};

/// The source and the tree disagree: a bug, reported rather than converted wrongly.
const LOST: &str = "internal error: the converter lost its place in the source";

impl Converter<'_> {
    pub(super) fn list(&mut self, list: &List) -> R<()> {
        for node in list {
            self.node(node)?;
        }
        Ok(())
    }

    /// Emits what is left after the last node: text Go trims away, comments.
    pub(super) fn finish(&mut self) -> R<()> {
        while self.cur < self.segs.len() {
            if self.try_define()? {
                continue;
            }
            match self.segs[self.cur] {
                Seg::Action { start, end, .. } => {
                    return fail(Span::new(start, end), LOST);
                }
                _ => {
                    self.emit_passive(None)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn node(&mut self, node: &Node) -> R<()> {
        match node {
            Node::Text(bytes) => self.text(bytes),
            Node::Action(pipe) => self.action(pipe),
            Node::If(c) => self.if_control(c),
            Node::With(c) => self.with_control(c),
            Node::Range(c) => self.range_control(c),
            Node::Template { span, name, pipe } => self.template_call(name, pipe.as_ref(), *span),
            Node::Break(span) => self.keyword(*span, "break"),
            Node::Continue(span) => self.keyword(*span, "continue"),
        }
    }

    /// The Go trims that apply to the text segment at `i`.
    pub(super) fn text_trims(&self, i: usize) -> (bool, bool) {
        let left = i > 0 && self.segs[i - 1].trims().1;
        let right = self.segs.get(i + 1).is_some_and(|s| s.trims().0);
        (left, right)
    }

    /// Emits the text or comment segment at the cursor; `want` is the text the tree has
    /// there, if the segment is the tree's text node.
    pub(super) fn emit_passive(&mut self, want: Option<&[u8]>) -> R<bool> {
        let i = self.cur;
        let seg = self.segs[i];
        self.cur += 1;
        match seg {
            Seg::Comment { body, .. } => {
                let body = self.src.get(body.0..body.1).unwrap_or("").to_string();
                self.out.push(Piece::Tag {
                    kind: TagKind::Comment,
                    body,
                    left: false,
                    right: false,
                });
                Ok(false)
            }
            Seg::Text { start, end } => {
                let raw = &self.src[start..end];
                let (l, r) = self.text_trims(i);
                let trimmed = go_trim(raw, l, r);
                let matched = match want {
                    Some(w) if !trimmed.is_empty() => {
                        if trimmed.as_bytes() != w {
                            let span = Span::new(start, end);
                            if std::str::from_utf8(w).is_err() {
                                return fail(
                                    Span::new(start, start),
                                    "the template text is not UTF-8; Tera templates are text",
                                );
                            }
                            return fail(
                                span,
                                "internal error: the template's text does not match its tree",
                            );
                        }
                        true
                    }
                    _ if !trimmed.is_empty() => {
                        return fail(
                            Span::new(start, end),
                            "internal error: text outside the template's tree",
                        );
                    }
                    _ => false,
                };
                self.out.push(Piece::Text {
                    raw: raw.to_string(),
                    go_left: l,
                    go_right: r,
                });
                Ok(matched)
            }
            Seg::Action { .. } => {
                self.cur -= 1;
                fail(
                    Span::new(seg.start(), seg.start()),
                    "internal error: an action where text was expected",
                )
            }
        }
    }

    pub(super) fn text(&mut self, bytes: &[u8]) -> R<()> {
        loop {
            if self.try_define()? {
                continue;
            }
            let Some(seg) = self.segs.get(self.cur).copied() else {
                return fail(Span::default(), "internal error: the source ended early");
            };
            if let Seg::Action { start, end, .. } = seg {
                return fail(Span::new(start, end), LOST);
            }
            if self.emit_passive(Some(bytes))? {
                return Ok(());
            }
        }
    }

    /// Emits what comes before the next action and returns that action's span; `at` is
    /// where the tree says it starts.
    pub(super) fn next_action(&mut self, at: Option<usize>) -> R<Span> {
        loop {
            if self.try_define()? {
                continue;
            }
            let Some(seg) = self.segs.get(self.cur).copied() else {
                return fail(Span::default(), "internal error: the source ended early");
            };
            if let Seg::Action { start, end, .. } = seg {
                if at.is_some_and(|a| a != start) {
                    return fail(Span::new(start, end), LOST);
                }
                self.cur += 1;
                return Ok(Span::new(start, end));
            }
            self.emit_passive(None)?;
        }
    }

    pub(super) fn keyword(&mut self, span: Span, word: &str) -> R<()> {
        self.next_action(Some(span.start))?;
        self.out.push(Piece::stmt(word));
        Ok(())
    }

    /// Emits the tags of one Go action, after the `set`s its pipeline needs first.
    pub(super) fn emit(&mut self, pieces: Vec<Piece>) {
        let pre = std::mem::take(&mut self.pre);
        self.out.extend(pre);
        self.out.extend(pieces);
    }

    /// `{{ pipeline }}`, `{{ $x := pipeline }}`, `{{ $x = pipeline }}`.
    pub(super) fn action(&mut self, pipe: &Pipe) -> R<()> {
        self.next_action(None)?;
        let value = self.pipeline(pipe)?;
        if pipe.decl.is_empty() {
            let e = self.printable(value, pipe.span)?;
            self.emit(vec![Piece::expr(&e)]);
        } else {
            let set = self.declare(pipe, value)?;
            self.emit(vec![Piece::stmt(set)]);
        }
        Ok(())
    }

    /// The `set` that declares or assigns the pipeline's variable.
    pub(super) fn declare(&mut self, pipe: &Pipe, value: Typed) -> R<String> {
        let [var] = pipe.decl[..] else {
            return fail(pipe.span, "more than one variable");
        };
        let expr = value.expr.render();
        if !pipe.is_assign {
            let name = self.scope.fresh(&self.var_name(var), Some(var));
            let bound = Typed {
                expr: TExpr::Var(name.clone()),
                literal: None,
                var: None,
                ..value
            };
            self.scope.bind(var, bound, self.depth, Some(name.clone()));
            return Ok(format!("set {name} = {expr}"));
        }
        self.assign(var, value, pipe.span)
    }

    /// The `set` (or `set_global`) that gives the Go variable `var` a new value.
    pub(super) fn assign(&mut self, var: VarRef, value: Typed, span: Span) -> R<String> {
        let expr = value.expr.render();
        let depth = self.depth;
        let Some(b) = self.scope.lookup_mut(var) else {
            return fail(span, "undefined variable: confd fails here");
        };
        let Some(name) = b.name.clone() else {
            return fail(
                span,
                "assigning to a range's index: Tera's loop.index0 cannot be set",
            );
        };
        if b.value.ty != value.ty {
            let old = b.value.ty;
            if old.prints_differently() != value.ty.prints_differently()
                || (old != Ty::Any && value.ty != Ty::Any && old.prints_differently())
            {
                return fail(
                    span,
                    format!(
                        "the variable held a {} and is assigned a {}: Tera would print one of them differently",
                        old.go_name(),
                        value.ty.go_name()
                    ),
                );
            }
            b.value.ty = old.join(value.ty);
        }
        b.value.rooted &= value.rooted;
        b.value.nonneg &= value.nonneg;
        b.value.fields = None;
        b.value.json = None;
        if b.depth == depth {
            Ok(format!("set {name} = {expr}"))
        } else if b.depth == 0 {
            Ok(format!("set_global {name} = {expr}"))
        } else {
            fail(
                span,
                "assigning, inside a nested range, a variable declared in an enclosing range: Tera's set inside a for loop is local to that loop",
            )
        }
    }

    /// The Go name of `var` without its `$`.
    pub(super) fn var_name(&self, var: VarRef) -> String {
        self.trees
            .vars
            .get(var.0 as usize)
            .map_or("value", |v| v.trim_start_matches('$'))
            .to_string()
    }
}
