//! Check and reload commands: `{{.src}}`/`{{ src }}` and `{{ dest }}` substituted (shell
//! quoted, see [`super::quote`]), run through `/bin/sh -c` in their own process group,
//! killed whole at their timeout or when the sync running them is dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::child_env::CommandEnv;

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

/// `cmd` with confd's `{{.src}}` and Tera-style `{{ src }}` / `{{ dest }}` replaced by
/// the paths, quoted for the shell where each placeholder sits.
pub fn substitute(cmd: &str, src: &Path, dest: &Path) -> String {
    let src = src.display().to_string();
    let dest = dest.display().to_string();
    super::quote::substitute(cmd, &[("src", &src), ("dest", &dest)])
}

/// Kills a command's whole process group with SIGKILL when dropped before the command
/// was reaped: a sync dropped at shutdown or aborted takes everything its command
/// started with it (`kill_on_drop` would kill only `sh`). Once the command has been
/// reaped, what it left running (a daemon it started) is left alone.
struct GroupGuard {
    pgid: Option<nix::unistd::Pid>,
}

impl GroupGuard {
    /// The command was reaped: its group is no longer ours to kill.
    fn reaped(&mut self) {
        self.pgid = None;
    }

    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` under `/bin/sh -c` with `timeout` in the environment `env` gives (never
/// confsync's secrets); on failure the error carries the exit status and the command's
/// stderr (or stdout when stderr is empty).
pub async fn run(cmd: &str, timeout: Duration, env: &CommandEnv) -> Result<(), CommandError> {
    let mut command = tokio::process::Command::new("/bin/sh");
    env.apply(&mut command);
    let mut child = command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| CommandError::Spawn {
            cmd: cmd.to_string(),
            message: e.to_string(),
        })?;
    // Read the pipes on their own tasks: a command that starts a daemon may leave the
    // pipes open long after it exits, so only the exit status is waited for.
    let out_task = tokio::spawn(read_pipe(child.stdout.take()));
    let err_task = tokio::spawn(read_pipe(child.stderr.take()));
    // `sh` leads its own group (process_group(0)), so its pid is the group's id.
    let mut group = GroupGuard {
        pgid: child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32)),
    };
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            group.reaped();
            status
        }
        Ok(Err(e)) => {
            return Err(CommandError::Spawn {
                cmd: cmd.to_string(),
                message: e.to_string(),
            });
        }
        Err(_) => {
            // The whole group: `sh -c` may have started children that hold the pipes.
            group.kill();
            if child.wait().await.is_ok() {
                group.reaped();
            }
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

/// Reads `pipe` to its end in chunks, keeping only the last [`TAIL_KEEP`] bytes: a command
/// that prints gigabytes is drained (so it never blocks on a full pipe) without the
/// daemon holding more than the tail the error message shows.
async fn read_pipe(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut tail = Tail::default();
    if let Some(mut p) = pipe {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match p.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => tail.push(&chunk[..n]),
            }
        }
    }
    tail.into_bytes()
}

/// Most bytes of a command's output kept while reading: a little more than the message
/// shows, so trimming trailing whitespace still leaves [`OUTPUT_LIMIT`] bytes.
const TAIL_KEEP: usize = OUTPUT_LIMIT * 2;

/// The last [`TAIL_KEEP`] bytes of a stream, and whether anything came before them.
#[derive(Default)]
struct Tail {
    buf: std::collections::VecDeque<u8>,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > TAIL_KEEP {
            self.dropped = true;
            self.buf.clear();
            &bytes[bytes.len() - TAIL_KEEP..]
        } else {
            bytes
        };
        let over = (self.buf.len() + bytes.len()).saturating_sub(TAIL_KEEP);
        if over > 0 {
            self.dropped = true;
            self.buf.drain(..over);
        }
        self.buf.extend(bytes);
    }

    /// The kept bytes, after a `...` when some were dropped in front of them.
    fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buf.len() + 3);
        if self.dropped {
            out.extend_from_slice(b"...");
        }
        out.extend(self.buf);
        out
    }
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
        let s = substitute(
            "cp {{.src}} \"{{ dest }}\"",
            Path::new("/a b/.s"),
            Path::new("/a b/$d"),
        );
        assert_eq!(s, "cp '/a b/.s' \"/a b/\\$d\"");
    }

    /// True while a process whose command line holds `marker` is alive (not a zombie).
    fn alive_with(marker: &str) -> bool {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(marker) && !stat.contains(") Z ")
        })
    }

    #[tokio::test]
    async fn a_dropped_command_takes_its_whole_group_with_it() {
        let marker = format!("300.{}", fastrand::u32(1000..u32::MAX));
        let cmd = format!("sh -c 'sleep {marker} & sleep {marker}'");
        let running =
            tokio::spawn(
                async move { run(&cmd, Duration::from_secs(600), &CommandEnv::INHERIT).await },
            );
        let started = tokio::time::timeout(Duration::from_secs(10), async {
            while !alive_with(&marker) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(started.is_ok(), "the command never started");
        running.abort();
        let _ = running.await;
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while alive_with(&marker) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            gone.is_ok(),
            "a sleep of the dropped command's group is still running"
        );
    }

    #[tokio::test]
    async fn a_finished_command_leaves_what_it_started_alone() {
        let marker = format!("300.{}", fastrand::u32(1000..u32::MAX));
        // The background sleep outlives sh, as a daemon started by a reload would.
        let cmd = format!("sleep {marker} >/dev/null 2>&1 &");
        run(&cmd, Duration::from_secs(10), &CommandEnv::INHERIT)
            .await
            .unwrap();
        assert!(alive_with(&marker));
        let pid = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .find(|e| {
                String::from_utf8_lossy(
                    &std::fs::read(e.path().join("cmdline")).unwrap_or_default(),
                )
                .contains(&marker)
            })
            .and_then(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    #[tokio::test]
    async fn failure_carries_stderr_and_status() {
        let e = run(
            "echo bad line >&2; exit 3",
            Duration::from_secs(5),
            &CommandEnv::INHERIT,
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("bad line") && text.contains('3'), "{text}");
        assert!(
            run("true", Duration::from_secs(5), &CommandEnv::INHERIT)
                .await
                .is_ok()
        );
    }

    #[test]
    fn tail_keeps_the_last_bytes_of_any_chunking() {
        let data: Vec<u8> = (0..50_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for size in [1, 7, 4096, 9000, 50_000] {
            let mut tail = Tail::default();
            data.chunks(size).for_each(|c| tail.push(c));
            let kept = tail.into_bytes();
            assert_eq!(&kept[..3], b"...");
            assert_eq!(
                &kept[3..],
                &data[data.len() - TAIL_KEEP..],
                "chunks of {size}"
            );
        }
        let mut tail = Tail::default();
        tail.push(b"short");
        assert_eq!(tail.into_bytes(), b"short");
    }

    #[tokio::test]
    async fn huge_output_keeps_its_tail() {
        let e = run(
            "head -c 3000000 /dev/zero | tr '\\0' x; echo THE-END; exit 1",
            Duration::from_secs(30),
            &CommandEnv::INHERIT,
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.ends_with("xxTHE-END"), "{}", &text[text.len() - 40..]);
        assert!(text.len() < OUTPUT_LIMIT + 200, "{}", text.len());
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let start = std::time::Instant::now();
        let e = run(
            "sleep 30 & sleep 30",
            Duration::from_millis(200),
            &CommandEnv::INHERIT,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, CommandError::TimedOut { .. }), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
