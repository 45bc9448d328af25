//! confd's command line, parsed by the rules of Go's `flag` package: `-f` and `--f` are
//! the same; `-f=v` and `-f v` give a value; booleans take only `-f` or `-f=true|false`;
//! `--` ends the flags; an unknown flag is a usage error. The maintained fork's form,
//! `confd [flags] BACKEND [flags]`, is accepted too: a backend name where confd would stop
//! at its first argument names the backend, and flags may follow it.

use super::spec::Kind::{Bool, Int, List, Str};
use super::spec::{BACKEND_WORDS, Config, Origin, SPECS, Spec, Value, spec_of};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// `-h` / `-help`: print [`usage`] and exit 0.
    Help,
    /// `-version`: print the version and exit 0.
    Version,
    /// Run with these flags (confd.toml not read yet).
    Run(Config),
}

/// A usage error: the message Go's `flag` package would print (exit 2, with [`usage`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses confd's arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let mut cfg = Config::default();
    let mut backend_word: Option<&str> = None;
    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_str();
        i += 1;
        if s == "--" {
            if let Some(extra) = args.get(i) {
                return Err(UsageError(format!(
                    "unexpected argument {extra:?} after `--` (confd ignores arguments after its flags; confsync refuses them)"
                )));
            }
            break;
        }
        if s.len() < 2 || !s.starts_with('-') {
            if backend_word.is_none() && BACKEND_WORDS.contains(&s) {
                if *cfg.origin("backend") == Origin::Flag && cfg.str("backend") != s {
                    return Err(UsageError(format!(
                        "the backend is given twice: -backend {} and {s}",
                        cfg.str("backend")
                    )));
                }
                cfg.set("backend", Value::Str(s.to_string()), Origin::Flag);
                backend_word = Some(s);
                continue;
            }
            return Err(UsageError(format!(
                "unexpected argument {s:?} (confd ignores arguments after its flags; confsync refuses them)"
            )));
        }
        let body = s.strip_prefix("--").unwrap_or(&s[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(UsageError(format!("bad flag syntax: {s}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        // The fork's short `-n` for `--node`, after its BACKEND word.
        let name = if name == "n" && backend_word.is_some() {
            "node"
        } else {
            name
        };
        let Some(spec) = spec_of(name) else {
            if name == "h" || name == "help" {
                return Ok(Parsed::Help);
            }
            return Err(UsageError(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let value = match (spec.kind, inline) {
            (Bool, None) => Value::Bool(true),
            (Bool, Some(v)) => Value::Bool(parse_bool(v).ok_or_else(|| {
                UsageError(format!(
                    "invalid boolean value {v:?} for -{name}: parse error"
                ))
            })?),
            (_, Some(v)) => typed(spec, v)?,
            (_, None) => match args.get(i) {
                Some(v) => {
                    i += 1;
                    typed(spec, v)?
                }
                None => return Err(UsageError(format!("flag needs an argument: -{name}"))),
            },
        };
        if let (Value::Str(b), Some(w)) = (&value, backend_word)
            && spec.name == "backend"
            && b != w
        {
            return Err(UsageError(format!(
                "the backend is given twice: {w} and -backend {b}"
            )));
        }
        let value = match (value, cfg.get(spec.name)) {
            (Value::List(new), Some(Value::List(old))) => Value::List([old.clone(), new].concat()),
            (v, _) => v,
        };
        cfg.set(spec.name, value, Origin::Flag);
    }
    if cfg.flag("version") {
        return Ok(Parsed::Version);
    }
    Ok(Parsed::Run(cfg))
}

fn typed(spec: &Spec, v: &str) -> Result<Value, UsageError> {
    Ok(match spec.kind {
        Int => Value::Int(parse_int(v).map_err(|why| {
            UsageError(format!(
                "invalid value {v:?} for flag -{}: {why}",
                spec.name
            ))
        })?),
        List => Value::List(vec![v.to_string()]),
        _ => Value::Str(v.to_string()),
    })
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(v, 0, 64)`, as `flag` parses an `int`: an optional sign, then
/// `0x`/`0o`/`0b` prefixes or a leading `0` for octal, and `_` between digits.
pub fn parse_int(v: &str) -> Result<i64, &'static str> {
    let (neg, body) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Underscores only between digits, or right after a base prefix.
    let bytes = digits.as_bytes();
    let bad_underscore = bytes.windows(2).any(|w| w == b"__")
        || bytes.last() == Some(&b'_')
        || (!prefixed && bytes.first() == Some(&b'_'));
    if digits.is_empty() || bad_underscore {
        return Err("parse error");
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let mag = u64::from_str_radix(&clean, radix).map_err(|_| "parse error")?;
    if neg {
        if mag > i64::MAX as u64 + 1 {
            return Err("value out of range");
        }
        Ok(-(mag as i128) as i64)
    } else {
        i64::try_from(mag).map_err(|_| "value out of range")
    }
}

/// The usage text Go's `flag` package prints for confd's flags (to stderr, after a
/// usage error or for `-h`).
pub fn usage() -> String {
    let mut out = String::from("Usage of confd:\n");
    for s in SPECS {
        let line = match s.kind {
            Bool => format!("  -{}", s.name),
            Int => format!("  -{} int", s.name),
            Str => format!("  -{} string", s.name),
            List => format!("  -{} value", s.name),
        };
        out.push_str(&line);
        out.push_str(if line.len() <= 4 { "\t" } else { "\n    \t" });
        out.push_str(s.help);
        match s.kind {
            Str if !s.default.is_empty() => out.push_str(&format!(" (default {:?})", s.default)),
            Int => out.push_str(&format!(" (default {})", s.default)),
            _ => {}
        }
        out.push('\n');
    }
    out.push_str(
        "(confsync in confd's command line; see \"Moving from confd\" in confsync's README)\n",
    );
    out
}
