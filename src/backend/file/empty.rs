//! An empty data file is an error, unless it says it is empty.
//!
//! A file that is empty, or holds only white space and comments (in YAML also a null
//! document: `---`, `~`, `null`), is taken for a mistake: a writer that truncated the
//! file and has not written it yet, or a `> file` redirect gone wrong. confd reads such a
//! YAML file as "no keys", which empties every resource rendering from it and reloads
//! the proxy without servers. confsync refuses it with an error naming the file, and the
//! file's last good data stays in use (see [`super::settle`]).
//!
//! A file that means to hold no keys says so:
//! - YAML and JSON: a map, such as `{}` (or any map whose values give no keys);
//! - TOML, which cannot write an empty document: a table, such as `[unused]`. A TOML
//!   file with nothing but comments is an error.

use saphyr_parser::{Event, Parser};

/// The formats of data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    /// The format a file's extension names: YAML, as confd reads it, for anything but
    /// `.toml` and `.json`.
    pub fn of(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::Toml,
            Some("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// `Ok` when `text`, a document without keys in `format`, says it holds none on
/// purpose; otherwise the error for an empty file.
pub fn check(format: Format, text: &str) -> Result<(), String> {
    let explicit = match format {
        Format::Yaml => yaml_root_is_map(text),
        Format::Json => text.trim_start().starts_with('{'),
        Format::Toml => text.parse::<toml::Table>().is_ok_and(|t| !t.is_empty()),
    };
    if explicit {
        return Ok(());
    }
    Err(message(format).to_string())
}

/// The error for an empty file, before any parser's own (JSON's "EOF while parsing").
pub fn check_blank(format: Format, text: &str) -> Result<(), String> {
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(message(format).to_string());
    }
    Ok(())
}

fn message(format: Format) -> &'static str {
    match format {
        Format::Toml => {
            "the file is empty (nothing but white space or comments): refused, since an \
             empty file is more likely a truncated one than a wish for no keys (TOML has no \
             empty document: a table such as `[unused]` says no keys on purpose)"
        }
        _ => {
            "the file is empty (nothing but white space, comments or a null document): \
             refused, since an empty file is more likely a truncated one than a wish for \
             no keys (write `{}` for no keys on purpose)"
        }
    }
}

/// True when the first document's root node is a map (an alias or a parse error is not,
/// but those have failed the read already).
fn yaml_root_is_map(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    while let Some(Ok((ev, _))) = parser.next_event() {
        match ev {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
            Event::MappingStart(..) => return true,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_comment_only_files_are_empty() {
        for text in ["", "\n", "  \n\t\n", "\u{feff}"] {
            for f in [Format::Yaml, Format::Json, Format::Toml] {
                assert!(check_blank(f, text).is_err(), "{f:?} {text:?}");
            }
        }
        for text in ["# c\n", "---\n", "--- # c\n", "~\n", "null\n", "...\n"] {
            assert!(check(Format::Yaml, text).is_err(), "{text:?}");
        }
        assert!(check(Format::Json, "null").is_err());
        assert!(check(Format::Toml, "# empty\n").is_err());
    }

    #[test]
    fn an_explicit_empty_map_is_not() {
        for text in ["{}\n", "--- {}\n", "# none\n{}\n", "&a {}\n", "a: ~\n"] {
            assert_eq!(check(Format::Yaml, text), Ok(()), "{text:?}");
        }
        assert_eq!(check(Format::Json, " {}"), Ok(()));
        assert_eq!(check(Format::Toml, "# none\n[unused]\n"), Ok(()));
        assert_eq!(check_blank(Format::Yaml, "{}"), Ok(()));
    }

    #[test]
    fn the_message_says_how_to_mean_it() {
        assert!(message(Format::Yaml).contains("`{}`"));
        assert!(message(Format::Toml).contains("[unused]"));
    }
}
