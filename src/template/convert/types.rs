//! What the converter knows about a Go value before the template runs: its Go type (as
//! confd's functions return them) and, for strings used as keys, whether they start
//! with `/`.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::template::go::ast::VarRef;

use super::texpr::TExpr;

/// The Go type of a value, as far as the conversion needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `string`
    Str,
    /// `int`
    Int,
    /// `float64` (a float constant).
    Float,
    /// `bool`
    Bool,
    /// `memkv.KVPair` (Tera: a `{key, value}` map).
    Kv,
    /// `memkv.KVPairs`, what `gets` returns.
    Kvs,
    /// `[]memkv.KVPair`, what `sortKVByLength` returns.
    KvSlice,
    /// `[]string`
    Strs,
    /// `[]int`
    Ints,
    /// An `interface {}` read from JSON: nil, bool, float64, string, list or map.
    Json,
    /// `map[string]interface {}` from `json`.
    JsonMap,
    /// `[]interface {}` from `jsonArray`.
    JsonList,
    /// `map[string]interface {}` from `map`.
    Map,
    /// No value (the top-level dot, `$`, a field of no value).
    Missing,
    /// An `interface {}` holding nil.
    Nil,
    /// `time.Time`
    Time,
    /// Not known before the template runs.
    Any,
}

impl Ty {
    /// The Go spelling, for messages.
    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Float => "float64",
            Ty::Bool => "bool",
            Ty::Kv => "memkv.KVPair",
            Ty::Kvs => "memkv.KVPairs",
            Ty::KvSlice => "[]memkv.KVPair",
            Ty::Strs => "[]string",
            Ty::Ints => "[]int",
            Ty::Json => "interface {}",
            Ty::JsonMap | Ty::Map => "map[string]interface {}",
            Ty::JsonList => "[]interface {}",
            Ty::Missing => "no value",
            Ty::Nil => "nil",
            Ty::Time => "time.Time",
            Ty::Any => "interface {}",
        }
    }

    /// The type of two values one expression may yield (`and`, `or`, assignments).
    pub fn join(self, other: Ty) -> Ty {
        if self == other {
            self
        } else if matches!(self, Ty::Missing | Ty::Nil) && matches!(other, Ty::Missing | Ty::Nil) {
            Ty::Nil
        } else {
            Ty::Any
        }
    }

    /// A value read from JSON (numbers are float64 there).
    pub fn is_json(self) -> bool {
        matches!(self, Ty::Json | Ty::JsonMap | Ty::JsonList)
    }

    /// A list of some Go slice type.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Ty::Kvs | Ty::KvSlice | Ty::Strs | Ty::Ints | Ty::JsonList
        )
    }

    /// A map.
    pub fn is_map(self) -> bool {
        matches!(self, Ty::JsonMap | Ty::Map)
    }

    /// The type of an element of a list (or a value of a map).
    pub fn elem(self) -> Ty {
        match self {
            Ty::Kvs | Ty::KvSlice => Ty::Kv,
            Ty::Strs => Ty::Str,
            Ty::Ints => Ty::Int,
            Ty::JsonList | Ty::JsonMap | Ty::Json => Ty::Json,
            _ => Ty::Any,
        }
    }

    /// Printing it needs Go's printing (`go_print`): Tera prints these differently.
    pub fn prints_differently(self) -> bool {
        !matches!(self, Ty::Str | Ty::Int | Ty::Bool)
    }
}

/// A converted Go value: its Tera expression and what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed {
    /// The Tera expression.
    pub expr: TExpr,
    /// Its Go type.
    pub ty: Ty,
    /// For a string: it starts with one `/` (a key confd's store can hold).
    pub rooted: bool,
    /// The Go constant, when the value is a string literal.
    pub literal: Option<String>,
    /// For an int: it is never negative (a loop index, a length, a constant >= 0).
    pub nonneg: bool,
    /// For a map made by `map`: what each key holds.
    pub fields: Option<Rc<BTreeMap<String, Typed>>>,
    /// For a value read from a JSON constant: the JSON, so its fields are known.
    pub json: Option<Rc<serde_json::Value>>,
    /// The Go variable the value is read from, as it is (for functions that change
    /// their argument in place).
    pub var: Option<VarRef>,
    /// A template's dot that its calls give values of different Go types.
    pub mixed: bool,
}

impl Typed {
    /// A value of type `ty`.
    pub fn new(expr: TExpr, ty: Ty) -> Self {
        Typed {
            expr,
            ty,
            rooted: false,
            literal: None,
            nonneg: false,
            fields: None,
            json: None,
            var: None,
            mixed: false,
        }
    }

    /// The value of `key` of a map made by `map`, reached by `expr`: `None` when the
    /// map's keys are not known.
    pub fn field_of(&self, key: &str, expr: TExpr) -> Option<Typed> {
        let fields = self.fields.as_ref()?;
        Some(match fields.get(key) {
            Some(v) => Typed {
                expr,
                literal: None,
                ..v.clone()
            },
            None => Typed::new(expr, Ty::Missing),
        })
    }

    /// An int known never to be negative.
    pub fn nonneg(mut self) -> Self {
        self.nonneg = true;
        self
    }

    /// A string known to start with a single `/`.
    pub fn rooted(mut self, rooted: bool) -> Self {
        self.rooted = rooted;
        self
    }

    /// A string constant.
    pub fn literal(s: &str) -> Self {
        Typed {
            expr: TExpr::Str(s.to_string()),
            ty: Ty::Str,
            rooted: is_rooted(s),
            literal: Some(s.to_string()),
            nonneg: false,
            fields: None,
            json: None,
            var: None,
            mixed: false,
        }
    }
}

/// `s` starts with exactly one `/`, as every key in confd's store does.
pub fn is_rooted(s: &str) -> bool {
    s.starts_with('/') && !s.starts_with("//")
}
