//! `--service-file`: several registrations in one TOML file, one `[[service]]` table each.
//!
//! ```toml
//! [[service]]
//! key = "/app/servers/web1"
//! value = "127.0.0.1:8001"
//! ttl = 3
//! check = { http = "http://127.0.0.1:8001/health", interval = "1s", timeout = "500ms", rise = 2, fall = 2 }
//!
//! [[service]]
//! key = "/app/servers/web2"
//! value = "127.0.0.1:8002"
//! ttl = 3
//! [service.check]
//! tcp = "127.0.0.1:8002"
//! ```
//!
//! A check has exactly one of `http`, `tcp` or `cmd`. Unknown fields are errors; every
//! error is reported at once with the file and line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    CheckSpec, DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE, DEFAULT_TIMEOUT, Probe, Registration,
    check_key, check_ttl,
};
use crate::config::{ConfigError, duration, line_of};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    service: Vec<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    key: Spanned<String>,
    value: String,
    ttl: Spanned<i64>,
    check: Option<Spanned<RawCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    http: Option<String>,
    tcp: Option<String>,
    cmd: Option<String>,
    interval: Option<Spanned<duration::Raw>>,
    timeout: Option<Spanned<duration::Raw>>,
    rise: Option<u32>,
    fall: Option<u32>,
}

/// Reads and validates `file`; every problem is returned, each with its line.
pub fn load(file: &Path) -> Result<Vec<Registration>, Vec<ConfigError>> {
    let err = |line: Option<usize>, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![err(None, format!("cannot read the service file: {e}"))])?;
    let raw: RawFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| line_of(&text, s.start));
        vec![err(line, e.message().trim().to_string())]
    })?;
    let at = |s: Range<usize>| Some(line_of(&text, s.start));
    let mut errors = Vec::new();
    if raw.service.is_empty() {
        errors.push(err(None, "no [[service]] tables".into()));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut regs = Vec::new();
    for svc in raw.service {
        let key = svc.key.get_ref().clone();
        let key_line = at(svc.key.span());
        if let Err(m) = check_key(&key) {
            errors.push(err(key_line, format!("`key`: {m}")));
        } else if let Some(first) = seen.insert(key.clone(), key_line.unwrap_or(0)) {
            errors.push(err(
                key_line,
                format!("key {key} is already registered at line {first}"),
            ));
        }
        let ttl = u64::try_from(*svc.ttl.get_ref()).unwrap_or(0);
        if let Err(m) = check_ttl(ttl) {
            errors.push(err(at(svc.ttl.span()), format!("`ttl`: {m}")));
        }
        let check = match svc.check {
            None => None,
            Some(c) => {
                let line = at(c.span());
                match check_spec(c.into_inner(), line, &at) {
                    Ok(spec) => Some(spec),
                    Err(es) => {
                        errors.extend(
                            es.into_iter()
                                .map(|(l, m)| err(l, format!("key {key}: {m}"))),
                        );
                        None
                    }
                }
            }
        };
        regs.push(Registration {
            key,
            value: svc.value,
            ttl,
            check,
        });
    }
    if errors.is_empty() {
        Ok(regs)
    } else {
        Err(errors)
    }
}

type LineErrors = Vec<(Option<usize>, String)>;

fn check_spec(
    c: RawCheck,
    line: Option<usize>,
    at: &dyn Fn(Range<usize>) -> Option<usize>,
) -> Result<CheckSpec, LineErrors> {
    let mut errors: LineErrors = Vec::new();
    let probe = match (&c.http, &c.tcp, &c.cmd) {
        (Some(u), None, None) => Probe::http(u),
        (None, Some(a), None) => Probe::tcp(a),
        (None, None, Some(cmd)) => Probe::cmd(cmd),
        (None, None, None) => Err("a check needs one of `http`, `tcp` or `cmd`".into()),
        _ => Err("a check takes only one of `http`, `tcp` or `cmd`".into()),
    };
    let probe = probe.map_err(|m| errors.push((line, m))).ok();
    let mut dur = |name: &str, v: &Option<Spanned<duration::Raw>>, default| match v {
        None => default,
        Some(s) => match s.get_ref().to_duration() {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                errors.push((at(s.span()), format!("`{name}` must be more than zero")));
                default
            }
            Err(e) => {
                errors.push((at(s.span()), format!("`{name}`: {e}")));
                default
            }
        },
    };
    let interval = dur("interval", &c.interval, DEFAULT_INTERVAL);
    let timeout = dur("timeout", &c.timeout, DEFAULT_TIMEOUT);
    let (rise, fall) = (
        c.rise.unwrap_or(DEFAULT_RISE),
        c.fall.unwrap_or(DEFAULT_FALL),
    );
    if rise == 0 || fall == 0 {
        errors.push((line, "`rise` and `fall` must be at least 1".into()));
    }
    match probe {
        Some(probe) if errors.is_empty() => Ok(CheckSpec {
            probe,
            interval,
            timeout,
            rise,
            fall,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Vec<Registration>, Vec<ConfigError>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("services.toml");
        std::fs::write(&p, text).unwrap();
        load(&p)
    }

    #[test]
    fn reads_several_services() {
        let regs = load_text(
            "[[service]]\nkey = \"/a/1\"\nvalue = \"x:1\"\nttl = 3\n\
             check = { http = \"http://127.0.0.1:1/h\", interval = \"500ms\", fall = 3 }\n\n\
             [[service]]\nkey = \"/a/2\"\nvalue = \"x:2\"\nttl = 5\n[service.check]\ntcp = \"127.0.0.1:2\"\n\n\
             [[service]]\nkey = \"/a/3\"\nvalue = \"x:3\"\nttl = 1\n",
        )
        .unwrap();
        assert_eq!(regs.len(), 3);
        let c = regs[0].check.as_ref().unwrap();
        assert_eq!((c.interval.as_millis(), c.rise, c.fall), (500, 2, 3));
        assert_eq!(
            regs[1].check.as_ref().unwrap().probe,
            Probe::Tcp("127.0.0.1:2".into())
        );
        assert!(regs[2].check.is_none());
    }

    #[test]
    fn unknown_fields_name_file_and_line() {
        let e =
            load_text("[[service]]\nkey = \"/a\"\nvalue = \"v\"\nttl = 3\nttls = 4\n").unwrap_err();
        let text = e[0].to_string();
        assert!(text.contains("services.toml:5:"), "{text}");
        assert!(text.contains("ttls"), "{text}");
    }

    #[test]
    fn every_error_at_once() {
        let e = load_text(
            "[[service]]\nkey = \"/a\"\nvalue = \"v\"\nttl = 0\n\n\
             [[service]]\nkey = \"/a\"\nvalue = \"w\"\nttl = 2\n\
             check = { http = \"https://h/\", interval = \"2 parsecs\" }\n",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.len(), 4, "{text:#?}");
        assert!(
            text[0].contains(":4:") && text[0].contains("ttl"),
            "{text:#?}"
        );
        assert!(
            text[1].contains(":7:") && text[1].contains("already"),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains(":10:") && t.contains("https://h/")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains(":10:") && t.contains("parsecs")),
            "{text:#?}"
        );
    }
}
