//! The file side of a sync: compare with the destination (through its symlinks), write a
//! hidden stage file next to the file it names (same file system, so the swap is one
//! atomic rename), swap it in, and sweep the stage files a killed run left behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::dest_path::{dir_of, ensure_dir, ensure_regular, resolve};
pub use super::leftovers::{remove_leftovers, sweep};
use super::owner;

/// Mode and ownership the destination must end up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Permission bits.
    pub mode: u32,
    /// Owner the resource sets, if any: failing to give it is an error.
    pub uid: Option<u32>,
    /// Group the resource sets, if any: failing to give it is an error.
    pub gid: Option<u32>,
    /// The existing file's owner, kept where the resource sets none, when confsync may
    /// (a daemon without CAP_CHOWN cannot give a file to another user: it warns and the
    /// new file is its own, rather than failing every update).
    pub keep_uid: Option<u32>,
    /// The existing file's group, kept as `keep_uid` is.
    pub keep_gid: Option<u32>,
}

/// The destination as it is now.
#[derive(Debug)]
pub struct Current {
    /// The file that is compared and replaced: the destination, or the final target of
    /// the symlink it is (the link itself is left alone).
    pub file: PathBuf,
    /// The file in place, if it exists.
    pub old: Option<Old>,
    /// What the new file must have: the resource's mode/owner where set, else the
    /// existing file's, else 0644 and the process's owner.
    pub target: Target,
    /// True when contents, mode and owner already match.
    pub up_to_date: bool,
}

/// The file in place, kept open: it can be read after it was replaced, and its blocks
/// are freed only when this goes (not in the rename that puts the new file in place).
#[derive(Debug)]
pub struct Old {
    file: File,
    len: u64,
    /// Its contents, when they were read to be compared (same length as the render).
    bytes: Option<Vec<u8>>,
}

impl Old {
    /// The regular file at `path`, opened (nothing read yet).
    pub fn open(path: &Path) -> io::Result<Old> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Old {
            file,
            len,
            bytes: None,
        })
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its contents (read now unless they were read to be compared).
    pub fn bytes(&mut self) -> io::Result<&[u8]> {
        if self.bytes.is_none() {
            self.bytes = Some(read_from_start(&self.file, self.len)?);
        }
        Ok(self.bytes.as_deref().unwrap_or_default())
    }

    /// Its contents, if they were read.
    pub fn read(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// Its contents, the file handed over.
    pub fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        self.bytes()?;
        Ok(self.bytes.unwrap_or_default())
    }
}

/// The whole of `file` (about `len` bytes) from its start.
fn read_from_start(file: &File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut f = file;
    std::io::Seek::rewind(&mut f)?;
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// Opens `dest` (through its symlinks) and compares it with `rendered` and the wanted
/// mode and owner. Its contents are read only when its length is the render's (else
/// it differs anyway; they are read later if someone needs them).
pub fn compare(
    dest: &Path,
    rendered: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> io::Result<Current> {
    let file = resolve(dest)?;
    // Before opening: a FIFO would block the open, a device never end a read.
    ensure_regular(&file)?;
    // Non-blocking, should a FIFO take its place meanwhile; checked again once open.
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&file)
    {
        Ok(f) => {
            let meta = f.metadata()?;
            if !meta.is_file() {
                ensure_regular(&file)?;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a regular file", file.display()),
                ));
            }
            let bytes = if meta.len() == rendered.len() as u64 {
                Some(read_from_start(&f, meta.len())?)
            } else {
                None
            };
            let target = Target {
                mode: mode.unwrap_or(meta.mode() & 0o7777),
                uid,
                gid,
                keep_uid: uid.is_none().then_some(meta.uid()),
                keep_gid: gid.is_none().then_some(meta.gid()),
            };
            let up_to_date = bytes.as_deref() == Some(rendered)
                && meta.mode() & 0o7777 == target.mode
                && uid.is_none_or(|u| u == meta.uid())
                && gid.is_none_or(|g| g == meta.gid());
            Ok(Current {
                file,
                old: Some(Old {
                    file: f,
                    len: meta.len(),
                    bytes,
                }),
                target,
                up_to_date,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Current {
            file,
            old: None,
            target: Target {
                mode: mode.unwrap_or(0o644),
                uid,
                gid,
                keep_uid: None,
                keep_gid: None,
            },
            up_to_date: false,
        }),
        Err(e) => Err(e),
    }
}

/// A written, synced stage file; removed when dropped unless swapped in or kept.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    /// The file it replaces (a symlinked destination's target).
    file: PathBuf,
    keep: bool,
    /// Keep the file it replaces as `FILE.bak` (`backup = true`).
    backup: bool,
}

impl Staged {
    /// Where the staged file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leave the file on disk when dropped (`--keep-stage-file`), renamed with a
    /// `.rejected` suffix so the sweep of leftovers at the next start keeps it.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        let kept = PathBuf::from(format!("{}.rejected", self.path.display()));
        match std::fs::rename(&self.path, &kept) {
            Ok(()) => kept,
            Err(_) => self.path.clone(),
        }
    }

    /// Keeps the file it replaces as `FILE.bak` when swapped (or not).
    pub fn with_backup(mut self, backup: bool) -> Staged {
        self.backup = backup;
        self
    }

    /// Renames the stage file over the destination and syncs the directory, so after a
    /// crash the destination is either the old file or the new one, never a mix.
    /// The destination is checked again first: it was a regular file (or missing) when
    /// it was read, but may have been replaced by something else while the check ran.
    /// A destination that cannot be renamed over (a bind mount) is written in place
    /// ([`super::swap`]); with a backup, the old file is kept first. The file in place,
    /// `old`, is read first when it is to be written in place (its contents would be
    /// gone then; a rename leaves them to it).
    pub fn swap(mut self, old: Option<&mut Old>) -> io::Result<()> {
        ensure_regular(&self.file)?;
        if self.backup {
            super::swap::backup(&self.file)?;
        }
        match std::fs::rename(&self.path, &self.file) {
            Ok(()) => {}
            // The stage file is removed when `self` drops.
            Err(e) if super::swap::needs_in_place(&e) => {
                if let Some(old) = old {
                    old.bytes()?;
                }
                return super::swap::write_in_place(&self.path, &self.file, &e);
            }
            Err(e) => return Err(e),
        }
        self.keep = true;
        File::open(dir_of(&self.file))?.sync_all()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `.NAME.confsync-` for a file called NAME: what its stage files start with.
pub(super) fn stage_prefix(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dest".into());
    format!(".{name}.confsync-")
}

/// Writes `bytes` to a new hidden file beside `current.file` with the target mode and
/// owner, and syncs it to disk. A missing directory is created when `create_dirs` is
/// set, else an error naming it and `resource_file`. On any failure (a full disk, a
/// read-only file system, an I/O error) the stage file is removed and the destination
/// is untouched; the error keeps its kind.
pub fn stage(
    current: &Current,
    bytes: &[u8],
    create_dirs: bool,
    resource_file: &Path,
) -> io::Result<Staged> {
    let file = &current.file;
    ensure_dir(file, create_dirs, resource_file)?;
    let path = dir_of(file).join(format!("{}{:08x}", stage_prefix(file), fastrand::u32(..)));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let staged = Staged {
        path,
        file: file.clone(),
        keep: false,
        backup: false,
    };
    f.write_all(bytes)?;
    owner::apply(&f, file, &current.target)?;
    // After chown, which clears set-id bits.
    f.set_permissions(std::fs::Permissions::from_mode(current.target.mode))?;
    f.sync_all()?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Target {
        Target {
            mode: 0o644,
            uid: None,
            gid: None,
            keep_uid: None,
            keep_gid: None,
        }
    }

    fn stage_here(cur: &Current, bytes: &[u8]) -> io::Result<Staged> {
        stage(cur, bytes, false, Path::new("test.toml"))
    }

    #[test]
    fn stage_and_swap_apply_mode() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("haproxy.cfg");
        let cur = compare(&dest, b"new", Some(0o640), None, None).unwrap();
        assert!(!cur.up_to_date && cur.old.is_none());
        let st = stage_here(&cur, b"new").unwrap();
        assert!(
            st.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".haproxy.cfg.confsync-")
        );
        st.swap(None).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o7777, 0o640);
        assert!(
            compare(&dest, b"new", Some(0o640), None, None)
                .unwrap()
                .up_to_date
        );
        assert!(
            !compare(&dest, b"new", Some(0o600), None, None)
                .unwrap()
                .up_to_date
        );
        // No leftovers.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_dest_that_is_no_longer_a_regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("d");
        std::fs::write(&dest, "old").unwrap();
        let cur = compare(&dest, b"new", None, None, None).unwrap();
        let st = stage_here(&cur, b"new").unwrap();
        // Replaced by a FIFO between the compare and the swap (while the check ran).
        std::fs::remove_file(&dest).unwrap();
        nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = st.swap(None).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(&dest)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        // Nor is it read (which would block) at the next compare.
        let e = compare(&dest, b"new", None, None, None).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "stage file left"
        );
    }

    #[test]
    fn the_old_file_is_read_only_when_needed_and_still_once_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("haproxy.cfg");
        std::fs::write(&dest, "old contents").unwrap();
        let same_length = compare(&dest, b"new contents", None, None, None).unwrap();
        assert_eq!(
            same_length.old.as_ref().unwrap().read(),
            Some(&b"old contents"[..])
        );
        assert!(!same_length.up_to_date);
        let cur = compare(&dest, b"new", None, None, None).unwrap();
        assert_eq!(
            cur.old.as_ref().unwrap().read(),
            None,
            "lengths differ: not read"
        );
        assert_eq!(cur.old.as_ref().unwrap().len(), 12);
        let st = stage_here(&cur, b"new").unwrap();
        st.swap(None).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(cur.old.unwrap().into_bytes().unwrap(), b"old contents");
    }

    #[test]
    fn dropped_stage_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cur = Current {
            file: dir.path().join("x"),
            old: None,
            target: plain(),
            up_to_date: false,
        };
        let st = stage_here(&cur, b"a").unwrap();
        let p = st.path().to_path_buf();
        drop(st);
        assert!(!p.exists());
    }

    #[test]
    fn a_symlinked_dest_keeps_its_link_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let real = dir.path().join("real/haproxy.cfg");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("haproxy.cfg");
        std::os::unix::fs::symlink("real/haproxy.cfg", &link).unwrap();
        let cur = compare(&link, b"new", None, None, None).unwrap();
        assert_eq!(cur.file, real);
        let mut cur = cur;
        assert_eq!(cur.old.as_mut().unwrap().bytes().unwrap(), b"old");
        let st = stage_here(&cur, b"new").unwrap();
        assert_eq!(st.path().parent().unwrap(), dir.path().join("real"));
        st.swap(None).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        assert!(compare(&link, b"new", None, None, None).unwrap().up_to_date);
    }

    #[test]
    fn a_dangling_link_gets_its_target_written() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        std::os::unix::fs::symlink("site.conf", &link).unwrap();
        let cur = compare(&link, b"x", None, None, None).unwrap();
        stage_here(&cur, b"x").unwrap().swap(None).unwrap();
        assert_eq!(std::fs::read(dir.path().join("site.conf")).unwrap(), b"x");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_unless_created() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/dir/out.cfg");
        let cur = compare(&dest, b"x", None, None, None).unwrap();
        let e = stage_here(&cur, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("test.toml"), "{e}");
        stage(&cur, b"x", true, Path::new("t.toml"))
            .unwrap()
            .swap(None)
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"x");
    }

    #[test]
    fn a_kept_stage_file_survives_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("app.cfg");
        let cur = compare(&dest, b"x", None, None, None).unwrap();
        let kept = stage_here(&cur, b"x").unwrap().keep();
        assert!(kept.to_string_lossy().ends_with(".rejected"));
        assert_eq!(remove_leftovers(&dest).unwrap(), 0);
        assert!(kept.exists());
    }

    #[test]
    fn an_owner_the_resource_does_not_set_is_not_compared() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        std::fs::write(&dest, "a").unwrap();
        let meta = std::fs::metadata(&dest).unwrap();
        let cur = compare(&dest, b"a", None, None, None).unwrap();
        assert!(cur.up_to_date);
        assert_eq!(cur.target.keep_uid, Some(meta.uid()));
        assert_eq!(cur.target.uid, None);
        let other = meta.uid() + 1;
        assert!(
            !compare(&dest, b"a", None, Some(other), None)
                .unwrap()
                .up_to_date
        );
    }
}
