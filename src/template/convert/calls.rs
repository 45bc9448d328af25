//! confd's functions as Tera: each call checked as Go checks it (arity, argument types),
//! then written with confsync's Tera functions and filters, Tera's operators, or
//! confsync's Go-compatible filters where Tera's own would differ.

use crate::template::go::ast::{Operand, Span};
use crate::template::go::funcs::{Func, Ty as Param};

use super::texpr::{BinOp, TExpr};
use super::types::{Ty, Typed};
use super::{Converter, R, fail};

impl Converter<'_> {
    /// `f args... fin`: checked and converted.
    pub(super) fn call(
        &mut self,
        f: Func,
        args: &[Operand],
        fin: Option<Typed>,
        fspan: Span,
        span: Span,
    ) -> R<Typed> {
        let sig = f.sig();
        let name = f.name();
        let num_in = args.len() + usize::from(fin.is_some());
        match sig.variadic {
            Some(_) if num_in < sig.fixed.len() => {
                return fail(
                    fspan,
                    format!(
                        "wrong number of args for {name}: want at least {} got {}: confd fails here",
                        sig.fixed.len(),
                        args.len()
                    ),
                );
            }
            None if num_in != sig.fixed.len() => {
                return fail(
                    fspan,
                    format!(
                        "wrong number of args for {name}: want {} got {num_in}: confd fails here",
                        sig.fixed.len()
                    ),
                );
            }
            _ => {}
        }
        let param = |i: usize| {
            if i < sig.fixed.len() {
                sig.fixed[i]
            } else {
                sig.variadic.unwrap_or(Param::Any)
            }
        };
        let mut argv = Vec::with_capacity(num_in);
        let lazy = matches!(f, Func::And | Func::Or);
        for (i, a) in args.iter().enumerate() {
            // `and`/`or` may stop before an operand: it may not run.
            let maybe = lazy && i > 0;
            self.lazy += usize::from(maybe);
            let v = self.operand(a, Some(param(i)));
            self.lazy -= usize::from(maybe);
            argv.push(v?);
        }
        if let Some(v) = fin {
            let v = self.check_piped(v, param(num_in - 1), span)?;
            argv.push(v);
        }
        if matches!(f, Func::And | Func::Or) {
            let op = if f == Func::And {
                BinOp::And
            } else {
                BinOp::Or
            };
            let mut it = argv.into_iter();
            let Some(mut acc) = it.next() else {
                return fail(fspan, "and/or without operands");
            };
            for v in it {
                acc = Typed::new(acc.expr.bin(op, v.expr), acc.ty.join(v.ty));
            }
            return Ok(acc);
        }
        self.apply(f, argv, span)
    }

    /// A piped value as the last argument.
    pub(super) fn check_piped(&mut self, v: Typed, p: Param, span: Span) -> R<Typed> {
        // The same checks as an operand's, on an already converted value.
        let ok = match p {
            Param::Value | Param::Any => true,
            Param::Str => matches!(v.ty, Ty::Str | Ty::Json | Ty::Any),
            Param::Int => matches!(v.ty, Ty::Int | Ty::Any),
            Param::Strings => matches!(v.ty, Ty::Strs | Ty::Any | Ty::Missing),
            Param::Kvs => matches!(v.ty, Ty::Kvs | Ty::KvSlice | Ty::Any | Ty::Missing),
        };
        if !ok {
            return fail(
                span,
                format!(
                    "wrong type for value; expected {}; got {}: confd fails here",
                    p.go_name(),
                    v.ty.go_name()
                ),
            );
        }
        Ok(v)
    }

    pub(super) fn apply(&mut self, f: Func, a: Vec<Typed>, span: Span) -> R<Typed> {
        use Func::*;
        let arg = |i: usize| a[i].clone();
        let name = f.name();
        Ok(match f {
            Not => Typed::new(arg(0).expr.not(), Ty::Bool),
            Len => self.len(arg(0), span)?,
            Index => self.index(a, span)?,
            Slice => self.slice(a, span)?,
            Call => {
                return fail(
                    span,
                    "call: confd's data holds no functions: confd fails here",
                );
            }
            Print => self.print(a, false, span)?,
            Println => self.print(a, true, span)?,
            Printf => self.printf(a, span)?,
            Html | Js | Urlquery if a.len() == 1 => {
                // One operand: a string is escaped as it is, anything else as Go prints it.
                let v = arg(0);
                let text = if v.ty == Ty::Str {
                    v.expr
                } else {
                    self.printable(v, span)?
                };
                Typed::new(text.filter(name, vec![]), Ty::Str)
            }
            Html | Js | Urlquery => {
                return fail(
                    span,
                    format!("{name} of several operands: Tera's {name} filter takes one"),
                );
            }
            Eq | Ne | Lt | Le | Gt | Ge => self.compare(f, a, span)?,
            Exists | Ls | Lsdir | Get | Gets | Getv | Getvs => self.store(f, a, span)?,
            Base => Typed::new(arg(0).expr.filter("base", vec![]), Ty::Str),
            Addr | Ident | Token => Typed::new(arg(0).expr.filter(name, vec![]), Ty::Str),
            Dir => self.dir(arg(0), span)?,
            Split => self.split(arg(0), arg(1), span),
            Json | JsonArray => self.json(f, arg(0), span)?,
            Map => self.map(a, span)?,
            Getenv => {
                let mut kw = vec![("name", arg(0).expr)];
                if let Some(d) = a.get(1) {
                    kw.push(("default", d.expr.clone()));
                }
                Typed::new(TExpr::call("getenv", kw), Ty::Str)
            }
            Join => Typed::new(
                arg(0).expr.filter("join", vec![("sep", arg(1).expr)]),
                Ty::Str,
            ),
            Datetime => Typed::new(TExpr::call("datetime", vec![]), Ty::Time),
            ToUpper => Typed::new(arg(0).expr.filter("to_upper", vec![]), Ty::Str),
            ToLower => Typed::new(arg(0).expr.filter("to_lower", vec![]), Ty::Str),
            Contains => Typed::new(arg(1).expr.bin(BinOp::In, arg(0).expr), Ty::Bool),
            Replace => self.replace(a, span)?,
            TrimSuffix => Typed::new(
                arg(0)
                    .expr
                    .filter("trim_suffix", vec![("suffix", arg(1).expr)]),
                Ty::Str,
            )
            .rooted(arg(0).rooted),
            LookupIp | LookupIpv4 | LookupIpv6 => {
                let func = match f {
                    LookupIp => "lookup_ip",
                    LookupIpv4 => "lookup_ipv4",
                    _ => "lookup_ipv6",
                };
                Typed::new(TExpr::call(func, vec![("name", arg(0).expr)]), Ty::Strs)
            }
            SortKvByLength => self.sort_kv_by_length(arg(0), span)?,
            LookupIfaceIpv4 | LookupIfaceIpv6 => {
                let func = if f == LookupIfaceIpv4 {
                    "lookup_iface_ipv4"
                } else {
                    "lookup_iface_ipv6"
                };
                Typed::new(TExpr::call(func, vec![("name", arg(0).expr)]), Ty::Str)
            }
            LookupSrv => {
                return fail(
                    span,
                    format!("{name}: confsync's Tera has no such function"),
                );
            }
            FileExists => Typed::new(
                TExpr::call("file_exists", vec![("path", arg(0).expr)]),
                Ty::Bool,
            ),
            Base64Encode => Typed::new(arg(0).expr.filter("base64_encode", vec![]), Ty::Str),
            Base64Decode => self.base64_decode(arg(0), span)?,
            ParseBool => Typed::new(arg(0).expr.filter("parse_bool", vec![]), Ty::Bool),
            Reverse => self.reverse(arg(0), span)?,
            SortByLength => self.sort_by_length(arg(0), span)?,
            Add | Sub | Mul | Div | Mod => self.arith(f, arg(0), arg(1), span)?,
            Seq => self.seq(arg(0), arg(1), span)?,
            Atoi => Typed::new(arg(0).expr.filter("atoi", vec![]), Ty::Int),
            And | Or => return fail(span, "internal error: and/or"),
        })
    }

    pub(super) fn compare(&mut self, f: Func, a: Vec<Typed>, span: Span) -> R<Typed> {
        let ordered = !matches!(f, Func::Eq | Func::Ne);
        if a.len() < 2 {
            return fail(span, "missing argument for comparison: confd fails here");
        }
        for b in &a[1..] {
            self.comparable(&a[0], b, ordered, span)?;
        }
        let op = match f {
            Func::Eq => BinOp::Eq,
            Func::Ne => BinOp::Ne,
            Func::Lt => BinOp::Lt,
            Func::Le => BinOp::Le,
            Func::Gt => BinOp::Gt,
            _ => BinOp::Ge,
        };
        let mut it = a.into_iter();
        let first = it.next().map(|t| t.expr).unwrap_or(TExpr::None);
        let rest: Vec<TExpr> = it.map(|t| t.expr).collect();
        let e = if rest.len() > 1 {
            first.bin(BinOp::In, TExpr::List(rest))
        } else {
            first.bin(op, rest.into_iter().next().unwrap_or(TExpr::None))
        };
        Ok(Typed::new(e, Ty::Bool))
    }

    /// Go compares only basic values of one kind (and, for `eq`, KVPairs and nil).
    pub(super) fn comparable(&mut self, a: &Typed, b: &Typed, ordered: bool, span: Span) -> R<()> {
        let basic = |t: Ty| matches!(t, Ty::Str | Ty::Int | Ty::Float | Ty::Bool);
        let unknown = |t: Ty| matches!(t, Ty::Json | Ty::Any);
        if unknown(a.ty) || unknown(b.ty) {
            self.note_once(
                "compare-json",
                span,
                "comparing a value whose type is known only when it renders (JSON): where confd failed on mismatched types, Tera compares (== is false)",
            );
            return Ok(());
        }
        if ordered {
            if a.ty == Ty::Bool || b.ty == Ty::Bool || !basic(a.ty) || !basic(b.ty) {
                return fail(span, "invalid type for comparison: confd fails here");
            }
            if a.ty != b.ty {
                return fail(span, "incompatible types for comparison: confd fails here");
            }
            return Ok(());
        }
        let nil = |t: Ty| matches!(t, Ty::Missing | Ty::Nil);
        if nil(a.ty) || nil(b.ty) {
            return Ok(());
        }
        if basic(a.ty) && basic(b.ty) {
            if a.ty != b.ty {
                return fail(span, "incompatible types for comparison: confd fails here");
            }
            return Ok(());
        }
        if a.ty == Ty::Kv && b.ty == Ty::Kv {
            return Ok(());
        }
        if basic(a.ty) != basic(b.ty) && (basic(a.ty) || basic(b.ty)) {
            return fail(span, "incompatible types for comparison: confd fails here");
        }
        fail(
            span,
            format!(
                "non-comparable types {} and {}: confd fails here",
                a.ty.go_name(),
                b.ty.go_name()
            ),
        )
    }

    pub(super) fn arith(&mut self, f: Func, a: Typed, b: Typed, span: Span) -> R<Typed> {
        if let (TExpr::Int(x), TExpr::Int(y)) = (&a.expr, &b.expr) {
            let r = match f {
                Func::Add => x.checked_add(*y),
                Func::Sub => x.checked_sub(*y),
                Func::Mul => x.checked_mul(*y),
                Func::Div | Func::Mod if *y == 0 => {
                    return fail(span, "integer divide by zero: confd fails here");
                }
                Func::Div => x.checked_div(*y),
                _ => x.checked_rem(*y),
            };
            // Rust's `/` and `%` truncate as Go's do; Tera's round toward minus infinity.
            return match r {
                Some(r) => {
                    let t = Typed::new(TExpr::Int(r), Ty::Int);
                    Ok(if r >= 0 { t.nonneg() } else { t })
                }
                None => fail(
                    span,
                    "the result overflows 64 bits: confd wraps around, Tera does not",
                ),
            };
        }
        let op = match f {
            Func::Add => BinOp::Add,
            Func::Sub => BinOp::Sub,
            Func::Mul => BinOp::Mul,
            Func::Div => BinOp::FloorDiv,
            _ => BinOp::Mod,
        };
        if matches!(f, Func::Div | Func::Mod) && !(a.nonneg && b.nonneg) {
            self.note_once(
                "div",
                span,
                "div and mod became // and %, which round toward minus infinity where Go truncates: they differ when an operand is negative",
            );
        }
        let nonneg =
            a.nonneg && b.nonneg && matches!(f, Func::Add | Func::Mul | Func::Div | Func::Mod);
        let t = Typed::new(a.expr.bin(op, b.expr), Ty::Int);
        Ok(if nonneg { t.nonneg() } else { t })
    }
}
