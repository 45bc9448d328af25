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
