//! Go's reference-time layouts (`Mon Jan 2 15:04:05 MST 2006`): the layout is cut into
//! literal text and the tokens of Go's `time/format.go`, and each token prints its part
//! of the time.

use super::{Civil, GoTime};

/// One layout token (Go's `std*` constants); `Frac` carries the separator, the number
/// of digits and whether trailing zeros are dropped (`.999`) or kept (`.000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// A numeric zone; `z` prints `Z` for UTC, then hours, `:`-separated or not,
    /// with or without minutes and seconds.
    Zone {
        z: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    Frac {
        sep: u8,
        digits: usize,
        trim: bool,
    },
}

/// The numeric zone tokens, longest first where one is a prefix of another.
const ZONES: [(&str, Token); 10] = [
    ("-070000", zone(false, false, true, true)),
    ("-07:00:00", zone(false, true, true, true)),
    ("-0700", zone(false, false, true, false)),
    ("-07:00", zone(false, true, true, false)),
    ("-07", zone(false, false, false, false)),
    ("Z070000", zone(true, false, true, true)),
    ("Z07:00:00", zone(true, true, true, true)),
    ("Z0700", zone(true, false, true, false)),
    ("Z07:00", zone(true, true, true, false)),
    ("Z07", zone(true, false, false, false)),
];

const fn zone(z: bool, colon: bool, minutes: bool, seconds: bool) -> Token {
    Token::Zone {
        z,
        colon,
        minutes,
        seconds,
    }
}

/// Splits `layout` at its first token (Go's `nextStdChunk`): the text before it, the
/// token, and the rest. `None` when the layout holds no more tokens.
fn next_token(layout: &[u8]) -> (usize, Option<(Token, usize)>) {
    let lower_after = |j: usize| layout.get(j).is_some_and(u8::is_ascii_lowercase);
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s.as_bytes()));
    for i in 0..layout.len() {
        let found = match layout[i] {
            b'J' if at(i, "January") => Some((Token::LongMonth, 7)),
            b'J' if at(i, "Jan") && !lower_after(i + 3) => Some((Token::Month, 3)),
            b'M' if at(i, "Monday") => Some((Token::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !lower_after(i + 3) => Some((Token::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Token::TZ, 3)),
            b'0' => match layout.get(i + 1) {
                Some(b'1') => Some((Token::ZeroMonth, 2)),
                Some(b'2') => Some((Token::ZeroDay, 2)),
                Some(b'3') => Some((Token::ZeroHour12, 2)),
                Some(b'4') => Some((Token::ZeroMinute, 2)),
                Some(b'5') => Some((Token::ZeroSecond, 2)),
                Some(b'6') => Some((Token::Year, 2)),
                _ if at(i, "002") => Some((Token::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' if at(i, "15") => Some((Token::Hour, 2)),
            b'1' => Some((Token::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Token::LongYear, 4)),
            b'2' => Some((Token::Day, 1)),
            // "_2006" is a literal underscore and the long year.
            b'_' if at(i, "_2006") => return (i + 1, Some((Token::LongYear, 4))),
            b'_' if at(i, "_2") => Some((Token::UnderDay, 2)),
            b'_' if at(i, "__2") => Some((Token::UnderYearDay, 3)),
            b'3' => Some((Token::Hour12, 1)),
            b'4' => Some((Token::Minute, 1)),
            b'5' => Some((Token::Second, 1)),
            b'P' if at(i, "PM") => Some((Token::PM, 2)),
            b'p' if at(i, "pm") => Some((Token::Pm, 2)),
            b'-' | b'Z' => ZONES
                .iter()
                .find(|(s, _)| at(i, s))
                .map(|&(s, t)| (t, s.len())),
            sep @ (b'.' | b',') => frac(layout, i, sep),
            _ => None,
        };
        if found.is_some() {
            return (i, found);
        }
    }
    (layout.len(), None)
}

/// `.000`, `,999`...: a separator and a run of one digit that no other digit follows.
fn frac(layout: &[u8], i: usize, sep: u8) -> Option<(Token, usize)> {
    let ch = *layout.get(i + 1).filter(|&&c| c == b'0' || c == b'9')?;
    let run = layout[i + 1..].iter().take_while(|&&c| c == ch).count();
    if layout.get(i + 1 + run).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // Go keeps the count in 12 bits.
    Some((
        Token::Frac {
            sep,
            digits: run & 0xfff,
            trim: ch == b'9',
        },
        run + 1,
    ))
}

/// Appends `x` in decimal, zero-padded to `width` digits (the sign not counted).
fn push_int(out: &mut String, x: i64, width: usize) {
    if x < 0 {
        out.push('-');
    }
    let digits = x.unsigned_abs().to_string();
    out.extend(std::iter::repeat_n('0', width.saturating_sub(digits.len())));
    out.push_str(&digits);
}

/// Go's `Time.AppendFormat`.
pub(super) fn format(t: &GoTime, layout: &str, out: &mut String) {
    let c: Civil = t.civil();
    let mut rest = layout;
    while !rest.is_empty() {
        let (prefix, token) = next_token(rest.as_bytes());
        out.push_str(rest.get(..prefix).unwrap_or(""));
        let Some((token, len)) = token else { break };
        rest = rest.get(prefix + len..).unwrap_or("");
        let hour12 = if c.hour % 12 == 0 { 12 } else { c.hour % 12 };
        match token {
            Token::Year => push_int(out, (c.year % 100).abs(), 2),
            Token::LongYear => push_int(out, c.year, 4),
            Token::Month => out.push_str(&MONTHS[c.month - 1][..3]),
            Token::LongMonth => out.push_str(MONTHS[c.month - 1]),
            Token::NumMonth => push_int(out, c.month as i64, 0),
            Token::ZeroMonth => push_int(out, c.month as i64, 2),
            Token::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
            Token::LongWeekDay => out.push_str(DAYS[c.weekday]),
            Token::Day => push_int(out, c.day, 0),
            Token::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                push_int(out, c.day, 0);
            }
            Token::ZeroDay => push_int(out, c.day, 2),
            Token::UnderYearDay => {
                if c.yday < 100 {
                    out.push(' ');
                    if c.yday < 10 {
                        out.push(' ');
                    }
                }
                push_int(out, c.yday, 0);
            }
            Token::ZeroYearDay => push_int(out, c.yday, 3),
            Token::Hour => push_int(out, c.hour, 2),
            Token::Hour12 => push_int(out, hour12, 0),
            Token::ZeroHour12 => push_int(out, hour12, 2),
            Token::Minute => push_int(out, c.min, 0),
            Token::ZeroMinute => push_int(out, c.min, 2),
            Token::Second => push_int(out, c.sec, 0),
            Token::ZeroSecond => push_int(out, c.sec, 2),
            Token::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Token::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Token::Zone {
                z,
                colon,
                minutes,
                seconds,
            } => {
                push_zone(out, t.offset(), z, colon, minutes, seconds);
            }
            Token::TZ if !t.zone().is_empty() => out.push_str(t.zone()),
            Token::TZ => push_zone(out, t.offset(), false, false, true, false),
            Token::Frac { sep, digits, trim } => push_frac(out, t.nanosecond(), sep, digits, trim),
        }
    }
}

/// A numeric zone offset: `Z` for UTC with the ISO 8601 forms, else `±hh[:][mm][:][ss]`.
fn push_zone(out: &mut String, offset: i32, z: bool, colon: bool, minutes: bool, seconds: bool) {
    if z && offset == 0 {
        out.push('Z');
        return;
    }
    let (zone, offset) = (i64::from(offset / 60), i64::from(offset));
    out.push(if zone < 0 { '-' } else { '+' });
    // As in Go, the seconds keep their sign when the offset is under a minute west.
    let (zone, secs) = if zone < 0 {
        (-zone, -offset)
    } else {
        (zone, offset)
    };
    push_int(out, zone / 60, 2);
    if colon {
        out.push(':');
    }
    if minutes {
        push_int(out, zone % 60, 2);
    }
    if seconds {
        if colon {
            out.push(':');
        }
        push_int(out, secs % 60, 2);
    }
}

/// Fractional seconds: `digits` digits (at most 9), trailing zeros dropped with `trim`
/// (and then nothing at all, not even the separator, for a whole second).
fn push_frac(out: &mut String, nanos: u32, sep: u8, digits: usize, trim: bool) {
    let all = format!("{nanos:09}");
    let mut n = digits.min(9);
    if trim {
        while n > 0 && all.as_bytes()[n - 1] == b'0' {
            n -= 1;
        }
        if n == 0 {
            return;
        }
    }
    out.push(char::from(sep));
    out.push_str(&all[..n]);
}

/// Go's month names, January first.
pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Go's weekday names, Sunday first.
pub(super) const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
