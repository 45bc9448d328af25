//! Times as people read them on the status page and in `confsync status`: UTC dates
//! (`2026-12-01 17:08:09Z`) and short ages (`4s`, `3m 2s`, `5h 1m`, `2d 3h`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds of `t` (0 for a time before 1970).
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `YYYY-MM-DD HH:MM:SSZ` of Unix seconds `secs` (whole seconds, UTC).
pub fn utc(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as i64
    } else {
        0
    };
    let (days, rem) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A short age: the two largest units.
pub fn age(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_796_144_889.7), "2026-12-01 17:08:09Z");
        assert_eq!(utc(f64::NAN), "1970-01-01 00:00:00Z");
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(age(4.9), "4s");
        assert_eq!(age(182.0), "3m 2s");
        assert_eq!(age(18_060.0), "5h 1m");
        assert_eq!(age(183_600.0), "2d 3h");
        assert_eq!(age(-3.0), "0s");
    }
}
