//! float64 printing as Go does it: `strconv.FormatFloat`'s `%e %f %g %b %x` (shortest
//! or correctly rounded to a precision, ties to even) and fmt's layer on top of it
//! (signs, `#` keeping the point and trailing zeros, zero padding after the sign).
//!
//! The decimal digits come from Rust's float formatting, which like Go's is exact:
//! `{:e}` gives the shortest digits that read back as the same float, `{:.N}` and
//! `{:.Ne}` the correctly rounded ones. Layout and exponents are Go's.

use super::printer::Printer;

/// The decimal digits of a float's magnitude: `0.d₁d₂…dₙ × 10^dp`, with no trailing
/// zero (Go's `decimalSlice`); zero has no digits and `dp` 0.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

/// Beyond this many significant digits a float64's decimal expansion is all zeros
/// (it has at most 767), so asking Rust for more only costs time.
const MAX_SIG: usize = 800;
/// The same for digits after the point (at most 1074).
const MAX_FRAC: usize = 1100;

impl Digits {
    /// Parses Rust's `{:e}` output of a non-negative number (`1.2345e-7`).
    fn from_exp(s: &str) -> Self {
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        Self::normalized(d, exp + 1)
    }

    /// Parses Rust's `{:.N}` output of a non-negative number (`123.4500`).
    fn from_fixed(s: &str) -> Self {
        let int_len = s.find('.').unwrap_or(s.len());
        let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
        Self::normalized(d, int_len as i64)
    }

    /// Drops leading zeros (moving the point) and trailing zeros.
    fn normalized(mut d: Vec<u8>, mut dp: i64) -> Self {
        let lead = d.iter().take_while(|&&c| c == b'0').count();
        if lead == d.len() {
            return Self {
                d: Vec::new(),
                dp: 0,
            };
        }
        d.drain(..lead);
        dp -= lead as i64;
        while d.last() == Some(&b'0') {
            d.pop();
        }
        Self { d, dp }
    }

    fn nd(&self) -> i64 {
        self.d.len() as i64
    }

    /// The digit at `i`, `0` past the end.
    fn at(&self, i: i64) -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.d.get(i))
            .copied()
            .unwrap_or(b'0')
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for `fmt` in `b e E f g G x X`;
/// a negative `prec` asks for the shortest representation.
pub(super) fn format_float(v: f64, fmt: u8, prec: i64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-Inf" } else { "+Inf" }.into();
    }
    let neg = v.is_sign_negative();
    let mut out = String::new();
    match fmt {
        b'b' => return fmt_b(v),
        b'x' | b'X' => return fmt_x(v, prec, fmt),
        _ => {}
    }
    if neg {
        out.push('-');
    }
    let a = v.abs();
    let shortest = prec < 0;
    let mut prec = prec;
    let digs = if shortest {
        let d = Digits::from_exp(&format!("{a:e}"));
        prec = match fmt {
            b'e' | b'E' => (d.nd() - 1).max(0),
            b'f' => (d.nd() - d.dp).max(0),
            _ => d.nd(),
        };
        d
    } else {
        match fmt {
            b'f' => {
                let p = usize::try_from(prec).unwrap_or(0).min(MAX_FRAC);
                Digits::from_fixed(&format!("{a:.p$}"))
            }
            b'e' | b'E' => sig_digits(a, prec + 1),
            _ => {
                prec = prec.max(1);
                sig_digits(a, prec)
            }
        }
    };
    match fmt {
        b'e' | b'E' => fmt_e(&mut out, &digs, prec, fmt),
        b'f' => fmt_f(&mut out, &digs, prec),
        _ => {
            let mut eprec = prec;
            if eprec > digs.nd() && digs.nd() >= digs.dp {
                eprec = digs.nd();
            }
            // %e when the exponent is below -4 or reaches the precision, which is 6
            // for the shortest form (so `%v` prints 100000 but 1e+06).
            if shortest {
                eprec = 6;
            }
            let exp = digs.dp - 1;
            if exp < -4 || exp >= eprec {
                let prec = prec.min(digs.nd());
                fmt_e(&mut out, &digs, prec - 1, fmt + b'e' - b'g');
            } else {
                let prec = if prec > digs.dp { digs.nd() } else { prec };
                fmt_f(&mut out, &digs, (prec - digs.dp).max(0));
            }
        }
    }
    out
}

/// `a` rounded to `n` significant digits.
fn sig_digits(a: f64, n: i64) -> Digits {
    let p = usize::try_from(n - 1).unwrap_or(0).min(MAX_SIG);
    Digits::from_exp(&format!("{a:.p$e}"))
}

/// `d.ddddde±dd`
fn fmt_e(out: &mut String, d: &Digits, prec: i64, fmt: u8) {
    out.push(char::from(d.at(0)));
    if prec > 0 {
        out.push('.');
        out.extend((1..=prec).map(|i| char::from(d.at(i))));
    }
    out.push(char::from(fmt));
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

/// `ddd.ddd`
fn fmt_f(out: &mut String, d: &Digits, prec: i64) {
    if d.dp > 0 {
        out.extend((0..d.dp).map(|i| char::from(d.at(i))));
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        out.extend((0..prec).map(|i| char::from(d.at(d.dp + i))));
    }
}

/// The sign, the integer mantissa and the binary exponent of `v`: `v = ±mant × 2^exp`,
/// `mant` holding the implicit leading bit unless `v` is subnormal.
fn decompose(v: f64) -> (bool, u64, i64) {
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let biased = ((bits >> 52) & 0x7ff) as i64;
    let mut mant = bits & ((1 << 52) - 1);
    let exp = if biased == 0 {
        1
    } else {
        mant |= 1 << 52;
        biased
    };
    (neg, mant, exp - 1023 - 52)
}

/// `%b`: `-ddddp±ddd`, the mantissa and exponent in decimal.
fn fmt_b(v: f64) -> String {
    let (neg, mant, exp) = decompose(v);
    let sign = if neg { "-" } else { "" };
    let esign = if exp >= 0 { "+" } else { "" };
    format!("{sign}{mant}p{esign}{exp}")
}

/// `%x`: `-0x1.yyyyp±dd` (or `0x0p+00`), rounded to `prec` hex digits, ties to even.
fn fmt_x(v: f64, prec: i64, fmt: u8) -> String {
    let (neg, mut mant, exp) = decompose(v);
    let mut exp = exp + 52;
    if mant == 0 {
        exp = 0;
    }
    // The leading 1 (if any) at bit 60.
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex = super::scalar::digits(fmt == b'X');
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push('0');
    out.push(char::from(fmt));
    out.push(char::from(b'0' + ((mant >> 60) & 1) as u8));
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(char::from(hex[((mant >> 60) & 15) as usize]));
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(char::from(hex[((mant >> 60) & 15) as usize]));
            mant <<= 4;
        }
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' });
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
    out
}

impl Printer<'_> {
    /// A float64 with verb `verb` (one of `b e E f g G x X`) and default precision
    /// `prec` (-1 for the shortest), under the directive's flags (Go's `fmt.fmtFloat`).
    pub(super) fn fmt_float(&mut self, v: f64, verb: u8, prec: i64) {
        let prec = if self.f.prec_present {
            self.f.prec as i64
        } else {
            prec
        };
        let formatted = format_float(v, verb, prec);
        // A leading sign always, so the code below can treat it uniformly.
        let mut num: Vec<u8> = Vec::with_capacity(formatted.len() + 8);
        if !formatted.starts_with(['-', '+']) {
            num.push(b'+');
        }
        num.extend_from_slice(formatted.as_bytes());
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        // Infinities and NaN are not padded with zeros.
        if num[1] == b'I' || num[1] == b'N' {
            let zero = std::mem::replace(&mut self.f.zero, false);
            let start = usize::from(num[1] == b'N' && !self.f.space && !self.f.plus);
            self.pad(&String::from_utf8_lossy(&num[start..]));
            self.f.zero = zero;
            return;
        }
        if self.f.sharp && verb != b'b' {
            sharpen(&mut num, verb, prec);
        }
        let num = String::from_utf8_lossy(&num).into_owned();
        if self.f.plus || !num.starts_with('+') {
            // Zero padding goes between the sign and the digits.
            if self.f.zero && self.f.wid_present && self.f.wid > num.len() {
                self.buf.push_str(&num[..1]);
                self.write_padding(self.f.wid - num.len());
                self.buf.push_str(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }
}

/// `#`: keep a decimal point, and for `%g %G %v %x` the trailing zeros up to the
/// precision (6 by default). `num` starts with its sign.
fn sharpen(num: &mut Vec<u8>, verb: u8, prec: i64) {
    let mut digits = match verb {
        b'v' | b'g' | b'G' | b'x' => {
            if prec == -1 {
                6
            } else {
                prec
            }
        }
        _ => 0,
    };
    let mut tail = Vec::new();
    let mut has_point = false;
    let mut saw_nonzero = false;
    let mut i = 1;
    while i < num.len() {
        match num[i] {
            b'.' => has_point = true,
            b'p' | b'P' => {
                tail = num.split_off(i);
                break;
            }
            b'e' | b'E' if verb != b'x' && verb != b'X' => {
                tail = num.split_off(i);
                break;
            }
            c => {
                if c != b'0' {
                    saw_nonzero = true;
                }
                if saw_nonzero {
                    digits -= 1;
                }
            }
        }
        i += 1;
    }
    if !has_point {
        // A lone leading 0 counts once.
        if num.len() == 2 && num[1] == b'0' {
            digits -= 1;
        }
        num.push(b'.');
    }
    while digits > 0 {
        num.push(b'0');
        digits -= 1;
    }
    num.extend_from_slice(&tail);
}
