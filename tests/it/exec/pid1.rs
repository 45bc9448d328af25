//! confsync as PID 1 of a PID namespace.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{LIMIT, descendants, log_of, plain_dir};
use crate::support::{Proc, require_program, wait_for};

/// As PID 1 of a PID namespace, confsync leaves an init behind that reaps the orphans
/// its child's children become, and passes SIGTERM on to the daemon.
#[test]
fn as_pid_1_orphans_are_reaped() {
    let unshare = require_program("unshare", "util-linux");
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test makes a PID namespace and must run as root (CI does: scripts/test.sh)"
    );
    let dir = plain_dir();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let m = marks.display().to_string();
    // Each `( (...) & )` leaves an orphan: its parent subshell exits at once.
    let exec = format!(
        "sh -c 'for i in 1 2 3 4 5 6 7 8; do ( (sleep 0.2; touch {m}/$i) & ); done; exec sleep 30'"
    );
    let mut c = std::process::Command::new(unshare);
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFSYNC_") {
            c.env_remove(k);
        }
    }
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(crate::support::bin())
        .args(["run", "--confdir"])
        .arg(dir.path())
        .args(["--exec", &exec])
        .env("CONFSYNC_STATE_DIR", dir.path().join("state"))
        .env("RUST_BACKTRACE", "0");
    let mut u = Proc::spawn("unshare", c, &dir.path().join("confsync.log"));
    let unshare_pid = u.child.id() as i32;
    let all_marked = wait_for(LIMIT, || {
        (std::fs::read_dir(&marks).ok()?.count() == 8).then_some(())
    });
    assert!(
        all_marked.is_some(),
        "the orphans never ran; log:\n{}",
        log_of(dir.path())
    );
    // The tree: unshare -> init (PID 1) -> daemon -> sleep.
    let tree = descendants(unshare_pid);
    let init = tree
        .iter()
        .find(|p| p.1 == unshare_pid)
        .expect("the namespace's init");
    assert_eq!(init.3, "confsync", "{tree:?}");
    let daemon = tree
        .iter()
        .find(|p| p.1 == init.0 && p.3 == "confsync")
        .unwrap_or_else(|| panic!("no daemon below the init: {tree:?}"));
    assert!(
        tree.iter().any(|p| p.1 == daemon.0 && p.3 == "sleep"),
        "{tree:?}"
    );
    let zombies = || {
        descendants(unshare_pid)
            .into_iter()
            .filter(|p| p.2 == 'Z')
            .collect::<Vec<_>>()
    };
    wait_for(LIMIT, || zombies().is_empty().then_some(()))
        .unwrap_or_else(|| panic!("zombies left: {:?}", zombies()));

    // SIGTERM to PID 1 reaches the daemon, which stops the child and exits 0.
    nix::sys::signal::kill(Pid::from_raw(init.0), Signal::SIGTERM).unwrap();
    let status = u.wait_exit(LIMIT).expect("the namespace did not end");
    assert_eq!(status.code(), Some(0), "log:\n{}", log_of(dir.path()));
}
