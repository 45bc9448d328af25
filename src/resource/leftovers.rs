//! Stage files a killed run left behind, swept when confsync starts. Only the exact
//! pattern of one destination's stage files is touched: `.NAME.confsync-` and 8 hex
//! digits, beside the destination and beside the file it links to.

use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::dest_path::{dir_of, resolve};
use super::stage::stage_prefix;

/// Removes the stage files a killed run left beside `dest` and beside the file it links
/// to: exactly `.NAME.confsync-` and 8 hex digits, nothing else. Returns how many.
pub fn remove_leftovers(dest: &Path) -> io::Result<usize> {
    let mut files = vec![dest.to_path_buf()];
    if let Ok(real) = resolve(dest)
        && real != dest
    {
        files.push(real);
    }
    let mut removed = 0;
    for file in files {
        let prefix = stage_prefix(&file);
        let entries = match std::fs::read_dir(dir_of(&file)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(suffix) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            let hex = suffix.len() == 8
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if hex && entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// [`remove_leftovers`] for every resource, off the async threads; logs what it removed
/// and what it could not.
pub async fn sweep(resources: &[crate::config::Resource]) {
    let dests: Vec<(String, PathBuf)> = resources
        .iter()
        .map(|r| (r.name.clone(), r.dest.clone()))
        .collect();
    let swept = tokio::task::spawn_blocking(move || {
        for (name, dest) in dests {
            match remove_leftovers(&dest) {
                Ok(0) => {}
                Ok(n) => {
                    info!(resource = %name, dest = %dest.display(), removed = n, "removed stage files left by an earlier run")
                }
                Err(e) => {
                    warn!(resource = %name, dest = %dest.display(), "cannot remove leftover stage files: {e}")
                }
            }
        }
    });
    if let Err(e) = swept.await {
        warn!("sweeping leftover stage files failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_exactly_this_dests_stage_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink("real/app.cfg", d.join("app.cfg")).unwrap();
        let gone = [
            ".app.cfg.confsync-0123abcd",
            "real/.app.cfg.confsync-deadbeef",
        ];
        let stay = [
            ".app.cfg.confsync-0123abc",
            ".app.cfg.confsync-0123abcde",
            ".app.cfg.confsync-0123ABCD",
            ".app.cfg.confsync-0123abcd.rejected",
            ".other.cfg.confsync-0123abcd",
            "app.cfg.confsync-0123abcd",
            "real/.app.cfg.confsync-xyz",
        ];
        for f in gone.iter().chain(&stay) {
            std::fs::write(d.join(f), "x").unwrap();
        }
        assert_eq!(remove_leftovers(&d.join("app.cfg")).unwrap(), 2);
        for f in gone {
            assert!(!d.join(f).exists(), "{f}");
        }
        for f in stay {
            assert!(d.join(f).exists(), "{f}");
        }
        assert_eq!(remove_leftovers(&d.join("nodir/x.cfg")).unwrap(), 0);
    }
}
