//! confd's function map (`resource/template/template_funcs.go` and memkv's store
//! functions) with confd's semantics and quirks: `getvs` sorts by value, `reverse` leaves
//! `gets`'s `memkv.KVPairs` alone, `sortByLength` sorts in place, `seq 3 1` is empty,
//! `add` and friends take ints only.

use std::rc::Rc;

use super::case;
use super::exec::MAX_OUTPUT;
use super::store::{Store, not_exist};
use super::time::GoTime;
use super::value::{List, ListKind, Map, Str, Value};

/// An error message quoting `s` as Go's `strconv` errors do.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The string argument `i` (already checked to be a Go string).
pub fn str_arg<'v, 'a>(args: &'v [Value<'a>], i: usize) -> &'v str {
    args.get(i).and_then(Value::as_str).unwrap_or("")
}

/// The int argument `i` (already checked to be a Go int).
pub fn int_arg(args: &[Value], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

/// A part of the string argument `i`, borrowed when the argument is.
fn sub<'a>(args: &[Value<'a>], i: usize, f: impl FnOnce(&str) -> &str) -> Value<'a> {
    match args.get(i) {
        Some(Value::Str(Str::Ref(r))) => Value::Str(Str::Ref(f(r))),
        Some(Value::Str(Str::Rc(rc))) => {
            let part = f(rc);
            if part.len() == rc.len() {
                Value::Str(Str::Rc(rc.clone()))
            } else {
                Value::string(part.to_string())
            }
        }
        _ => Value::str(""),
    }
}

/// memkv's `Get`.
pub fn get<'a>(store: &'a Store<'a>, key: &str) -> Result<Value<'a>, String> {
    match store.get(key) {
        Some((k, v)) => Ok(Value::kv(Str::Ref(k), Str::Ref(v))),
        None => Err(not_exist(key)),
    }
}

/// memkv's `GetAll`, as `memkv.KVPairs`.
pub fn gets<'a>(store: &'a Store<'a>, pattern: &str) -> Result<Value<'a>, String> {
    let items = store.gets_with(pattern, |k, v| Value::kv(Str::Ref(k), Str::Ref(v)))?;
    Ok(Value::List(List::new(ListKind::KvPairs, items)))
}

/// memkv's `GetValue`: the value, else the first default, else an error naming the key.
pub fn getv<'a>(store: &'a Store<'a>, args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let key = str_arg(args, 0);
    match store.get(key) {
        Some((_, v)) => Ok(Value::str(v)),
        None => match args.get(1) {
            Some(d) => Ok(d.clone()),
            None => Err(not_exist(key)),
        },
    }
}

/// memkv's `GetAllValues`: the values of `gets`, sorted by value.
pub fn getvs<'a>(store: &'a Store<'a>, pattern: &str) -> Result<Value<'a>, String> {
    let mut vals: Vec<&'a str> = store.gets(pattern)?.into_iter().map(|(_, v)| v).collect();
    vals.sort_unstable();
    Ok(Value::strings(vals.into_iter().map(Str::Ref)))
}

/// A `[]string` of owned names.
pub fn names<'a>(names: Vec<String>) -> Value<'a> {
    Value::strings(names.into_iter().map(Str::from))
}

/// `strings.Split`: an empty separator splits into characters. At most [`MAX_SEQ`]
/// parts, as `seq` makes at most that many numbers.
pub fn split<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let (s, sep) = (str_arg(args, 0), str_arg(args, 1));
    let parts = if sep.is_empty() {
        s.chars().count()
    } else {
        s.matches(sep).count() + 1
    };
    if parts as u64 > MAX_SEQ as u64 {
        return Err(format!(
            "it would make {parts} strings, more than the {MAX_SEQ} a render may build"
        ));
    }
    let sep = sep.to_string();
    let parts: Vec<Value<'a>> = match args.first() {
        Some(Value::Str(Str::Ref(s))) => split_str(s, &sep).into_iter().map(Value::str).collect(),
        Some(Value::Str(Str::Rc(s))) => split_str(s, &sep)
            .into_iter()
            .map(|p| Value::string(p.to_string()))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Value::List(List::new(ListKind::Strings, parts)))
}

fn split_str<'s>(s: &'s str, sep: &str) -> Vec<&'s str> {
    if sep.is_empty() {
        return s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
    }
    s.split(sep).collect()
}

/// The error for a string of `len` bytes when that is more than [`MAX_STRING`].
pub fn check_len(len: usize) -> Result<(), String> {
    if len > MAX_STRING {
        return Err(format!(
            "it would make a string of {len} bytes, more than the {} MiB a render's values may hold",
            MAX_STRING >> 20
        ));
    }
    Ok(())
}

/// `strings.Join` of a `[]string`.
pub fn join<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let sep = str_arg(args, 1);
    let mut out = String::new();
    if let Some(Value::List(l)) = args.first() {
        let items = l.items.borrow();
        let len: usize = items.iter().map(|e| e.as_str().map_or(0, str::len)).sum();
        check_len(len.saturating_add(sep.len().saturating_mul(items.len().saturating_sub(1))))?;
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(e.as_str().unwrap_or(""));
        }
    }
    Ok(Value::string(out))
}

/// JSON as Go's `encoding/json` decodes into `interface {}`: numbers are float64.
fn from_json<'a>(v: serde_json::Value) -> Value<'a> {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(a) => Value::List(List::new(
            ListKind::Any,
            a.into_iter().map(from_json).collect(),
        )),
        serde_json::Value::Object(o) => Value::Map(Rc::new(
            o.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
        )),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))
}

/// confd's `json`: a JSON object as `map[string]interface {}`.
pub fn json<'a>(s: &str) -> Result<Value<'a>, String> {
    match parse_json(s)? {
        serde_json::Value::Null => Ok(Value::Map(Rc::new(Map::new()))),
        v @ serde_json::Value::Object(_) => Ok(from_json(v)),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
    }
}

/// confd's `jsonArray`: a JSON array as `[]interface {}`.
pub fn json_array<'a>(s: &str) -> Result<Value<'a>, String> {
    match parse_json(s)? {
        serde_json::Value::Null => Ok(Value::List(List::new(ListKind::Any, vec![]))),
        v @ serde_json::Value::Array(_) => Ok(from_json(v)),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type []interface {{}}",
            json_kind(&other)
        )),
    }
}

/// confd's `map`: pairs of a string key and any value.
pub fn create_map<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    if !args.len().is_multiple_of(2) {
        return Err("invalid map call".into());
    }
    let mut m = Map::new();
    for pair in args.chunks(2) {
        let Some(k) = pair[0].as_str() else {
            return Err("map keys must be strings".into());
        };
        m.insert(k.to_string(), pair[1].clone());
    }
    Ok(Value::Map(Rc::new(m)))
}

/// confd's `getenv`: the variable, or the default when it is unset or empty. The
/// daemon's own settings (which hold passwords) are refused.
pub fn getenv<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let name = str_arg(args, 0);
    if crate::template::is_secret_env(name) {
        return Err(crate::template::secret_env_error(name));
    }
    Ok(match std::env::var(name) {
        Ok(v) if !v.is_empty() => Value::string(v),
        _ => args.get(1).cloned().unwrap_or(Value::str("")),
    })
}

/// `time.Now()`
pub fn datetime<'a>() -> Value<'a> {
    Value::Time(Rc::new(GoTime::now()))
}

/// Go's `strings.ToUpper`/`ToLower`: Go 1.19's simple case mapping, rune by rune.
pub fn change_case<'a>(args: &[Value<'a>], upper: bool) -> Value<'a> {
    let s = str_arg(args, 0);
    let map = if upper {
        case::to_upper
    } else {
        case::to_lower
    };
    let out: String = s.chars().map(map).collect();
    if out == s {
        return sub(args, 0, |s| s);
    }
    Value::string(out)
}

/// `strings.Replace(s, old, new, n)`; `n < 0` replaces every match.
pub fn replace<'a>(args: &[Value<'a>]) -> Result<Value<'a>, String> {
    let (s, old, new) = (str_arg(args, 0), str_arg(args, 1), str_arg(args, 2));
    let n = int_arg(args, 3);
    if old == new || n == 0 {
        return Ok(sub(args, 0, |s| s));
    }
    if new.len() > old.len() {
        let found = if old.is_empty() {
            s.chars().count() + 1
        } else {
            s.matches(old).count()
        };
        let count = if n < 0 {
            found
        } else {
            found.min(usize::try_from(n).unwrap_or(usize::MAX))
        };
        check_len(
            s.len()
                .saturating_add(count.saturating_mul(new.len() - old.len())),
        )?;
    }
    Ok(Value::string(if n < 0 {
        s.replace(old, new)
    } else {
        s.replacen(old, new, usize::try_from(n).unwrap_or(usize::MAX))
    }))
}

/// `strings.TrimSuffix`.
pub fn trim_suffix<'a>(args: &[Value<'a>]) -> Value<'a> {
    let suffix = str_arg(args, 1).to_string();
    sub(args, 0, |s| s.strip_suffix(suffix.as_str()).unwrap_or(s))
}

/// `path.Base`.
pub fn base<'a>(args: &[Value<'a>]) -> Value<'a> {
    sub(args, 0, crate::gopath::base)
}

/// `path.Dir`.
pub fn dir<'a>(args: &[Value<'a>]) -> Value<'a> {
    let s = str_arg(args, 0);
    match crate::gopath::dir(s) {
        // A cleaned head of `s` is a prefix of it: borrow it when `s` is borrowed.
        std::borrow::Cow::Borrowed(d) if d.as_ptr() == s.as_ptr() => {
            let n = d.len();
            sub(args, 0, |s| &s[..n])
        }
        d => Value::string(d.into_owned()),
    }
}

/// confd's `lookupIP` (and the v4/v6 filters): sorted addresses, empty when the name
/// does not resolve.
pub fn lookup_ip<'a>(name: &str, keep: fn(&str) -> bool) -> Value<'a> {
    use std::net::ToSocketAddrs;
    // As Go: an address is itself; a name that is not a domain name is never queried.
    let mut ips: Vec<String> = match name.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip.to_string()],
        Err(_) if !super::srv::is_domain_name(name) => Vec::new(),
        Err(_) => (name, 0)
            .to_socket_addrs()
            .map(|it| it.map(|a| a.ip().to_string()).collect())
            .unwrap_or_default(),
    };
    ips.sort();
    ips.dedup();
    names(ips.into_iter().filter(|ip| keep(ip)).collect())
}

/// The fork's `lookupIfaceIPV4`/`lookupIfaceIPV6`: the interface's first address of
/// that family, or `""`.
pub fn lookup_iface<'a>(name: &str, v6: bool) -> Value<'a> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Value::str("");
    };
    for a in addrs.filter(|a| a.interface_name == name) {
        let Some(addr) = a.address else { continue };
        if let (false, Some(sin)) = (v6, addr.as_sockaddr_in()) {
            return Value::string(sin.ip().to_string());
        }
        if let (true, Some(sin6)) = (v6, addr.as_sockaddr_in6()) {
            return Value::string(sin6.ip().to_string());
        }
    }
    Value::str("")
}

/// confd's `fileExists`: false only when the path does not exist.
pub fn file_exists(path: &str) -> bool {
    !matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            quoted(s)
        )),
    }
}

/// `strconv.Atoi`.
pub fn atoi(s: &str) -> Result<i64, String> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            quoted(s)
        ));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quoted(s)))
}

/// confd's `reverse`: reverses a `[]string` or `[]memkv.KVPair` in place; anything else
/// (including `gets`'s `memkv.KVPairs`) comes back unchanged.
pub fn reverse<'a>(v: &Value<'a>) -> Value<'a> {
    if let Value::List(l) = v
        && matches!(l.kind, ListKind::Strings | ListKind::KvSlice)
    {
        l.items.borrow_mut().reverse();
    }
    v.clone()
}

fn len_of(v: &Value, key: bool) -> usize {
    match v {
        Value::Kv(kv) if key => kv.key.len(),
        Value::Str(s) => s.len(),
        _ => 0,
    }
}

/// confd's `sortByLength`/`sortKVByLength`: sorts in place by length (of the key) with
/// Go's `sort.Sort`, and returns the same slice. Equal lengths keep their order up to 12
/// elements; past that they end where Go's unstable sort leaves them.
pub fn sort_by_length<'a>(v: &Value<'a>, kv: bool) -> Value<'a> {
    let Value::List(l) = v else { return v.clone() };
    super::sort::sort(&mut l.items.borrow_mut(), |a, b| {
        len_of(a, kv) < len_of(b, kv)
    });
    Value::List(List {
        kind: if kv { ListKind::KvSlice } else { l.kind },
        items: l.items.clone(),
    })
}

/// Longest `seq` a template may ask for (its ends can come from the store).
pub const MAX_SEQ: i64 = 10_000_000;

/// Largest string a function may make: as large as a render's whole output may be
/// ([`MAX_OUTPUT`]), so a loop that doubles a string stops there, not when memory ends.
pub const MAX_STRING: usize = MAX_OUTPUT;

/// confd's `seq first last`: `[first, ..., last]`, empty when `first > last`.
pub fn seq<'a>(first: i64, last: i64) -> Result<Value<'a>, String> {
    if first > last {
        return Ok(Value::List(List::new(ListKind::Ints, vec![])));
    }
    let n = (last as i128 - first as i128 + 1) as u128;
    if n > MAX_SEQ as u128 {
        return Err(format!(
            "a sequence of {n} numbers is longer than the {MAX_SEQ} a render may build"
        ));
    }
    Ok(Value::List(List::new(
        ListKind::Ints,
        (first..=last).map(Value::Int).collect(),
    )))
}

/// `add`, `sub`, `mul`, `div`, `mod` on Go ints (wrapping, as Go's do).
pub fn arith(op: &str, a: i64, b: i64) -> Result<i64, String> {
    Ok(match op {
        "add" => a.wrapping_add(b),
        "sub" => a.wrapping_sub(b),
        "mul" => a.wrapping_mul(b),
        _ if b == 0 => return Err("runtime error: integer divide by zero".into()),
        "div" => a.wrapping_div(b),
        _ => a.wrapping_rem(b),
    })
}

/// confd's `lookupSRV`: the SRV records of `_service._proto.name`, sorted as confd
/// sorts them; empty when the name does not resolve.
pub fn lookup_srv<'a>(service: &str, proto: &str, name: &str) -> Value<'a> {
    let records = super::srv::lookup(service, proto, name)
        .into_iter()
        .map(|s| Value::Srv(Rc::new(s)))
        .collect();
    Value::List(List::new(ListKind::Srvs, records))
}
