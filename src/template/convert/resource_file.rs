//! `confsync convert --write`'s edit of a resource file: `src` points at the converted
//! template and `engine = "tera"` is set, with everything else in the file (comments,
//! layout, order, other keys) left byte for byte as it was.
//!
//! The edit is textual at the spans TOML's parser reports for the two values, and the
//! result is parsed again and compared with the original: only `src` and `engine` may
//! differ, or the edit is refused.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Why a resource file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The file is not a resource file with a `[template]` table and a string `src`.
    #[error("not a resource file with a [template] src: {0}")]
    Parse(String),
    /// The edit would have changed more than `src` and `engine`.
    #[error("the edited file does not parse to the same resource: {0}")]
    Check(String),
}

/// The keys the edit changes, as the file spells them, and the spans of their values.
struct Located {
    /// The `[template]` table's key (`template`, or `Template` in a confd file).
    table: String,
    /// `src`'s key and value.
    src: (String, Range<usize>),
    /// `engine`'s key and value, when the file sets it.
    engine: Option<(String, Range<usize>)>,
}

/// The entry of `t` named `name`: exactly, else ignoring case (confd matches keys so).
fn entry<'t, 'i>(
    t: &'t DeTable<'i>,
    name: &str,
) -> Option<(String, &'t toml::Spanned<DeValue<'i>>)> {
    let exact = t.iter().find(|(k, _)| k.get_ref().as_ref() == name);
    exact
        .or_else(|| {
            t.iter()
                .find(|(k, _)| k.get_ref().eq_ignore_ascii_case(name))
        })
        .map(|(k, v)| (k.get_ref().to_string(), v))
}

fn locate(text: &str) -> Result<Located, EditError> {
    let parse = |m: &str| EditError::Parse(m.to_string());
    let root = DeTable::parse(text).map_err(|e| parse(e.message()))?;
    let Some((table, tpl)) = entry(root.get_ref(), "template") else {
        return Err(parse("missing table `template`"));
    };
    let DeValue::Table(tpl) = tpl.get_ref() else {
        return Err(parse("`template` is not a table"));
    };
    let string = |name: &str| -> Result<Option<(String, Range<usize>)>, EditError> {
        match entry(tpl, name) {
            None => Ok(None),
            Some((k, v)) if matches!(v.get_ref(), DeValue::String(_)) => Ok(Some((k, v.span()))),
            Some((k, _)) => Err(parse(&format!("`{k}` is not a string"))),
        }
    };
    let src = string("src")?.ok_or_else(|| parse("missing field `src`"))?;
    let engine = string("engine")?;
    Ok(Located { table, src, engine })
}

/// A TOML basic string holding `s`.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `text` (a resource file) with `src = new_src` and `engine = "tera"`. Keys are found as
/// confd finds them (exactly, else ignoring case), so a confd resource file can be edited.
pub fn point_at_tera(text: &str, new_src: &str) -> Result<String, EditError> {
    let found = locate(text)?;
    let src = found.src.1.clone();
    // Edits from the end of the file backwards, so earlier spans stay valid.
    let mut edits: Vec<(Range<usize>, String)> = vec![(src.clone(), quoted(new_src))];
    match &found.engine {
        Some((_, engine)) => edits.push((engine.clone(), quoted("tera"))),
        None => edits.push(insert_engine(text, src)),
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (range, with) in edits {
        out.replace_range(range, &with);
    }
    check(text, &out, new_src, &found)?;
    Ok(out)
}

/// Where `engine = "tera"` goes: a line of its own after `src`'s, written as `src`'s
/// key is (`src`, `template.src`, quoted), or after the value inside an inline table.
fn insert_engine(text: &str, src: Range<usize>) -> (Range<usize>, String) {
    let line_start = text[..src.start].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line_start..src.start];
    let own_line = prefix
        .trim_end()
        .strip_suffix('=')
        .map(str::trim)
        .filter(|key| is_key_path(key))
        .filter(|_| !prefix.trim_start().starts_with('{'));
    match own_line {
        Some(key) => {
            let indent = &prefix[..prefix.len() - prefix.trim_start().len()];
            let engine_key = match key.rsplit_once('.') {
                Some((head, _)) => format!("{head}.engine"),
                None => "engine".to_string(),
            };
            let (at, newline) = match text[src.end..].find('\n') {
                Some(i) => {
                    let nl = if text[..src.end + i].ends_with('\r') {
                        "\r\n"
                    } else {
                        "\n"
                    };
                    (src.end + i + 1, nl)
                }
                None => (text.len(), "\n"),
            };
            let mut line = String::new();
            if at == text.len() && !text.ends_with('\n') {
                line.push_str(newline);
            }
            line.push_str(&format!(
                "{indent}{engine_key} = {}{newline}",
                quoted("tera")
            ));
            if at == text.len() && !text.ends_with('\n') {
                line.truncate(line.len() - newline.len());
            }
            (at..at, line)
        }
        None => (src.end..src.end, format!(", engine = {}", quoted("tera"))),
    }
}

/// A dotted TOML key ending in `src` (`src`, `"src"`, `template.src`, `Src`, ...).
fn is_key_path(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or("").trim();
    let last = last.trim_matches(|c| c == '"' || c == '\'');
    last.eq_ignore_ascii_case("src")
        && key.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | '\'' | ' ' | '\t')
        })
}

/// The edited file must be the original with only `src` and `engine` changed.
fn check(before: &str, after: &str, new_src: &str, found: &Located) -> Result<(), EditError> {
    let parse = |t: &str| {
        toml::from_str::<toml::Table>(t).map_err(|e| EditError::Check(e.message().to_string()))
    };
    let mut want = parse(before)?;
    let got = parse(after)?;
    let Some(toml::Value::Table(tpl)) = want.get_mut(&found.table) else {
        return Err(EditError::Check("no [template] table".into()));
    };
    tpl.insert(found.src.0.clone(), toml::Value::String(new_src.into()));
    let engine = found.engine.as_ref().map_or("engine", |(k, _)| k.as_str());
    tpl.insert(engine.into(), toml::Value::String("tera".into()));
    if want != got {
        return Err(EditError::Check("other keys changed".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_engine_after_src_and_keeps_the_rest() {
        let text = "# haproxy\n[template]\n  src = \"haproxy.cfg.tmpl\" # the template\n  dest = \"/etc/haproxy.cfg\"\nkeys = [\"/app\"]\n";
        let out = point_at_tera(text, "haproxy.cfg.tmpl.tera").unwrap();
        assert_eq!(
            out,
            "# haproxy\n[template]\n  src = \"haproxy.cfg.tmpl.tera\" # the template\n  engine = \"tera\"\n  dest = \"/etc/haproxy.cfg\"\nkeys = [\"/app\"]\n"
        );
    }

    #[test]
    fn replaces_an_existing_engine() {
        let text = "[template]\nsrc = 'a.tmpl'\ndest = \"b\"\nengine = \"go\"   # was go\n";
        let out = point_at_tera(text, "a.tmpl.tera").unwrap();
        assert_eq!(
            out,
            "[template]\nsrc = \"a.tmpl.tera\"\ndest = \"b\"\nengine = \"tera\"   # was go\n"
        );
    }

    #[test]
    fn inline_tables_dotted_keys_crlf_and_no_final_newline() {
        let out = point_at_tera("template = { src = \"a\", dest = \"b\" }\n", "a.tera").unwrap();
        assert_eq!(
            out,
            "template = { src = \"a.tera\", engine = \"tera\", dest = \"b\" }\n"
        );
        let out = point_at_tera("template.src = \"a\"\ntemplate.dest = \"b\"", "a.tera").unwrap();
        assert_eq!(
            out,
            "template.src = \"a.tera\"\ntemplate.engine = \"tera\"\ntemplate.dest = \"b\""
        );
        let out = point_at_tera("[template]\r\nsrc = \"a\"\r\ndest = \"b\"\r\n", "a.tera").unwrap();
        assert_eq!(
            out,
            "[template]\r\nsrc = \"a.tera\"\r\nengine = \"tera\"\r\ndest = \"b\"\r\n"
        );
        let out = point_at_tera("[template]\ndest = \"b\"\nsrc = \"a\"", "a.tera").unwrap();
        assert_eq!(
            out,
            "[template]\ndest = \"b\"\nsrc = \"a.tera\"\nengine = \"tera\""
        );
    }

    #[test]
    fn keys_of_a_confd_file_in_any_case() {
        let text = "[Template]\nSrc = \"a.tmpl\"\nDest = \"b\"\nuid = -1\n";
        let out = point_at_tera(text, "a.tmpl.tera").unwrap();
        assert_eq!(
            out,
            "[Template]\nSrc = \"a.tmpl.tera\"\nengine = \"tera\"\nDest = \"b\"\nuid = -1\n"
        );
        let text = "[template]\nSRC = \"a\"\nEngine = \"go\"\n";
        let out = point_at_tera(text, "a.tera").unwrap();
        assert_eq!(out, "[template]\nSRC = \"a.tera\"\nEngine = \"tera\"\n");
        // An exact match wins over one that ignores case, as in confd.
        let text = "[template]\nSRC = \"x\"\nsrc = \"a\"\n";
        let out = point_at_tera(text, "a.tera").unwrap();
        assert_eq!(
            out,
            "[template]\nSRC = \"x\"\nsrc = \"a.tera\"\nengine = \"tera\"\n"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit() {
        assert!(matches!(
            point_at_tera("[template]\ndest = 1\n", "x"),
            Err(EditError::Parse(_))
        ));
    }
}
