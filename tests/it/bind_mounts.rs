//! Destinations in containers (issue 15): a single-file bind mount cannot be renamed
//! over, so it is written in place (and said so once), while a plain file beside it is
//! still renamed; `backup = true` keeps exactly the previous version as `DEST.bak`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{confsync, require_program, tempdir, write};

/// A bind mount made by the test, unmounted when dropped (also when the test fails).
struct BindMount {
    target: PathBuf,
    umount: PathBuf,
}

impl BindMount {
    fn new(source: &Path, target: &Path) -> BindMount {
        let mount = require_program("mount", "mount");
        let umount = require_program("umount", "mount");
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test makes a bind mount and must run as root (CI does: scripts/test.sh)"
        );
        let out = Command::new(mount)
            .arg("--bind")
            .arg(source)
            .arg(target)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount --bind {} {} failed: {}",
            source.display(),
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        BindMount {
            target: target.to_path_buf(),
            umount,
        }
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new(&self.umount).arg(&self.target).status();
    }
}

/// A config dir with resources `mounted`, `plain` and `kept` (backup = true) rendering
/// `/app/v`, on the file backend.
fn conf(d: &Path) -> PathBuf {
    let data = write(d, "data.yaml", "app:\n  v: one\n");
    write(
        d,
        "confsync.toml",
        &format!("backend = \"file\"\nfile = [\"{}\"]\n", data.display()),
    );
    write(d, "templates/t.tmpl", "v = {{ getv(key=\"/app/v\") }}\n");
    std::fs::create_dir_all(d.join("etc")).unwrap();
    for (name, extra) in [("mounted", ""), ("plain", ""), ("kept", "backup = true\n")] {
        write(
            d,
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}/etc/{name}.conf\"\nkeys = [\"/app\"]\n{extra}",
                d.display()
            ),
        );
    }
    data
}

/// `confsync run --onetime`; panics with its output unless it succeeds.
fn once(d: &Path) -> String {
    let out = confsync()
        .args(["run", "--onetime", "--confdir"])
        .arg(d)
        .output()
        .expect("run confsync");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "confsync failed:\n{text}");
    text
}

#[test]
fn a_bind_mounted_dest_is_written_in_place_and_a_plain_one_renamed() {
    let dir = tempdir();
    let d = dir.path();
    let data = conf(d);
    std::fs::create_dir_all(d.join("host")).unwrap();
    let host = write(d, "host/mounted.conf", "v = old\n");
    let mounted = write(d, "etc/mounted.conf", "");
    let plain = write(d, "etc/plain.conf", "v = old\n");
    let _mount = BindMount::new(&host, &mounted);
    let (host_ino, plain_ino) = (
        std::fs::metadata(&host).unwrap().ino(),
        std::fs::metadata(&plain).unwrap().ino(),
    );

    let log = once(d);
    assert_eq!(std::fs::read_to_string(&mounted).unwrap(), "v = one\n");
    assert_eq!(
        std::fs::read_to_string(&host).unwrap(),
        "v = one\n",
        "the mount's source has the new content"
    );
    assert_eq!(std::fs::metadata(&mounted).unwrap().ino(), host_ino);
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "v = one\n");
    assert_ne!(
        std::fs::metadata(&plain).unwrap().ino(),
        plain_ino,
        "a plain file is renamed over"
    );
    assert_eq!(log.matches("writing it in place").count(), 1, "{log}");
    assert!(log.contains("mounted.conf"), "{log}");

    // A shorter version is cut to its length; no stage file is left in either place.
    std::fs::write(&data, "app:\n  v: 2\n").unwrap();
    once(d);
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "v = 2\n");
    let stray: Vec<String> = std::fs::read_dir(d.join("etc"))
        .unwrap()
        .chain(std::fs::read_dir(d.join("host")).unwrap())
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("confsync-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn backup_keeps_exactly_the_previous_version() {
    let dir = tempdir();
    let d = dir.path();
    let data = conf(d);
    let kept = d.join("etc/kept.conf");
    let bak = d.join("etc/kept.conf.bak");
    once(d);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "v = one\n");
    assert!(!bak.exists(), "nothing to keep at the first write");
    for (v, previous) in [("two", "one"), ("three", "two")] {
        std::fs::write(&data, format!("app:\n  v: {v}\n")).unwrap();
        once(d);
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            format!("v = {v}\n")
        );
        assert_eq!(
            std::fs::read_to_string(&bak).unwrap(),
            format!("v = {previous}\n")
        );
    }
    assert!(
        !d.join("etc/plain.conf.bak").exists(),
        "only resources with backup = true keep one"
    );
}
