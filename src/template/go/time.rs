//! Go's `time.Time` as confd's `datetime` returns it (`time.Now()`): an instant, the
//! zone it is shown in (the local zone from the C library, so `TZ` is honoured as Go
//! honours it), and a monotonic clock reading; with Go's `String`, `GoString`, `Format`
//! layouts and the methods a template may call.
//!
//! `Month` and `Weekday` return their names as strings (`January`, `Monday`): that is
//! how Go prints them, though Go would print `%d` of them as numbers. Methods taking a
//! `time.Duration` or another time (`Add`, `Sub`, `Round`, `Before`...) are not offered:
//! confd's templates have no durations to give them.

mod civil;
mod layout;

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::value::Value;
use civil::{Civil, local_zone, negative, normalize};

/// Seconds from 0001-01-01 (Go's internal epoch) to 1970-01-01.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;
/// Seconds from 0001-01-01 to 1885-01-01 (the epoch of Go's monotonic-time encoding).
const WALL_TO_INTERNAL: i64 = 59_453_308_800;
const NANOS: i64 = 1_000_000_000;

/// The location a time is shown in; Go prints them apart in `%#v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    /// `time.UTC`
    Utc,
    /// `time.Local`
    Local,
    /// A fixed zone (`time.FixedZone`).
    Fixed,
}

/// A Go `time.Time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoTime {
    unix: i64,
    nanos: u32,
    offset: i32,
    zone: Box<str>,
    loc: Loc,
    /// Nanoseconds since the process started, when read from the clock.
    mono: Option<i64>,
}

/// When the process started, as far as the monotonic readings of [`GoTime::now`] go.
static START: OnceLock<Instant> = OnceLock::new();

impl GoTime {
    /// How two instants compare: by the monotonic clock when both have a reading (as
    /// Go's `After`, `Before` and `Equal` do), else by the wall clock.
    fn instant_cmp(&self, other: &GoTime) -> std::cmp::Ordering {
        match (self.mono, other.mono) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => (self.unix, self.nanos).cmp(&(other.unix, other.nanos)),
        }
    }

    /// Go's `time.Now()`: the wall clock in the local zone, with a monotonic reading
    /// (nanoseconds since [`GoTime::mark_start`], or since the first `now`).
    pub fn now() -> Self {
        let start = *START.get_or_init(Instant::now);
        let since = SystemTime::now().duration_since(UNIX_EPOCH);
        let (unix, nanos) = match since {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => negative(e.duration()),
        };
        // Go's readings start at 1 ns.
        let mono = i64::try_from(start.elapsed().as_nanos())
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        Self::at_local(unix, nanos).with_monotonic(mono)
    }

    /// Starts the monotonic clock that [`GoTime::now`] reports from (Go starts it when
    /// the process starts); call it early in `main`. Later calls do nothing.
    pub fn mark_start() {
        START.get_or_init(Instant::now);
    }

    /// The instant `unix_secs` + `nanos` shown at `offset_secs` east of UTC with the
    /// zone abbreviation `zone`, as in a `time.FixedZone(zone, offset_secs)`.
    pub fn at(unix_secs: i64, nanos: u32, offset_secs: i32, zone: &str) -> Self {
        let (unix, nanos) = normalize(unix_secs, nanos);
        Self {
            unix,
            nanos,
            offset: offset_secs,
            zone: zone.into(),
            loc: Loc::Fixed,
            mono: None,
        }
    }

    /// The instant in `time.UTC`.
    pub fn at_utc(unix_secs: i64, nanos: u32) -> Self {
        let (unix, nanos) = normalize(unix_secs, nanos);
        Self {
            unix,
            nanos,
            offset: 0,
            zone: "UTC".into(),
            loc: Loc::Utc,
            mono: None,
        }
    }

    /// The instant in `time.Local`, the zone the C library says (`TZ`, `/etc/localtime`).
    pub fn at_local(unix_secs: i64, nanos: u32) -> Self {
        let (unix, nanos) = normalize(unix_secs, nanos);
        let (offset, zone) = local_zone(unix);
        Self {
            unix,
            nanos,
            offset,
            zone: zone.into(),
            loc: Loc::Local,
            mono: None,
        }
    }

    /// This time with the monotonic reading `nanos_since_start`, which `String` shows
    /// as `m=±s.nnnnnnnnn`. Go cannot keep one outside 1885-2157; nor does this.
    pub fn with_monotonic(mut self, nanos_since_start: i64) -> Self {
        let wall_secs = self.unix.wrapping_add(UNIX_TO_INTERNAL - WALL_TO_INTERNAL);
        self.mono = (0..1 << 33)
            .contains(&wall_secs)
            .then_some(nanos_since_start);
        self
    }

    /// Seconds since 1970-01-01 UTC (`Unix()`).
    pub fn unix(&self) -> i64 {
        self.unix
    }

    /// The nanoseconds within the second (`Nanosecond()`).
    pub fn nanosecond(&self) -> u32 {
        self.nanos
    }

    /// Seconds east of UTC of the zone the time is shown in.
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// The zone's abbreviation (`CET`, `UTC`).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// True for a time in `time.UTC` (Go keeps no location pointer for those).
    pub fn is_utc(&self) -> bool {
        self.loc == Loc::Utc
    }

    /// Go's hidden `wall` field: nanoseconds, or with a monotonic reading a flag bit,
    /// the seconds since 1885 and the nanoseconds.
    pub fn wall(&self) -> u64 {
        match self.mono {
            Some(_) => {
                let secs = self.unix.wrapping_add(UNIX_TO_INTERNAL - WALL_TO_INTERNAL) as u64;
                1 << 63 | secs << 30 | u64::from(self.nanos)
            }
            None => u64::from(self.nanos),
        }
    }

    /// Go's hidden `ext` field: the monotonic reading, or else seconds since year 1.
    pub fn ext(&self) -> i64 {
        self.mono
            .unwrap_or(self.unix.wrapping_add(UNIX_TO_INTERNAL))
    }

    /// Go's `Time.Format(layout)`.
    pub fn format(&self, layout: &str) -> String {
        let mut out = String::with_capacity(layout.len() + 10);
        layout::format(self, layout, &mut out);
        out
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`, then
    /// ` m=+0.000123456` when there is a monotonic reading.
    pub fn string(&self) -> String {
        let mut s = self.format("2006-01-02 15:04:05.999999999 -0700 MST");
        if let Some(m) = self.mono {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            let (secs, frac) = (m / NANOS as u64, m % NANOS as u64);
            s.push_str(&format!(" m={sign}{secs}.{frac:09}"));
        }
        s
    }

    /// Go's `Time.GoString()` (what `%#v` prints):
    /// `time.Date(2009, time.November, 10, 23, 0, 0, 0, time.UTC)`.
    pub fn go_string(&self) -> String {
        let c = self.civil();
        let loc = match self.loc {
            Loc::Utc => "time.UTC".to_string(),
            Loc::Local => "time.Local".to_string(),
            Loc::Fixed => format!("time.Location({})", go_time_quote(&self.zone)),
        };
        format!(
            "time.Date({}, time.{}, {}, {}, {}, {}, {}, {loc})",
            c.year,
            layout::MONTHS[c.month - 1],
            c.day,
            c.hour,
            c.min,
            c.sec,
            self.nanos
        )
    }

    /// The same instant in UTC (`UTC()`), without the monotonic reading as in Go.
    pub fn utc(&self) -> Self {
        Self::at_utc(self.unix, self.nanos)
    }

    /// The same instant in the local zone (`Local()`), without the monotonic reading.
    pub fn local(&self) -> Self {
        Self::at_local(self.unix, self.nanos)
    }

    /// Go's `IsZero()`: the instant is January 1, year 1, 00:00:00 UTC.
    pub fn is_zero(&self) -> bool {
        self.unix == -UNIX_TO_INTERNAL && self.nanos == 0
    }

    /// Calls the method `name` with `args`, as `{{ $t.Format "2006" }}` does: `None`
    /// when `time.Time` has no such method (or none this offers), else its result or
    /// the error Go's template would report.
    pub fn method(&self, name: &str, args: &[Value<'_>]) -> Option<Result<Value<'static>, String>> {
        if !METHODS.contains(&name) {
            return None;
        }
        let want = usize::from(matches!(name, "Format" | "After" | "Before" | "Equal"));
        if args.len() != want {
            return Some(Err(format!(
                "wrong number of args for {name}: want {want} got {}",
                args.len()
            )));
        }
        let c = self.civil();
        let nanos = i64::from(self.nanos);
        let v = match name {
            "Format" => match &args[0] {
                Value::Str(layout) => Value::string(self.format(layout)),
                Value::Missing | Value::Nil => {
                    return Some(Err("invalid value; expected string".into()));
                }
                other => {
                    let got = other.go_type();
                    return Some(Err(format!(
                        "wrong type for value; expected string; got {got}"
                    )));
                }
            },
            "Year" => Value::Int(c.year),
            "Month" => Value::str(layout::MONTHS[c.month - 1]),
            "Day" => Value::Int(c.day),
            "Hour" => Value::Int(c.hour),
            "Minute" => Value::Int(c.min),
            "Second" => Value::Int(c.sec),
            "Nanosecond" => Value::Int(nanos),
            "YearDay" => Value::Int(c.yday),
            "Weekday" => Value::str(layout::DAYS[c.weekday]),
            "Unix" => Value::Int(self.unix),
            "UnixMilli" => Value::Int(self.unix.wrapping_mul(1000).wrapping_add(nanos / 1_000_000)),
            "UnixMicro" => Value::Int(self.unix.wrapping_mul(1_000_000).wrapping_add(nanos / 1000)),
            "UnixNano" => Value::Int(self.unix.wrapping_mul(NANOS).wrapping_add(nanos)),
            "UTC" => Value::Time(self.utc().into()),
            "Local" => Value::Time(self.local().into()),
            "String" => Value::string(self.string()),
            "GoString" => Value::string(self.go_string()),
            "IsZero" => Value::Bool(self.is_zero()),
            "Location" => Value::string(match self.loc {
                Loc::Utc => "UTC".to_string(),
                Loc::Local => civil::local_name(),
                Loc::Fixed => self.zone.to_string(),
            }),
            "After" | "Before" | "Equal" => {
                let Value::Time(other) = &args[0] else {
                    let got = args[0].go_type();
                    return Some(Err(format!(
                        "wrong type for value; expected time.Time; got {got}"
                    )));
                };
                let order = self.instant_cmp(other);
                Value::Bool(match name {
                    "After" => order.is_gt(),
                    "Before" => order.is_lt(),
                    _ => order.is_eq(),
                })
            }
            _ => return None,
        };
        Some(Ok(v))
    }
}

/// The methods [`GoTime::method`] answers.
const METHODS: [&str; 23] = [
    "Format",
    "Location",
    "After",
    "Before",
    "Equal",
    "Year",
    "Month",
    "Day",
    "Hour",
    "Minute",
    "Second",
    "Nanosecond",
    "YearDay",
    "Weekday",
    "Unix",
    "UnixMilli",
    "UnixMicro",
    "UnixNano",
    "UTC",
    "Local",
    "String",
    "GoString",
    "IsZero",
];

/// Go's `time.quote` (used by `GoString` for a zone name): ASCII as it is with `"` and
/// `\` escaped, every byte of anything else as `\xNN`.
fn go_time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() && c >= ' ' {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut b = [0; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_reads_both_clocks() {
        GoTime::mark_start();
        let (a, b) = (GoTime::now(), GoTime::now());
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64);
        assert!((system.unwrap_or(0) - a.unix()).abs() <= 2);
        // "2026-12-01 08:41:30.123456789 +0000 UTC m=+0.000123456"
        let s = a.string();
        let (_, m) = s
            .split_once(" m=+")
            .unwrap_or_else(|| panic!("no monotonic reading: {s}"));
        assert_eq!(m.len() - m.find('.').unwrap_or(0), 10, "{s}");
        assert!(b.ext() >= a.ext() && a.ext() >= 1);
        assert_eq!(a.wall() >> 63, 1, "the monotonic flag of Go's encoding");
        // UTC() and Local() drop the reading, as in Go.
        assert!(!a.utc().string().contains("m=") && !a.local().string().contains("m="));
        assert_eq!(a.utc().unix(), a.unix());
        assert!(a.go_string().ends_with(", time.Local)"));
    }

    #[test]
    fn local_zone_is_the_c_librarys() {
        // `date` reads TZ and /etc/localtime as localtime_r does, for the zone files Go
        // reads too; where Go would fall back to UTC, so does this.
        let t = GoTime::at_local(1_796_114_490, 0);
        if civil::local_is_utc_in_go(std::env::var_os("TZ").as_deref()) {
            assert_eq!(t.format("-0700 MST"), "+0000 UTC");
            return;
        }
        let out = std::process::Command::new("date")
            .args(["-d", "@1796114490", "+%z %Z"])
            .output();
        if let Some(out) = out.ok().filter(|o| o.status.success()) {
            let want = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(t.format("-0700 MST"), want);
        }
    }

    #[test]
    fn tz_is_read_as_go_reads_it() {
        let utc = |tz: &str| civil::local_is_utc_in_go(Some(std::ffi::OsStr::new(tz)));
        assert!(utc("") && utc(":") && utc("UTC") && utc("CET-1") && utc("No/Such_Zone"));
        assert!(!civil::local_is_utc_in_go(None));
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Paris").exists() {
            assert!(!utc("Europe/Paris") && !utc(":Europe/Paris"));
            assert!(!utc("/usr/share/zoneinfo/Europe/Paris"));
        }
    }

    #[test]
    fn methods_check_their_arguments() {
        let t = GoTime::at(0, 0, 3600, "CET");
        let call =
            |name, args: &[Value<'_>]| t.method(name, args).map(|r| r.map(|v| format!("{v:?}")));
        assert_eq!(call("Add", &[]), None);
        assert_eq!(
            call("Year", &[Value::Int(1)]),
            Some(Err("wrong number of args for Year: want 0 got 1".into()))
        );
        assert_eq!(
            call("Format", &[]),
            Some(Err("wrong number of args for Format: want 1 got 0".into()))
        );
        let want = "wrong type for value; expected string; got int";
        assert_eq!(call("Format", &[Value::Int(1)]), Some(Err(want.into())));
        assert_eq!(
            call("Format", &[Value::str("15:04 MST")]),
            Some(Ok("Str(\"01:00 CET\")".into()))
        );
        assert_eq!(call("Month", &[]), Some(Ok("Str(\"January\")".into())));
        assert_eq!(call("Weekday", &[]), Some(Ok("Str(\"Thursday\")".into())));
    }
}
