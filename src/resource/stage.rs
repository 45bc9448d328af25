//! The file side of a sync: compare with the destination, write a hidden stage file next
//! to it (same filesystem, so the swap is one atomic rename), and swap it in.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode and ownership the destination must end up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Permission bits.
    pub mode: u32,
    /// Owner to set, if any.
    pub uid: Option<u32>,
    /// Group to set, if any.
    pub gid: Option<u32>,
}

/// The destination as it is now.
#[derive(Debug)]
pub struct Current {
    /// Its contents, if it exists.
    pub bytes: Option<Vec<u8>>,
    /// What the new file must have: the resource's mode/owner where set, else the
    /// existing file's, else 0644 and the process's owner.
    pub target: Target,
    /// True when contents, mode and owner already match.
    pub up_to_date: bool,
}

/// Reads `dest` and compares it with `rendered` and the wanted mode and owner.
pub fn compare(
    dest: &Path,
    rendered: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> io::Result<Current> {
    match std::fs::metadata(dest) {
        Ok(meta) => {
            let bytes = std::fs::read(dest)?;
            let target = Target {
                mode: mode.unwrap_or(meta.mode() & 0o7777),
                uid: uid.or(Some(meta.uid())),
                gid: gid.or(Some(meta.gid())),
            };
            let up_to_date = bytes == rendered
                && meta.mode() & 0o7777 == target.mode
                && target.uid.is_none_or(|u| u == meta.uid())
                && target.gid.is_none_or(|g| g == meta.gid());
            Ok(Current {
                bytes: Some(bytes),
                target,
                up_to_date,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Current {
            bytes: None,
            target: Target {
                mode: mode.unwrap_or(0o644),
                uid,
                gid,
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
    keep: bool,
}

impl Staged {
    /// Where the staged file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leave the file on disk when dropped (`--keep-stage-file`).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }

    /// Renames the stage file over `dest` and syncs the directory, so after a crash
    /// the destination is either the old file or the new one, never a mix.
    pub fn swap(mut self, dest: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.keep = true;
        if let Some(dir) = dest.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Directory the stage file goes in: the destination's own.
fn dest_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a new hidden file beside `dest` with `target`'s mode and owner,
/// and syncs it to disk.
pub fn stage(dest: &Path, bytes: &[u8], target: Target) -> io::Result<Staged> {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dest".into());
    let path = dest_dir(dest).join(format!(".{name}.confsync-{:08x}", fastrand::u32(..)));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let staged = Staged { path, keep: false };
    f.write_all(bytes)?;
    if target.uid.is_some() || target.gid.is_some() {
        std::os::unix::fs::fchown(&f, target.uid, target.gid)?;
    }
    // After chown, which clears set-id bits.
    f.set_permissions(std::fs::Permissions::from_mode(target.mode))?;
    f.sync_all()?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_and_swap_apply_mode() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("haproxy.cfg");
        let cur = compare(&dest, b"new", Some(0o640), None, None).unwrap();
        assert!(!cur.up_to_date && cur.bytes.is_none());
        let st = stage(&dest, b"new", cur.target).unwrap();
        assert!(
            st.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".haproxy.cfg.confsync-")
        );
        st.swap(&dest).unwrap();
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
    fn dropped_stage_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let st = stage(
            &dest,
            b"a",
            Target {
                mode: 0o644,
                uid: None,
                gid: None,
            },
        )
        .unwrap();
        let p = st.path().to_path_buf();
        drop(st);
        assert!(!p.exists());
    }
}
