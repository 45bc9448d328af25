//! The values a Go template works with, modelled on the Go types confd's functions return:
//! strings, ints, float64s from JSON, bools, `memkv.KVPair`, slices, maps, `time.Time`.
//!
//! Strings read from the store are borrowed for the whole render (`'a` is the render's
//! view of the store), so a loop over 100,000 keys copies no key or value. Slices are
//! shared and mutable, as Go slices are: confd's `reverse` and `sortByLength` sort their
//! argument in place, and a template that kept the slice in a variable sees that.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use super::time::GoTime;

/// A string: borrowed from the store or the template text, or made during the render.
#[derive(Clone)]
pub enum Str<'a> {
    /// Lives as long as the render.
    Ref(&'a str),
    /// Made by a function.
    Rc(Rc<str>),
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::Ref(s) => s,
            Str::Rc(s) => s,
        }
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str::Rc(Rc::from(s))
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str::Ref(s)
    }
}

/// confd's `memkv.KVPair`: a key (without the resource prefix) and its value.
#[derive(Clone, Debug)]
pub struct Kv<'a> {
    /// `.Key`
    pub key: Str<'a>,
    /// `.Value`
    pub value: Str<'a>,
}

/// Which Go slice type a list is; it decides `%T`, `%#v` and which functions accept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `memkv.KVPairs`, what `gets` returns (a named type: confd's `reverse` does not
    /// recognise it and returns it unchanged).
    KvPairs,
    /// `[]memkv.KVPair`, what `sortKVByLength` returns.
    KvSlice,
    /// `[]string`
    Strings,
    /// `[]int`
    Ints,
    /// `[]interface {}`, from `jsonArray` or inside JSON.
    Any,
    /// `[]*net.SRV`, from `lookupSRV`.
    Srvs,
}

impl ListKind {
    /// The Go type name.
    pub fn go_type(self) -> &'static str {
        match self {
            ListKind::KvPairs => "memkv.KVPairs",
            ListKind::KvSlice => "[]memkv.KVPair",
            ListKind::Strings => "[]string",
            ListKind::Ints => "[]int",
            ListKind::Any => "[]interface {}",
            ListKind::Srvs => "[]*net.SRV",
        }
    }

    /// The Go type name of an element.
    pub fn elem_type(self) -> &'static str {
        match self {
            ListKind::KvPairs | ListKind::KvSlice => "memkv.KVPair",
            ListKind::Strings => "string",
            ListKind::Ints => "int",
            ListKind::Any => "interface {}",
            ListKind::Srvs => "*net.SRV",
        }
    }
}

/// A Go slice: shared, and mutable in place (Go's `reverse` and `sort` semantics).
#[derive(Clone, Debug)]
pub struct List<'a> {
    /// The Go type.
    pub kind: ListKind,
    /// The elements.
    pub items: Rc<RefCell<Vec<Value<'a>>>>,
}

impl<'a> List<'a> {
    /// A new slice of `kind` holding `items`.
    pub fn new(kind: ListKind, items: Vec<Value<'a>>) -> Self {
        Self {
            kind,
            items: Rc::new(RefCell::new(items)),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// True when the slice has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `i`, if any.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        self.items.borrow().get(i).cloned()
    }
}

/// A `*net.SRV` record from `lookupSRV`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    /// `.Target`
    pub target: String,
    /// `.Port`
    pub port: u16,
    /// `.Priority`
    pub priority: u16,
    /// `.Weight`
    pub weight: u16,
}

/// A Go `map[string]interface {}` (from `json` or `map`); Go prints and ranges over it
/// in key order, which a `BTreeMap` gives for free.
pub type Map<'a> = BTreeMap<String, Value<'a>>;

/// One value in a Go template.
#[derive(Clone, Debug, Default)]
pub enum Value<'a> {
    /// No value at all (Go's invalid `reflect.Value`): a missing map key, the data of
    /// the top-level template. Prints as `<no value>`.
    #[default]
    Missing,
    /// An `interface {}` holding nil (a JSON `null` inside a map or list, the `nil`
    /// literal passed to a function). Prints as `<nil>` inside containers and in fmt.
    Nil,
    /// `bool`
    Bool(bool),
    /// `int`
    Int(i64),
    /// `uint16` (the fields of an SRV record).
    U16(u16),
    /// `float64` (JSON numbers, float literals).
    Float(f64),
    /// `string`
    Str(Str<'a>),
    /// `memkv.KVPair` (held inline: `gets` makes one per key, and an allocation each
    /// would cost more than the rest of a loop iteration).
    Kv(Kv<'a>),
    /// A slice.
    List(List<'a>),
    /// `map[string]interface {}`
    Map(Rc<Map<'a>>),
    /// `time.Time` (from `datetime`).
    Time(Rc<GoTime>),
    /// `*net.SRV`
    Srv(Rc<Srv>),
}

impl<'a> Value<'a> {
    /// A string value that borrows `s`.
    pub fn str(s: &'a str) -> Self {
        Value::Str(Str::Ref(s))
    }

    /// A string value that owns `s`.
    pub fn string(s: String) -> Self {
        Value::Str(Str::from(s))
    }

    /// A key/value pair.
    pub fn kv(key: Str<'a>, value: Str<'a>) -> Self {
        Value::Kv(Kv { key, value })
    }

    /// A `[]string` of `items`.
    pub fn strings(items: impl IntoIterator<Item = Str<'a>>) -> Self {
        Value::List(List::new(
            ListKind::Strings,
            items.into_iter().map(Value::Str).collect(),
        ))
    }

    /// A value that borrows nothing (what a method of a time returns), for any render.
    pub fn relive<'x>(v: Value<'static>) -> Value<'x> {
        match v {
            Value::Missing => Value::Missing,
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::U16(u) => Value::U16(u),
            Value::Float(f) => Value::Float(f),
            Value::Str(Str::Ref(s)) => Value::Str(Str::Ref(s)),
            Value::Str(Str::Rc(s)) => Value::Str(Str::Rc(s)),
            Value::Kv(kv) => Value::kv(
                Str::from(kv.key.to_string()),
                Str::from(kv.value.to_string()),
            ),
            Value::List(l) => {
                let items = l
                    .items
                    .borrow()
                    .iter()
                    .cloned()
                    .map(Value::relive)
                    .collect();
                Value::List(List::new(l.kind, items))
            }
            Value::Map(m) => Value::Map(Rc::new(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::relive(v.clone())))
                    .collect(),
            )),
            Value::Time(t) => Value::Time(t),
            Value::Srv(s) => Value::Srv(s),
        }
    }

    /// The Go type name, as `%T` prints it (`<nil>` for no value).
    pub fn go_type(&self) -> String {
        match self {
            Value::Missing | Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::U16(_) => "uint16".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::Kv(_) => "memkv.KVPair".into(),
            Value::List(l) => l.kind.go_type().into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Time(_) => "time.Time".into(),
            Value::Srv(_) => "*net.SRV".into(),
        }
    }

    /// The string, when this is a Go `string`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, slices and maps are false; structs
    /// (a KVPair, a time) are true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::U16(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Kv(_) | Value::Time(_) | Value::Srv(_) => true,
        }
    }
}
