//! Giving a stage file its owner and group. An owner the resource sets must be given (an
//! error that says why when it cannot be); the existing file's owner, kept when the
//! resource sets none, is given where confsync may: a daemon without CAP_CHOWN cannot
//! hand a file to another user, and failing every update for it would stop the config
//! from ever following the store, so it warns and the new file stays its own.

use std::fs::File;
use std::io;
use std::path::Path;

use tracing::warn;

use super::stage::Target;

/// Sets the owner and group of `f` (the stage file for `file`) as `target` asks.
pub fn apply(f: &File, file: &Path, target: &Target) -> io::Result<()> {
    let uid = target.uid.or(target.keep_uid);
    let gid = target.gid.or(target.keep_gid);
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    let err = match std::os::unix::fs::fchown(f, uid, gid) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => e,
        Err(e) => return Err(e),
    };
    let explicit = target.uid.is_some() || target.gid.is_some();
    if explicit {
        // What the resource asks for must be given; what was only kept may be dropped.
        if (uid, gid) == (target.uid, target.gid)
            || std::os::unix::fs::fchown(f, target.uid, target.gid).is_err()
        {
            return Err(io::Error::new(
                err.kind(),
                cannot_give(file, target.uid, target.gid),
            ));
        }
    } else if gid.is_some() && std::os::unix::fs::fchown(f, None, gid).is_ok() {
        // A group confsync belongs to can still be kept.
        warn!(
            dest = %file.display(),
            "{}; the new file keeps the group but belongs to uid {}",
            cannot_give(file, uid, None),
            nix::unistd::geteuid()
        );
        return Ok(());
    }
    warn!(
        dest = %file.display(),
        "{}; the new file belongs to uid {} instead",
        cannot_give(file, uid, gid),
        nix::unistd::geteuid()
    );
    Ok(())
}

/// Why `file` cannot be given to `uid`/`gid`, and what to do about it.
pub fn cannot_give(file: &Path, uid: Option<u32>, gid: Option<u32>) -> String {
    let mut to = Vec::new();
    if let Some(u) = uid {
        to.push(format!("uid {u}"));
    }
    if let Some(g) = gid {
        to.push(format!("gid {g}"));
    }
    let me = nix::unistd::geteuid();
    format!(
        "cannot give {} to {}: confsync runs as uid {me} without CAP_CHOWN; run it as root \
         (or with CAP_CHOWN), or set owner/group in the resource to its own user (uid {me}) \
         or a group it belongs to",
        file.display(),
        to.join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_message_names_the_file_the_ids_and_the_way_out() {
        let m = cannot_give(Path::new("/etc/haproxy/haproxy.cfg"), Some(0), Some(110));
        assert!(
            m.contains("cannot give /etc/haproxy/haproxy.cfg to uid 0 gid 110"),
            "{m}"
        );
        assert!(
            m.contains("CAP_CHOWN") && m.contains("set owner/group"),
            "{m}"
        );
        assert!(
            m.contains(&format!("uid {}", nix::unistd::geteuid())),
            "{m}"
        );
    }

    #[test]
    fn keeping_ones_own_owner_always_works() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let f = File::create(&p).unwrap();
        let meta = f.metadata().unwrap();
        let t = Target {
            mode: 0o644,
            uid: None,
            gid: None,
            keep_uid: Some(meta.uid()),
            keep_gid: Some(meta.gid()),
        };
        apply(&f, &p, &t).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().uid(), meta.uid());
    }
}
