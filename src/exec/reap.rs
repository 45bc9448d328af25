//! confsync as PID 1 (a container's entry point): orphaned processes are reparented to
//! PID 1, and something must reap them or they stay zombies.
//!
//! A reaper inside the daemon would race tokio: a `waitpid(-1)` loop on SIGCHLD steals
//! the exit status of the check and reload commands tokio waits for by pid, and telling
//! "ours" from orphans would need every spawn site to register its pid. So PID 1 forks
//! before anything else runs (no runtime, no threads yet): the parent stays PID 1 as a
//! small init that only reaps every child that exits and passes every signal on to the
//! daemon, which runs in the forked child exactly as it would anywhere else. When the
//! daemon exits, init exits with its status (128 + the signal for one killed by a
//! signal), and the kernel ends whatever is left in the PID namespace.
//!
//! Outside PID 1 nothing happens: orphans go to the host's init or subreaper as usual.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

/// As PID 1, forks and runs the init loop in the parent, returning its exit status
/// when the daemon has exited; `None` in the daemon (and when not PID 1): go on.
///
/// Call first thing in `main`, before any thread exists.
pub fn init_if_pid1() -> Option<u8> {
    if getpid().as_raw() != 1 {
        return None;
    }
    // Blocked before the fork, so none is lost in between: the kernel drops signals
    // sent to PID 1 that it neither handles nor blocks.
    let all = SigSet::all();
    let mut old = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old)) {
        eprintln!(
            "confsync: PID 1: cannot block signals ({e}); running without an init to reap orphans"
        );
        return None;
    }
    // SAFETY: called before any other thread is started (see above), so the child is a
    // full copy of a single-threaded process.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Some(init(child, &all)),
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            None
        }
        Err(e) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            eprintln!(
                "confsync: PID 1: cannot fork ({e}); running without an init to reap orphans"
            );
            None
        }
    }
}

/// Waits for signals: SIGCHLD reaps, any other is passed on to `daemon`.
fn init(daemon: Pid, set: &SigSet) -> u8 {
    loop {
        let Ok(sig) = set.wait() else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(daemon) {
                return code;
            }
        } else if let Err(e) = kill(daemon, sig) {
            eprintln!("confsync: PID 1: cannot pass {sig} on to the daemon (pid {daemon}): {e}");
        }
    }
}

/// Reaps every child that has exited; the daemon's status once it has.
fn reap(daemon: Pid) -> Option<u8> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == daemon => {
                return Some(u8::try_from(code & 0xff).unwrap_or(1));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == daemon => {
                return Some(u8::try_from((128 + sig as i32) & 0xff).unwrap_or(1));
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) | Err(Errno::EINTR) => continue,
            // No children left at all: the daemon is gone without a status seen.
            Err(Errno::ECHILD) => return Some(1),
            Err(_) => return None,
        }
    }
}
