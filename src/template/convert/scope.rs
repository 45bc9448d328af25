//! Go's variables as Tera names: scopes as Go runs them, names chosen from what a value
//! holds, and the rule for where Tera's `set` stores a value (inside a `for` loop only
//! that loop sees it, and only for the rest of that iteration).

use crate::template::go::ast::VarRef;

use super::texpr::TExpr;
use super::types::{Ty, Typed};

/// Names Tera reserves, and `nil`, which the converter uses for Go's "no value" (a
/// name that is never set, so it reads as undefined).
const RESERVED: &[&str] = &[
    "true", "True", "false", "False", "loop", "self", "and", "or", "not", "is", "in", "continue",
    "break", "none", "None", "null", "nil", "if", "else", "for",
];

/// One Go variable in scope.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The Go variable.
    pub var: VarRef,
    /// What it reads as in Tera.
    pub value: Typed,
    /// How many Tera `for` loops enclose the place it is stored.
    pub depth: usize,
    /// The Tera name it is stored under, when it is one.
    pub name: Option<String>,
}

#[derive(Debug, Default)]
struct Frame {
    vars: Vec<Binding>,
    /// Tera names this frame holds (variables and loop variables).
    names: Vec<String>,
}

/// The Go scopes open at the point being converted.
#[derive(Debug)]
pub struct Scope {
    frames: Vec<Frame>,
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Scope {
    /// The top-level scope.
    pub fn new() -> Self {
        Scope {
            frames: vec![Frame::default()],
        }
    }

    /// Opens a scope (a control's body).
    pub fn push(&mut self) {
        self.frames.push(Frame::default());
    }

    /// Closes the innermost scope.
    pub fn pop(&mut self) {
        if self.frames.len() > 1 {
            self.frames.pop();
        }
    }

    /// The innermost binding of `var`.
    pub fn lookup(&self, var: VarRef) -> Option<&Binding> {
        self.frames
            .iter()
            .rev()
            .flat_map(|f| f.vars.iter().rev())
            .find(|b| b.var == var)
    }

    /// The innermost binding of `var`, to change its type after an assignment.
    pub fn lookup_mut(&mut self, var: VarRef) -> Option<&mut Binding> {
        self.frames
            .iter_mut()
            .rev()
            .flat_map(|f| f.vars.iter_mut().rev())
            .find(|b| b.var == var)
    }

    fn is_live(&self, name: &str) -> bool {
        self.frames
            .iter()
            .any(|f| f.names.iter().any(|n| n == name))
    }

    /// A Tera name for `hint` that no variable in scope uses, held by the innermost
    /// scope. `reuse` is a Go variable whose older binding in this same scope can never be
    /// read again, so its name may be taken over.
    pub fn fresh(&mut self, hint: &str, reuse: Option<VarRef>) -> String {
        let base = sanitize(hint);
        if let Some(var) = reuse {
            let same_frame = self
                .frames
                .last()
                .and_then(|f| f.vars.iter().rev().find(|b| b.var == var))
                .and_then(|b| b.name.clone());
            if same_frame.as_deref() == Some(base.as_str()) {
                return base;
            }
        }
        let mut name = base.clone();
        let mut n = 2;
        while self.is_live(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        if let Some(f) = self.frames.last_mut() {
            f.names.push(name.clone());
        }
        name
    }

    /// Binds `var` in the innermost scope.
    pub fn bind(&mut self, var: VarRef, value: Typed, depth: usize, name: Option<String>) {
        if let Some(f) = self.frames.last_mut() {
            f.vars.push(Binding {
                var,
                value,
                depth,
                name,
            });
        }
    }

    /// Binds `var` to the Tera variable `name` of type `ty`.
    pub fn bind_name(&mut self, var: VarRef, name: &str, ty: Ty, rooted: bool, depth: usize) {
        let value = Typed::new(TExpr::Var(name.to_string()), ty).rooted(rooted);
        self.bind(var, value, depth, Some(name.to_string()));
    }
}

/// `hint` as a Tera identifier: ASCII letters, digits and `_`, not starting with a
/// digit, not a reserved word.
pub fn sanitize(hint: &str) -> String {
    let mut s: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim_matches('_').is_empty() {
        s = "value".to_string();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'v');
    }
    if RESERVED.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names() {
        assert_eq!(sanitize("in"), "in_");
        assert_eq!(sanitize("1x"), "v1x");
        assert_eq!(sanitize("é"), "value");
    }

    #[test]
    fn fresh_names_avoid_live_ones() {
        let mut s = Scope::new();
        assert_eq!(s.fresh("dir", None), "dir");
        s.push();
        assert_eq!(s.fresh("dir", None), "dir2");
        s.pop();
        s.push();
        assert_eq!(s.fresh("x", None), "x");
        s.pop();
        assert_eq!(s.fresh("x", None), "x");
    }
}
