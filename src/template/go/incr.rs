//! Which `range` loops may be rendered incrementally: decided once per template from its
//! syntax, so a render only asks a set.
//!
//! A loop qualifies when its output is a pure function of the elements it iterates
//! over, one body per element, so the body's output for an element seen in the previous
//! render can be copied instead of rendered (see `template::fragments`). That holds when:
//!
//! - the pipeline is one call of `gets`, `getvs`, `ls` or `lsdir` with a string literal
//!   (the elements then depend on the store alone), optionally declaring `$x :=` or
//!   `$i, $x :=` (never assigning with `=`, which would write an outer variable);
//! - the body reads nothing but `.`, the element variable and variables it declares
//!   itself (not the index variable, not `$`, not any outer variable), calls only pure
//!   functions ([`pure`]), calls no template, assigns no outer variable, and has no
//!   `break`/`continue` of its own (those of a loop nested in it are fine).
//!
//! The `else` part runs only when there is no element and is rendered plainly, so it may
//! be anything. Whenever the syntax leaves any doubt, the loop is not cacheable.

use std::collections::HashSet;

use super::ast::{Control, List, Node, Operand, Pipe, Term, VarRef};
use super::funcs::Func;
use super::parse::Trees;

/// Whether `f`'s result depends on its arguments alone (no store, environment, clock,
/// network, file system or function value). Every function is listed, so a new one
/// must be classified.
pub fn pure(f: Func) -> bool {
    use Func::*;
    match f {
        And | Or | Not | Len | Index | Slice | Print | Printf | Println | Html | Js | Urlquery
        | Eq | Ne | Lt | Le | Gt | Ge => true,
        Base | Split | Json | JsonArray | Dir | Map | Join | ToUpper | ToLower | Contains
        | Replace | TrimSuffix | Base64Encode | Base64Decode | ParseBool | Reverse
        | SortByLength | SortKvByLength | Add | Sub | Mul | Div | Mod | Seq | Atoi | Addr
        | Ident | Token => true,
        Call | Exists | Ls | Lsdir | Get | Gets | Getv | Getvs | Getenv | Datetime | LookupIp
        | LookupIpv4 | LookupIpv6 | LookupSrv | LookupIfaceIpv4 | LookupIfaceIpv6 | FileExists => {
            false
        }
    }
}

/// The store function and its literal argument when `pipe` is one call a cacheable
/// loop may iterate over.
pub fn store_call(pipe: &Pipe) -> Option<(Func, &str)> {
    let [cmd] = pipe.cmds.as_slice() else {
        return None;
    };
    let [f, arg] = cmd.args.as_slice() else {
        return None;
    };
    match (&f.term, &arg.term) {
        (Term::Func(f @ (Func::Gets | Func::Getvs | Func::Ls | Func::Lsdir)), Term::Str(s)) => {
            Some((*f, s.as_str()))
        }
        _ => None,
    }
}

/// The start of every cacheable `range` in `trees`.
pub fn cacheable_loops(trees: &Trees) -> HashSet<usize> {
    let mut found = HashSet::new();
    for list in trees.trees.values() {
        find(list, &mut found);
    }
    found
}

fn find(list: &List, found: &mut HashSet<usize>) {
    for node in list {
        match node {
            Node::If(c) | Node::With(c) | Node::Range(c) => {
                if matches!(node, Node::Range(_)) && cacheable(c) {
                    found.insert(c.span.start);
                }
                find(&c.list, found);
                if let Some(e) = &c.else_list {
                    find(e, found);
                }
            }
            _ => {}
        }
    }
}

/// Whether the range `c` is cacheable (see the module's doc).
pub fn cacheable(c: &Control) -> bool {
    if c.pipe.is_assign || store_call(&c.pipe).is_none() || c.pipe.decl.len() > 2 {
        return false;
    }
    let mut body = Body {
        // The element variable is the last one declared; the index one stays unknown.
        scope: c.pipe.decl.last().copied().into_iter().collect(),
        loops: 0,
    };
    body.list(&c.list)
}

/// A body being checked: the variables it may read, and how many loops inside it
/// enclose the node being checked.
struct Body {
    scope: Vec<VarRef>,
    loops: usize,
}

impl Body {
    fn list(&mut self, list: &List) -> bool {
        list.iter().all(|n| self.node(n))
    }

    fn node(&mut self, node: &Node) -> bool {
        match node {
            Node::Text(_) => true,
            // Declared here, a variable lives to the end of the enclosing control.
            Node::Action(p) => self.pipe(p, true),
            Node::If(c) | Node::With(c) => self.control(c, false),
            Node::Range(c) => self.control(c, true),
            Node::Template { .. } => false,
            Node::Break(_) | Node::Continue(_) => self.loops > 0,
        }
    }

    fn control(&mut self, c: &Control, is_range: bool) -> bool {
        let mark = self.scope.len();
        let mut ok = self.pipe(&c.pipe, true);
        if ok {
            self.loops += usize::from(is_range);
            ok = self.list(&c.list);
            self.loops -= usize::from(is_range);
        }
        if ok && let Some(e) = &c.else_list {
            ok = self.list(e);
        }
        self.scope.truncate(mark);
        ok
    }

    /// A pipeline; `declares` says it may declare variables (not one in parentheses).
    fn pipe(&mut self, p: &Pipe, declares: bool) -> bool {
        if !declares && !p.decl.is_empty() {
            return false;
        }
        let ok = p
            .cmds
            .iter()
            .all(|cmd| cmd.args.iter().all(|a| self.operand(a)));
        if !ok {
            return false;
        }
        if p.is_assign {
            // Only a variable of the body itself may be assigned.
            return p.decl.iter().all(|v| self.scope.contains(v));
        }
        self.scope.extend(p.decl.iter().copied());
        true
    }

    fn operand(&mut self, a: &Operand) -> bool {
        match &a.term {
            Term::Bool(_)
            | Term::Dot
            | Term::Nil
            | Term::Number(_)
            | Term::Str(_)
            | Term::Field(_) => true,
            Term::Variable(v, _) => *v != Trees::DOLLAR && self.scope.contains(v),
            Term::Func(f) => pure(*f),
            Term::Pipe(p) => self.pipe(p, false),
            Term::Chain(op, _) => self.operand(op),
        }
    }
}
