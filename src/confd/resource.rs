//! Resource files (`conf.d/*.toml`) read as confd reads them: found recursively under
//! `conf.d` (any name ending in `toml`), keys matched ignoring case, keys and tables it
//! does not know ignored (confsync warns about each), `uid`/`gid` of `-1` meaning unset.

use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A key the file sets that confd ignores: the 1-based line and what was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Line of the key.
    pub line: usize,
    /// A message naming the key.
    pub message: String,
}

/// Deserializes the resource file `text` into `T` (a `{ template: ... }` struct) the way
/// confd's TOML decoder fills its struct: `template` and the `fields` of its table matched
/// exactly, else ignoring case; everything else left out and reported. Spans (and so the
/// lines of later errors) are those of `text`.
pub fn from_str<T: DeserializeOwned>(
    text: &str,
    fields: &[&str],
) -> Result<(T, Vec<Ignored>), toml::de::Error> {
    let root = DeTable::parse(text)?;
    let span = root.span();
    let line = |s: std::ops::Range<usize>| crate::config::line_of(text, s.start);
    let mut ignored = Vec::new();
    let mut out = DeTable::new();
    for (key, value) in exact_first(root.into_inner(), &["template"]) {
        let k = key.get_ref().to_string();
        if out.is_empty() && matches(&k, "template", &["template"]) {
            let vspan = value.span();
            let value = match value.into_inner() {
                DeValue::Table(t) => DeValue::Table(template_table(t, fields, &line, &mut ignored)),
                other => other,
            };
            out.insert(
                Spanned::new(key.span(), "template".into()),
                Spanned::new(vspan, value),
            );
        } else {
            ignored.push(Ignored {
                line: line(key.span()),
                message: format!("`{k}` ignored (confd ignores it too)"),
            });
        }
    }
    ignored.sort_by_key(|i| i.line);
    let de = toml::de::Deserializer::from(Spanned::new(span, out));
    Ok((T::deserialize(de)?, ignored))
}

fn template_table<'i>(
    t: DeTable<'i>,
    fields: &[&str],
    line: &dyn Fn(std::ops::Range<usize>) -> usize,
    ignored: &mut Vec<Ignored>,
) -> DeTable<'i> {
    let mut out = DeTable::new();
    for (key, value) in exact_first(t, fields) {
        let k = key.get_ref().to_string();
        let Some(field) = fields.iter().find(|f| matches(&k, f, fields)) else {
            ignored.push(Ignored {
                line: line(key.span()),
                message: format!("[template] `{k}` ignored (confd ignores it too)"),
            });
            continue;
        };
        let unset = matches!(value.get_ref(), DeValue::Integer(i) if i.as_str() == "-1");
        if unset && (*field == "uid" || *field == "gid") {
            continue;
        }
        let name = Spanned::new(key.span(), field.to_string().into());
        if out.contains_key(&name) {
            ignored.push(Ignored {
                line: line(key.span()),
                message: format!("[template] `{k}` ignored: `{field}` is already set"),
            });
            continue;
        }
        out.insert(name, value);
    }
    out
}

type Entry<'i> = (Spanned<toml::de::DeString<'i>>, Spanned<DeValue<'i>>);

/// The entries of `t`, those named exactly as one of `fields` first (an exact match wins
/// over one that ignores case, as in Go's decoder).
fn exact_first<'i>(t: DeTable<'i>, fields: &[&str]) -> Vec<Entry<'i>> {
    let (mut exact, folded): (Vec<_>, Vec<_>) = t
        .into_iter()
        .partition(|(k, _)| fields.contains(&k.get_ref().as_ref()));
    exact.extend(folded);
    exact
}

/// Whether the key `k` fills `field`: the same name, or the same ignoring case when no
/// field has exactly the name `k`.
fn matches(k: &str, field: &str, fields: &[&str]) -> bool {
    k == field || (!fields.contains(&k) && k.eq_ignore_ascii_case(field))
}

/// The field names serde's derived `Deserialize` of `T` knows (those it passes to
/// `deserialize_struct`).
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// Every resource file under `dir` as confd finds them: recursively, every file whose
/// name ends in `toml` (symlinks to files included), in lexical order. Unlike confd,
/// hidden directories are skipped: Kubernetes mounts a ConfigMap as symlinks into a
/// hidden `..TIMESTAMP` directory, where confd finds every resource twice.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if e.file_type()?.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else if name.ends_with("toml") && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}
