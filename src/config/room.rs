//! Where a resource may read and write: its template inside `templates/`, its
//! destination a regular file that is none of confsync's own files, its mode without
//! set-id, sticky or world-writable bits. Each rule has an explicit way out in the
//! resource file (`src_outside_templates`, `allow_special_mode`) except the destination's
//! type and the own-files rule, which nothing legitimate needs.
//!
//! confd mode applies the same rules: confd itself joins every `src` below its
//! `templates/` directory, so a confd resource only leaves it through `..` or a symlink.

use std::path::{Path, PathBuf};

use super::{ConfigError, Dialect, Resource};
use crate::resource::dest_path::{identity, not_regular, resolve};

/// Why `src_path` may not be read: it resolves (through `..` and symlinks) outside
/// `templates_dir`. `None` when it is inside, or does not exist (reported elsewhere).
pub fn src_outside(src: &str, src_path: &Path, templates_dir: &Path) -> Option<String> {
    let real = std::fs::canonicalize(src_path).ok()?;
    let room = std::fs::canonicalize(templates_dir).unwrap_or_else(|_| templates_dir.into());
    if real.starts_with(&room) {
        return None;
    }
    Some(format!(
        "template `{src}` is {}, outside the templates directory {}; move it there, or set src_outside_templates = true if reading it is intended",
        real.display(),
        room.display()
    ))
}

/// Why `mode` is refused: set-uid, set-gid or sticky bits, or writable by everyone.
/// `None` for an ordinary mode.
pub fn special_mode(mode: u32) -> Option<String> {
    let mut what = Vec::new();
    if mode & 0o4000 != 0 {
        what.push("set-uid");
    }
    if mode & 0o2000 != 0 {
        what.push("set-gid");
    }
    if mode & 0o1000 != 0 {
        what.push("sticky");
    }
    if mode & 0o002 != 0 {
        what.push("world-writable");
    }
    if what.is_empty() {
        return None;
    }
    Some(format!(
        "`mode` {mode:04o} is {}; a rendered config needs none of that (set allow_special_mode = true if it really must be)",
        what.join(", ")
    ))
}

/// Errors for every resource whose destination is not a regular file (a device, FIFO,
/// socket or directory, after symlinks), or is one of confsync's own files: a resource
/// file, anything in `templates/` or `conf.d/`, the settings file (`confsync.toml`,
/// and `confd.toml` in confd mode, and `settings_file` wherever it is).
pub fn dest_errors(
    resources: &[Resource],
    confdir: &Path,
    dialect: Dialect,
    settings_file: Option<&Path>,
) -> Vec<ConfigError> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| identity(p));
    let rooms = [confdir.join("templates"), confdir.join("conf.d")].map(|d| canon(&d));
    let mut own: Vec<PathBuf> = resources
        .iter()
        .flat_map(|r| [identity(&r.file), identity(&r.src_path)])
        .collect();
    own.push(identity(&confdir.join("confsync.toml")));
    if dialect == Dialect::Confd {
        own.push(identity(&confdir.join("confd.toml")));
    }
    own.extend(settings_file.map(identity));
    let mut errors = Vec::new();
    for r in resources {
        let err = |message: String| ConfigError {
            file: r.file.clone(),
            line: None,
            message,
        };
        let file = resolve(&r.dest).unwrap_or_else(|_| r.dest.clone());
        if let Some(kind) = std::fs::symlink_metadata(&file)
            .ok()
            .as_ref()
            .and_then(not_regular)
        {
            errors.push(err(format!(
                "dest {} is {kind}; a destination must be a regular file (or a symlink to one)",
                shown(&r.dest, &file)
            )));
            continue;
        }
        let id = identity(&r.dest);
        let also = if id == r.dest {
            String::new()
        } else {
            format!(" (which is {})", id.display())
        };
        if own.contains(&id) {
            errors.push(err(format!(
                "dest {}{also} is one of confsync's own files (a template, resource or settings file); it cannot be rendered over",
                r.dest.display()
            )));
        } else if let Some(room) = rooms.iter().find(|d| id.starts_with(d)) {
            errors.push(err(format!(
                "dest {}{also} is inside {}, which holds confsync's own files; write it elsewhere",
                r.dest.display(),
                room.display()
            )));
        }
    }
    errors
}

/// `dest`, with the file it resolves to when that is another path.
fn shown(dest: &Path, file: &Path) -> String {
    if dest == file {
        dest.display().to_string()
    } else {
        format!("{} (which is {})", dest.display(), file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_modes_are_named() {
        for ok in [0o644, 0o600, 0o755, 0o640, 0o664] {
            assert_eq!(special_mode(ok), None, "{ok:o}");
        }
        let e = special_mode(0o4755).unwrap();
        assert!(e.contains("set-uid") && e.contains("4755"), "{e}");
        assert!(special_mode(0o2755).unwrap().contains("set-gid"));
        assert!(special_mode(0o1644).unwrap().contains("sticky"));
        assert!(special_mode(0o666).unwrap().contains("world-writable"));
    }

    #[test]
    fn a_template_reached_through_dots_or_a_link_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        std::fs::write(templates.join("in.tmpl"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), templates.join("link.tmpl")).unwrap();
        assert_eq!(
            src_outside("in.tmpl", &templates.join("in.tmpl"), &templates),
            None
        );
        for src in ["../secret", "link.tmpl"] {
            let e = src_outside(src, &templates.join(src), &templates).unwrap();
            assert!(e.contains("outside the templates directory"), "{e}");
        }
        assert!(src_outside("/etc/passwd", Path::new("/etc/passwd"), &templates).is_some());
        // Missing: reported as not found elsewhere.
        assert_eq!(src_outside("no", &templates.join("no"), &templates), None);
    }
}
