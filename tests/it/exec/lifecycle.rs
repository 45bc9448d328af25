//! The child's life: its exit status, restarts, its environment, forwarded signals,
//! the kill timeout, and one reload signal per round.

use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{LIMIT, alive, conf_dir, daemon, log_of, plain_dir, replace};
use crate::support::{Proc, confsync, wait_for, write};

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
