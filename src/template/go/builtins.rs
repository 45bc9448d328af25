//! text/template's builtin functions with Go's semantics: `index`, `slice`, `len`, `not`,
//! the comparisons (`eq` with several operands, int/uint mixing, Go's error texts) and
//! `call`. `and`/`or` short-circuit in the evaluator; printing and escaping live in
//! `fmt` and `escape`.

use std::rc::Rc;

use super::fmt::print_value;
use super::value::{List, Str, Value};

/// Go's `indirectInterface`: an interface holding nil is no value.
fn plain<'a>(v: &Value<'a>) -> Value<'a> {
    match v {
        Value::Nil => Value::Missing,
        other => other.clone(),
    }
}

fn shown(v: &Value) -> String {
    let mut s = String::new();
    print_value(&mut s, v);
    s
}

/// An index argument as an int in `0..=cap` (Go's `indexArg`).
fn index_arg(i: &Value, cap: usize) -> Result<usize, String> {
    let x = match i {
        Value::Int(x) => *x,
        Value::U16(x) => i64::from(*x),
        Value::Missing | Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.go_type()
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// `index item i j ...`
pub fn index<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    let mut item = plain(item);
    if matches!(item, Value::Missing) {
        return Err("index of untyped nil".into());
    }
    for i in indexes {
        let i = plain(i);
        item = match &item {
            Value::Nil | Value::Missing => return Err("index of nil pointer".into()),
            Value::List(l) => {
                let x = index_arg(&i, l.len())?;
                l.get(x)
                    .ok_or_else(|| "reflect: slice index out of range".to_string())?
            }
            Value::Str(s) => {
                let x = index_arg(&i, s.len())?;
                let b = s
                    .as_bytes()
                    .get(x)
                    .ok_or_else(|| "reflect: string index out of range".to_string())?;
                Value::Int(i64::from(*b))
            }
            Value::Map(m) => {
                let key = match &i {
                    Value::Str(k) => k,
                    Value::Missing => {
                        return Err("value is nil; should be of type string".into());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.go_type()
                        ));
                    }
                };
                m.get(&**key).cloned().unwrap_or(Value::Nil)
            }
            other => return Err(format!("can't index item of type {}", other.go_type())),
        };
    }
    Ok(item)
}

/// A part of `s` (byte offsets, as Go slices strings).
fn substr<'a>(s: &Str<'a>, from: usize, to: usize) -> Str<'a> {
    match s {
        Str::Ref(r) => match r.get(from..to) {
            Some(t) => Str::Ref(t),
            None => Str::from(String::from_utf8_lossy(&r.as_bytes()[from..to]).into_owned()),
        },
        Str::Rc(rc) => Str::from(String::from_utf8_lossy(&rc.as_bytes()[from..to]).into_owned()),
    }
}

/// `slice item [i [j [k]]]`
pub fn slice<'a>(item: &Value<'a>, indexes: &[Value<'a>]) -> Result<Value<'a>, String> {
    let item = plain(item);
    if matches!(item, Value::Missing) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match &item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.go_type())),
    };
    let mut idx = [0, len, len];
    for (n, i) in indexes.iter().enumerate() {
        idx[n] = index_arg(&plain(i), len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match &item {
        Value::Str(s) => Value::Str(substr(s, idx[0], idx[1])),
        Value::List(l) => {
            let items = l.items.borrow()[idx[0]..idx[1]].to_vec();
            Value::List(List::new(l.kind, items))
        }
        _ => Value::Missing,
    })
}

/// `len item`
pub fn len<'x>(item: &Value) -> Result<Value<'x>, String> {
    let n = match item {
        Value::Missing => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Nil => return Err("len of nil pointer".into()),
        Value::Str(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        other => return Err(format!("len of type {}", other.go_type())),
    };
    Ok(Value::Int(n as i64))
}

/// Go's basic kinds, the only ones `lt` and friends order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basic {
    Bool,
    Int,
    Uint,
    Float,
    String,
}

fn basic(v: &Value) -> Option<Basic> {
    Some(match v {
        Value::Bool(_) => Basic::Bool,
        Value::Int(_) => Basic::Int,
        Value::U16(_) => Basic::Uint,
        Value::Float(_) => Basic::Float,
        Value::Str(_) => Basic::String,
        _ => return None,
    })
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::U16(u) => i64::from(*u),
        _ => 0,
    }
}

/// Go's reflect kind name class, for "can these be compared at all".
fn kind_class(v: &Value) -> u8 {
    match v {
        Value::Missing | Value::Nil => 0,
        Value::Kv(_) | Value::Time(_) => 1,
        Value::List(_) => 2,
        Value::Map(_) => 3,
        Value::Srv(_) => 4,
        _ => 5,
    }
}

const INCOMPATIBLE: &str = "incompatible types for comparison";
const BAD_TYPE: &str = "invalid type for comparison";

/// `eq a b [c ...]`: true when `a` equals any of the rest.
pub fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    let a = plain(a);
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic(&a);
    for b in rest {
        let b = plain(b);
        let k2 = basic(&b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Some(Basic::Int), Some(Basic::Uint)) | (Some(Basic::Uint), Some(Basic::Int)) => {
                    int(&a) == int(&b)
                }
                _ if !matches!(a, Value::Missing) && !matches!(b, Value::Missing) => {
                    return Err(INCOMPATIBLE.into());
                }
                _ => false,
            }
        } else {
            match (&a, &b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => **x == **y,
                (Value::Int(_) | Value::U16(_), _) => int(&a) == int(&b),
                _ => {
                    let (ca, cb) = (kind_class(&a), kind_class(&b));
                    if ca != cb && ca != 0 && cb != 0 {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            shown(&a),
                            a.go_type(),
                            b.go_type(),
                            shown(&b)
                        ));
                    }
                    if ca == 0 || cb == 0 {
                        ca == cb
                    } else if matches!(b, Value::List(_) | Value::Map(_)) {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            shown(&b),
                            b.go_type()
                        ));
                    } else {
                        match (&a, &b) {
                            (Value::Kv(x), Value::Kv(y)) => {
                                *x.key == *y.key && *x.value == *y.value
                            }
                            (Value::Time(x), Value::Time(y)) => x == y,
                            (Value::Srv(x), Value::Srv(y)) => Rc::ptr_eq(x, y),
                            _ => false,
                        }
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lt a b`
pub fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (a, b) = (plain(a), plain(b));
    let k1 = basic(&a).ok_or(BAD_TYPE)?;
    let k2 = basic(&b).ok_or(BAD_TYPE)?;
    if k1 != k2 {
        return match (k1, k2) {
            (Basic::Int, Basic::Uint) | (Basic::Uint, Basic::Int) => Ok(int(&a) < int(&b)),
            _ => Err(INCOMPATIBLE.into()),
        };
    }
    Ok(match (&a, &b) {
        (Value::Bool(_), _) => return Err(BAD_TYPE.into()),
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => **x < **y,
        _ => int(&a) < int(&b),
    })
}

/// `le a b`
pub fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// `call fn args...`: confd's data holds no functions, so this always fails as Go does.
pub fn call<'x>(f: &Value) -> Result<Value<'x>, String> {
    match plain(f) {
        Value::Missing => Err("call of nil".into()),
        other => Err(format!("non-function of type {}", other.go_type())),
    }
}
