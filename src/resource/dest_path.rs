//! Where a destination really is. Distributions symlink `/etc/haproxy/haproxy.cfg` and
//! nginx's `sites-enabled/*`: the file to compare and replace is the link's final
//! target, staged in the target's directory so the swap stays one atomic rename, and the
//! link itself is left alone.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Most links followed before a chain counts as a loop (Linux's own limit).
pub const MAX_HOPS: usize = 40;

/// The file `dest` stands for: `dest` itself when it is not a symlink, else the final
/// target of its chain of links (relative links resolved against the directory of the
/// link that holds them). A dangling link gives the path it names. A chain longer than
/// [`MAX_HOPS`] is an error naming `dest`.
pub fn resolve(dest: &Path) -> io::Result<PathBuf> {
    let mut path = dest.to_path_buf();
    for _ in 0..=MAX_HOPS {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_symlink() {
            return Ok(path);
        }
        let target = std::fs::read_link(&path)?;
        path = if target.is_absolute() {
            target
        } else {
            clean(&dir_of(&path).join(target))
        };
    }
    Err(io::Error::new(
        io::Error::from_raw_os_error(libc::ELOOP).kind(),
        format!(
            "{} is a symlink loop (more than {MAX_HOPS} links)",
            dest.display()
        ),
    ))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `path` with `.` dropped and `..` taken back lexically (no file system access), as
/// Go's `filepath.Clean` does; `..` above the root stays at the root.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `path` made absolute against the working directory. `..` is kept: after a directory
/// symlink it means the target's parent, which only the file system knows.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What two resources must not share: the file `dest` finally names, with every
/// directory symlink resolved where the path exists; below the deepest directory that
/// exists, the cleaned path.
pub fn identity(dest: &Path) -> PathBuf {
    let file = absolute(&resolve(dest).unwrap_or_else(|_| dest.to_path_buf()));
    if let Ok(p) = std::fs::canonicalize(&file) {
        return p;
    }
    let cleaned = clean(&file);
    let mut rest = Vec::new();
    let mut at = cleaned.as_path();
    while let (Some(parent), Some(name)) = (at.parent(), at.file_name()) {
        rest.push(name);
        if let Ok(base) = std::fs::canonicalize(parent) {
            return rest.iter().rev().fold(base, |p, n| p.join(n));
        }
        at = parent;
    }
    cleaned
}

/// What a destination that is not a regular file is ("a directory", "a FIFO", ...), or
/// `None` for a regular file. Replacing a device, a FIFO or a socket with a regular file
/// would break whatever uses it; a directory cannot be renamed over.
pub fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    })
}

/// An error unless `file` (a resolved destination, see [`resolve`]) is a regular file or
/// does not exist yet.
pub fn ensure_regular(file: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(file) {
        Ok(meta) => match not_regular(&meta) {
            None => Ok(()),
            Some(kind) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {kind}; a destination must be a regular file (or a symlink to one)",
                    file.display()
                ),
            )),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes sure the directory that will hold `file` exists: creates it (and its parents,
/// 0755 as `mkdir -p` does) when `create` is set, else fails naming the directory and
/// `resource_file`.
pub fn ensure_dir(file: &Path, create: bool, resource_file: &Path) -> io::Result<()> {
    let dir = dir_of(file);
    if dir.is_dir() {
        return Ok(());
    }
    if create {
        use std::os::unix::fs::DirBuilderExt;
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create the directory {}: {e}", dir.display()),
                )
            });
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "the directory {} does not exist (create it, or set create_dest_dirs = true in {})",
            dir.display(),
            resource_file.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_plain_or_missing_file_is_itself() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("haproxy.cfg");
        assert_eq!(resolve(&f).unwrap(), f);
        std::fs::write(&f, "x").unwrap();
        assert_eq!(resolve(&f).unwrap(), f);
    }

    #[test]
    fn a_chain_of_relative_and_absolute_links_ends_at_the_file() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("available/site.conf");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "x").unwrap();
        std::fs::create_dir_all(d.path().join("enabled")).unwrap();
        // enabled/site -> ../available/site.conf (relative to the link's directory)
        symlink("../available/site.conf", d.path().join("enabled/site")).unwrap();
        // top -> /abs/enabled/site
        symlink(d.path().join("enabled/site"), d.path().join("top")).unwrap();
        assert_eq!(resolve(&d.path().join("top")).unwrap(), real);
        assert_eq!(resolve(&d.path().join("enabled/site")).unwrap(), real);
    }

    #[test]
    fn a_dangling_link_names_its_target() {
        let d = tempfile::tempdir().unwrap();
        symlink("real.cfg", d.path().join("link.cfg")).unwrap();
        assert_eq!(
            resolve(&d.path().join("link.cfg")).unwrap(),
            d.path().join("real.cfg")
        );
    }

    #[test]
    fn a_loop_is_an_error_naming_the_dest() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let e = resolve(&d.path().join("a")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&d.path().join("a").display().to_string()),
            "{text}"
        );
        assert!(text.contains("loop"), "{text}");
        // A chain of exactly MAX_HOPS links still resolves.
        let real = d.path().join("l0");
        std::fs::write(&real, "x").unwrap();
        for i in 1..=MAX_HOPS {
            symlink(format!("l{}", i - 1), d.path().join(format!("l{i}"))).unwrap();
        }
        let last = d.path().join(format!("l{MAX_HOPS}"));
        assert_eq!(resolve(&last).unwrap(), real);
        symlink(format!("l{MAX_HOPS}"), d.path().join("one-more")).unwrap();
        assert!(resolve(&d.path().join("one-more")).is_err());
    }

    #[test]
    fn clean_is_lexical() {
        for (input, want) in [
            ("/a/./b/../c", "/a/c"),
            ("/../a", "/a"),
            ("a/../../b", "../b"),
            ("./", "."),
            ("a//b/", "a/b"),
        ] {
            assert_eq!(clean(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }

    #[test]
    fn identity_sees_through_links_and_missing_files() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.cfg");
        std::fs::write(&real, "x").unwrap();
        symlink(&real, d.path().join("link.cfg")).unwrap();
        assert_eq!(
            identity(&d.path().join("link.cfg")),
            identity(&d.path().join("./sub/../real.cfg"))
        );
        let missing = d.path().join("nodir/x.cfg");
        assert_eq!(
            identity(&d.path().join("nodir/../nodir/x.cfg")),
            identity(&missing)
        );
    }

    #[test]
    fn ensure_dir_names_the_directory_and_the_resource_or_creates_it() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/b/out.cfg");
        let e = ensure_dir(&f, false, Path::new("/etc/confsync/conf.d/x.toml")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(
            text.contains(&d.path().join("a/b").display().to_string()),
            "{text}"
        );
        assert!(text.contains("conf.d/x.toml") && text.contains("create_dest_dirs"));
        ensure_dir(&f, true, Path::new("x.toml")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert!(d.path().join("a/b").is_dir());
        // 0755 less the umask, as `mkdir -p`.
        assert_eq!(mode & 0o700, 0o700);
        assert_eq!(mode & 0o022, 0);
    }
}
