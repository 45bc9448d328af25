//! Check and reload commands: `{{.src}}`/`{{ src }}` and `{{ dest }}` substituted, run
//! through `/bin/sh -c` in their own process group, killed whole at their timeout.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Most stderr/stdout kept for an error message.
const OUTPUT_LIMIT: usize = 4096;

/// A command that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("`{cmd}` could not be started: {message}")]
    Spawn { cmd: String, message: String },
    /// It exited non-zero or was killed by a signal.
    #[error("`{cmd}` failed ({status}){}", output_suffix(.output))]
    Failed {
        cmd: String,
        status: String,
        output: String,
    },
    /// It ran past its timeout and was killed.
    #[error("`{cmd}` timed out after {timeout:?} and was killed{}", output_suffix(.output))]
    TimedOut {
        cmd: String,
        timeout: Duration,
        output: String,
    },
}

impl CommandError {
    /// Whether the failure came from this host rather than from the command's verdict:
    /// it could not start (no more processes or files), timed out, or died of a signal.
    pub fn is_local(&self) -> bool {
        match self {
            Self::Spawn { .. } | Self::TimedOut { .. } => true,
            // `ExitStatus`'s text for a process killed by a signal.
            Self::Failed { status, .. } => status.starts_with("signal:"),
        }
    }
}

fn output_suffix(output: &str) -> String {
    let t = output.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// `cmd` with confd's `{{.src}}` and Tera-style `{{ src }}` / `{{ dest }}` replaced.
pub fn substitute(cmd: &str, src: &Path, dest: &Path) -> String {
    let src = src.display().to_string();
    let dest = dest.display().to_string();
    let mut out = cmd.to_string();
    for (names, value) in [(["src", ".src"], &src), (["dest", ".dest"], &dest)] {
        for name in names {
            for spaced in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
                out = out.replace(&spaced, value);
            }
        }
    }
    out
}

/// Runs `cmd` under `/bin/sh -c` with `timeout`; on failure the error carries the exit
/// status and the command's stderr (or stdout when stderr is empty).
pub async fn run(cmd: &str, timeout: Duration) -> Result<(), CommandError> {
    let mut command = tokio::process::Command::new("/bin/sh");
    // Only confsync itself talks to systemd.
    for var in crate::systemd::CHILD_ENV_REMOVE {
        command.env_remove(var);
    }
    let mut child = command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            cmd: cmd.to_string(),
            message: e.to_string(),
        })?;
    // Read the pipes on their own tasks: a command that starts a daemon may leave the
    // pipes open long after it exits, so only the exit status is waited for.
    let out_task = tokio::spawn(read_pipe(child.stdout.take()));
    let err_task = tokio::spawn(read_pipe(child.stderr.take()));
    let pid = child.id();
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            return Err(CommandError::Spawn {
                cmd: cmd.to_string(),
                message: e.to_string(),
            });
        }
        Err(_) => {
            if let Some(pid) = pid {
                // The whole group: `sh -c` may have started children that hold the pipes.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            return Err(CommandError::TimedOut {
                cmd: cmd.to_string(),
                timeout,
                output: collect(out_task, err_task).await,
            });
        }
    };
    if status.success() {
        out_task.abort();
        err_task.abort();
        return Ok(());
    }
    Err(CommandError::Failed {
        cmd: cmd.to_string(),
        status: status.to_string(),
        output: collect(out_task, err_task).await,
    })
}

type PipeTask = tokio::task::JoinHandle<Vec<u8>>;

async fn read_pipe(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf).await;
    }
    buf
}

/// What the command printed, waiting briefly for pipes that a leftover child still holds.
async fn collect(out: PipeTask, err: PipeTask) -> String {
    let grace = Duration::from_millis(200);
    let out_abort = out.abort_handle();
    let err_abort = err.abort_handle();
    let o = tokio::time::timeout(grace, out)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let e = tokio::time::timeout(grace, err)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    out_abort.abort();
    err_abort.abort();
    pick_output(&o, &e)
}

fn pick_output(out: &[u8], err: &[u8]) -> String {
    let src = if String::from_utf8_lossy(err).trim().is_empty() {
        out
    } else {
        err
    };
    let text = String::from_utf8_lossy(src);
    let text = text.trim();
    if text.len() > OUTPUT_LIMIT {
        let mut cut = text.len() - OUTPUT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        format!("...{}", &text[cut..])
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_both_spellings() {
        let s = substitute(
            "haproxy -c -f {{.src}} && cp {{ src }} {{ dest }}.bak {{.dest}}",
            Path::new("/x/.s"),
            Path::new("/x/d"),
        );
        assert_eq!(s, "haproxy -c -f /x/.s && cp /x/.s /x/d.bak /x/d");
    }

    #[tokio::test]
    async fn failure_carries_stderr_and_status() {
        let e = run("echo bad line >&2; exit 3", Duration::from_secs(5))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad line") && text.contains('3'), "{text}");
        assert!(run("true", Duration::from_secs(5)).await.is_ok());
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let start = std::time::Instant::now();
        let e = run("sleep 30 & sleep 30", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, CommandError::TimedOut { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
