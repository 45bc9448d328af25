//! Faults around a sync: a full or read-only disk while staging, SIGKILL mid-write,
//! and a reload still running when the daemon stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::destinations::{conf, onetime, stage_files, stderr};
use crate::support::{Proc, confsync, tempdir, wait_file, wait_for, write};

const LIMIT: Duration = Duration::from_secs(10);

/// A guard that unmounts a tmpfs (lazily, so a failed test cannot leave it busy).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills `dir` with no room left for a big render: a small tmpfs when root, else a
/// read-only directory. Returns the guard and how to make room again.
fn cramped(dir: &Path) -> (Option<Mount>, Box<dyn Fn()>) {
    std::fs::create_dir_all(dir).unwrap();
    if nix::unistd::geteuid().is_root() {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "confsync-test"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs at {}", dir.display());
        let guard = Mount(dir.to_path_buf());
        std::fs::write(dir.join("filler"), vec![b'f'; 48 * 1024]).unwrap();
        let filler = dir.join("filler");
        (
            Some(guard),
            Box::new(move || std::fs::remove_file(&filler).unwrap()),
        )
    } else {
        use std::os::unix::fs::PermissionsExt;
        let d = dir.to_path_buf();
        (
            None,
            Box::new(move || {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap()
            }),
        )
    }
}

#[test]
fn a_full_disk_leaves_the_dest_intact_and_no_stage_file_then_a_change_gets_written() {
    let d = tempdir();
    let dir = d.path();
    let full = dir.join("full");
    let (_mount, make_room) = cramped(&full);
    let dest = full.join("app.cfg");
    std::fs::write(&dest, "intact\n").unwrap();
    if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let big = "b".repeat(24 * 1024);
    conf(dir, &dest, "", &big);
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir);
    let log = dir.join("confsync.log");
    let mut p = Proc::spawn("confsync", c, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let fault = if nix::unistd::geteuid().is_root() {
        "No space left on device"
    } else {
        "Permission denied"
    };
    assert!(
        wait_for(LIMIT, || (read_log().contains(fault)
            && read_log().contains(&dest.display().to_string()))
        .then_some(()))
        .is_some(),
        "the fault is logged with the path: {}",
        read_log()
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "intact\n");
    assert!(stage_files(&full).is_empty(), "{:?}", stage_files(&full));
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );
    // Room again, and a change: the new file is written.
    make_room();
    write(dir, "data.yaml", &format!("app:\n  msg: \"{big}-v2\"\n"));
    assert!(
        wait_file(&dest, LIMIT, |s| s.ends_with("-v2\n")).is_some(),
        "{}",
        read_log()
    );
    assert!(stage_files(&full).is_empty(), "{:?}", stage_files(&full));
}

/// The complete render of version `v`: about 2 MiB.
fn version(v: usize) -> String {
    format!("v{v:03} {}", "x".repeat(2 * 1024 * 1024))
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_partial_dest_and_the_next_start_sweeps() {
    let d = tempdir();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let dest = dir.join("out/app.cfg");
    conf(dir, &dest, "", &version(0));
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    // How long a whole run takes, to spread the kills over it.
    write(
        dir,
        "data.yaml",
        &format!("app:\n  msg: \"{}\"\n", version(1)),
    );
    let begun = Instant::now();
    assert!(onetime(dir).status.success());
    let whole = begun.elapsed();
    let mut killed_running = 0;
    for v in 2..52 {
        write(
            dir,
            "data.yaml",
            &format!("app:\n  msg: \"{}\"\n", version(v)),
        );
        let mut child = confsync()
            .args(["run", "--onetime", "--confdir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(fastrand::f64() * 1.2));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let got = std::fs::read_to_string(&dest).unwrap();
        let n: usize = got[1..4].parse().expect("a version number");
        assert!(n <= v, "version {n} after {v}");
        assert!(
            got == format!("{}\n", version(n)),
            "dest is a partial version {n} after kill {v}"
        );
    }
    assert!(
        killed_running >= 10,
        "only {killed_running} of 50 kills hit a running confsync"
    );
    // Whatever stage files the kills left, and one planted for sure, go at the next start;
    // files that only look alike stay.
    std::fs::write(dir.join("out/.app.cfg.confsync-0badf00d"), "partial").unwrap();
    std::fs::write(dir.join("out/.app.cfg.confsync-0badf00d.rejected"), "kept").unwrap();
    std::fs::write(dir.join("out/.other.confsync-0badf00d"), "other").unwrap();
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed stage files left by an earlier run"),
        "{}",
        stderr(&o)
    );
    let mut left = stage_files(&dir.join("out"));
    left.sort();
    assert_eq!(
        left,
        [
            ".app.cfg.confsync-0badf00d.rejected",
            ".other.confsync-0badf00d"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        format!("{}\n", version(51))
    );
}

/// Live (not zombie) `sleep`s whose command line holds `marker`.
fn alive_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(marker)
                && stat.contains("(sleep) ")
                && !stat.contains(") Z ")
        })
        .count()
}

/// The daemon's limit on draining in-flight syncs at shutdown.
const DRAIN: Duration = Duration::from_secs(30);

#[test]
fn a_reload_hung_at_shutdown_takes_its_whole_process_group_with_it() {
    let d = tempdir();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let marker = format!("300.{}", fastrand::u32(100_000..u32::MAX));
    conf(
        dir,
        &dir.join("out/app.cfg"),
        &format!(
            "reload_timeout = \"10m\"\nreload_cmd = \"sh -c 'sleep {marker} & sleep {marker}'\"\n"
        ),
        "hello",
    );
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir);
    let mut p = Proc::spawn("confsync", c, &dir.join("confsync.log"));
    assert!(
        wait_for(LIMIT, || (alive_with(&marker) == 2).then_some(())).is_some(),
        "both sleeps of the reload run"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let st = p.wait_exit(DRAIN + Duration::from_secs(10));
    assert!(st.is_some(), "confsync exits after its drain limit");
    assert!(
        wait_for(Duration::from_secs(3), || (alive_with(&marker) == 0)
            .then_some(()))
        .is_some(),
        "{} sleep(s) of the hung reload outlived confsync",
        alive_with(&marker)
    );
}
