//! Go's `strconv` rule for underscores in number literals, shared by the file backend's
//! YAML reader (yaml.v2 hands numbers to strconv) and the Go template parser.

/// Go's `underscoreOK`: every `_` stands between two digits (a base prefix counts as one);
/// a leading sign is allowed.
pub fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    // What came last: '^' the start, '0' a digit or base prefix, '_' an underscore,
    // '!' anything else.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = s[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::underscore_ok;

    #[test]
    fn underscores_only_between_digits() {
        assert!(underscore_ok("0x_1F") && underscore_ok("0_7") && underscore_ok("1_000"));
        assert!(underscore_ok("-1_0") && underscore_ok("+0b_1"));
        assert!(!underscore_ok("_1") && !underscore_ok("0x1__F") && !underscore_ok("1_.5"));
        assert!(!underscore_ok("1_"));
    }
}
