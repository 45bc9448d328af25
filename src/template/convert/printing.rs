//! Printing: what `{{ value }}` needs to print as Go prints it, and `print`, `println`
//! and `printf` as string concatenation (`~`) where Tera prints alike, the `format`
//! filter (Go's `Sprintf`) where it does not.

use crate::template::go::ast::Span;

use super::texpr::{BinOp, TExpr};
use super::types::{Ty, Typed, is_rooted};
use super::{Converter, R, fail};

fn s(v: &str) -> TExpr {
    TExpr::Str(v.to_string())
}

impl Converter<'_> {
    /// `{{ value }}`: what Tera needs to print it as Go does.
    pub(super) fn printable(&mut self, v: Typed, span: Span) -> R<TExpr> {
        Ok(match v.ty {
            Ty::Str | Ty::Int | Ty::Bool => v.expr,
            Ty::Missing | Ty::Nil => TExpr::Str("<no value>".into()),
            Ty::Json | Ty::JsonMap | Ty::JsonList => {
                v.expr.filter("go_print", vec![("json", TExpr::Bool(true))])
            }
            Ty::Time => {
                self.note(
                    span,
                    "datetime prints as RFC 3339 (2026-11-22T02:15:10Z); confd printed Go's time.Time (2026-11-22 02:15:10.5 +0000 UTC)",
                );
                v.expr
            }
            Ty::Float
            | Ty::Kv
            | Ty::Kvs
            | Ty::KvSlice
            | Ty::Strs
            | Ty::Ints
            | Ty::Map
            | Ty::Any => v.expr.filter("go_print", vec![]),
        })
    }

    /// `print`/`println`: the operands joined as Go's `Sprint` joins them.
    pub(super) fn print(&mut self, a: Vec<Typed>, line: bool, span: Span) -> R<Typed> {
        let mut parts: Vec<TExpr> = Vec::new();
        let mut prev_string = false;
        for (i, v) in a.into_iter().enumerate() {
            let is_string = v.ty == Ty::Str;
            if matches!(v.ty, Ty::Json | Ty::Any) {
                return fail(
                    span,
                    "print of a value whose type is known only when it renders: Go's spacing between operands depends on it",
                );
            }
            if i > 0 && (line || (!is_string && !prev_string)) {
                parts.push(s(" "));
            }
            prev_string = is_string;
            parts.push(match v.ty {
                Ty::Str | Ty::Int | Ty::Bool => v.expr,
                Ty::Missing | Ty::Nil => s("<nil>"),
                Ty::Time => return fail(span, "printing a time: Tera's datetime() is a string"),
                Ty::JsonMap | Ty::JsonList => {
                    v.expr.filter("go_print", vec![("json", TExpr::Bool(true))])
                }
                _ => v.expr.filter("go_print", vec![]),
            });
        }
        if line {
            parts.push(s("\n"));
        }
        Ok(Typed::new(concat(parts), Ty::Str))
    }

    /// `printf`: string concatenation when every verb is a plain `%s`, `%d` or `%v` of a
    /// string or an int; otherwise the `format` filter.
    pub(super) fn printf(&mut self, a: Vec<Typed>, span: Span) -> R<Typed> {
        let mut it = a.into_iter();
        let Some(fmt) = it.next() else {
            return fail(span, "printf without a format");
        };
        let args: Vec<Typed> = it.collect();
        if let Some(text) = &fmt.literal {
            if let Some(parts) = simple_format(text, &args) {
                let rooted = match parts.first() {
                    Some(Part::Lit(l)) => is_rooted(l),
                    Some(Part::Arg(i)) => args[*i].rooted,
                    None => false,
                };
                let exprs: Vec<TExpr> = parts
                    .into_iter()
                    .map(|p| match p {
                        Part::Lit(l) => s(&l),
                        Part::Arg(i) => args[i].expr.clone(),
                    })
                    .collect();
                let single_int = exprs.len() == 1 && !matches!(exprs[0], TExpr::Str(_)) && {
                    args.len() == 1 && args[0].ty != Ty::Str
                };
                let e = if single_int {
                    exprs[0].clone().filter("str", vec![])
                } else if exprs.is_empty() {
                    s("")
                } else {
                    concat(exprs)
                };
                return Ok(Typed::new(e, Ty::Str).rooted(rooted));
            }
            if needs_go_types(text)
                && let Some(v) = args.iter().find(|v| {
                    !matches!(
                        v.ty,
                        Ty::Str | Ty::Int | Ty::Float | Ty::Bool | Ty::Nil | Ty::Missing
                    ) && !v.ty.is_json()
                })
            {
                return fail(
                    span,
                    format!(
                        "printf with %T or %#v: Tera values do not keep the Go type {}",
                        v.ty.go_name()
                    ),
                );
            }
        }
        if args.iter().any(|v| v.ty == Ty::Time) {
            return fail(span, "printf of a time: Tera's datetime() is a string");
        }
        let json = args.iter().any(|v| v.ty.is_json());
        if json
            && args.iter().any(|v| {
                matches!(
                    v.ty,
                    Ty::Int | Ty::Ints | Ty::Kv | Ty::Kvs | Ty::KvSlice | Ty::Map
                )
            })
        {
            return fail(
                span,
                "printf of JSON values together with ints or KVPairs: format reads all numbers one way",
            );
        }
        let shown = self.shown(span);
        self.note(span, format!("{shown} became the format filter"));
        let mut kw = vec![(
            "args",
            TExpr::List(args.into_iter().map(|v| v.expr).collect()),
        )];
        if json {
            kw.push(("json", TExpr::Bool(true)));
        }
        let rooted = fmt.literal.as_deref().is_some_and(is_rooted);
        Ok(Typed::new(fmt.expr.filter("format", kw), Ty::Str).rooted(rooted))
    }
}

/// A piece of a simple printf format.
enum Part {
    Lit(String),
    Arg(usize),
}

/// A format whose verbs are all `%s`/`%v` of strings, `%d`/`%v` of ints or `%v`/`%t`
/// of bools, one per argument, as literal text and arguments; `None` otherwise.
fn simple_format(fmt: &str, args: &[Typed]) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = fmt.chars();
    let mut next = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let verb = chars.next()?;
        if verb == '%' {
            lit.push('%');
            continue;
        }
        let arg = args.get(next)?;
        let ok = match verb {
            's' => arg.ty == Ty::Str,
            'd' => arg.ty == Ty::Int,
            'v' => matches!(arg.ty, Ty::Str | Ty::Int | Ty::Bool),
            't' => arg.ty == Ty::Bool,
            _ => false,
        };
        if !ok {
            return None;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(&mut lit)));
        }
        parts.push(Part::Arg(next));
        next += 1;
    }
    if next != args.len() {
        return None;
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Some(parts)
}

/// The format prints Go type names (`%T`, `%#v`).
fn needs_go_types(fmt: &str) -> bool {
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut sharp = false;
        while j < b.len() && !b[j].is_ascii_alphabetic() && b[j] != b'%' {
            sharp |= b[j] == b'#';
            j += 1;
        }
        match b.get(j) {
            Some(b'T') => return true,
            Some(b'v') if sharp => return true,
            _ => {}
        }
        i = j + 1;
    }
    false
}

/// `a ~ b ~ ...`
fn concat(parts: Vec<TExpr>) -> TExpr {
    let mut it = parts.into_iter();
    let Some(mut e) = it.next() else {
        return s("");
    };
    for p in it {
        e = e.bin(BinOp::Concat, p);
    }
    e
}
