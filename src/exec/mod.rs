//! Exec mode: confsync runs the proxy as its child, beside the files it writes.
//!
//! - The child starts once every resource has had its first sync, so it reads rendered
//!   files. Its command is split into words like a shell splits them (`shlex`: quotes
//!   and backslashes, no expansion or pipes) and run directly, so the reload signal
//!   reaches the program itself rather than a shell that may not pass it on; write
//!   `sh -c '...'` to get a shell.
//! - It leads its own process group: a terminal's Ctrl-C reaches confsync only, which
//!   then stops the child once, instead of the child getting SIGINT twice.
//! - Its environment is the one check and reload commands get (`command_env`): never
//!   `CONFSYNC_*`, `CONFD_*` or `NOTIFY_SOCKET`.
//! - Signals (`forward`): SIGHUP, SIGUSR1 and SIGUSR2 are passed on as they are (SIGHUP
//!   also reloads confsync's configuration). SIGTERM and SIGINT stop confsync, and
//!   stopping sends the child `exec_kill_signal` once, waits `exec_kill_timeout`, then
//!   SIGKILLs its process group (`child`).
//! - When the child exits, confsync stops and exits with the child's status (128 + the
//!   signal for one killed by a signal), unless `exec_restart` starts it again, backing
//!   off from 1 s to 30 s while it keeps dying.
//! - As PID 1 (`reap`), confsync forks: PID 1 stays a small init that reaps orphans and
//!   passes signals on, and the daemon runs in the child, where tokio waits for its own
//!   commands undisturbed.

pub mod child;
pub mod forward;
pub mod reap;

use std::sync::Mutex;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The running child, shared by the supervisor (which sets it) and whoever signals it.
#[derive(Debug, Default)]
pub struct ChildHandle {
    /// Its pid while it runs.
    pid: Mutex<Option<Pid>>,
}

impl ChildHandle {
    fn set(&self, pid: Option<Pid>) {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner()) = pid;
    }

    /// The child's pid while it runs.
    pub fn pid(&self) -> Option<Pid> {
        *self.pid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `sig` to the child; `Ok(false)` when none runs (not started yet, or between
    /// restarts: it reads the files as they are when it starts).
    pub fn signal(&self, sig: Signal) -> Result<bool, String> {
        let Some(pid) = self.pid() else {
            return Ok(false);
        };
        // A proxy sets its handlers only once it has read its config: until then HUP or
        // USR2 would kill it. Not yet: an error, so the reload stays owed and is retried.
        if let Some(false) = takes_signal(pid, sig) {
            return Err(format!(
                "the exec child (pid {pid}) does not handle {sig} yet (still starting)"
            ));
        }
        match nix::sys::signal::kill(pid, sig) {
            Ok(()) => Ok(true),
            // It exited a moment ago; the supervisor is about to see it.
            Err(nix::errno::Errno::ESRCH) => Ok(false),
            Err(e) => Err(format!(
                "cannot send {sig} to the exec child (pid {pid}): {e}"
            )),
        }
    }
}

/// Whether `pid` catches or ignores `sig` (its `SigCgt`/`SigIgn` masks in
/// `/proc/PID/status`), so that sending it cannot kill the process by the default
/// action; `None` when that cannot be read.
fn takes_signal(pid: Pid, sig: Signal) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    let bit = 1u64 << (sig as i32 - 1);
    Some((mask("SigCgt:")? | mask("SigIgn:")?) & bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_does_not_handle_a_signal_is_not_sent_it() {
        // `sleep` handles nothing: HUP would kill it.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        // Past exec (the forked copy may still hold confsync's handlers for a moment).
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(takes_signal(pid, Signal::SIGHUP), Some(false));
        let handle = ChildHandle::default();
        handle.set(Some(pid));
        let e = handle.signal(Signal::SIGHUP).unwrap_err();
        assert!(e.contains("does not handle SIGHUP yet"), "{e}");
        assert!(child.try_wait().unwrap().is_none(), "sleep still runs");
        let _ = child.kill();
        let _ = child.wait();
        // This test process ignores SIGPIPE (Rust's runtime does): it may be sent.
        let me = Pid::this();
        assert_eq!(takes_signal(me, Signal::SIGPIPE), Some(true));
    }
}
