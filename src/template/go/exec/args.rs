//! Calls and their arguments: Go's argument count and type checks (`evalCall`,
//! `evalArg`, `validateType`), and the short-circuit of `and`/`or`.

use smallvec::SmallVec;

use super::super::ast::{Operand, Span, Term};
use super::super::funcs::{Func, Ty};
use super::super::value::{List as GoList, ListKind, Str, Value};
use super::{Exec, R};

/// A call's arguments: functions take a few, so they live on the stack.
pub(super) type Args<'a> = SmallVec<[Value<'a>; 4]>;

impl<'a> Exec<'a> {
    /// The arguments of a method call: the command's operands after the method, then
    /// the piped value.
    pub(super) fn method_args(
        &mut self,
        dot: &Value<'a>,
        args: &'a [Operand],
        fin: Option<Value<'a>>,
    ) -> R<Args<'a>> {
        let mut argv = Args::new();
        for a in args.iter().skip(1) {
            argv.push(self.eval_arg(dot, Some(Ty::Any), a)?);
        }
        argv.extend(fin);
        Ok(argv)
    }

    /// Calls `f` with the operands `args` (after the function name) and the piped `fin`;
    /// the function's own error is reported at `cmd`, the whole command (as Go does).
    pub(super) fn eval_call(
        &mut self,
        dot: &Value<'a>,
        f: Func,
        args: &'a [Operand],
        fin: Option<Value<'a>>,
        cmd: Span,
    ) -> R<Value<'a>> {
        let at = self.at;
        let sig = f.sig();
        let name = f.name();
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = if sig.variadic.is_some() {
            sig.fixed.len()
        } else {
            args.len()
        };
        if sig.variadic.is_some() {
            if num_in < sig.fixed.len() {
                return self.fail(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.fixed.len(),
                    args.len()
                ));
            }
        } else if num_in != sig.fixed.len() {
            return self.fail(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                sig.fixed.len()
            ));
        }
        if matches!(f, Func::And | Func::Or) {
            // Short-circuit: the first operand that decides is the result.
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, Some(Ty::Value), a)?;
                if v.truth() == (f == Func::Or) {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = fv;
            }
            return Ok(v);
        }
        let mut argv: Args<'a> = SmallVec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let ty = if i < num_fixed {
                sig.fixed[i]
            } else {
                sig.variadic.unwrap_or(Ty::Any)
            };
            argv.push(self.eval_arg(dot, Some(ty), a)?);
        }
        if let Some(fv) = fin {
            let ty = match sig.variadic {
                Some(v) if num_in > num_fixed => v,
                Some(_) => sig.fixed[num_in - 1],
                None => sig.fixed[sig.fixed.len() - 1],
            };
            self.at = at;
            argv.push(self.validate(fv, Some(ty))?);
        }
        self.at = at;
        match self.call(f, &argv) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = cmd;
                self.fail(format!("error calling {name}: {e}"))
            }
        }
    }

    /// An operand as an argument of Go type `ty` (`None`: the receiver of a chain).
    pub(super) fn eval_arg(
        &mut self,
        dot: &Value<'a>,
        ty: Option<Ty>,
        op: &'a Operand,
    ) -> R<Value<'a>> {
        self.at(op.span);
        let v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Nil => {
                return match ty {
                    Some(Ty::Value) => Ok(Value::Missing),
                    Some(Ty::Any) => Ok(Value::Nil),
                    Some(Ty::Strings) => Ok(Value::List(GoList::new(ListKind::Strings, vec![]))),
                    Some(Ty::Kvs) => Ok(Value::List(GoList::new(ListKind::KvSlice, vec![]))),
                    Some(t) => self.fail(format!("cannot assign nil to {}", t.go_name())),
                    None => self.fail("cannot assign nil to <nil>"),
                };
            }
            Term::Field(fields) => {
                let one = std::slice::from_ref(op);
                self.eval_field_chain(dot, dot, fields, one, None)?
            }
            Term::Variable(v, fields) => {
                let value = self.var_value(*v)?;
                if fields.is_empty() {
                    value
                } else {
                    self.eval_field_chain(dot, &value, fields, &[], None)?
                }
            }
            Term::Pipe(p) => self.eval_pipeline(dot, p)?,
            Term::Func(f) => self.eval_call(dot, *f, &[], None, op.span)?,
            Term::Chain(node, fields) => {
                let receiver = self.eval_arg(dot, None, node)?;
                self.eval_field_chain(dot, &receiver, fields, &[], None)?
            }
            Term::Bool(b) => {
                return match ty {
                    Some(Ty::Any | Ty::Value) => Ok(Value::Bool(*b)),
                    _ => self.literal_mismatch(ty, op),
                };
            }
            Term::Number(n) => {
                return match ty {
                    Some(Ty::Int) if n.is_int => Ok(Value::Int(n.int)),
                    Some(Ty::Any | Ty::Value) => self.ideal_constant(n),
                    _ => self.literal_mismatch(ty, op),
                };
            }
            Term::Str(s) => {
                return match ty {
                    Some(Ty::Str | Ty::Any | Ty::Value) => Ok(Value::Str(Str::Ref(s))),
                    _ => self.literal_mismatch(ty, op),
                };
            }
        };
        self.at(op.span);
        self.validate(v, ty)
    }

    fn literal_mismatch<T>(&self, ty: Option<Ty>, op: &Operand) -> R<T> {
        let found = self.text(op.span);
        match ty {
            Some(Ty::Int) => self.fail(format!("expected integer; found {found}")),
            Some(Ty::Str) => self.fail(format!("expected string; found {found}")),
            Some(t) => self.fail(format!(
                "can't handle {found} for arg of type {}",
                t.go_name()
            )),
            None => self.fail(format!("can't handle {found} for arg of type <nil>")),
        }
    }

    /// Go's `validateType`: `v` as a value of type `ty`, or the error Go gives.
    fn validate(&self, v: Value<'a>, ty: Option<Ty>) -> R<Value<'a>> {
        let Some(ty) = ty else { return Ok(v) };
        if matches!(v, Value::Missing) {
            return match ty {
                Ty::Value => Ok(Value::Missing),
                Ty::Any => Ok(Value::Nil),
                Ty::Strings => Ok(Value::List(GoList::new(ListKind::Strings, vec![]))),
                Ty::Kvs => Ok(Value::List(GoList::new(ListKind::KvSlice, vec![]))),
                Ty::Str | Ty::Int => self.fail(format!("invalid value; expected {}", ty.go_name())),
            };
        }
        let ok = match (ty, &v) {
            (Ty::Value | Ty::Any, _) => true,
            (Ty::Str, Value::Str(_)) | (Ty::Int, Value::Int(_)) => true,
            (Ty::Strings, Value::List(l)) => l.kind == ListKind::Strings,
            (Ty::Kvs, Value::List(l)) => matches!(l.kind, ListKind::KvPairs | ListKind::KvSlice),
            _ => false,
        };
        if ok {
            return Ok(v);
        }
        let got = match v {
            Value::Nil => "interface {}".to_string(),
            other => other.go_type(),
        };
        self.fail(format!(
            "wrong type for value; expected {}; got {got}",
            ty.go_name()
        ))
    }
}
