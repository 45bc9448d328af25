//! Literals as Go reads them: `strconv.Unquote`'s escapes, number constants with every
//! type they can stand for, and the bytes of a template that are not UTF-8.

use super::super::ast::Number;
use super::super::token::Kind;
use super::float::parse_float;
use crate::gonum::underscore_ok;

/// The first of the characters that stand for the bytes of a template that are not
/// UTF-8 (0x80..=0xFF map to U+10FF80..=U+10FFFF), so the parser can work on text and
/// the output still holds the original bytes.
const RAW_BYTE: u32 = 0x10_FF00;

/// `bytes` as text, each byte that is not part of valid UTF-8 mapped to a private
/// character (see [`RAW_BYTE`]); `None` when `bytes` is valid UTF-8 already.
pub fn escape_raw_bytes(bytes: &[u8]) -> Option<String> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push(char::from_u32(RAW_BYTE + u32::from(*b)).unwrap_or('\u{fffd}'));
        }
    }
    Some(out)
}

/// Text back to bytes, the private characters of [`escape_raw_bytes`] as their bytes.
pub(super) fn unescape_raw_bytes(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let n = c as u32;
        if (RAW_BYTE + 0x80..=RAW_BYTE + 0xFF).contains(&n) {
            out.push((n - RAW_BYTE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out.into_boxed_slice()
}

/// Go's `strconv.Unquote` for a string literal (`"..."` with escapes, or `` `raw` ``).
pub fn unquote(lit: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if let Some(raw) = lit.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        return Ok(raw.replace('\r', ""));
    }
    let body = lit
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, '"')?;
        out.push_str(&c);
        rest = tail;
    }
    Ok(out)
}

/// One (possibly escaped) character of a quoted literal; returns it and the rest.
fn unquote_char(s: &str, quote: char) -> Result<(String, &str), String> {
    let bad = || "invalid syntax".to_string();
    let mut chars = s.chars();
    let c = chars.next().ok_or_else(bad)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(bad());
    }
    if c != '\\' {
        return Ok((c.to_string(), chars.as_str()));
    }
    let e = chars.next().ok_or_else(bad)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        '\\' => Some('\\'),
        '\'' | '"' if e == quote => Some(e),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c.to_string(), rest));
    }
    let hex = |n: usize| -> Result<(u32, &str), String> {
        if rest.len() < n || !rest.is_char_boundary(n) {
            return Err(bad());
        }
        let v = u32::from_str_radix(&rest[..n], 16).map_err(|_| bad())?;
        Ok((v, &rest[n..]))
    };
    match e {
        'x' => {
            let (v, tail) = hex(2)?;
            // A byte, not a rune: Go strings may hold any bytes; keep valid UTF-8 here.
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), tail))
        }
        'u' | 'U' => {
            let (v, tail) = hex(if e == 'u' { 4 } else { 8 })?;
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), tail))
        }
        '0'..='7' => {
            let digits = format!("{e}{}", rest.get(..2).ok_or_else(bad)?);
            let v = u32::from_str_radix(&digits, 8).map_err(|_| bad())?;
            if v > 255 {
                return Err(bad());
            }
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((c.to_string(), &rest[2..]))
        }
        _ => Err(bad()),
    }
}

/// 2^63, the first float64 past `i64::MAX`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// A number constant with every Go type it can stand for (Go's `newNumber`).
pub(super) fn number(text: &str, kind: Kind) -> Result<Number, String> {
    let mut n = Number {
        text: text.to_string(),
        ..Number::default()
    };
    if kind == Kind::CharConst {
        let body = text.strip_prefix('\'').unwrap_or(text);
        let (c, tail) = unquote_char(body, '\'')
            .map_err(|_| format!("malformed character constant: {text}"))?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let r = c.chars().next().map_or(0, |c| c as u32);
        n.is_int = true;
        n.is_uint = true;
        n.is_float = true;
        n.int = i64::from(r);
        n.uint = u64::from(r);
        n.float = f64::from(r);
        return Ok(n);
    }
    if kind == Kind::Complex || text.ends_with('i') {
        n.is_complex = true;
        return Ok(n);
    }
    // Go's parsers accept `_` only between digits; then none of them reads the text.
    if text.contains('_') && !underscore_ok(text) {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    let clean = text.replace('_', "");
    if let Some(u) = parse_uint(&clean) {
        n.is_uint = true;
        n.uint = u;
    }
    if let Some(i) = parse_int(&clean) {
        n.is_int = true;
        n.int = i;
        if i == 0 {
            n.is_uint = true;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Some(f) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text:?}"));
        }
        n.is_float = true;
        n.float = f;
        // Go's `float64(int64(f)) == f`: integral and within int64 (2^63 is not).
        if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) {
            n.is_int = true;
            n.int = f as i64;
        }
        if f.fract() == 0.0 && (0.0..2.0 * TWO_63).contains(&f) {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    Ok(n)
}

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x`, `0o`, `0b` or a leading-0 octal.
fn parse_uint(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let (digits, radix) = radix_of(s);
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let u = parse_uint(body)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

fn radix_of(s: &str) -> (&str, u32) {
    let lower = |p: &str| s.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if lower("0x") {
        (&s[2..], 16)
    } else if lower("0o") {
        (&s[2..], 8)
    } else if lower("0b") {
        (&s[2..], 2)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    }
}
