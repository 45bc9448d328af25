//! Go's `strconv` quoting: `Quote`, `QuoteToASCII`, `QuoteRune`, `QuoteRuneToASCII` and
//! `CanBackquote`, which `%q`, `%#q`, `%+q` and `%#v` print strings and runes with.
//!
//! Rust strings are always valid UTF-8, so Go's `\x` escapes for bytes of broken UTF-8
//! never arise here; everything else follows Go 1.19 rune for rune, with
//! [`is_print`] deciding which runes stay as they are.

use super::isprint::is_print;

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a double-quoted Go string literal (`strconv.Quote`): printable runes
/// as they are, `\n`-style escapes for the usual controls, `\x07`, `\u00ad`,
/// `\U000e0001` for the rest. With `ascii`, every non-ASCII rune is escaped too
/// (`strconv.QuoteToASCII`).
pub fn quote_into(out: &mut String, s: &str, ascii: bool) {
    out.push('"');
    for c in s.chars() {
        escape_rune(out, c, '"', ascii);
    }
    out.push('"');
}

/// `strconv.Quote(s)` as a new string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s, false);
    out
}

/// Appends the rune `r` as a single-quoted Go character literal (`strconv.QuoteRune`,
/// or `QuoteRuneToASCII` with `ascii`). A value that is no Unicode scalar value (a
/// surrogate, or above U+10FFFF) prints as `'�'`, as in Go.
pub fn quote_rune_into(out: &mut String, r: u64, ascii: bool) {
    let c = rune_or_replacement(r);
    out.push('\'');
    escape_rune(out, c, '\'', ascii);
    out.push('\'');
}

/// The char for the code point `r`, or U+FFFD when `r` is not a valid rune (Go's
/// `utf8.EncodeRune` and `QuoteRune` substitute the replacement character).
pub fn rune_or_replacement(r: u64) -> char {
    u32::try_from(r)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Go's `strconv.CanBackquote`: `s` can be written as a raw string literal, holding no
/// backquote, no control character other than tab, no DEL and no byte-order mark.
pub fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| match c {
        '\t' => true,
        '`' | '\u{7f}' | '\u{feff}' => false,
        c => c >= ' ',
    })
}

/// Appends one rune of a quoted literal delimited by `quote`.
fn escape_rune(out: &mut String, c: char, quote: char, ascii: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if c < ' ' || c == '\u{7f}' => push_hex(out, "\\x", u32::from(c), 2),
        c if u32::from(c) < 0x10000 => push_hex(out, "\\u", u32::from(c), 4),
        c => push_hex(out, "\\U", u32::from(c), 8),
    }
}

/// Appends `prefix` and the low `digits` hex digits of `v`, lower case.
fn push_hex(out: &mut String, prefix: &str, v: u32, digits: u32) {
    out.push_str(prefix);
    for i in (0..digits).rev() {
        out.push(char::from(LOWER_HEX[((v >> (4 * i)) & 0xf) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_strconv() {
        assert_eq!(
            quote("a\"b\\c\n\u{7}\u{7f}é\u{a0}\u{ad}"),
            r#""a\"b\\c\n\a\x7fé\u00a0\u00ad""#
        );
        let mut s = String::new();
        quote_into(&mut s, "é😀", true);
        assert_eq!(s, r#""\u00e9\U0001f600""#);
        let mut r = String::new();
        quote_rune_into(&mut r, 0xd800, false);
        quote_rune_into(&mut r, u64::from(b'\''), false);
        assert_eq!(r, "'�''\\''");
        assert!(can_backquote("a\tb é"));
        assert!(!can_backquote("a`b") && !can_backquote("\u{feff}") && !can_backquote("\n"));
    }
}
