//! Go pipelines, commands and operands as Tera expressions: each command's value becomes
//! the last argument of the next, fields become attributes, constants Tera literals, and
//! every argument is checked against its Go parameter type as confd checks it, so a
//! call that always fails in confd is reported rather than converted.

use crate::template::go::ast::{Command, Number, Operand, Pipe, Span, Term};
use crate::template::go::funcs::{Func, Ty as Param};

use super::texpr::TExpr;
use super::types::{Ty, Typed};
use super::{Converter, R, fail, missing};

impl Converter<'_> {
    /// A pipeline's value.
    pub(super) fn pipeline(&mut self, pipe: &Pipe) -> R<Typed> {
        let mut value: Option<Typed> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, value.take())?);
        }
        let Some(mut v) = value else {
            return fail(pipe.span, "an empty pipeline");
        };
        // A command that yields an interface holding nil yields no value.
        if v.ty == Ty::Nil {
            v = missing();
        }
        Ok(v)
    }

    /// One command; `fin` is the previous command's value, its last argument.
    pub(super) fn command(&mut self, cmd: &Command, fin: Option<Typed>) -> R<Typed> {
        let first = &cmd.args[0];
        if let (Some(layout), None) = (datetime_format(cmd), &fin) {
            // `datetime.Format "layout"`: confsync's datetime takes the Go layout.
            let call = TExpr::call("datetime", vec![("layout", TExpr::Str(layout.into()))]);
            return Ok(Typed::new(call, Ty::Str));
        }
        if cmd.args.len() > 1 || fin.is_some() {
            // A field with arguments is a method call: only time.Time has methods.
            let method = match &first.term {
                Term::Field(f) | Term::Variable(_, f) | Term::Chain(_, f) => f.last(),
                _ => None,
            };
            if let Some(m) = method {
                return fail(
                    first.span,
                    format!(
                        "the method call {m}: confd's only methods are time.Time's, and Tera's datetime() is a string"
                    ),
                );
            }
        }
        let no_args = |c: &Self| -> R<()> {
            if cmd.args.len() > 1 || fin.is_some() {
                return fail(
                    first.span,
                    format!(
                        "can't give argument to non-function {}: confd fails here",
                        c.shown(first.span)
                    ),
                );
            }
            Ok(())
        };
        match &first.term {
            Term::Func(f) => self.call(*f, &cmd.args[1..], fin, first.span, cmd.span),
            Term::Nil => fail(first.span, "nil is not a command: confd fails here"),
            _ => {
                no_args(self)?;
                self.operand(first, None)
            }
        }
    }

    /// An operand as an argument of Go type `param` (`None`: a command on its own).
    pub(super) fn operand(&mut self, op: &Operand, param: Option<Param>) -> R<Typed> {
        let span = op.span;
        let v = match &op.term {
            Term::Dot => self.dot.clone(),
            Term::Nil => {
                return match param {
                    Some(Param::Value) | None => Ok(missing()),
                    Some(Param::Any) => Ok(Typed::new(TExpr::None, Ty::Nil)),
                    Some(Param::Strings) => Ok(Typed::new(TExpr::List(vec![]), Ty::Strs)),
                    Some(Param::Kvs) => Ok(Typed::new(TExpr::List(vec![]), Ty::KvSlice)),
                    Some(p) => fail(
                        span,
                        format!("cannot assign nil to {}: confd fails here", p.go_name()),
                    ),
                };
            }
            Term::Bool(b) => {
                return match param {
                    Some(Param::Any | Param::Value) | None => {
                        Ok(Typed::new(TExpr::Bool(*b), Ty::Bool))
                    }
                    Some(p) => self.literal_mismatch(span, p),
                };
            }
            Term::Number(n) => return self.number(n, param, span),
            Term::Str(s) => {
                return match param {
                    Some(Param::Str | Param::Any | Param::Value) | None => Ok(Typed::literal(s)),
                    Some(p) => self.literal_mismatch(span, p),
                };
            }
            Term::Field(fields) => {
                let dot = self.dot.clone();
                self.fields(dot, fields, span)?
            }
            Term::Variable(var, fields) => {
                let Some(b) = self.scope.lookup(*var) else {
                    return fail(
                        span,
                        "the variable is not set here (confd fails, or gives it an odd value)",
                    );
                };
                let mut base = b.value.clone();
                if fields.is_empty() {
                    base.var = Some(*var);
                }
                self.fields(base, fields, span)?
            }
            Term::Pipe(p) => self.pipeline(p)?,
            Term::Chain(inner, fields) => {
                let base = self.operand(inner, None)?;
                self.fields(base, fields, span)?
            }
            Term::Func(f) => self.call(*f, &[], None, span, span)?,
        };
        match param {
            Some(p) => self.validate(v, p, span),
            None => Ok(v),
        }
    }

    pub(super) fn literal_mismatch<T>(&self, span: Span, p: Param) -> R<T> {
        let found = self.shown(span);
        match p {
            Param::Int => fail(
                span,
                format!("expected integer; found {found}: confd fails here"),
            ),
            Param::Str => fail(
                span,
                format!("expected string; found {found}: confd fails here"),
            ),
            p => fail(
                span,
                format!(
                    "can't handle {found} for arg of type {}: confd fails here",
                    p.go_name()
                ),
            ),
        }
    }

    /// A number constant as Go reads it for `param`.
    pub(super) fn number(&self, n: &Number, param: Option<Param>, span: Span) -> R<Typed> {
        if n.is_complex {
            return fail(span, "complex numbers: Tera has none");
        }
        match param {
            Some(Param::Int) if n.is_int => return Ok(int_literal(n.int)),
            Some(Param::Any | Param::Value) | None => {}
            Some(p) => return self.literal_mismatch(span, p),
        }
        // On its own a constant is a float64 when written as one, an int otherwise.
        let t = n.text.as_str();
        let hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        if n.is_float && !hex_int && !t.starts_with('\'') && t.contains(['.', 'e', 'E', 'p', 'P']) {
            if !n.float.is_finite() {
                return fail(span, "a float constant Tera cannot write");
            }
            return Ok(Typed::new(TExpr::Float(n.float), Ty::Float));
        }
        if n.is_int {
            return Ok(int_literal(n.int));
        }
        fail(span, format!("{t} overflows int: confd fails here"))
    }

    /// `value` as an argument of Go type `p`: a value confd would reject is reported.
    pub(super) fn validate(&mut self, v: Typed, p: Param, span: Span) -> R<Typed> {
        let bad = |why: &str| -> R<Typed> {
            fail(
                span,
                format!(
                    "wrong type for value; expected {}; got {}{why}: confd fails here",
                    p.go_name(),
                    v.ty.go_name()
                ),
            )
        };
        match p {
            Param::Value | Param::Any => Ok(v),
            Param::Str => match v.ty {
                Ty::Str | Ty::Json | Ty::Any => Ok(v),
                _ => bad(""),
            },
            Param::Int => match v.ty {
                Ty::Int | Ty::Any => Ok(v),
                Ty::Json => bad(" (JSON numbers are float64)"),
                _ => bad(""),
            },
            Param::Strings => match v.ty {
                Ty::Strs | Ty::Any => Ok(v),
                Ty::Missing => Ok(Typed::new(TExpr::List(vec![]), Ty::Strs)),
                _ => bad(""),
            },
            Param::Kvs => match v.ty {
                Ty::Kvs | Ty::KvSlice | Ty::Any => Ok(v),
                Ty::Missing => Ok(Typed::new(TExpr::List(vec![]), Ty::KvSlice)),
                _ => bad(""),
            },
        }
    }

    /// `.A.B` of `base`.
    pub(super) fn fields(&mut self, base: Typed, fields: &[String], span: Span) -> R<Typed> {
        let mut v = base;
        for name in fields {
            v = self.field(v, name, span)?;
        }
        Ok(v)
    }

    pub(super) fn field(&mut self, base: Typed, name: &str, span: Span) -> R<Typed> {
        let cant = |ty: Ty| -> R<Typed> {
            fail(
                span,
                format!(
                    "can't evaluate field {name} in type {}: confd fails here",
                    ty.go_name()
                ),
            )
        };
        match base.ty {
            Ty::Missing => Ok(missing()),
            Ty::Kv => match name {
                "Key" => Ok(Typed::new(base.expr.attr("key", false), Ty::Str).rooted(true)),
                "Value" => Ok(Typed::new(base.expr.attr("value", false), Ty::Str)),
                _ => cant(Ty::Kv),
            },
            Ty::Kvs | Ty::KvSlice if name == "Len" => {
                Ok(Typed::new(base.expr.filter("length", vec![]), Ty::Int).nonneg())
            }
            Ty::Map if base.fields.is_some() => {
                let e = base.expr.clone().attr(name, false);
                Ok(base
                    .field_of(name, e.clone())
                    .unwrap_or_else(|| Typed::new(e, Ty::Any)))
            }
            Ty::JsonMap | Ty::Json if base.json.is_some() => {
                let e = base.expr.clone().attr(name, false);
                json_field(base.json.as_deref(), name, e, span)
            }
            Ty::Any if base.mixed && matches!(name, "Key" | "Value") => fail(
                span,
                format!(
                    ".{name} of a dot the template's calls give different types: a KVPair's field in confd, a map's entry otherwise; Tera names them differently"
                ),
            ),
            // A template called with no value and with a map: Go's field of no value is no
            // value, Tera's `.` of an undefined variable an error, its `?.` undefined.
            Ty::Any if base.expr.is_path() => Ok(Typed::new(base.expr.attr(name, true), Ty::Any)),
            Ty::JsonMap | Ty::Json | Ty::Map | Ty::Any => {
                if base.ty.is_json() {
                    self.note_once("json", span, super::store::JSON_NOTE);
                }
                // A field of a field may be of no value: `?.` keeps it so, as in Go.
                let optional =
                    matches!(base.expr, TExpr::Attr(..) | TExpr::Index(..)) && base.ty.is_json();
                if optional && !base.expr.is_path() {
                    return fail(
                        span,
                        "a field of a field of a JSON value that is not in a variable: Tera's ?. and ?[ follow only variables (set the json result in a variable first)",
                    );
                }
                let ty = if base.ty.is_json() { Ty::Json } else { Ty::Any };
                Ok(Typed::new(base.expr.attr(name, optional), ty))
            }
            Ty::Time => fail(
                span,
                format!("the time method {name}: Tera's datetime() is a string"),
            ),
            Ty::Nil => fail(
                span,
                format!("nil pointer evaluating interface {{}}.{name}: confd fails here"),
            ),
            other => cant(other),
        }
    }
}

/// The layout of `datetime.Format "layout"` or `(datetime).Format "layout"`.
fn datetime_format(cmd: &Command) -> Option<&str> {
    let [first, layout] = &cmd.args[..] else {
        return None;
    };
    let Term::Chain(node, fields) = &first.term else {
        return None;
    };
    let is_datetime = |t: &Term| matches!(t, Term::Func(Func::Datetime));
    let called = match &node.term {
        Term::Pipe(p) => {
            p.decl.is_empty()
                && matches!(&p.cmds[..], [c] if c.args.len() == 1 && is_datetime(&c.args[0].term))
        }
        t => is_datetime(t),
    };
    match (&layout.term, fields.as_slice()) {
        (Term::Str(s), [f]) if called && f == "Format" => Some(s),
        _ => None,
    }
}

/// An int constant.
pub(super) fn int_literal(i: i64) -> Typed {
    let t = Typed::new(TExpr::Int(i), Ty::Int);
    if i >= 0 { t.nonneg() } else { t }
}

/// `.name` of a JSON constant, as Go evaluates it.
pub(super) fn json_field(
    json: Option<&serde_json::Value>,
    name: &str,
    expr: TExpr,
    span: Span,
) -> R<Typed> {
    match json {
        Some(serde_json::Value::Object(m)) => Ok(match m.get(name) {
            Some(child) => {
                let mut t = Typed::new(expr, Ty::Json);
                t.json = Some(std::rc::Rc::new(child.clone()));
                t
            }
            None => missing(),
        }),
        Some(serde_json::Value::Null) => fail(
            span,
            format!("nil pointer evaluating interface {{}}.{name}: confd fails here"),
        ),
        _ => fail(
            span,
            format!("can't evaluate field {name} in type interface {{}}: confd fails here"),
        ),
    }
}
