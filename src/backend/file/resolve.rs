//! YAML 1.1 scalars as confd reads them: gopkg.in/yaml.v2 (v2.4.0, the version confd
//! vendors) resolves a scalar to a null, bool, int, uint64, float or string
//! (`resolve.go`), and confd's file backend prints a bool, int or float back as text
//! (`strconv.FormatBool`, `strconv.Itoa`, `strconv.FormatFloat(f, 'f', -1, 64)`) and drops
//! everything else. Go's number syntax (`strconv.ParseInt(s, 0, 64)`, `ParseFloat`) is
//! copied here where yaml.v2 leans on it.

use base64::Engine as _;

/// A scalar's tag, from its full URI (`!!int` is `tag:yaml.org,2002:int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    /// No tag: a plain scalar is resolved, a quoted or block one is a string.
    None,
    /// `!`, the non-specific tag: yaml.v2 makes the scalar a string (and `! <<` a merge).
    NonSpecific,
    Str,
    Bool,
    Int,
    Float,
    Null,
    Timestamp,
    Binary,
    Merge,
    /// Any other tag (`!foo`, `!!map` on a scalar, ...): the text, as a string.
    Other,
}

impl Tag {
    /// The tag of a full URI (or `!`).
    pub(super) fn from_uri(handle: &str, suffix: &str) -> Tag {
        const CORE: &str = "tag:yaml.org,2002:";
        let core = if handle == CORE {
            Some(suffix)
        } else if handle.is_empty() {
            if suffix == "!" {
                return Tag::NonSpecific;
            }
            suffix.strip_prefix(CORE)
        } else {
            None
        };
        match core {
            Some("str") => Tag::Str,
            Some("bool") => Tag::Bool,
            Some("int") => Tag::Int,
            Some("float") => Tag::Float,
            Some("null") => Tag::Null,
            Some("timestamp") => Tag::Timestamp,
            Some("binary") => Tag::Binary,
            Some("merge") => Tag::Merge,
            _ => Tag::Other,
        }
    }

    fn short(self) -> &'static str {
        match self {
            Tag::Str | Tag::None | Tag::NonSpecific | Tag::Other => "!!str",
            Tag::Bool => "!!bool",
            Tag::Int => "!!int",
            Tag::Float => "!!float",
            Tag::Null => "!!null",
            Tag::Timestamp => "!!timestamp",
            Tag::Binary => "!!binary",
            Tag::Merge => "!!merge",
        }
    }
}

/// What a scalar resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64` (yaml.v2's `uint64`), which confd drops.
    Uint(u64),
    Float(f64),
    /// The scalar's own text.
    Str,
    /// A timestamp, which yaml.v2 keeps as its text for an `interface{}`.
    Timestamp,
    /// `!!binary`: the text is base64 of the value.
    Binary,
}

impl Value {
    fn tag(self) -> Tag {
        match self {
            Value::Null => Tag::Null,
            Value::Bool(_) => Tag::Bool,
            Value::Int(_) | Value::Uint(_) => Tag::Int,
            Value::Float(_) => Tag::Float,
            Value::Str => Tag::Str,
            Value::Timestamp => Tag::Timestamp,
            Value::Binary => Tag::Binary,
        }
    }
}

/// Whether a scalar is yaml.v2's merge key `<<` (plain and untagged, or tagged `!` or
/// `!!merge`).
pub(super) fn is_merge(text: &str, plain: bool, tag: Tag) -> bool {
    text == "<<" && (plain && tag == Tag::None || matches!(tag, Tag::NonSpecific | Tag::Merge))
}

/// Resolves a scalar as yaml.v2's `decoder.scalar` does for an `interface{}`. `Err` is
/// yaml.v2's message for a tag its value does not fit (`!!int 1.5`).
pub(super) fn resolve(text: &str, plain: bool, tag: Tag) -> Result<Value, String> {
    let out = match tag {
        Tag::None if !plain => return Ok(Value::Str),
        Tag::Binary => return Ok(Value::Binary),
        Tag::NonSpecific | Tag::Merge | Tag::Other | Tag::Str => return Ok(Value::Str),
        Tag::None | Tag::Bool | Tag::Int | Tag::Float | Tag::Null | Tag::Timestamp => {
            implicit(text, tag)
        }
    };
    if tag == Tag::None || out.tag() == tag {
        return Ok(out);
    }
    match (tag, out) {
        (Tag::Float, Value::Int(i)) => Ok(Value::Float(i as f64)),
        _ => Err(format!(
            "cannot decode {} `{text}` as a {}",
            out.tag().short(),
            tag.short()
        )),
    }
}

/// yaml.v2's `resolve(tag, in)` for a resolvable tag other than `!!str`.
fn implicit(s: &str, tag: Tag) -> Value {
    let Some(&first) = s.as_bytes().first() else {
        return Value::Null;
    };
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => {
            lookup(s).unwrap_or(Value::Str)
        }
        b'.' => lookup(s)
            .or_else(|| parse_float(s).map(Value::Float))
            .unwrap_or(Value::Str),
        b'+' | b'-' | b'0'..=b'9' => lookup(s).unwrap_or_else(|| number(s, tag)),
        _ => Value::Str,
    }
}

/// The fixed words of yaml.v2's `resolveMap`.
fn lookup(s: &str) -> Option<Value> {
    Some(match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Value::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Value::Bool(false)
        }
        "~" | "null" | "Null" | "NULL" => Value::Null,
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// A scalar starting with a sign or a digit: timestamp, int, uint64, float or binary, in
/// yaml.v2's order.
fn number(s: &str, tag: Tag) -> Value {
    if matches!(tag, Tag::None | Tag::Timestamp) && is_timestamp(s, tag == Tag::None) {
        return Value::Timestamp;
    }
    if !number_chars(s.as_bytes()) {
        return Value::Str;
    }
    let owned;
    let plain = if s.contains('_') {
        owned = s.replace('_', "");
        owned.as_str()
    } else {
        s
    };
    if let Some(i) = go_parse_int(plain, 0) {
        return Value::Int(i);
    }
    if let Some(u) = go_parse_uint(plain, 0) {
        return Value::Uint(u);
    }
    if yaml_style_float(plain)
        && let Some(f) = finite(plain.strip_prefix('+').unwrap_or(plain))
    {
        return Value::Float(f);
    }
    if let Some(bits) = plain.strip_prefix("0b") {
        if let Some(i) = go_parse_int(bits, 2) {
            return Value::Int(i);
        }
        if let Some(u) = go_parse_uint(bits, 2) {
            return Value::Uint(u);
        }
    } else if let Some(bits) = plain.strip_prefix("-0b")
        && let Some(i) = go_parse_int(&format!("-{bits}"), 2)
    {
        return Value::Int(i);
    }
    Value::Str
}

/// Whether `s` may be one of the numbers below: only digits, letters (for `0x`, `0o`,
/// `0b` and exponents), signs, `_` and at most one `.`. Addresses (`10.0.0.1:80`) stop here.
fn number_chars(s: &[u8]) -> bool {
    let mut dots = 0;
    for &c in s {
        match c {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'-' | b'_' => {}
            b'.' => dots += 1,
            _ => return false,
        }
    }
    dots <= 1
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, yaml.v2's `yamlStyleFloat`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A decimal float that Go's `ParseFloat` reads without a range error (`1e400` overflows
/// there, and stays a string).
fn finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Go's `strconv.ParseFloat(s, 64)` for a scalar starting with `.`: digits with `_`
/// between them, an optional exponent.
fn parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 1; // the '.'
    let mut digits = false;
    let mut underscores = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'_' => underscores = true,
            b'0'..=b'9' => digits = true,
            _ => break,
        }
        i += 1;
    }
    if !digits {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        while let Some(&c) = b.get(i) {
            match c {
                b'_' => underscores = true,
                b'0'..=b'9' => {}
                _ => break,
            }
            i += 1;
        }
    }
    if i != b.len() {
        return None;
    }
    if underscores {
        if !crate::gonum::underscore_ok(s) {
            return None;
        }
        return finite(&s.replace('_', ""));
    }
    finite(s)
}

/// Go's `strconv.ParseUint(s, base, 64)` for base 0 (prefixes `0x`, `0o`, `0b`, a leading
/// `0` for octal) or an explicit base; `s` holds no `_` here.
fn go_parse_uint(s: &str, base: u32) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (base, digits) = if base != 0 {
        (base, b)
    } else if b[0] == b'0' {
        match b.get(1).map(|c| c | 0x20) {
            Some(b'b') if b.len() >= 3 => (2, &b[2..]),
            Some(b'o') if b.len() >= 3 => (8, &b[2..]),
            Some(b'x') if b.len() >= 3 => (16, &b[2..]),
            _ => (8, &b[1..]),
        }
    } else {
        (10, b)
    };
    let mut n: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u32::from((c | 0x20) - b'a') + 10,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, base, 64)`.
fn go_parse_int(s: &str, base: u32) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let un = go_parse_uint(rest, base)?;
    if neg {
        if un > 1 << 63 {
            return None;
        }
        Some((un as i64).wrapping_neg())
    } else {
        i64::try_from(un).ok()
    }
}

/// Whether `s` is one of yaml.v2's timestamps (Go's `time.Parse` with
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`, `2006-1-2 15:4:5.999999999` and
/// `2006-1-2`). With `quick`, only yaml.v2's first check (four digits and `-`): a plain
/// scalar that passes it is a string whether or not it parses.
fn is_timestamp(s: &str, quick: bool) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    quick || parse_timestamp(b)
}

fn parse_timestamp(b: &[u8]) -> bool {
    // Go's getnum(s, false): one or two digits.
    fn num(b: &[u8], i: &mut usize) -> Option<u32> {
        let d = |j: usize| {
            b.get(j)
                .filter(|c| c.is_ascii_digit())
                .map(|c| u32::from(c - b'0'))
        };
        let first = d(*i)?;
        *i += 1;
        match d(*i) {
            Some(second) => {
                *i += 1;
                Some(first * 10 + second)
            }
            None => Some(first),
        }
    }
    let year: u32 = b[..4].iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'));
    let mut i = 5;
    let Some(month) = num(b, &mut i) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(b, &mut i) else {
        return false;
    };
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day < 1 || day > days {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => {
            i += 1;
            true
        }
        b' ' => {
            // Go's layout space matches a run of spaces.
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            false
        }
        _ => return false,
    };
    for (n, limit) in [(0, 24), (1, 60), (2, 60)] {
        if n > 0 {
            if b.get(i) != Some(&b':') {
                return false;
            }
            i += 1;
        }
        match num(b, &mut i) {
            Some(v) if v < limit => {}
            _ => return false,
        }
    }
    // An optional fraction: `.` or `,` and digits.
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 24 && m <= 60)
        }
        _ => false,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that read back as `f`,
/// never an exponent; `+Inf`, `-Inf`, `NaN`.
pub(super) fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        f.to_string()
    }
}

/// The text confd's file backend keeps for a resolved scalar, `None` for what it drops
/// (nulls and uint64s). `Err` for `!!binary` that is not base64 of UTF-8 text.
pub(super) fn leaf_text(text: &str, value: Value) -> Result<Option<String>, String> {
    Ok(Some(match value {
        Value::Null | Value::Uint(_) => return Ok(None),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float(f),
        Value::Str | Value::Timestamp => text.to_string(),
        Value::Binary => decode_binary(text)?,
    }))
}

/// Go's `base64.StdEncoding.DecodeString`: padded, line breaks skipped, trailing bits
/// allowed.
fn decode_binary(text: &str) -> Result<String, String> {
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let clean: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = ENGINE
        .decode(clean)
        .map_err(|_| "!!binary value contains invalid base64 data".to_string())?;
    String::from_utf8(bytes).map_err(|_| "!!binary value is not UTF-8 text".to_string())
}

/// How a resolved key reads in an error message, for keys that are not strings.
pub(super) fn kind_name(value: Value) -> Option<&'static str> {
    match value {
        Value::Str | Value::Timestamp | Value::Binary => None,
        Value::Null => Some("null"),
        Value::Bool(_) => Some("a boolean"),
        Value::Int(_) | Value::Uint(_) => Some("a number"),
        Value::Float(_) => Some("a number"),
    }
}
