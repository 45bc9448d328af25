//! Checks that make a key or value from the store safe for the place it goes in a proxy
//! config. The store is written by the instances themselves, so whoever controls one can
//! write any key and value; nginx and HAProxy need no newline to take a second directive
//! (`;`, `{`, `}`, or a plain space in HAProxy), so these are allow-lists of the one token
//! that belongs there, not deny-lists of line breaks.
//!
//! - [`addr`]: `host:port`, where host is an IPv4 address, a bracketed IPv6 address
//!   (`[::1]:80`) or a hostname of RFC 1123 labels, and port is 1-65535.
//! - [`ident`]: a server or upstream name, `[A-Za-z0-9._-]`, 1-64 characters, not
//!   starting with `-`.
//! - [`token`]: one word: not empty, no whitespace of any kind (Unicode's too: U+2028,
//!   U+0085, ...), no invisible format characters, no control characters, none of
//!   `` ;{}#"'\` ``.
//! - [`base_name`]: the last segment of a key, refused when it holds whitespace or control
//!   characters (the `base` filter and function).
//!
//! Each returns the value unchanged or an error that names it, quoted with escapes.

use std::net::{Ipv4Addr, Ipv6Addr};

/// How much of an offending value an error quotes: a 100 MB value must not become a
/// 100 MB log line.
const QUOTE_MAX: usize = 120;

/// `s` quoted with Rust's escapes (`"a\nb"`, `"\u{2028}"`), cut after [`QUOTE_MAX`]
/// characters.
pub fn quote(s: &str) -> String {
    let count = s.chars().count();
    if count <= QUOTE_MAX {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(QUOTE_MAX).collect();
    format!("{head:?}... ({count} characters)")
}

fn refuse(filter: &str, s: &str, why: &str) -> String {
    format!("{filter}: refusing the value {}: {why}", quote(s))
}

/// Characters that render as nothing or reorder text (zero-width spaces, joiners, bidi
/// controls, the BOM): a value holding one does not read as what it is.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// Characters that end a token or start a new syntax element in nginx or HAProxy.
const TOKEN_SPECIALS: &[char] = &[';', '{', '}', '#', '"', '\'', '\\', '`'];

/// Why `c` may not be part of a token, if it may not.
fn token_refuses(c: char) -> Option<&'static str> {
    if c.is_control() {
        Some("it holds a control character")
    } else if c.is_whitespace() {
        Some("it holds whitespace")
    } else if is_invisible(c) {
        Some("it holds an invisible format character")
    } else if TOKEN_SPECIALS.contains(&c) {
        Some("it holds one of ;{}#\"'\\`")
    } else {
        None
    }
}

/// One word of a proxy config directive.
pub fn token(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        return Err(refuse("token", s, "it is empty"));
    }
    match s.chars().find_map(token_refuses) {
        Some(why) => Err(refuse("token", s, why)),
        None => Ok(s),
    }
}

/// A server or upstream name.
pub fn ident(s: &str) -> Result<&str, String> {
    let why = if s.is_empty() {
        Some("it is empty")
    } else if s.len() > 64 {
        Some("it is longer than 64 characters")
    } else if s.starts_with('-') {
        Some("it starts with '-'")
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only A-Z, a-z, 0-9, '.', '_' and '-' may appear in a name")
    } else {
        None
    };
    match why {
        Some(why) => Err(refuse("ident", s, why)),
        None => Ok(s),
    }
}

/// A hostname of RFC 1123 labels: 1-63 letters, digits and inner hyphens each, 253
/// characters at most, and not all digits and dots (that is a malformed IPv4 address).
fn is_hostname(h: &str) -> bool {
    h.len() <= 253
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A port: 1-65535 in decimal, without a sign or leading zeros.
fn is_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && !p.starts_with('0')
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

/// `host:port` for a `server` line or a `listen`/`bind`.
pub fn addr(s: &str) -> Result<&str, String> {
    let why = match s.rsplit_once(':') {
        None => Some("it is not host:port"),
        Some((_, port)) if !is_port(port) => Some("the port is not a number from 1 to 65535"),
        Some((host, _)) => {
            let ok = match host.strip_prefix('[') {
                Some(v6) => v6
                    .strip_suffix(']')
                    .is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok()),
                None => host.parse::<Ipv4Addr>().is_ok() || is_hostname(host),
            };
            (!ok).then_some(
                "the host is not an IPv4 address, a bracketed IPv6 address or a hostname",
            )
        }
    };
    match why {
        Some(why) => Err(refuse("addr", s, why)),
        None => Ok(s),
    }
}

/// The base name `b` of a key, refused when it holds whitespace or control characters,
/// which would let a key name write a second directive.
pub fn base_name(b: &str) -> Result<&str, String> {
    match b.chars().find(|c| c.is_whitespace() || c.is_control()) {
        Some(_) => Err(format!(
            "base: refusing the key name {}: it holds whitespace or control characters",
            quote(b)
        )),
        None => Ok(b),
    }
}

#[cfg(test)]
#[path = "safe_tests.rs"]
mod tests;
