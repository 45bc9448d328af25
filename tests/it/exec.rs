//! Exec mode (issue 15) with the real binary: nginx as confsync's child, reloaded by a
//! signal after a change; stopping, exit statuses, restarts, the child's environment,
//! and confsync as PID 1 of a PID namespace reaping orphans. The file backend feeds
//! them: the store is not the point here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::support::{Proc, confsync, require_program, tempdir, wait_for, wait_port, write};

const LIMIT: Duration = Duration::from_secs(15);

/// An nginx config (a template) answering every request with `/app/greeting`, its
/// pid and temp files under `run`.
fn nginx_conf(run: &str, port: u16) -> String {
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {run}/{t};\n"))
        .collect();
    let answer = r#"return 200 "{{ getv(key="/app/greeting") | safe_line }}\n";"#;
    format!(
        "pid {run}/nginx.pid;\nerror_log stderr;\nevents {{ worker_connections 64; }}\n\
         http {{\n    access_log off;\n{temps}    server {{\n        listen 127.0.0.1:{port};\n        \
         location / {{ {answer} }}\n    }}\n}}\n"
    )
}

/// Replaces `path` in one rename, so the file backend never reads it half-written.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// A config dir reading `data.yaml` with the file backend; returns it and the data file.
fn conf_dir(data: &str) -> (tempfile::TempDir, PathBuf) {
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
fn daemon(dir: &Path, args: &[&str]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--confdir"]).arg(dir).args(args);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

/// The body nginx answers on `port` with, if it answers.
fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
}

/// `(pid, parent pid, state, command name)` of every process.
fn processes() -> Vec<(i32, i32, char, String)> {
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
fn descendants(root: i32) -> Vec<(i32, i32, char, String)> {
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

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

/// nginx as the exec child: it starts after the first render, a key change reaches its
/// traffic through the reload signal (HUP) with the same master, and SIGTERM to
/// confsync stops nginx and exits 0.
#[test]
fn nginx_as_the_child_reloads_on_a_change_and_stops_with_confsync() {
    let nginx = require_program("nginx", "nginx");
    let (dir, data) = conf_dir("app:\n  greeting: hello-1\n");
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let run_s = run.display().to_string();
    let port = crate::support::free_port();
    write(
        dir.path(),
        "templates/nginx.tmpl",
        &nginx_conf(&run_s, port),
    );
    let dest = dir.path().join("nginx.conf");
    let nginx_s = nginx.display().to_string();
    write(
        dir.path(),
        "conf.d/nginx.toml",
        &format!(
            "[template]\nsrc = \"nginx.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n\
             check_cmd = \"{nginx_s} -t -q -p {run_s} -e stderr -c {{{{.src}}}}\"\n",
            dest.display()
        ),
    );
    let exec = format!(
        "{nginx_s} -p {run_s} -e stderr -g 'daemon off;' -c {}",
        dest.display()
    );
    let mut d = daemon(dir.path(), &["--exec", &exec]);
    let confsync_pid = d.child.id() as i32;
    assert!(
        wait_port(port, LIMIT),
        "nginx never listened; log:\n{}",
        log_of(dir.path())
    );
    assert_eq!(get(port).as_deref(), Some("hello-1"));
    let master = |()| {
        descendants(confsync_pid)
            .into_iter()
            .filter(|p| p.1 == confsync_pid && p.3 == "nginx")
            .map(|p| p.0)
            .collect::<Vec<_>>()
    };
    let first = master(());
    assert_eq!(first.len(), 1, "one nginx master, confsync's child");

    let changed = std::time::Instant::now();
    replace(&data, "app:\n  greeting: hello-2\n");
    wait_for(LIMIT, || {
        (get(port).as_deref() == Some("hello-2")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the change never reached nginx (got {:?}); log:\n{}",
            get(port),
            log_of(dir.path())
        )
    });
    eprintln!(
        "exec: the change reached nginx's traffic {:?} after the data file was replaced",
        changed.elapsed()
    );
    assert_eq!(
        master(()),
        first,
        "the same master, reloaded, and no second one"
    );
    assert!(
        log_of(dir.path()).contains("exec child told to reload"),
        "{}",
        log_of(dir.path())
    );

    d.signal(Signal::SIGTERM);
    let status = d
        .wait_exit(LIMIT)
        .unwrap_or_else(|| panic!("confsync did not stop; log:\n{}", log_of(dir.path())));
    assert_eq!(status.code(), Some(0), "log:\n{}", log_of(dir.path()));
    assert!(!alive(first[0]), "nginx outlived confsync");
    assert!(
        wait_for(LIMIT, || (!wait_port_once(port)).then_some(())).is_some(),
        "nginx still listens"
    );
}

fn wait_port_once(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A resource-less-of-commands config dir for children that are not proxies.
fn plain_dir() -> tempfile::TempDir {
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

/// A child that exits makes confsync exit with its status: a code as it is, a signal
/// as 128 + the signal.
#[test]
fn confsync_exits_with_the_status_of_its_child() {
    let dir = plain_dir();
    let mut d = daemon(dir.path(), &["--exec", "sh -c 'exit 7'"]);
    let status = d.wait_exit(LIMIT).expect("confsync did not exit");
    assert_eq!(status.code(), Some(7), "log:\n{}", log_of(dir.path()));
    assert!(
        dir.path().join("out").exists(),
        "the child ran before the first render"
    );

    let dir = plain_dir();
    let pidfile = dir.path().join("child.pid");
    let exec = format!("sh -c 'echo $$ > {}; exec sleep 30'", pidfile.display());
    let mut d = daemon(dir.path(), &["--exec", &exec]);
    let pid: i32 = wait_for(LIMIT, || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .unwrap_or_else(|| panic!("the child never started; log:\n{}", log_of(dir.path())));
    nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let status = d.wait_exit(LIMIT).expect("confsync did not exit");
    assert_eq!(status.code(), Some(128 + 9), "log:\n{}", log_of(dir.path()));
}

/// `--exec-restart` starts a child that died again; the child never sees confsync's
/// secrets or NOTIFY_SOCKET; SIGUSR1 is passed on, and SIGHUP both passed on and
/// taken as confsync's own configuration reload.
#[test]
fn exec_restart_brings_the_child_back_with_a_clean_environment() {
    let dir = plain_dir();
    let starts = dir.path().join("starts");
    let envs = dir.path().join("env");
    let usr1 = dir.path().join("usr1");
    let hup = dir.path().join("hup");
    let exec = format!(
        "sh -c 'env > {env}; trap \"echo usr1 >> {usr1}\" USR1; trap \"echo hup >> {hup}\" HUP; echo $$ >> {starts}; while :; do sleep 0.05; done'",
        env = envs.display(),
        hup = hup.display(),
        usr1 = usr1.display(),
        starts = starts.display()
    );
    let mut c = confsync();
    c.args(["run", "--confdir"])
        .arg(dir.path())
        .args([
            "--exec",
            &exec,
            "--exec-restart",
            "--exec-kill-timeout",
            "2s",
        ])
        .env("CONFSYNC_PASSWORD", "hunter2")
        .env("NOTIFY_SOCKET", dir.path().join("no-such-socket"))
        .env("CHILD_SEES_THIS", "yes");
    let mut d = Proc::spawn("confsync", c, &dir.path().join("confsync.log"));
    let pids = || -> Vec<i32> {
        std::fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let first = wait_for(LIMIT, || pids().first().copied())
        .unwrap_or_else(|| panic!("the child never started; log:\n{}", log_of(dir.path())));
    let env = wait_for(LIMIT, || {
        std::fs::read_to_string(&envs)
            .ok()
            .filter(|e| e.contains("CHILD_SEES_THIS"))
    })
    .expect("the child's environment");
    assert!(
        !env.contains("hunter2") && !env.contains("CONFSYNC_"),
        "{env}"
    );
    assert!(!env.contains("NOTIFY_SOCKET"), "{env}");

    d.signal(Signal::SIGUSR1);
    wait_for(LIMIT, || std::fs::metadata(&usr1).ok())
        .unwrap_or_else(|| panic!("SIGUSR1 was not passed on; log:\n{}", log_of(dir.path())));
    d.signal(Signal::SIGHUP);
    wait_for(LIMIT, || std::fs::metadata(&hup).ok())
        .unwrap_or_else(|| panic!("SIGHUP was not passed on; log:\n{}", log_of(dir.path())));
    wait_for(LIMIT, || {
        log_of(dir.path())
            .contains("configuration reloaded")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "SIGHUP did not reload confsync; log:\n{}",
            log_of(dir.path())
        )
    });

    nix::sys::signal::kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let second = wait_for(LIMIT, || pids().get(1).copied())
        .unwrap_or_else(|| panic!("the child was not restarted; log:\n{}", log_of(dir.path())));
    assert_ne!(first, second);
    assert!(d.child.try_wait().unwrap().is_none(), "confsync exited");

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(LIMIT).expect("confsync did not stop");
    assert_eq!(status.code(), Some(0), "log:\n{}", log_of(dir.path()));
    assert!(!alive(second), "the restarted child outlived confsync");
}

/// A child that ignores the kill signal is SIGKILLed after `--exec-kill-timeout`.
#[test]
fn a_child_that_ignores_the_kill_signal_is_killed_after_the_timeout() {
    let dir = plain_dir();
    let pidfile = dir.path().join("child.pid");
    let exec = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {}; while :; do sleep 0.05; done'",
        pidfile.display()
    );
    let mut d = daemon(
        dir.path(),
        &["--exec", &exec, "--exec-kill-timeout", "500ms"],
    );
    let pid: i32 = wait_for(LIMIT, || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    })
    .unwrap_or_else(|| panic!("the child never started; log:\n{}", log_of(dir.path())));
    let asked = std::time::Instant::now();
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(LIMIT).expect("confsync did not stop");
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(!alive(pid), "the child survived");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "stopping took {took:?}"
    );
    assert!(
        log_of(dir.path()).contains("SIGKILL"),
        "{}",
        log_of(dir.path())
    );
}

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

/// In exec mode, resources changed together cost the child one reload signal.
#[test]
fn one_signal_per_round_for_resources_changed_together() {
    let (dir, data) = conf_dir("app:\n  v: one\n");
    let d = dir.path();
    write(d, "templates/t.tmpl", "{{ getv(key=\"/app/v\") }}\n");
    for name in ["a", "b", "c"] {
        write(
            d,
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}/out/{name}\"\nkeys = [\"/app\"]\n",
                d.display()
            ),
        );
    }
    std::fs::create_dir_all(d.join("out")).unwrap();
    let hups = d.join("hups");
    let ready = d.join("ready");
    let exec = format!(
        "sh -c 'trap \"echo hup >> {hups}\" HUP; touch {ready}; while :; do sleep 0.05; done'",
        hups = hups.display(),
        ready = ready.display()
    );
    let _d = daemon(d, &["--exec", &exec]);
    wait_for(LIMIT, || std::fs::metadata(&ready).ok())
        .unwrap_or_else(|| panic!("the child never started; log:\n{}", log_of(d)));
    replace(&data, "app:\n  v: two\n");
    let count = || {
        std::fs::read_to_string(&hups)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for(LIMIT, || (count() >= 1).then_some(()))
        .unwrap_or_else(|| panic!("no reload signal; log:\n{}", log_of(d)));
    for name in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read_to_string(d.join("out").join(name)).unwrap(),
            "two\n",
            "the signal came before every file was in place"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(), 1, "log:\n{}", log_of(d));
    // Signals sent close together may merge in the child: count those confsync sent.
    let sent = log_of(d).matches("exec child told to reload").count();
    assert_eq!(sent, 1, "log:\n{}", log_of(d));
}
