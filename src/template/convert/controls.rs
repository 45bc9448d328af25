//! `if`, `with` and `range` with their `else`, `else if` and `else with` parts, as Tera's
//! `if`/`elif`/`else` and `for`/`else`, with Go's dot rebinding and variable scopes.

use crate::template::go::ast::{Control, List, Node, Pipe, Term, VarRef};

use super::names::with_name;
use super::texpr::TExpr;
use super::types::{Ty, Typed};
use super::{Converter, Piece, R, fail};

/// The closing tags a Go `{{end}}` stands for.
type Closers = Vec<&'static str>;

impl Converter<'_> {
    /// A control's condition: its pipeline, and the `set` it needs first when it declares
    /// a variable.
    pub(super) fn condition(&mut self, pipe: &Pipe, tags: &mut Vec<Piece>) -> R<Typed> {
        let value = self.pipeline(pipe)?;
        if pipe.decl.is_empty() {
            return Ok(value);
        }
        let set = self.declare(pipe, value.clone())?;
        tags.push(Piece::stmt(set));
        let var = pipe.decl[0];
        Ok(self.scope.lookup(var).map_or(value, |b| b.value.clone()))
    }

    /// A body: its own scope.
    pub(super) fn body(&mut self, list: &List) -> R<()> {
        self.scope.push();
        self.controls += 1;
        let r = self.list(list);
        self.controls -= 1;
        self.scope.pop();
        r
    }

    pub(super) fn if_control(&mut self, c: &Control) -> R<()> {
        self.next_action(Some(c.span.start))?;
        self.scope.push();
        let mut tags = Vec::new();
        let cond = self.condition(&c.pipe, &mut tags)?;
        tags.push(Piece::stmt(format!("if {}", cond.expr.render())));
        self.emit(tags);
        self.body(&c.list)?;
        let mut closers = vec!["endif"];
        let r = self.else_part(c, &mut closers);
        self.scope.pop();
        r
    }

    /// The `{{else}}`, `{{else if}}`, `{{else with}}` and `{{end}}` of a control.
    pub(super) fn else_part(&mut self, c: &Control, closers: &mut Closers) -> R<()> {
        let span = self.next_action(None)?;
        let Some(list) = &c.else_list else {
            self.emit(closers.iter().map(|c| Piece::stmt(*c)).collect());
            return Ok(());
        };
        let chained = match list.as_slice() {
            [Node::If(inner)] | [Node::With(inner)] => {
                inner.span.start > span.start && inner.span.start < span.end
            }
            _ => false,
        };
        if !chained {
            self.emit(vec![Piece::stmt("else")]);
            self.body(list)?;
            self.next_action(None)?;
            self.emit(closers.iter().map(|c| Piece::stmt(*c)).collect());
            return Ok(());
        }
        self.scope.push();
        let r = match &list[0] {
            Node::If(inner) => {
                let mut tags = Vec::new();
                let cond = self.condition(&inner.pipe, &mut tags)?;
                if tags.is_empty() && self.pre.is_empty() {
                    self.emit(vec![Piece::stmt(format!("elif {}", cond.expr.render()))]);
                } else {
                    // What the condition needs first runs in the else branch only.
                    tags.push(Piece::stmt(format!("if {}", cond.expr.render())));
                    self.emit_else(tags);
                    closers.push("endif");
                }
                self.body(&inner.list)?;
                self.else_part(inner, closers)
            }
            Node::With(inner) => {
                let mut tags = Vec::new();
                let dot = self.with_head(inner, &mut tags)?;
                self.emit_else(tags);
                closers.push("endif");
                self.with_body(inner, dot)?;
                self.else_part(inner, closers)
            }
            _ => Ok(()),
        };
        self.scope.pop();
        r
    }

    /// `{% else %}`, then the `set`s the next condition needs, then `tags`.
    fn emit_else(&mut self, tags: Vec<Piece>) {
        let mut all = vec![Piece::stmt("else")];
        all.append(&mut self.pre);
        all.extend(tags);
        self.emit(all);
    }

    pub(super) fn with_control(&mut self, c: &Control) -> R<()> {
        self.next_action(Some(c.span.start))?;
        self.scope.push();
        let mut tags = Vec::new();
        let dot = self.with_head(c, &mut tags)?;
        self.emit(tags);
        self.with_body(c, dot)?;
        let mut closers = vec!["endif"];
        let r = self.else_part(c, &mut closers);
        self.scope.pop();
        r
    }

    /// `{{with pipeline}}` as `{% set name = value %}{% if name %}` (or just `{% if %}`
    /// when the body does not use dot); returns the new dot.
    pub(super) fn with_head(&mut self, c: &Control, tags: &mut Vec<Piece>) -> R<Option<Typed>> {
        let value = self.pipeline(&c.pipe)?;
        if !c.pipe.decl.is_empty() {
            let set = self.declare(&c.pipe, value.clone())?;
            tags.push(Piece::stmt(set));
            let v = self
                .scope
                .lookup(c.pipe.decl[0])
                .map_or(value, |b| b.value.clone());
            tags.push(Piece::stmt(format!("if {}", v.expr.render())));
            return Ok(Some(v));
        }
        if !uses_dot(&c.list) {
            tags.push(Piece::stmt(format!("if {}", value.expr.render())));
            return Ok(None);
        }
        if matches!(value.expr, TExpr::Var(_)) {
            tags.push(Piece::stmt(format!("if {}", value.expr.render())));
            return Ok(Some(value));
        }
        let hint = with_name(&c.pipe);
        let name = self.scope.fresh(&hint, None);
        tags.push(Piece::stmt(format!("set {name} = {}", value.expr.render())));
        tags.push(Piece::stmt(format!("if {name}")));
        let v = Typed {
            expr: TExpr::Var(name),
            ..value
        };
        Ok(Some(v))
    }

    pub(super) fn with_body(&mut self, c: &Control, dot: Option<Typed>) -> R<()> {
        let saved = dot.map(|d| std::mem::replace(&mut self.dot, d));
        let r = self.body(&c.list);
        if let Some(d) = saved {
            self.dot = d;
        }
        r
    }

    pub(super) fn range_control(&mut self, c: &Control) -> R<()> {
        self.next_action(Some(c.span.start))?;
        if c.pipe.is_assign {
            return fail(
                c.pipe.span,
                "range assigning to existing variables: Tera's for loop declares its own",
            );
        }
        self.scope.push();
        let coll = self.pipeline(&c.pipe)?;
        let span = c.pipe.span;
        let target = match coll.ty {
            Ty::Kvs | Ty::KvSlice | Ty::Strs | Ty::Ints | Ty::JsonList | Ty::JsonMap | Ty::Map => {
                coll.expr.clone()
            }
            Ty::Int => {
                if c.pipe.decl.len() > 1 {
                    return fail(
                        span,
                        "can't use an int to iterate over more than one variable: confd fails here",
                    );
                }
                match coll.expr {
                    TExpr::Int(n) if n <= 0 => TExpr::List(vec![]),
                    TExpr::Int(_) => TExpr::call("range", vec![("end", coll.expr.clone())]),
                    _ => {
                        self.note(span, "range over a number: a negative number fails in Tera where confd ran no iteration");
                        TExpr::call("range", vec![("end", coll.expr.clone())])
                    }
                }
            }
            Ty::Missing | Ty::Nil => {
                self.note(
                    span,
                    format!(
                        "range over no value ({}): confd runs no iteration, written as []",
                        self.shown(span)
                    ),
                );
                TExpr::List(vec![])
            }
            Ty::Json | Ty::Any if c.pipe.decl.len() > 1 => {
                return fail(
                    span,
                    "range with two variables over a value whose kind (list or map) is known only when it renders: Tera needs `for k, v` for a map and `for v` for a list",
                );
            }
            Ty::Json | Ty::Any => {
                self.note(
                    span,
                    format!(
                        "range {}: a missing or null value ranges zero times in confd and fails in Tera",
                        self.shown(span)
                    ),
                );
                coll.expr.clone()
            }
            Ty::Str | Ty::Kv | Ty::Bool | Ty::Float | Ty::Time => {
                return fail(
                    span,
                    format!(
                        "range can't iterate over a {}: confd fails here",
                        coll.ty.go_name()
                    ),
                );
            }
        };
        let is_map = matches!(coll.ty, Ty::JsonMap | Ty::Map);
        let elem = coll.ty.elem();
        let (index_var, value_var) = match c.pipe.decl[..] {
            [] => (None, None),
            [v] => (None, Some(v)),
            [i, v] => (Some(i), Some(v)),
            _ => return fail(span, "too many range variables"),
        };
        // The loop's variables live in a scope of their own, so the range's else part
        // (where Go gives them odd values) cannot read them.
        self.scope.push();
        let value_hint = match value_var {
            Some(v) => self.var_name(v),
            None => self.loop_name(&c.pipe, elem),
        };
        let value_name = self.scope.fresh(&value_hint, None);
        let mut head = Vec::new();
        let loop_depth = self.depth + 1;
        let mut materialize = None;
        let key_name = match index_var {
            Some(iv) if is_map => {
                let k = self.scope.fresh(&self.var_name(iv), None);
                self.scope.bind_name(iv, &k, Ty::Str, false, loop_depth);
                Some(k)
            }
            Some(iv) => {
                if index_needs_name(&c.list, iv) {
                    let n = self.scope.fresh(&self.var_name(iv), None);
                    let v = Typed::new(TExpr::Var(n.clone()), Ty::Int).nonneg();
                    self.scope.bind(iv, v, loop_depth, Some(n.clone()));
                    materialize = Some(n);
                } else {
                    let v = Typed::new(TExpr::Var("loop.index0".into()), Ty::Int).nonneg();
                    self.scope.bind(iv, v, loop_depth, None);
                }
                None
            }
            None => None,
        };
        if let Some(v) = value_var {
            self.scope
                .bind_name(v, &value_name, elem, elem == Ty::Kv, loop_depth);
        }
        let for_head = match &key_name {
            Some(k) => format!("for {k}, {value_name} in {}", target.render()),
            None => format!("for {value_name} in {}", target.render()),
        };
        head.push(Piece::stmt(for_head));
        if let Some(n) = materialize {
            head.push(Piece::stmt(format!("set {n} = loop.index0")));
        }
        self.emit(head);
        let dot = Typed::new(TExpr::Var(value_name), elem);
        let saved = std::mem::replace(&mut self.dot, dot);
        self.depth += 1;
        let r = self.body(&c.list);
        self.depth -= 1;
        self.dot = saved;
        self.scope.pop();
        r?;
        let mut closers = vec!["endfor"];
        let r = self.else_part(c, &mut closers);
        self.scope.pop();
        r
    }
}

/// True when the nodes use dot where it is the enclosing control's value (not inside
/// a range or with of their own, whose bodies rebind it).
pub(super) fn uses_dot(list: &List) -> bool {
    list.iter().any(|n| match n {
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => false,
        Node::Action(p) => pipe_uses_dot(p),
        Node::Template { pipe, .. } => pipe.as_ref().is_some_and(pipe_uses_dot),
        Node::If(c) => {
            pipe_uses_dot(&c.pipe)
                || uses_dot(&c.list)
                || c.else_list.as_ref().is_some_and(uses_dot)
        }
        Node::With(c) | Node::Range(c) => {
            pipe_uses_dot(&c.pipe) || c.else_list.as_ref().is_some_and(uses_dot)
        }
    })
}

fn pipe_uses_dot(p: &Pipe) -> bool {
    p.cmds
        .iter()
        .flat_map(|c| c.args.iter())
        .any(|op| term_uses_dot(&op.term))
}

fn term_uses_dot(t: &Term) -> bool {
    match t {
        Term::Dot | Term::Field(_) => true,
        Term::Pipe(p) => pipe_uses_dot(p),
        Term::Chain(op, _) => term_uses_dot(&op.term),
        _ => false,
    }
}

/// True when a range's index variable is read inside a nested range (where Tera's
/// `loop.index0` is the inner loop's) or assigned: it then needs a name of its own.
fn index_needs_name(list: &List, var: VarRef) -> bool {
    pub(super) fn in_pipe(p: &Pipe, var: VarRef) -> bool {
        p.decl.contains(&var)
            || p.cmds
                .iter()
                .flat_map(|c| c.args.iter())
                .any(|op| in_term(&op.term, var))
    }
    pub(super) fn in_term(t: &Term, var: VarRef) -> bool {
        match t {
            Term::Variable(v, _) => *v == var,
            Term::Pipe(p) => in_pipe(p, var),
            Term::Chain(op, _) => in_term(&op.term, var),
            _ => false,
        }
    }
    pub(super) fn reads(list: &List, var: VarRef) -> bool {
        list.iter().any(|n| match n {
            Node::Action(p) => in_pipe(p, var),
            Node::Template { pipe, .. } => pipe.as_ref().is_some_and(|p| in_pipe(p, var)),
            Node::If(c) | Node::With(c) | Node::Range(c) => {
                in_pipe(&c.pipe, var)
                    || reads(&c.list, var)
                    || c.else_list.as_ref().is_some_and(|l| reads(l, var))
            }
            _ => false,
        })
    }
    pub(super) fn nested(list: &List, var: VarRef) -> bool {
        list.iter().any(|n| match n {
            Node::Action(p) => p.is_assign && p.decl.contains(&var),
            Node::Range(c) => {
                reads(&c.list, var) || c.else_list.as_ref().is_some_and(|l| nested(l, var))
            }
            Node::If(c) | Node::With(c) => {
                (c.pipe.is_assign && c.pipe.decl.contains(&var))
                    || nested(&c.list, var)
                    || c.else_list.as_ref().is_some_and(|l| nested(l, var))
            }
            _ => false,
        })
    }
    nested(list, var)
}
