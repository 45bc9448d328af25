//! Durations in config files: a number of seconds (`30`) or a string with a unit
//! (`"500ms"`, `"30s"`, `"2m"`, `"1h"`).

use std::time::Duration;

use serde::Deserialize;

/// A duration as written in TOML, before validation.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Raw {
    /// Whole seconds.
    Secs(i64),
    /// Fractional seconds.
    Float(f64),
    /// A number with a unit.
    Text(String),
}

impl Raw {
    /// The duration, or why it is not one.
    pub fn to_duration(&self) -> Result<Duration, String> {
        match self {
            Raw::Secs(s) if *s >= 0 => secs_f64(*s as f64, &s.to_string()),
            Raw::Float(f) if f.is_finite() && *f >= 0.0 => secs_f64(*f, &f.to_string()),
            Raw::Text(t) => parse(t),
            _ => Err("a duration cannot be negative".into()),
        }
    }
}

/// A duration that can be turned off: `0`, `"0s"`, `"off"` or `""` give `None`.
pub fn optional(raw: &Raw) -> Result<Option<Duration>, String> {
    if let Raw::Text(t) = raw
        && matches!(t.trim(), "off" | "")
    {
        return Ok(None);
    }
    raw.to_duration().map(|d| Some(d).filter(|d| !d.is_zero()))
}

/// Reads a duration flag or environment variable as written (checked in validation).
pub fn raw_arg(text: &str) -> Result<Raw, String> {
    Ok(Raw::Text(text.to_owned()))
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as \"500ms\", \"30s\" or \"2m\""))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    secs_f64(secs, text)
}

/// The longest duration accepted anywhere (timeouts, waits, intervals): a year, so that
/// adding one to a clock reading can never overflow.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seconds as a duration, or an error naming `text` when they are out of range.
fn secs_f64(secs: f64, text: &str) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX => Ok(d),
        _ => Err(format!(
            "{text:?} is too long a duration (at most 365 days)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("7").unwrap(), Duration::from_secs(7));
        assert!(parse("5 parsecs").is_err());
        assert!(parse("").is_err());
        assert_eq!(Raw::Secs(3).to_duration().unwrap(), Duration::from_secs(3));
        assert!(Raw::Secs(-1).to_duration().is_err());
        assert!(
            parse("99999999999999999999999h").is_err(),
            "no overflow panic"
        );
        assert!(Raw::Float(1e300).to_duration().is_err());
    }

    #[test]
    fn optional_durations_turn_off() {
        let text = |t: &str| optional(&Raw::Text(t.into()));
        assert_eq!(text("off").unwrap(), None);
        assert_eq!(text("").unwrap(), None);
        assert_eq!(text("0s").unwrap(), None);
        assert_eq!(optional(&Raw::Secs(0)).unwrap(), None);
        assert_eq!(text("10m").unwrap(), Some(Duration::from_secs(600)));
        assert_eq!(
            optional(&Raw::Secs(30)).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert!(text("soon").is_err());
    }
}
