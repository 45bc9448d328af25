//! The two extras of a swap: `backup = true` keeps the file being replaced as
//! `FILE.bak`, and a destination that cannot be renamed over (a single-file bind mount,
//! as containers and Kubernetes make them: the rename fails with EBUSY or EXDEV) is
//! written in place instead.
//!
//! In place, the checked bytes are written over the old ones from the start, the file is
//! cut to their length (so it is never empty on the way), synced, and read back to be
//! sure; readers may see a mix of old and new for that moment, which a rename would have
//! spared them, so plain files are always renamed. The file keeps its inode, owner and
//! group (it is the mount's); its mode is set to the resource's.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::warn;

use super::dest_path::dir_of;
use super::stage::stage_prefix;

/// Whether a failed rename over `file` means it is a mount point to write in place.
pub fn needs_in_place(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EXDEV))
}

/// `FILE.bak` for `file`.
pub fn backup_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".bak");
    PathBuf::from(name)
}

/// Keeps `file`'s contents and mode as `FILE.bak`, atomically: written to a stage file
/// beside it (named as stage files are, so a killed run's is swept), synced, renamed.
/// Nothing to keep when `file` does not exist yet.
pub fn backup(file: &Path) -> io::Result<()> {
    let old = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = std::fs::metadata(file)?.permissions().mode() & 0o7777;
    let tmp = dir_of(file).join(format!("{}{:08x}", stage_prefix(file), fastrand::u32(..)));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&old)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, backup_path(file))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot keep {}: {e}", backup_path(file).display()),
        )
    })
}

/// Destinations already said to be written in place (logged once each).
static IN_PLACE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Writes the checked `staged` file's bytes and mode into `file` in place, after a
/// rename over it failed with `why`; an error if reading it back does not give them.
pub fn write_in_place(staged: &Path, file: &Path, why: &io::Error) -> io::Result<()> {
    {
        let mut logged = IN_PLACE.lock().unwrap_or_else(|e| e.into_inner());
        if logged
            .get_or_insert_with(HashSet::new)
            .insert(file.to_path_buf())
        {
            warn!(dest = %file.display(), "cannot rename over the destination ({why}): it is a bind mount or another mount point; writing it in place from now on");
        }
    }
    let bytes = std::fs::read(staged)?;
    let mode = std::fs::metadata(staged)?.permissions().mode() & 0o7777;
    // The version in place passed its check once: a write that fails part way (a full
    // disk, EIO) puts it back, so a reload still owed never reads half of each.
    let old = std::fs::read(file)?;
    let written = overwrite(file, &bytes).and_then(|()| {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))?;
        if std::fs::read(file)? != bytes {
            return Err(io::Error::other("reading it back gives other bytes"));
        }
        Ok(())
    });
    written.map_err(|e| {
        let back = match overwrite(file, &old) {
            Ok(()) => "the previous version is back in place".to_string(),
            Err(r) => format!("and putting the previous version back failed too: {r}"),
        };
        io::Error::new(
            e.kind(),
            format!("cannot write {} in place: {e}; {back}", file.display()),
        )
    })
}

/// `bytes` over `file` from its start, cut to their length and synced (never emptied on
/// the way).
fn overwrite(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(file)?;
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_holds_exactly_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("app.cfg");
        backup(&dest).unwrap();
        assert!(!backup_path(&dest).exists(), "nothing to keep yet");
        std::fs::write(&dest, "v1").unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o640)).unwrap();
        backup(&dest).unwrap();
        std::fs::write(&dest, "v2").unwrap();
        assert_eq!(std::fs::read(backup_path(&dest)).unwrap(), b"v1");
        let meta = std::fs::metadata(backup_path(&dest)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        backup(&dest).unwrap();
        assert_eq!(std::fs::read(backup_path(&dest)).unwrap(), b"v2");
        // The destination, its backup, and no stage file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn in_place_keeps_the_inode_and_cuts_a_shorter_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("nginx.conf");
        std::fs::write(&dest, "a much longer old version\n").unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, "new\n").unwrap();
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600)).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&dest).unwrap().ino();
        let why = io::Error::from_raw_os_error(libc::EBUSY);
        assert!(needs_in_place(&why));
        assert!(!needs_in_place(&io::Error::from_raw_os_error(libc::EACCES)));
        write_in_place(&staged, &dest, &why).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new\n");
        let meta = std::fs::metadata(&dest).unwrap();
        assert_eq!(meta.ino(), ino);
        assert_eq!(meta.mode() & 0o7777, 0o600);
    }
}
