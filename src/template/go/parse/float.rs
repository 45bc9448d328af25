//! Go's `strconv.ParseFloat(s, 64)` for the number constants the lexer
//! lets through: decimal (`1.5e3`) and hexadecimal (`0x1.8p1`) floats, `_` between digits,
//! and an error (not an infinity) for a value out of range (`1e400`).

use crate::gonum::underscore_ok;

/// Go's `strconv.ParseFloat(text, 64)`; `None` where Go fails: bad syntax, or a value
/// too large for a float64 (Go's `ErrRange`; a value too small becomes 0, as in Go).
pub(super) fn parse_float(text: &str) -> Option<f64> {
    if text.contains('_') && !underscore_ok(text) {
        return None;
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    // The lexer only lets digits, `.`, exponents and base prefixes through, so Rust's
    // parser never sees the "inf" or "nan" Go would read differently.
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let f = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => parse_hex(hex)?,
        None => body.parse::<f64>().ok()?,
    };
    if f.is_infinite() {
        return None;
    }
    Some(if neg { -f } else { f })
}

/// A hexadecimal float after its `0x`: hex digits with at most one `.`, then a `p`
/// exponent, which Go requires. Rounds to nearest, ties to even, as Go does.
fn parse_hex(s: &str) -> Option<f64> {
    let (mantissa, exp) = s.split_once(['p', 'P'])?;
    let (exp_neg, exp_digits) = match exp.as_bytes().first() {
        Some(b'-') => (true, &exp[1..]),
        Some(b'+') => (false, &exp[1..]),
        _ => (false, exp),
    };
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Far beyond any float64 either way; keeps the sums below from overflowing.
    let exp: i64 = exp_digits.parse::<i64>().unwrap_or(1 << 20).min(1 << 20);
    let mut e2: i64 = if exp_neg { -exp } else { exp };

    let (mut m, mut sticky, mut digits, mut point) = (0u64, false, 0, false);
    for c in mantissa.chars() {
        if c == '.' && !point {
            point = true;
            continue;
        }
        let d = c.to_digit(16)?;
        digits += 1;
        if m < 1 << 60 {
            m = m * 16 + u64::from(d);
            if point {
                e2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !point {
                e2 += 4;
            }
        }
    }
    if digits == 0 {
        return None;
    }
    if m == 0 {
        return Some(0.0);
    }
    // m * 2^e2 (plus the sticky bits below m), rounded to float64's precision: 53 bits,
    // fewer for a subnormal result.
    let bits = i64::from(64 - m.leading_zeros());
    let top = e2 + bits - 1; // the exponent of the leading bit
    let keep = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let drop = bits - keep;
    let (mut mant, mut scale) = if drop <= 0 {
        (u128::from(m) << -drop, e2 + drop)
    } else if drop > 100 {
        (0, e2 + drop)
    } else {
        let wide = u128::from(m);
        let (kept, rest) = (wide >> drop, wide & ((1u128 << drop) - 1));
        let half = 1u128 << (drop - 1);
        let up = rest > half || (rest == half && (sticky || kept & 1 == 1));
        (kept + u128::from(up), e2 + drop)
    };
    if mant == 1 << 53 {
        mant >>= 1;
        scale += 1;
    }
    if mant == 0 {
        return Some(0.0);
    }
    if scale + i64::from(128 - mant.leading_zeros()) - 1 > 1023 {
        return None;
    }
    Some(ldexp(mant as f64, scale))
}

/// `x * 2^k` for an `x` of at most 53 bits whose product is a float64 (exact steps).
fn ldexp(mut x: f64, mut k: i64) -> f64 {
    let pow2 = |p: i64| f64::from_bits(((1023 + p) as u64) << 52);
    while k > 1000 {
        x *= pow2(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= pow2(-1000);
        k += 1000;
    }
    x * pow2(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexadecimal_floats_as_go_reads_them() {
        // Go 1.19's strconv.ParseFloat on each.
        assert_eq!(parse_float("0x1p4"), Some(16.0));
        assert_eq!(parse_float("0x1.8p1"), Some(3.0));
        assert_eq!(parse_float("0x.8p1"), Some(1.0));
        assert_eq!(parse_float("0x_1p4"), Some(16.0));
        assert_eq!(parse_float("-0x1p-2"), Some(-0.25));
        assert_eq!(parse_float("0x1p-1074"), Some(5e-324));
        assert_eq!(
            parse_float("0x3p-1076"),
            Some(5e-324),
            "0.75 of the least subnormal"
        );
        assert_eq!(parse_float("0x1p-1076"), Some(0.0));
        assert_eq!(parse_float("0x1p-1080"), Some(0.0));
        assert_eq!(
            parse_float("0x1.fffffffffffffp1023"),
            Some(f64::MAX),
            "the largest float64"
        );
        assert_eq!(
            parse_float("0x1.fffffffffffff8p1023"),
            None,
            "rounds up past it"
        );
        assert_eq!(parse_float("0x1p1024"), None);
        assert_eq!(
            parse_float("0x1.00000000000008p0"),
            Some(1.0),
            "a tie rounds to even"
        );
        assert_eq!(
            parse_float("0x1.000000000000081p0"),
            Some(1.0000000000000002),
            "past the tie rounds up"
        );
        assert_eq!(
            parse_float("0x1.8"),
            None,
            "a hex mantissa needs a p exponent"
        );
        assert_eq!(parse_float("0xp1"), None);
        assert_eq!(parse_float("0x1p"), None);
    }

    #[test]
    fn decimal_floats_out_of_range_and_bad_underscores_fail() {
        assert_eq!(parse_float("1e400"), None, "Go's ErrRange");
        assert_eq!(parse_float("1e-400"), Some(0.0));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float("1_"), None);
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("1_e5"), None);
        assert_eq!(parse_float("1e"), None);
    }
}
