//! The raw formatter under Go's printer (Go's `fmt.fmt`): the flags, width and precision
//! of one directive, padding, and the printing of booleans, integers (in every base, as
//! characters, quoted runes and `U+` code points) and strings (plain, hex, quoted).

use super::super::isprint::is_print;
use super::super::quote::{can_backquote, quote_into, quote_rune_into, rune_or_replacement};
use super::printer::Printer;

const LOWER: &[u8; 17] = b"0123456789abcdefx";
const UPPER: &[u8; 17] = b"0123456789ABCDEFX";

/// The flags, width and precision of the directive being printed (Go's `fmtFlags` with
/// `wid` and `prec`).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flags {
    /// A width was given (`wid`).
    pub wid_present: bool,
    /// A precision was given (`prec`).
    pub prec_present: bool,
    /// `-`: pad on the right.
    pub minus: bool,
    /// `+`: always a sign; ASCII-only `%q`.
    pub plus: bool,
    /// `#`: the alternate form (`0x`, raw strings, `U+0078 'x'`...).
    pub sharp: bool,
    /// ` `: a space for the sign of positive numbers, between hex bytes.
    pub space: bool,
    /// `0`: pad with zeros (after the sign).
    pub zero: bool,
    /// `%+v`: print struct field names (`plus` is cleared).
    pub plus_v: bool,
    /// `%#v`: print Go syntax (`sharp` is cleared).
    pub sharp_v: bool,
    /// The width, in runes.
    pub wid: usize,
    /// The precision: digits, or runes of a string.
    pub prec: usize,
}

/// The digits to print an integer with: lower or upper case hex.
pub(super) fn digits(upper: bool) -> &'static [u8; 17] {
    if upper { UPPER } else { LOWER }
}

impl Printer<'_> {
    /// Appends `n` padding bytes: zeros with the `0` flag, spaces otherwise.
    pub(super) fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Appends `s` padded to the width (counted in runes), on the left unless `-`.
    pub(super) fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.f.wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    /// `pad` with the `0` flag ignored (Go pads numbers' signs and prefixes itself).
    fn pad_spaces(&mut self, s: &str) {
        let zero = std::mem::replace(&mut self.f.zero, false);
        self.pad(s);
        self.f.zero = zero;
    }

    /// `true` or `false`, padded.
    pub(super) fn fmt_boolean(&mut self, v: bool) {
        self.pad(if v { "true" } else { "false" });
    }

    /// `U+0078`, or with `#` and a printable rune `U+0078 'x'`; the precision is the
    /// least number of hex digits (4 by default).
    pub(super) fn fmt_unicode(&mut self, u: u64) {
        let prec = if self.f.prec_present && self.f.prec > 4 {
            self.f.prec
        } else {
            4
        };
        let hex = format!("{u:X}");
        let mut s = String::with_capacity(prec + 10);
        s.push_str("U+");
        s.extend(std::iter::repeat_n('0', prec.saturating_sub(hex.len())));
        s.push_str(&hex);
        let printable = u32::try_from(u)
            .ok()
            .and_then(char::from_u32)
            .filter(|&c| is_print(c));
        if let (true, Some(c)) = (self.f.sharp, printable) {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        self.pad_spaces(&s);
    }

    /// An integer in `base` (2, 8, 10 or 16); `signed` reads `u` as an `int64`. Honours
    /// precision (least digits), `0` padding, `#` prefixes, `%O`'s `0o` and the signs.
    pub(super) fn fmt_integer(&mut self, u: u64, base: u64, signed: bool, verb: char, upper: bool) {
        let digits = digits(upper);
        let negative = signed && (u as i64) < 0;
        let mut u = if negative { u.wrapping_neg() } else { u };
        let mut prec = 0;
        if self.f.prec_present {
            prec = self.f.prec;
            // Precision 0 and value 0 print nothing but the padding.
            if prec == 0 && u == 0 {
                let zero = std::mem::replace(&mut self.f.zero, false);
                self.write_padding(self.f.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1); // room for the sign
            }
        }
        // Built right to left.
        let mut rev: Vec<u8> = Vec::with_capacity(prec.max(24));
        loop {
            rev.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => rev.extend_from_slice(&[digits[16], b'0']),
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let s: String = rev.into_iter().map(char::from).collect();
        self.pad_spaces(&s);
    }

    /// `s` cut to the precision, counted in runes.
    pub(super) fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if self.f.prec_present
            && let Some((i, _)) = s.char_indices().nth(self.f.prec)
        {
            return &s[..i];
        }
        s
    }

    /// A string: truncated to the precision, padded to the width.
    pub(super) fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    /// The bytes of `s` in hex (`%x`, `%X`): the precision counts bytes, `#` adds `0x`,
    /// a space separates the bytes (and with `#` prefixes each one).
    pub(super) fn fmt_sx(&mut self, s: &str, upper: bool) {
        let digits = digits(upper);
        let mut length = s.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        if length == 0 {
            if self.f.wid_present {
                self.write_padding(self.f.wid);
            }
            return;
        }
        let mut width = 2 * length;
        if self.f.space {
            if self.f.sharp {
                width *= 2;
            }
            width += length - 1;
        } else if self.f.sharp {
            width += 2;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding(self.f.wid - width);
        }
        let prefix = [char::from(b'0'), char::from(digits[16])];
        if self.f.sharp {
            self.buf.extend(prefix);
        }
        for (i, &c) in s.as_bytes()[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.extend(prefix);
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xf)]));
        }
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding(self.f.wid - width);
        }
    }

    /// A quoted string (`%q`): Go syntax, ASCII only with `+`, a raw `` `string` `` with
    /// `#` when it can be one.
    pub(super) fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        let mut q = String::with_capacity(s.len() + 2);
        if self.f.sharp && can_backquote(s) {
            q.push('`');
            q.push_str(s);
            q.push('`');
        } else {
            quote_into(&mut q, s, self.f.plus);
        }
        self.pad(&q);
    }

    /// The character with code point `c` (`%c`); U+FFFD for a value that is none.
    pub(super) fn fmt_c(&mut self, c: u64) {
        let mut b = [0; 4];
        let s = rune_or_replacement(c).encode_utf8(&mut b);
        self.pad(s);
    }

    /// The character with code point `c` quoted (`%q`): `'x'`, `'\n'`, ASCII with `+`.
    pub(super) fn fmt_qc(&mut self, c: u64) {
        let mut q = String::new();
        quote_rune_into(&mut q, c, self.f.plus);
        self.pad(&q);
    }
}
