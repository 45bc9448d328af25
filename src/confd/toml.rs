//! confd.toml, read as confd reads it: decoded over the settings the flags already set
//! (so a key in the file beats a flag), keys matched as Go's TOML decoder matches them
//! (exactly, else ignoring case), values of the type confd's field has. Unlike confd, an
//! unknown key is an error naming it, with the file and line.

use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::spec::{Config, Kind, Origin, SPECS, Spec, Value};
use crate::config::{ConfigError, line_of};

/// Keys confd decodes into fields it then overwrites or never reads: accepted, with a
/// warning that they do nothing (as in confd).
const NO_EFFECT: &[&str] = &[
    "configdir",
    "templatedir",
    "configfile",
    "printversion",
    "role",
];

/// Reads `path` over `cfg` as confd does: nothing happens when the file does not exist;
/// otherwise every key it sets replaces the value the flags gave. Returns warnings.
pub fn read_file(cfg: &mut Config, path: &Path) -> Result<Vec<ConfigError>, Vec<ConfigError>> {
    let err = |message: String| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            message,
        }]
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("cannot read confd's config file: {e}"))),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        err(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    apply(cfg, path, &text)
}

/// Applies the TOML `text` (the contents of `path`) over `cfg`; every error at once.
pub fn apply(
    cfg: &mut Config,
    path: &Path,
    text: &str,
) -> Result<Vec<ConfigError>, Vec<ConfigError>> {
    let at = |span: std::ops::Range<usize>, message: String| ConfigError {
        file: path.to_path_buf(),
        line: Some(line_of(text, span.start)),
        message,
    };
    let table = DeTable::parse(text).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in table.get_ref() {
        let k = key.get_ref().as_ref();
        let Some(spec) = spec_for_key(k) else {
            if NO_EFFECT.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                warnings.push(at(
                    key.span(),
                    format!("`{k}` has no effect (nor has it in confd)"),
                ));
            } else {
                errors.push(at(
                    key.span(),
                    format!("unknown key `{k}` in confd's config file"),
                ));
            }
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == spec.name) {
            errors.push(at(
                key.span(),
                format!("`{k}` and `{first}` set the same setting (`{}`)", spec.key),
            ));
            continue;
        }
        seen.push((spec.name, k.to_string()));
        match convert(spec, value) {
            Ok(v) => {
                let origin = Origin::File {
                    path: path.to_path_buf(),
                    line: line_of(text, key.span().start),
                };
                cfg.set(spec.name, v, origin);
            }
            Err(why) => errors.push(at(value.span(), format!("`{k}`: {why}"))),
        }
    }
    // The table is sorted by key; messages read better in the file's order.
    errors.sort_by_key(|e| e.line);
    warnings.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// The setting a confd.toml key sets: an exact match first, else one ignoring case.
fn spec_for_key(k: &str) -> Option<&'static Spec> {
    let keyed = || SPECS.iter().filter(|s| !s.key.is_empty());
    keyed()
        .find(|s| s.key == k)
        .or_else(|| keyed().find(|s| s.key.eq_ignore_ascii_case(k)))
}

fn convert(spec: &Spec, value: &Spanned<DeValue<'_>>) -> Result<Value, String> {
    let v = value.get_ref();
    let wrong = |want: &str| format!("expected {want}, found {}", v.type_str());
    Ok(match (spec.kind, v) {
        (Kind::Bool, DeValue::Boolean(b)) => Value::Bool(*b),
        (Kind::Bool, _) => return Err(wrong("a boolean")),
        (Kind::Str, DeValue::String(s)) => Value::Str(s.to_string()),
        (Kind::Str, _) => return Err(wrong("a string")),
        (Kind::Int, DeValue::Integer(i)) => Value::Int(
            i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| "integer out of range".to_string())?,
        ),
        (Kind::Int, _) => return Err(wrong("an integer")),
        (Kind::List, DeValue::Array(items)) => Value::List(
            items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok(s.to_string()),
                    other => Err(format!(
                        "expected an array of strings, found a {} in it",
                        other.type_str()
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        (Kind::List, _) => return Err(wrong("an array of strings")),
    })
}

/// Fills the TLS file settings still empty from `CONFD_CLIENT_CAKEYS`, `CONFD_CLIENT_CERT`
/// and `CONFD_CLIENT_KEY`, as confd does after reading its file; `env` looks a variable up.
pub fn apply_env(cfg: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    for (var, name) in [
        ("CONFD_CLIENT_CAKEYS", "client-ca-keys"),
        ("CONFD_CLIENT_CERT", "client-cert"),
        ("CONFD_CLIENT_KEY", "client-key"),
    ] {
        if let Some(v) = env(var).filter(|v| !v.is_empty())
            && cfg.str(name).is_empty()
        {
            cfg.set(name, Value::Str(v), Origin::Env(var));
        }
    }
}
