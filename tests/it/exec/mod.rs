//! Exec mode (issue 15) with the real binary: nginx as confsync's child, reloaded by a
//! signal after a change; stopping, exit statuses, restarts, the child's environment,
//! and confsync as PID 1 of a PID namespace reaping orphans. The file backend feeds
//! them: the store is not the point here.

mod lifecycle;
mod nginx;
mod pid1;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;

use crate::support::{Proc, confsync, tempdir, write};

const LIMIT: Duration = Duration::from_secs(15);

/// Replaces `path` in one rename, so the file backend never reads it half-written.
pub fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// A config dir reading `data.yaml` with the file backend; returns it and the data file.
pub fn conf_dir(data: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let data_file = write(dir.path(), "data.yaml", data);
    write(
        dir.path(),
        "confsync.toml",
        &format!(
            "backend = \"file\"\nfile = [\"{}\"]\nwatch = true\n",
            data_file.display()
        ),
    );
    (dir, data_file)
}

/// `confsync run` in `dir` with `args`, logging to `dir/confsync.log`.
pub fn daemon(dir: &Path, args: &[&str]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--confdir"]).arg(dir).args(args);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

/// `(pid, parent pid, state, command name)` of every process.
pub fn processes() -> Vec<(i32, i32, char, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, state, comm));
    }
    out
}

/// Every process below `root` (not `root` itself).
pub fn descendants(root: i32) -> Vec<(i32, i32, char, String)> {
    let all = processes();
    let mut found: Vec<(i32, i32, char, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for proc in all.iter().filter(|q| q.1 == p) {
            frontier.push(proc.0);
            found.push(proc.clone());
        }
    }
    found
}

pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}
/// A resource-less-of-commands config dir for children that are not proxies.
pub fn plain_dir() -> tempfile::TempDir {
    let (dir, _) = conf_dir("app:\n  k: v\n");
    write(
        dir.path(),
        "templates/t.tmpl",
        "{{ getv(key=\"/app/k\") }}\n",
    );
    write(
        dir.path(),
        "conf.d/t.toml",
        &format!(
            "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n",
            dir.path().join("out").display()
        ),
    );
    dir
}
