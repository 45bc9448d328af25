//! Tera expressions as the converter builds them, printed with Tera 2's operator
//! precedence so that only the parentheses Tera needs appear.

use std::fmt::Write as _;

/// A binary operator, with Tera's binding powers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    In,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
    Concat,
}

impl BinOp {
    /// Tera's `(left, right)` binding powers (its Pratt parser's table).
    fn power(self) -> (u8, u8) {
        use BinOp::*;
        match self {
            Or => (1, 2),
            And => (3, 4),
            In => (5, 6),
            Eq | Ne | Lt | Le | Gt | Ge => (7, 8),
            Add | Sub => (11, 12),
            Mul | FloorDiv | Mod | Concat => (13, 14),
        }
    }

    fn symbol(self) -> &'static str {
        use BinOp::*;
        match self {
            Or => "or",
            And => "and",
            In => "in",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            Add => "+",
            Sub => "-",
            Mul => "*",
            FloorDiv => "//",
            Mod => "%",
            Concat => "~",
        }
    }
}

/// Binding power of a filter `|` (tighter than every binary operator).
const FILTER: (u8, u8) = (17, 18);
/// `not x` parses its operand with this right binding power.
const NOT: u8 = 5;
/// Atoms: names, literals, calls, subscripts.
const ATOM: u8 = 100;

/// A Tera expression.
#[derive(Debug, Clone, PartialEq)]
pub enum TExpr {
    /// A string literal.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` / `false`
    Bool(bool),
    /// `none`
    None,
    /// A variable, or `loop.index0`.
    Var(String),
    /// `x.name`, `x["name"]`; `optional` is `?.` (a missing parent gives no value).
    Attr(Box<TExpr>, String, bool),
    /// `x[i]`
    Index(Box<TExpr>, Box<TExpr>),
    /// `x[a:b]`
    Slice(Box<TExpr>, Option<Box<TExpr>>, Option<Box<TExpr>>),
    /// `name(k=v, ...)`
    Call(String, Vec<(String, TExpr)>),
    /// `x | name(k=v, ...)`
    Filter(Box<TExpr>, String, Vec<(String, TExpr)>),
    /// `a op b`
    Bin(BinOp, Box<TExpr>, Box<TExpr>),
    /// `not x`
    Not(Box<TExpr>),
    /// `[a, b]`
    List(Vec<TExpr>),
    /// `{"k": v}`
    Map(Vec<(String, TExpr)>),
    /// `[expr for var in target if cond]`
    Comprehension {
        expr: Box<TExpr>,
        var: String,
        target: Box<TExpr>,
        cond: Option<Box<TExpr>>,
    },
}

impl TExpr {
    /// A call with named arguments.
    pub fn call(name: &str, args: Vec<(&str, TExpr)>) -> Self {
        TExpr::Call(
            name.to_string(),
            args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        )
    }

    /// `self | name(args)`
    pub fn filter(self, name: &str, args: Vec<(&str, TExpr)>) -> Self {
        TExpr::Filter(
            Box::new(self),
            name.to_string(),
            args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        )
    }

    /// `self op other`
    pub fn bin(self, op: BinOp, other: TExpr) -> Self {
        TExpr::Bin(op, Box::new(self), Box::new(other))
    }

    /// `self.name` (or `self["name"]`).
    pub fn attr(self, name: &str, optional: bool) -> Self {
        TExpr::Attr(Box::new(self), name.to_string(), optional)
    }

    /// `not self`
    pub fn not(self) -> Self {
        TExpr::Not(Box::new(self))
    }

    /// True when this is a variable or a chain of attributes and subscripts on one, the
    /// only bases Tera allows `.name` after.
    pub fn is_path(&self) -> bool {
        match self {
            TExpr::Var(_) => true,
            TExpr::Attr(b, ..) | TExpr::Index(b, _) => b.is_path(),
            _ => false,
        }
    }

    fn power(&self) -> u8 {
        match self {
            TExpr::Bin(op, ..) => op.power().0,
            TExpr::Filter(..) => FILTER.0,
            TExpr::Not(_) => NOT,
            TExpr::Int(i) if *i < 0 => 20,
            TExpr::Float(f) if f.is_sign_negative() => 20,
            _ => ATOM,
        }
    }

    /// Tera source for this expression.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, min: u8) {
        if self.power() < min {
            out.push('(');
            self.write(out, 0);
            out.push(')');
            return;
        }
        match self {
            TExpr::Str(s) => write_str(out, s),
            TExpr::Int(i) if *i == i64::MIN => out.push_str("(-9223372036854775807 - 1)"),
            TExpr::Int(i) => {
                let _ = write!(out, "{i}");
            }
            TExpr::Float(f) => write_float(out, *f),
            TExpr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            TExpr::None => out.push_str("none"),
            TExpr::Var(v) => out.push_str(v),
            TExpr::Attr(base, name, optional) => {
                base.write(out, ATOM);
                let dot = if *optional { "?." } else { "." };
                if base.is_path() && is_ident(name) {
                    out.push_str(dot);
                    out.push_str(name);
                } else {
                    out.push_str(if *optional { "?[" } else { "[" });
                    write_str(out, name);
                    out.push(']');
                }
            }
            TExpr::Index(base, i) => {
                base.write(out, ATOM);
                out.push('[');
                i.write(out, 0);
                out.push(']');
            }
            TExpr::Slice(base, a, b) => {
                base.write(out, ATOM);
                out.push('[');
                if let Some(a) = a {
                    a.write(out, 0);
                }
                out.push(':');
                if let Some(b) = b {
                    b.write(out, 0);
                }
                out.push(']');
            }
            TExpr::Call(name, args) => {
                out.push_str(name);
                write_args(out, args);
            }
            TExpr::Filter(base, name, args) => {
                base.write(out, FILTER.0);
                out.push_str(" | ");
                out.push_str(name);
                if !args.is_empty() {
                    write_args(out, args);
                }
            }
            TExpr::Bin(op, a, b) => {
                let (l, r) = op.power();
                a.write(out, l);
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                b.write(out, r);
            }
            TExpr::Not(e) => {
                out.push_str("not ");
                e.write(out, NOT);
            }
            TExpr::List(items) => {
                out.push('[');
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    e.write(out, 0);
                }
                out.push(']');
            }
            TExpr::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str(out, k);
                    out.push_str(": ");
                    v.write(out, 0);
                }
                out.push('}');
            }
            TExpr::Comprehension {
                expr,
                var,
                target,
                cond,
            } => {
                out.push('[');
                expr.write(out, 1);
                let _ = write!(out, " for {var} in ");
                target.write(out, 1);
                if let Some(c) = cond {
                    out.push_str(" if ");
                    c.write(out, 1);
                }
                out.push(']');
            }
        }
    }
}

fn write_args(out: &mut String, args: &[(String, TExpr)]) {
    out.push('(');
    for (i, (k, v)) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        v.write(out, 0);
    }
    out.push(')');
}

/// A Tera identifier (`[A-Za-z_][A-Za-z0-9_]*`) that the lexer does not read as a bool.
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !matches!(s, "true" | "True" | "false" | "False")
}

/// A Tera string literal: `"..."` with Tera's escapes (`\\`, `\"`, `\n`, `\t`, `\r`);
/// any other character stands for itself.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float in the only form Tera's lexer reads: digits, one `.`, digits (Rust's
/// `Display` never uses an exponent).
fn write_float(out: &mut String, f: f64) {
    let text = format!("{}", f.abs());
    if f.is_sign_negative() {
        out.push('-');
    }
    out.push_str(&text);
    if !text.contains('.') {
        out.push_str(".0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: &str) -> TExpr {
        TExpr::Var(n.into())
    }

    #[test]
    fn parentheses_only_where_tera_needs_them() {
        let e = v("a").bin(BinOp::Concat, v("b")).filter("upper", vec![]);
        assert_eq!(e.render(), "(a ~ b) | upper");
        let e = v("a").bin(BinOp::Concat, v("b").filter("upper", vec![]));
        assert_eq!(e.render(), "a ~ b | upper");
        let e = v("a").bin(BinOp::Sub, v("b").bin(BinOp::Sub, v("c")));
        assert_eq!(e.render(), "a - (b - c)");
        let e = v("a").bin(BinOp::Sub, v("b")).bin(BinOp::Sub, v("c"));
        assert_eq!(e.render(), "a - b - c");
        let e = v("a").bin(BinOp::And, v("b")).not();
        assert_eq!(e.render(), "not (a and b)");
        let e = v("a").not().bin(BinOp::And, v("b"));
        assert_eq!(e.render(), "not a and b");
        let e = v("a").bin(BinOp::Eq, v("b")).not();
        assert_eq!(e.render(), "not a == b");
        let e = v("a").bin(BinOp::Concat, v("b").bin(BinOp::Add, TExpr::Int(1)));
        assert_eq!(e.render(), "a ~ (b + 1)");
    }

    #[test]
    fn attributes_and_literals() {
        let e = TExpr::call("get", vec![("key", TExpr::Str("/k".into()))]).attr("value", false);
        assert_eq!(e.render(), "get(key=\"/k\")[\"value\"]");
        let e = v("data").attr("nested", false).attr("my-key", true);
        assert_eq!(e.render(), "data.nested?[\"my-key\"]");
        assert_eq!(TExpr::Float(1e3).render(), "1000.0");
        assert_eq!(TExpr::Float(-2.25).render(), "-2.25");
        assert_eq!(TExpr::Str("a\"b\\\n".into()).render(), "\"a\\\"b\\\\\\n\"");
        assert_eq!(TExpr::Int(-5).filter("abs", vec![]).render(), "-5 | abs");
    }
}
