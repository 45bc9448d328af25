//! Civil time: the calendar fields of an instant in its zone (proleptic Gregorian, as
//! Go's), and the local zone's offset and abbreviation from the C library.

use std::ffi::CStr;
use std::sync::OnceLock;

use super::{GoTime, NANOS};

/// The calendar fields of a time in its zone.
pub(super) struct Civil {
    pub year: i64,
    /// 1 (January) to 12.
    pub month: usize,
    /// 1 to 31.
    pub day: i64,
    /// Day of the year, 1 to 366.
    pub yday: i64,
    pub hour: i64,
    pub min: i64,
    pub sec: i64,
    /// 0 (Sunday) to 6.
    pub weekday: usize,
}

impl GoTime {
    /// The calendar fields in the time's zone.
    pub(super) fn civil(&self) -> Civil {
        let local = i128::from(self.unix) + i128::from(self.offset);
        let days = local.div_euclid(86_400) as i64;
        let secs = local.rem_euclid(86_400) as i64;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month: month as usize,
            day,
            yday: days - days_from_civil(year, 1, 1) + 1,
            hour: secs / 3600,
            min: secs / 60 % 60,
            sec: secs % 60,
            weekday: (days + 4).rem_euclid(7) as usize, // 1970-01-01 was a Thursday
        }
    }
}

/// Seconds and nanoseconds with the nanoseconds below one second.
pub(super) fn normalize(secs: i64, nanos: u32) -> (i64, u32) {
    let carry = i64::from(nanos) / NANOS;
    (
        secs.saturating_add(carry),
        (i64::from(nanos) % NANOS) as u32,
    )
}

/// A time before 1970 from how far before it is.
pub(super) fn negative(d: std::time::Duration) -> (i64, u32) {
    let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match d.subsec_nanos() {
        0 => (secs, 0),
        n => (secs - 1, 1_000_000_000 - n),
    }
}

/// The local zone's offset and abbreviation at `unix`, from `localtime_r`; UTC where
/// Go's `time.Local` would be UTC, or the C library cannot tell.
pub(super) fn local_zone(unix: i64) -> (i32, String) {
    unsafe extern "C" {
        /// POSIX `tzset` (the libc crate does not declare it).
        fn tzset();
    }
    static GO_UTC: OnceLock<bool> = OnceLock::new();
    let go_utc = *GO_UTC.get_or_init(|| {
        // SAFETY: tzset takes no arguments; it reads TZ and the zone files into libc's
        // own state. OnceLock runs it once, before any localtime_r below.
        unsafe { tzset() };
        local_is_utc_in_go(std::env::var_os("TZ").as_deref())
    });
    if go_utc {
        return (0, "UTC".into());
    }
    // time_t is 64 bits on every target this daemon builds for.
    let t: libc::time_t = unix;
    // SAFETY: `tm` is plain old data that localtime_r fills in; all-zero is a valid
    // value for it. localtime_r is thread-safe and writes only into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return (0, "UTC".into());
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null tm_zone points to a NUL-terminated abbreviation in libc's
        // zone data, which lives as long as the process.
        unsafe { CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (i32::try_from(tm.tm_gmtoff).unwrap_or(0), zone)
}

/// Whether Go would make `time.Local` UTC for this `TZ` where the C library may not:
/// Go takes `TZ` only as the name of a zone file (`Europe/Paris`, `:Europe/Paris`,
/// `/path/to/file`), never as a POSIX rule such as `CET-1EST`, and falls back to UTC
/// when no such file exists; `TZ=""` means UTC to both. (Go's `ZONEINFO` is not
/// looked at.) With `TZ` unset both read `/etc/localtime`.
pub(super) fn local_is_utc_in_go(tz: Option<&std::ffi::OsStr>) -> bool {
    let Some(tz) = tz else { return false };
    let tz = tz.to_string_lossy();
    let tz = tz.strip_prefix(':').unwrap_or(&tz);
    let is_tzfile = |path: &str| {
        let mut magic = [0; 4];
        std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && &magic == b"TZif"
    };
    match tz {
        "" | "UTC" => true,
        _ if tz.starts_with('/') => !is_tzfile(tz),
        _ => ![
            "/usr/share/zoneinfo/",
            "/usr/share/lib/zoneinfo/",
            "/usr/lib/locale/TZ/",
        ]
        .iter()
        .any(|dir| is_tzfile(&format!("{dir}{tz}"))),
    }
}

/// The name Go gives `time.Local` (what `Location` prints): `Local` when `TZ` is unset
/// or `/etc/localtime`, the zone's name when `TZ` names a zone file, else `UTC`.
pub(super) fn local_name() -> String {
    let Some(tz) = std::env::var_os("TZ") else {
        return "Local".into();
    };
    if local_is_utc_in_go(Some(&tz)) {
        return "UTC".into();
    }
    let tz = tz.to_string_lossy();
    let tz = tz.strip_prefix(':').unwrap_or(&tz);
    if tz == "/etc/localtime" {
        "Local".into()
    } else {
        tz.to_string()
    }
}

/// Year, month (1-12) and day of the `days`th day since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day)
}

/// Days since 1970-01-01 of the given date (inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
