//! Reloads still owed: a destination was replaced and its reload has not succeeded yet
//! (it failed, timed out, or the daemon stopped or was reconfigured while it ran).
//!
//! The set lives in memory for the whole run, so it survives a SIGHUP, and, with a state
//! dir, as one small file per destination under `STATE_DIR/owed/`, written before the
//! rename and removed after the reload succeeded, so it survives a crash or a restart:
//! the next start runs the reload even though the file in place already matches.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tracing::warn;

use crate::config::Resource;
use crate::resource::Ledger;

/// The destinations whose reload is owed.
#[derive(Debug, Default)]
pub struct OwedReloads {
    /// `STATE_DIR/owed`, when there is a state dir.
    dir: Option<PathBuf>,
    /// Destinations, as the resources spell them.
    owed: Mutex<BTreeSet<PathBuf>>,
}

impl OwedReloads {
    /// The set recorded under `state_dir` (empty without one); unreadable records are
    /// logged and skipped.
    pub fn open(state_dir: Option<&Path>) -> OwedReloads {
        let dir = state_dir.map(|d| d.join("owed"));
        let mut owed = BTreeSet::new();
        if let Some(d) = &dir {
            if let Err(e) = std::fs::create_dir_all(d) {
                warn!(dir = %d.display(), error = %e, "cannot create the directory for owed reloads; they will not survive a restart");
            }
            for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "owed") {
                    continue;
                }
                match read_record(&path) {
                    Some(dest) => {
                        owed.insert(dest);
                    }
                    None => {
                        warn!(file = %path.display(), "unreadable record of an owed reload; ignored")
                    }
                }
            }
        }
        OwedReloads {
            dir,
            owed: Mutex::new(owed),
        }
    }

    /// Forgets the reloads owed by destinations not in `dests` (resources that are no
    /// longer configured).
    pub fn retain<'a>(&self, dests: impl Iterator<Item = &'a Path>) {
        let keep: BTreeSet<&Path> = dests.collect();
        let gone: Vec<PathBuf> = {
            let mut set = self.set();
            let gone = set
                .iter()
                .filter(|d| !keep.contains(d.as_path()))
                .cloned()
                .collect();
            set.retain(|d| keep.contains(d.as_path()));
            gone
        };
        for dest in gone {
            if let Some(path) = self.record(&dest) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn set(&self) -> MutexGuard<'_, BTreeSet<PathBuf>> {
        // Nothing panics while holding the lock; the set stays valid regardless.
        self.owed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, dest: &Path) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| {
            d.join(format!(
                "{:016x}.owed",
                fnv1a(dest.as_os_str().as_encoded_bytes())
            ))
        })
    }
}

impl Ledger for OwedReloads {
    fn is_owed(&self, res: &Resource) -> bool {
        self.set().contains(&res.dest)
    }

    fn owe(&self, res: &Resource) {
        if !self.set().insert(res.dest.clone()) {
            return;
        }
        let Some(path) = self.record(&res.dest) else {
            return;
        };
        if let Err(e) = write_record(&path, &res.dest) {
            warn!(resource = %res.name, file = %path.display(), error = %e, "cannot record the owed reload; it will not survive a restart");
        }
    }

    fn paid(&self, res: &Resource) {
        if !self.set().remove(&res.dest) {
            return;
        }
        if let Some(path) = self.record(&res.dest) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(resource = %res.name, file = %path.display(), error = %e, "cannot remove the record of a reload that was paid")
                }
            }
        }
    }
}

/// The record's text: the destination's path on the first line. Readable by the
/// daemon's user only (0600), as every state file is: the set of destinations says what
/// the host runs.
fn write_record(path: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A leftover tmp file from an older run keeps its mode on open: set it.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(dest.as_os_str().as_encoded_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn read_record(path: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(path).ok()?;
    let line = bytes.strip_suffix(b"\n")?;
    if line.is_empty() || line.len() > 4096 || line.contains(&b'\n') {
        return None;
    }
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(line)))
}

/// FNV-1a, 64 bits: a stable file name for a path (any hash would do; this one never
/// changes between builds).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(dest: &str) -> Resource {
        let mut r = crate::config::resource::test_resource();
        r.dest = PathBuf::from(dest);
        r
    }

    #[test]
    fn owed_reloads_survive_a_restart_until_paid() {
        let dir = tempfile::tempdir().unwrap();
        let a = res("/etc/haproxy/haproxy.cfg");
        let b = res("/etc/nginx/conf.d/up stream.conf");
        let owed = OwedReloads::open(Some(dir.path()));
        assert!(!owed.is_owed(&a));
        owed.owe(&a);
        owed.owe(&b);
        assert!(owed.is_owed(&a) && owed.is_owed(&b));
        let again = OwedReloads::open(Some(dir.path()));
        assert!(again.is_owed(&a) && again.is_owed(&b));
        again.paid(&a);
        let third = OwedReloads::open(Some(dir.path()));
        assert!(!third.is_owed(&a) && third.is_owed(&b));
        // Junk in the directory is skipped.
        std::fs::write(dir.path().join("owed/x.owed"), b"").unwrap();
        assert!(OwedReloads::open(Some(dir.path())).is_owed(&b));
    }

    #[test]
    fn owed_records_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let owed = OwedReloads::open(Some(dir.path()));
        let a = res("/etc/haproxy/haproxy.cfg");
        owed.owe(&a);
        let record = owed.record(&a.dest).unwrap();
        let mode = std::fs::metadata(&record).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", record.display());
    }

    #[test]
    fn without_a_state_dir_the_set_is_in_memory() {
        let owed = OwedReloads::open(None);
        let a = res("/x");
        owed.owe(&a);
        assert!(owed.is_owed(&a));
        owed.paid(&a);
        assert!(!owed.is_owed(&a));
    }
}
