//! Which data files a list of `--file` paths stands for: a file as given, a directory as
//! every `.yaml`, `.yml`, `.json` and `.toml` file below it, in name order.
//!
//! The walk ends on any tree: it follows links to directories, but enters each directory
//! (by device and inode) once per `--file` path, so `x -> .` is walked once and skipped
//! the second time, and it goes at most [`MAX_DEPTH`] levels down (deeper, or a
//! directory that cannot be read, is an error: its files would be missing). Types are checked
//! through links before anything is opened: FIFOs, sockets and devices (and links to
//! them, such as `z.yaml -> /dev/zero`) are skipped, because opening one may block and
//! reading one may never end. What is skipped is reported, for the caller to warn about.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::read::special_kind;

/// The deepest a directory walk goes below a `--file` directory.
pub const MAX_DEPTH: usize = 64;

/// The data files of a listing and what was left out.
#[derive(Debug, Default)]
pub(super) struct Tree {
    /// Data files, in the order they apply (later ones override earlier ones).
    pub files: Vec<PathBuf>,
    /// Paths skipped inside directories, with why (each is worth a warning).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Every data file `paths` stand for. A path given that is missing, unreadable or not a
/// regular file or directory is an error; inside a directory, such entries are skipped.
pub(super) fn data_files(paths: &[PathBuf]) -> Result<Tree, String> {
    let mut tree = Tree::default();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            let mut walk = Walk {
                tree: &mut tree,
                visited: HashSet::new(),
            };
            walk.dir(p, &meta, 0)?;
        } else if let Some(kind) = special_kind(&meta) {
            return Err(format!(
                "{}: {kind}, not a regular file (a data file must be one)",
                p.display()
            ));
        } else {
            tree.files.push(p.clone());
        }
    }
    Ok(tree)
}

/// True for the names a directory walk reads.
pub(super) fn is_data_name(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json" | "toml")
    )
}

struct Walk<'t> {
    tree: &'t mut Tree,
    /// Directories entered under this `--file` path, by (device, inode).
    visited: HashSet<(u64, u64)>,
}

impl Walk<'_> {
    /// Walks `dir`; a directory that cannot be read is an error (its files would be
    /// missing from the listing), a link back into the tree is skipped.
    fn dir(&mut self, dir: &Path, meta: &std::fs::Metadata, depth: usize) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        self.visited.insert((meta.dev(), meta.ino()));
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            // Through links: what matters is what opening the path would open.
            let meta = match std::fs::metadata(&p) {
                Ok(m) => m,
                // Gone since the listing: nothing to read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_link(&p) => continue,
                Err(e) => {
                    if is_data_name(&p) {
                        self.skip(p, format!("cannot be read ({e})"));
                    }
                    continue;
                }
            };
            if meta.is_dir() {
                if !self.visited.insert((meta.dev(), meta.ino())) {
                    self.skip(
                        p,
                        "a directory already walked (a link back into the tree); not walked again"
                            .into(),
                    );
                } else if depth + 1 >= MAX_DEPTH {
                    return Err(format!(
                        "{}: deeper than {MAX_DEPTH} directories below a --file directory",
                        p.display()
                    ));
                } else {
                    self.dir(&p, &meta, depth + 1)?;
                }
            } else if !is_data_name(&p) {
                continue;
            } else if let Some(kind) = special_kind(&meta) {
                self.skip(p, format!("{kind}, not a regular file; skipped"));
            } else {
                self.tree.files.push(p);
            }
        }
        Ok(())
    }

    fn skip(&mut self, path: PathBuf, why: String) {
        self.tree.skipped.push((path, why));
    }
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}
