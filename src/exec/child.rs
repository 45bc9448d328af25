//! Supervision of the exec child: start it, wait for it, stop it (kill signal, timeout,
//! SIGKILL to its process group), or start it again with backoff (`exec_restart`).

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::ChildHandle;
use crate::backend::Backoff;
use crate::config::exec::ExecConfig;
use crate::resource::CommandEnv;

/// First and longest wait before starting a child that died again.
const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_CAP: Duration = Duration::from_secs(30);
/// A child that ran this long is healthy again: the next restart waits the least.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// Exit status of a child that could not be started (a shell's "command not found").
pub const CANNOT_START: u8 = 127;

/// How supervision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// confsync is stopping; the child was stopped.
    Stopped,
    /// The child exited by itself (or could not be started), with this status; confsync
    /// exits with it.
    Exited(u8),
}

/// The status a shell would report for `status`: the exit code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from((128 + s) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

fn spawn(cfg: &ExecConfig, env: &CommandEnv) -> std::io::Result<Child> {
    let (program, args) = cfg
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("the command is empty"))?;
    let mut command = Command::new(program);
    env.apply(&mut command);
    command
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        // Only if this task is dropped without stopping it (the runtime shutting down).
        .kill_on_drop(true)
        .spawn()
}

/// Runs the child until `stop` is cancelled or (without `restart`) it exits; `handle`
/// holds its pid while it runs.
pub async fn supervise(
    cfg: ExecConfig,
    env: CommandEnv,
    handle: Arc<ChildHandle>,
    stop: CancellationToken,
) -> Ended {
    let mut backoff = Backoff::new(RESTART_FIRST, RESTART_CAP);
    loop {
        let started = Instant::now();
        let code = match spawn(&cfg, &env) {
            Ok(mut child) => {
                let pid = child.id().map(|p| Pid::from_raw(p as i32));
                handle.set(pid);
                info!(command = %cfg.command, pid = ?pid.map(Pid::as_raw), "exec child started");
                let status = tokio::select! {
                    r = child.wait() => r,
                    _ = stop.cancelled() => {
                        stop_child(&mut child, pid, &cfg).await;
                        handle.set(None);
                        return Ended::Stopped;
                    }
                };
                handle.set(None);
                match status {
                    Ok(s) => {
                        let code = exit_code(s);
                        warn!(command = %cfg.command, status = %s, code, "exec child exited");
                        code
                    }
                    Err(e) => {
                        error!(command = %cfg.command, "cannot wait for the exec child: {e}");
                        1
                    }
                }
            }
            Err(e) => {
                error!(command = %cfg.command, "exec child could not be started: {e}");
                CANNOT_START
            }
        };
        if !cfg.restart {
            return Ended::Exited(code);
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        info!(command = %cfg.command, delay_ms = delay.as_millis() as u64, "restarting the exec child (exec_restart)");
        tokio::select! {
            _ = stop.cancelled() => return Ended::Stopped,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The kill signal once, up to the kill timeout, then SIGKILL to the child's group.
async fn stop_child(child: &mut Child, pid: Option<Pid>, cfg: &ExecConfig) {
    let Some(pid) = pid else {
        let _ = child.wait().await;
        return;
    };
    info!(signal = %cfg.kill_signal, pid = pid.as_raw(), "stopping the exec child");
    if let Err(e) = kill(pid, cfg.kill_signal) {
        warn!(
            pid = pid.as_raw(),
            "cannot send {} to the exec child: {e}", cfg.kill_signal
        );
    }
    match tokio::time::timeout(cfg.kill_timeout, child.wait()).await {
        Ok(Ok(status)) => info!(status = %status, "exec child stopped"),
        Ok(Err(e)) => warn!("cannot wait for the exec child: {e}"),
        Err(_) => {
            warn!(
                timeout = ?cfg.kill_timeout,
                pid = pid.as_raw(),
                "exec child still running after exec_kill_timeout; sending SIGKILL to its process group"
            );
            // It leads its own group (process_group(0)): the group id is its pid.
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = child.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(cmd: &str) -> ExitStatus {
        std::process::Command::new("/bin/sh")
            .args(["-c", cmd])
            .status()
            .unwrap()
    }

    #[test]
    fn a_status_is_the_code_or_128_plus_the_signal() {
        assert_eq!(exit_code(status("exit 0")), 0);
        assert_eq!(exit_code(status("exit 3")), 3);
        assert_eq!(exit_code(status("kill -TERM $$")), 128 + 15);
        assert_eq!(exit_code(status("kill -KILL $$")), 128 + 9);
    }
}
