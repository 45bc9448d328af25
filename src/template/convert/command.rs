//! `confsync convert`: every Go template the resources use, converted to Tera and
//! reported (converted, converted with notes, not convertible); with `--write` the
//! converted text is written next to the original as `NAME.tera` and every resource
//! using it is pointed at it (`src` and `engine = "tera"`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Resource, ResourceSet};
use crate::template::EngineKind;

use super::{convert_for, resource_file};

/// What a run found, for the exit code.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Templates converted, with or without notes.
    pub converted: usize,
    /// Templates that are not convertible.
    pub not_convertible: usize,
    /// Files `--write` could not write.
    pub write_errors: usize,
}

impl Summary {
    /// 0 when every template converted (and was written), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.not_convertible > 0 || self.write_errors > 0)
    }
}

/// A file `--write` writes: to a temporary file beside it, then renamed over it, so a
/// failure leaves the old file whole.
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.convert-{}", std::process::id()));
    let result = std::fs::write(&tmp, text).and_then(|()| {
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Converts the Go templates of `set` (loaded from `confdir`), printing one report per
/// template to `out` and problems writing files to `err`.
pub fn run(
    confdir: &Path,
    set: &ResourceSet,
    write: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> std::io::Result<Summary> {
    let mut by_template: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in &set.resources {
        if set.engine.kind_of(&r.src) == Some(EngineKind::Go) {
            by_template.entry(r.src.as_str()).or_default().push(r);
        }
    }
    let mut summary = Summary::default();
    if by_template.is_empty() {
        writeln!(
            out,
            "no Go templates: every resource in {} uses Tera",
            confdir.join("conf.d").display()
        )?;
        return Ok(summary);
    }
    for (src, resources) in by_template {
        let Some(t) = set.engine.go_template(src) else {
            continue;
        };
        let shown = Path::new("templates").join(src);
        let converted = match convert_for(t, src) {
            Ok(c) => c,
            Err(e) => {
                summary.not_convertible += 1;
                writeln!(out, "not convertible: {}: {e}", shown.display())?;
                continue;
            }
        };
        summary.converted += 1;
        let new_src = format!("{src}.tera");
        let target = Path::new("templates").join(&new_src);
        if converted.notes.is_empty() {
            writeln!(
                out,
                "converted: {} -> {}",
                shown.display(),
                target.display()
            )?;
        } else {
            writeln!(
                out,
                "converted with notes: {} -> {}",
                shown.display(),
                target.display()
            )?;
            for n in &converted.notes {
                writeln!(out, "    {n}")?;
            }
        }
        if !write {
            continue;
        }
        let path = resources
            .first()
            .map(|r| tera_path(&r.src_path))
            .unwrap_or_else(|| confdir.join(&target));
        if let Err(e) = write_file(&path, &converted.text) {
            summary.write_errors += 1;
            writeln!(err, "error: writing {}: {e}", path.display())?;
            continue;
        }
        for r in resources {
            if let Err(e) = point_resource(r, &new_src) {
                summary.write_errors += 1;
                writeln!(err, "error: {}: {e}", r.file.display())?;
            }
        }
    }
    Ok(summary)
}

/// `x.tmpl` -> `x.tmpl.tera`, beside it.
fn tera_path(src: &Path) -> PathBuf {
    let mut name = src.file_name().unwrap_or_default().to_os_string();
    name.push(".tera");
    src.with_file_name(name)
}

/// Why a resource file was not pointed at its converted template.
#[derive(Debug, thiserror::Error)]
enum PointError {
    #[error("reading: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Edit(#[from] resource_file::EditError),
    #[error("writing: {0}")]
    Write(std::io::Error),
}

fn point_resource(r: &Resource, new_src: &str) -> Result<(), PointError> {
    let text = std::fs::read_to_string(&r.file).map_err(PointError::Read)?;
    let edited = resource_file::point_at_tera(&text, new_src)?;
    write_file(&r.file, &edited).map_err(PointError::Write)
}
