//! The functions and filters templates get on top of Tera's own: confd's store functions
//! (reading the [`View`] of the render in progress) and confd's helpers.

use std::cell::RefCell;

use tera::{Error, Kwargs, State, Tera, TeraResult, Value};

use super::entries::entry;
use super::safe;
use super::view::View;

thread_local! {
    /// The view of the render running on this thread. Tera functions are `'static`
    /// closures shared by every resource, so the per-render data travels here; it is set
    /// only for the duration of one synchronous `render` call.
    static CURRENT: RefCell<Option<View>> = const { RefCell::new(None) };
}

/// Runs `f` with `view` as the data store functions read.
pub fn with_view<T>(view: View, f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(view));
    let _reset = Reset;
    f()
}

/// Runs `f` with the view of the render in progress (the store functions, and the
/// cached loops, which read the store as `gets` does), or fails outside a render or once
/// it was abandoned.
pub(crate) fn view<T>(f: impl FnOnce(&View) -> TeraResult<T>) -> TeraResult<T> {
    super::limits::check_cancelled()?;
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(v) => f(v),
        None => Err(Error::message(
            "store functions are only available while rendering a resource",
        )),
    })
}

fn key_arg(kwargs: &Kwargs) -> TeraResult<String> {
    kwargs.must_get::<String>("key")
}

fn getv(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    let default = kwargs.get::<String>("default")?;
    view(|v| match (v.get(&key), default) {
        (Some(val), _) => Ok(Value::from(val)),
        (None, Some(d)) => Ok(Value::from(d)),
        (None, None) => Err(Error::message(format!(
            "key not found: {key} (getv without a default)"
        ))),
    })
}

fn get(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    view(|v| match v.get(&key) {
        Some(val) => Ok(entry(&key, val)),
        None => Err(Error::message(format!("key not found: {key}"))),
    })
}

fn gets(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    view(|v| {
        let got = v.gets(&key).map_err(|e| Error::message(e.to_string()))?;
        // Straight into Tera values, with no intermediate list (100,000 entries).
        Ok(match v.cache() {
            Some(cache) => cache.list(&key, got),
            None => Value::from(got.map(|(k, v)| entry(k, v)).collect::<Vec<_>>()),
        })
    })
}

fn getvs(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    view(|v| {
        let got = v.getvs(&key).map_err(|e| Error::message(e.to_string()))?;
        Ok(Value::from(got))
    })
}

fn exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    let key = key_arg(&kwargs)?;
    view(|v| Ok(v.get(&key).is_some()))
}

/// `confd=true` asks for memkv's listing, as confd's Go templates see it: a key that
/// holds a value lists its own name, `ls("/")` only top-level keys that hold values,
/// `lsdir("/")` nothing.
fn confd_kwarg(kwargs: &Kwargs) -> TeraResult<bool> {
    Ok(kwargs.get::<bool>("confd")?.unwrap_or(false))
}

fn ls(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    let confd = confd_kwarg(&kwargs)?;
    view(|v| {
        Ok(Value::from(if confd {
            super::go::store::Store::new(v).ls(&key)
        } else {
            v.ls(&key)
        }))
    })
}

fn lsdir(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = key_arg(&kwargs)?;
    let confd = confd_kwarg(&kwargs)?;
    view(|v| {
        Ok(Value::from(if confd {
            super::go::store::Store::new(v).lsdir(&key)
        } else {
            v.lsdir(&key)
        }))
    })
}

fn getenv(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let name = kwargs.must_get::<String>("name")?;
    if super::is_secret_env(&name) {
        return Err(tera::Error::message(super::secret_env_error(&name)));
    }
    let default = kwargs.get::<String>("default")?.unwrap_or_default();
    Ok(Value::from(
        std::env::var(&name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or(default),
    ))
}

fn lookup(kwargs: Kwargs, keep: fn(&std::net::IpAddr) -> bool) -> TeraResult<Value> {
    use std::net::ToSocketAddrs;
    let name = kwargs.must_get::<String>("name")?;
    // confd returns an empty list when the name does not resolve.
    let mut ips: Vec<String> = (name.as_str(), 0)
        .to_socket_addrs()
        .map(|it| {
            it.map(|a| a.ip())
                .filter(keep)
                .map(|ip| ip.to_string())
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips.dedup();
    Ok(Value::from(ips))
}

fn file_exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    let path = kwargs.must_get::<String>("path")?;
    Ok(std::path::Path::new(&path).exists())
}

/// `datetime()`: now, in RFC 3339 and UTC; `datetime(layout="...")`: now in the local
/// zone, formatted by a Go time layout (`"2006-01-02 15:04:05"`), as confd's
/// `datetime.Format` does.
fn datetime(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    Ok(Value::from(match kwargs.get::<String>("layout")? {
        Some(layout) => super::go::time::GoTime::now().format(&layout),
        None => rfc3339_utc(std::time::SystemTime::now()),
    }))
}

/// `2026-11-22T02:15:10Z` for `t` (the civil-from-days algorithm, UTC).
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    super::go::time::GoTime::at_utc(secs, 0).format("2006-01-02T15:04:05Z07:00")
}

// `base` and `dir` return a slice of their input as the value (short ones are stored
// inline), so the per-line filter of a 10,000-entry loop allocates nothing.
/// The last segment of a key; one with whitespace or control characters fails the
/// render (a key name could write a directive) unless the template says `unsafe=true`.
fn base(s: &str, kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        return Ok(Value::from(if s.is_empty() { "." } else { "/" }));
    }
    let b = t.rsplit('/').next().unwrap_or(t);
    if !kwargs.get::<bool>("unsafe")?.unwrap_or(false) {
        safe::base_name(b).map_err(|e| {
            Error::message(format!(
                "{e} (a template that wants it anyway says `base(unsafe=true)`)"
            ))
        })?;
    }
    Ok(Value::from(b))
}

/// `addr`, `ident`, `token`: the value unchanged, or a failed render naming it.
fn checked(check: fn(&str) -> Result<&str, String>, s: &str) -> TeraResult<Value> {
    check(s).map(Value::from).map_err(Error::message)
}

fn addr(s: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    checked(safe::addr, s)
}

fn ident(s: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    checked(safe::ident, s)
}

fn token(s: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    checked(safe::token, s)
}

fn dir(s: &str, _: Kwargs, _: &State) -> Value {
    Value::from(dir_of(s))
}

/// What the `dir` filter gives for `s`: everything before the last `/`, without
/// trailing slashes (`/` and `.` at the ends); unlike Go's `path.Dir` it does not clean.
pub(crate) fn dir_of(s: &str) -> &str {
    match s.rfind('/') {
        Some(0) => "/",
        Some(i) => s[..i].trim_end_matches('/'),
        None => ".",
    }
}

fn json(s: &str, _: Kwargs, _: &State) -> TeraResult<Value> {
    let v: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| Error::message(format!("json filter: invalid JSON: {e}")))?;
    Ok(Value::from_serializable(&v))
}

fn trim_suffix(s: &str, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let suffix = kwargs.must_get::<String>("suffix")?;
    Ok(s.strip_suffix(suffix.as_str()).unwrap_or(s).to_string())
}

fn trim_prefix(s: &str, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let prefix = kwargs.must_get::<String>("prefix")?;
    Ok(s.strip_prefix(prefix.as_str()).unwrap_or(s).to_string())
}

fn parse_bool(s: &str, _: Kwargs, _: &State) -> TeraResult<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::message(format!(
            "parse_bool: {s:?} is not a boolean"
        ))),
    }
}

fn safe_line(s: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::message(format!(
            "safe_line: value {s:?} contains the control character {c:?}"
        ))),
        None => Ok(s.to_string()),
    }
}

/// Shortest first, strings of one length by value; with `confd=true` as confd's
/// `sortByLength` sorts (Go's unstable `sort.Sort` by length alone).
fn sort_by_length(v: Vec<String>, kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    let mut v = v;
    if confd_kwarg(&kwargs)? {
        super::go::sort::sort(&mut v, |a, b| a.len() < b.len());
    } else {
        v.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    }
    Ok(v)
}

/// Standard base64 as Go's `base64.StdEncoding.Strict()`: padding required, and a stray
/// `=` or bits set past the last whole byte (`Zm9=`) are errors, so no text decodes to
/// something its writer did not mean.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

fn base64_encode(s: &str, _: Kwargs, _: &State) -> String {
    base64::Engine::encode(&BASE64, s.as_bytes())
}

fn base64_decode(s: &str, _: Kwargs, _: &State) -> TeraResult<String> {
    let bytes =
        base64_decode_strict(s).map_err(|e| Error::message(format!("base64_decode: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::message("base64_decode: the decoded bytes are not UTF-8"))
}

/// `base64_decode`'s bytes: [`BASE64`] over `text` with line breaks skipped (as Go skips
/// `\r` and `\n`). The error gives a position in `text`, never the text (a secret).
pub(crate) fn base64_decode_strict(text: &str) -> Result<Vec<u8>, String> {
    // Where each kept byte was in `text`, to name positions there.
    let (clean, at): (Vec<u8>, Vec<usize>) = text
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c != b'\r' && *c != b'\n')
        .map(|(i, c)| (c, i))
        .unzip();
    let pos = |i: usize| at.get(i).copied().unwrap_or(text.len());
    base64::Engine::decode(&BASE64, &clean).map_err(|e| {
        use base64::DecodeError::*;
        match e {
            InvalidByte(i, b'=') => format!("misplaced `=` padding at byte {}", pos(i)),
            InvalidByte(i, b) => format!("invalid character {:?} at byte {}", b as char, pos(i)),
            InvalidLength(n) => format!("{n} base64 characters cannot be whole bytes"),
            InvalidLastSymbol(i, b) => format!(
                "character {:?} at byte {} sets bits past the last byte",
                b as char,
                pos(i)
            ),
            InvalidPadding => "missing or misplaced `=` padding".to_string(),
        }
    })
}

/// Registers every confsync function and filter on `tera` (before templates are added).
pub fn register(tera: &mut Tera) {
    tera.register_function("getv", getv);
    tera.register_function("get", get);
    tera.register_function("gets", gets);
    tera.register_function("getvs", getvs);
    tera.register_function("exists", exists);
    tera.register_function("ls", ls);
    tera.register_function("lsdir", lsdir);
    tera.register_function("getenv", getenv);
    tera.register_function("lookup_ip", |k: Kwargs, _: &State| lookup(k, |_| true));
    tera.register_function("lookup_ipv4", |k: Kwargs, _: &State| {
        lookup(k, |ip| ip.is_ipv4())
    });
    tera.register_function("lookup_ipv6", |k: Kwargs, _: &State| {
        lookup(k, |ip| ip.is_ipv6())
    });
    tera.register_function("file_exists", file_exists);
    tera.register_function("datetime", datetime);
    // Replaces Tera's own `range` with one that stops an abandoned render.
    tera.register_function("range", super::limits::range);
    tera.register_filter("base", base);
    tera.register_filter("dir", dir);
    tera.register_filter("json", json);
    tera.register_filter("trim_suffix", trim_suffix);
    tera.register_filter("trim_prefix", trim_prefix);
    tera.register_filter("parse_bool", parse_bool);
    tera.register_filter("safe_line", safe_line);
    tera.register_filter("addr", addr);
    tera.register_filter("ident", ident);
    tera.register_filter("haproxy_name", ident);
    tera.register_filter("nginx_name", ident);
    tera.register_filter("token", token);
    tera.register_filter("sort_by_length", sort_by_length);
    tera.register_filter("base64_encode", base64_encode);
    tera.register_filter("base64_decode", base64_decode);
}
