//! Go's `fmt` printing over the template's values, byte for byte as Go 1.19 prints:
//! `Sprint`, `Sprintln` and `Sprintf` with Go's whole directive grammar (flags
//! `+ - # space 0`, width and precision, `*` taken from an int argument, explicit
//! argument indexes `%[2]d`) and its error strings (`%!d(string=hi)`, `%!s(MISSING)`,
//! `%!(EXTRA ...)`, `%!(NOVERB)`, `%!(BADWIDTH)`, `%!(BADPREC)`, `%!(BADINDEX)`), and
//! what `{{ pipeline }}` prints.
//!
//! Each value prints as the Go value it models (see [`Value`]): a `Kv` as the struct
//! `memkv.KVPair`, a list as its slice type, a map as `map[string]interface {}`, a
//! time through `time.Time`'s `String` and `GoString`, an SRV record as `*net.SRV`.
//!
//! Where Go prints a memory address (`%p`, a `*net.SRV` inside a slice, a time's
//! location for verbs such as `%d`) this prints [`FAKE_ADDR`] instead; `Missing` and
//! `Nil` are both Go's nil `interface {}` here.

mod float;
mod printer;
mod scalar;

pub use printer::FAKE_ADDR;

use super::value::Value;
use printer::Printer;

/// Go's `fmt.Sprint`: each operand with `%v`, a space between two operands when
/// neither is a string.
pub fn sprint(out: &mut String, args: &[Value<'_>]) {
    sprint_with(out, args, false);
}

/// `fmt.Sprint` of the arguments as text/template hands them to `html`, `js` and
/// `urlquery`: no value and nil become the string `<no value>`, a `*net.SRV` what it
/// points to.
pub fn sprint_printable(out: &mut String, args: &[Value<'_>]) {
    sprint_with(out, args, true);
}

fn sprint_with(out: &mut String, args: &[Value<'_>], printable: bool) {
    let mut p = Printer::new(out);
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let nil = matches!(arg, Value::Missing | Value::Nil);
        let is_string = matches!(arg, Value::Str(_)) || (printable && nil);
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        match arg {
            _ if printable && nil => p.buf.push_str("<no value>"),
            Value::Srv(s) if printable => p.print_srv(s),
            _ => p.print_arg(arg, 'v'),
        }
        prev_string = is_string;
    }
}

/// Go's `fmt.Sprintln`: each operand with `%v`, spaces between them, a newline after.
pub fn sprintln(out: &mut String, args: &[Value<'_>]) {
    let mut p = Printer::new(out);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
}

/// What `{{ pipeline }}` prints (text/template's `printValue`): `<no value>` for a
/// missing value and for nil (Go turns a nil `interface {}` result into no value
/// before printing it), a `*net.SRV` without its `&` (text/template prints what a
/// pointer points to), anything else as `fmt.Fprint` does.
pub fn print_value(out: &mut String, v: &Value<'_>) {
    match v {
        Value::Missing | Value::Nil => out.push_str("<no value>"),
        Value::Str(s) => out.push_str(s),
        Value::Srv(s) => Printer::new(out).print_srv(s),
        _ => Printer::new(out).print_arg(v, 'v'),
    }
}

/// A width or precision larger than this is an error, not a number (Go's `tooLarge`).
const TOO_LARGE: i64 = 1_000_000;

/// Parses the decimal number at `s[start..]` (Go's `parsenum`): the number, whether
/// there was one, and where it ends. A number that grows too large swallows the rest
/// of the format, as in Go.
fn parse_num(s: &[u8], start: usize) -> (i64, bool, usize) {
    let mut num = 0i64;
    let mut is_num = false;
    let mut i = start;
    while let Some(c @ b'0'..=b'9') = s.get(i) {
        if num > TOO_LARGE {
            return (0, false, s.len());
        }
        num = num * 10 + i64::from(c - b'0');
        is_num = true;
        i += 1;
    }
    (num, is_num, i)
}

/// The operand `arg_num` as a width or precision (Go's `intFromArg`): the number,
/// whether it is an integer small enough, and the next operand.
fn int_from_arg(args: &[Value<'_>], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = args.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (num, is_int) = match arg {
        Value::Int(i) => (*i, true),
        Value::U16(u) => (i64::from(*u), true),
        _ => (0, false),
    };
    if !(-TOO_LARGE..=TOO_LARGE).contains(&num) {
        return (0, false, arg_num + 1);
    }
    (num, is_int, arg_num + 1)
}

/// Parses `[n]` at `s[i..]` (Go's `parseArgNumber`): the zero-based index, the bytes
/// to skip, and whether it parsed.
fn parse_arg_number(s: &[u8]) -> (i64, usize, bool) {
    if s.len() < 3 {
        return (0, 1, false);
    }
    match s.iter().skip(1).position(|&c| c == b']') {
        Some(p) => {
            let close = p + 1;
            let (n, ok, end) = parse_num(&s[..close], 1);
            if !ok || end != close {
                return (0, close + 1, false);
            }
            (n - 1, close + 1, true)
        }
        None => (0, 1, false),
    }
}

/// The state of one `Sprintf` beyond the printer: where the operands stand.
struct Directive {
    arg_num: usize,
    reordered: bool,
    good_arg_num: bool,
}

impl Directive {
    /// Go's `argNumber`: an explicit `[n]` at `s[i..]` picks the next operand.
    fn arg_number(&mut self, s: &[u8], i: usize, num_args: usize) -> (usize, bool) {
        if s.get(i) != Some(&b'[') {
            return (i, false);
        }
        self.reordered = true;
        let (index, wid, ok) = parse_arg_number(&s[i..]);
        if ok && (0..num_args as i64).contains(&index) {
            self.arg_num = index as usize;
            return (i + wid, true);
        }
        self.good_arg_num = false;
        (i + wid, ok)
    }
}

/// Go's `fmt.Sprintf(format, args...)`, appended to `out`.
pub fn sprintf(out: &mut String, format: &str, args: &[Value<'_>]) {
    let mut p = Printer::new(out);
    let s = format.as_bytes();
    let end = s.len();
    let mut d = Directive {
        arg_num: 0,
        reordered: false,
        good_arg_num: true,
    };
    let mut i = 0;
    while i < end {
        d.good_arg_num = true;
        let last = i;
        while i < end && s[i] != b'%' {
            i += 1;
        }
        p.buf.push_str(format.get(last..i).unwrap_or(""));
        if i >= end {
            break;
        }
        i += 1; // the '%'
        p.f = Default::default();
        while let Some(&c) = s.get(i) {
            match c {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus, // only pad with zeros on the left
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => break,
            }
            i += 1;
        }
        let (ni, mut after_index) = d.arg_number(s, i, args.len());
        i = ni;
        // Width.
        if s.get(i) == Some(&b'*') {
            i += 1;
            let (wid, ok, next) = int_from_arg(args, d.arg_num);
            d.arg_num = next;
            p.f.wid_present = ok;
            if !ok {
                p.buf.push_str("%!(BADWIDTH)");
            }
            if wid < 0 {
                p.f.minus = true;
                p.f.zero = false;
            }
            p.f.wid = wid.unsigned_abs() as usize;
            after_index = false;
        } else {
            let (wid, ok, next) = parse_num(s, i);
            (p.f.wid, p.f.wid_present, i) = (wid as usize, ok, next);
            if after_index && ok {
                d.good_arg_num = false; // "%[3]2d"
            }
        }
        // Precision.
        if i + 1 < end && s[i] == b'.' {
            i += 1;
            if after_index {
                d.good_arg_num = false; // "%[3].2d"
            }
            (i, after_index) = d.arg_number(s, i, args.len());
            if s.get(i) == Some(&b'*') {
                i += 1;
                let (prec, ok, next) = int_from_arg(args, d.arg_num);
                d.arg_num = next;
                (p.f.prec, p.f.prec_present) = (prec.max(0) as usize, ok && prec >= 0);
                if !p.f.prec_present {
                    p.buf.push_str("%!(BADPREC)");
                }
                after_index = false;
            } else {
                let (prec, _, next) = parse_num(s, i);
                (p.f.prec, p.f.prec_present, i) = (prec as usize, true, next);
            }
        }
        if !after_index {
            (i, _) = d.arg_number(s, i, args.len());
        }
        let Some(verb) = format.get(i..).and_then(|rest| rest.chars().next()) else {
            p.buf.push_str("%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        match verb {
            '%' => p.buf.push('%'), // takes no operand, ignores width and precision
            _ if !d.good_arg_num => push_error(p.buf, verb, "(BADINDEX)"),
            _ if d.arg_num >= args.len() => push_error(p.buf, verb, "(MISSING)"),
            _ => {
                if verb == 'v' {
                    p.f.sharp_v = std::mem::take(&mut p.f.sharp);
                    p.f.plus_v = std::mem::take(&mut p.f.plus);
                }
                p.print_arg(&args[d.arg_num], verb);
                d.arg_num += 1;
            }
        }
    }
    // Unused operands, unless the format picked them by index.
    if !d.reordered && d.arg_num < args.len() {
        p.f = Default::default();
        p.buf.push_str("%!(EXTRA ");
        for (k, arg) in args[d.arg_num..].iter().enumerate() {
            if k > 0 {
                p.buf.push_str(", ");
            }
            if let Value::Missing | Value::Nil = arg {
                p.buf.push_str("<nil>");
            } else {
                p.buf.push_str(&arg.go_type());
                p.buf.push('=');
                p.print_arg(arg, 'v');
            }
        }
        p.buf.push(')');
    }
}

/// `%!v(MISSING)` and `%!v(BADINDEX)`.
fn push_error(buf: &mut String, verb: char, what: &str) {
    buf.push_str("%!");
    buf.push(verb);
    buf.push_str(what);
}
