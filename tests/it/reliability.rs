//! Faults the daemon must ride out: a reload that fails is retried until the proxy runs
//! the new file; a SIGHUP with a backend that cannot work keeps the old set; slow
//! renders and slow checks never hold back `/health` or other resources; 2,000
//! resources under a low file limit all get written; a reload interrupted by a crash is
//! run at the next start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::support::http::TinyHttp;
use crate::support::{
    Proc, confsync, free_port, require_program, tempdir, wait_file, wait_for, wait_port, write,
};

const LIMIT: Duration = Duration::from_secs(15);

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// A confdir on the file backend reading `data.yaml`.
fn file_conf(dir: &Path, data: &str) {
    write(
        dir,
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n",
    );
    write(dir, "data.yaml", data);
}

fn daemon(dir: &Path, args: &[&str]) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir).args(args);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

/// The body of `GET path` on 127.0.0.1:`port`, or `None` (1 s timeouts).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Some((code, body))
}

#[test]
fn a_reload_that_fails_twice_is_retried_until_haproxy_runs_the_new_file() {
    let haproxy = require_program("haproxy", "haproxy");
    let dir = tempdir();
    let d = dir.path();
    let (old, new) = (TinyHttp::body("old"), TinyHttp::body("new"));
    let http = free_port();
    let cfg = d.join("haproxy.cfg");
    let pid = d.join("haproxy.pid");
    let count = d.join("attempts");
    let conf = |server: &str| {
        format!(
            "defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend www\n  bind 127.0.0.1:{http}\n  default_backend app\n\
             backend app\n  server s {server}\n"
        )
    };
    std::fs::write(&cfg, conf(&old.addr())).unwrap();
    let mut cmd = std::process::Command::new(&haproxy);
    cmd.arg("-W").arg("-f").arg(&cfg).arg("-p").arg(&pid);
    let _haproxy = Proc::spawn("haproxy", cmd, &d.join("haproxy.log"));
    assert!(wait_port(http, LIMIT), "haproxy listens");
    assert!(wait_for(LIMIT, || get(http, "/").filter(|(_, b)| b == "old")).is_some());

    file_conf(d, &format!("server: \"{}\"\n", new.addr()));
    let tpl = conf("{{ getv(key=\"/server\") }}");
    write(d, "templates/haproxy.cfg.tmpl", &tpl);
    // The reload fails on its first two attempts, then signals the master.
    let reload = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; \
         [ $n -gt 2 ] && kill -USR2 $(cat {p})",
        c = count.display(),
        p = pid.display()
    );
    write(
        d,
        "conf.d/haproxy.toml",
        &format!(
            "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"{}\"\nkeys = [\"/server\"]\n\
             check_cmd = \"{} -c -q -f {{{{.src}}}}\"\nreload_cmd = '''{reload}'''\n",
            cfg.display(),
            haproxy.display()
        ),
    );
    let metrics = free_port();
    let _c = daemon(d, &["--metrics-addr", &format!("127.0.0.1:{metrics}")]);
    assert!(
        wait_file(&cfg, LIMIT, |s| s.contains(&new.addr())).is_some(),
        "the file is swapped in\n{}",
        log_of(d)
    );
    // No key changes from here on: only the retries can reload.
    let served = wait_for(LIMIT, || get(http, "/").filter(|(_, b)| b == "new"));
    assert!(
        served.is_some(),
        "haproxy serves the new backend\n{}",
        log_of(d)
    );
    let attempts: u32 = std::fs::read_to_string(&count)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(attempts, 3, "two failures, then the retry that worked");
    let log = log_of(d);
    assert!(log.contains("will retry"), "{log}");
    let m = wait_for(LIMIT, || {
        get(metrics, "/metrics")
            .map(|(_, b)| b)
            .filter(|b| b.contains("confsync_reload_pending{resource=\"haproxy\"} 0"))
    });
    let m = m.expect("the pending gauge is back to 0");
    assert!(
        m.contains("confsync_reload_failures_total{resource=\"haproxy\"} 2"),
        "{m}"
    );
}

#[test]
fn sighup_with_a_backend_that_cannot_work_keeps_the_daemon_and_the_old_set() {
    let dir = tempdir();
    let d = dir.path();
    file_conf(d, "a: \"1\"\n");
    write(d, "templates/t.tmpl", "a={{ getv(key=\"/a\") }}\n");
    let dest = d.join("out");
    write(
        d,
        "conf.d/t.toml",
        &format!(
            "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/a\"]\n",
            dest.display()
        ),
    );
    let metrics = free_port();
    let mut c = daemon(d, &["--metrics-addr", &format!("127.0.0.1:{metrics}")]);
    assert!(
        wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some(),
        "{}",
        log_of(d)
    );
    // The new set is valid as configuration, but its backend cannot start: its CA file
    // cannot be read.
    write(
        d,
        "confsync.toml",
        &format!(
            "backend = \"etcd\"\nnodes = [\"https://127.0.0.1:{}\"]\nclient_ca_keys = \"missing-ca.pem\"\n",
            free_port()
        ),
    );
    c.signal(Signal::SIGHUP);
    assert!(
        wait_for(LIMIT, || log_of(d)
            .contains("new configuration rejected")
            .then_some(()))
        .is_some(),
        "{}",
        log_of(d)
    );
    assert!(
        c.child.try_wait().unwrap().is_none(),
        "still running\n{}",
        log_of(d)
    );
    // The old generation still follows its data file.
    write(d, "data.yaml", "a: \"2\"\n");
    assert!(
        wait_file(&dest, LIMIT, |s| s == "a=2\n").is_some(),
        "the old set keeps working\n{}",
        log_of(d)
    );
    let ready = get(metrics, "/ready").expect("/ready answers");
    assert_eq!(ready.0, 200, "{ready:?}");
}

#[test]
fn slow_renders_and_a_slow_check_hold_back_neither_health_nor_other_resources() {
    let _quiet = crate::support::cpu_heavy();
    let dir = tempdir();
    let d = dir.path();
    file_conf(d, "a: \"1\"\n");
    // Each render of `slow` takes seconds; `fast` is immediate.
    write(
        d,
        "templates/slow.tmpl",
        "{{range seq 1 8000000}}{{end}}a={{getv \"/a\"}}\n",
    );
    write(d, "templates/fast.tmpl", "a={{ getv(key=\"/a\") }}\n");
    for (name, src, extra) in [
        ("slow1", "slow.tmpl", ""),
        ("slow2", "slow.tmpl", ""),
        ("checked", "fast.tmpl", "check_cmd = \"sleep 6\"\n"),
        ("fast", "fast.tmpl", ""),
    ] {
        write(
            d,
            &format!("conf.d/{name}.toml"),
            &format!(
                "[template]\nsrc = \"{src}\"\ndest = \"{}\"\nkeys = [\"/a\"]\n{extra}",
                d.join(format!("{name}.out")).display()
            ),
        );
    }
    let metrics = free_port();
    let c = daemon(d, &["--metrics-addr", &format!("127.0.0.1:{metrics}")]);
    let fast = d.join("fast.out");
    assert!(
        wait_file(&fast, LIMIT, |s| s == "a=1\n").is_some(),
        "{}",
        log_of(d)
    );
    assert!(
        wait_file(&d.join("checked.out"), Duration::from_secs(30), |s| s
            == "a=1\n")
        .is_some(),
        "{}",
        log_of(d)
    );
    for round in 2..4 {
        // A change starts the slow renders and the slow check again.
        write(d, "data.yaml", &format!("a: \"{round}\"\n"));
        let want = format!("a={round}\n");
        let t = Instant::now();
        assert!(
            wait_file(&fast, LIMIT, |s| s == want).is_some(),
            "{}",
            log_of(d)
        );
        let took = t.elapsed();
        let begun = Instant::now();
        let health = get(metrics, "/health");
        let answered = begun.elapsed();
        assert_eq!(health.map(|h| h.0), Some(200));
        let slow_done = std::fs::read_to_string(d.join("slow1.out")).unwrap_or_default() == want;
        assert!(
            !slow_done,
            "the slow render was still running while we looked"
        );
        assert!(
            took < Duration::from_secs(3),
            "the fast resource took {took:?}"
        );
        assert!(
            answered < Duration::from_millis(500),
            "/health took {answered:?}"
        );
        if round == 2 {
            // A SIGHUP while the slow check runs: the fast resource is not held back.
            c.signal(Signal::SIGHUP);
            assert!(
                wait_for(LIMIT, || log_of(d)
                    .contains("configuration reloaded")
                    .then_some(()))
                .is_some(),
                "{}",
                log_of(d)
            );
        }
    }
    for name in ["slow1", "slow2", "checked"] {
        assert!(
            wait_file(
                &d.join(format!("{name}.out")),
                Duration::from_secs(40),
                |s| s == "a=3\n"
            )
            .is_some(),
            "{name} catches up\n{}",
            log_of(d)
        );
    }
}

#[test]
fn two_thousand_resources_under_a_file_limit_of_256_are_all_written() {
    let dir = tempdir();
    let d = dir.path();
    file_conf(d, "a: \"1\"\n");
    write(d, "templates/t.tmpl", "a={{ getv(key=\"/a\") }}\n");
    std::fs::create_dir_all(d.join("out")).unwrap();
    const N: usize = 2000;
    for i in 0..N {
        write(
            d,
            &format!("conf.d/r{i:04}.toml"),
            &format!(
                "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/a\"]\ncheck_cmd = \"test -s {{{{.src}}}}\"\n",
                d.join(format!("out/r{i:04}")).display()
            ),
        );
    }
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(d);
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 256, 256)
                .map_err(std::io::Error::from)
        });
    }
    let _p = Proc::spawn("confsync", c, &d.join("confsync.log"));
    let written = |want: &str| {
        (0..N)
            .filter(|i| {
                std::fs::read_to_string(d.join(format!("out/r{i:04}"))).is_ok_and(|s| s == want)
            })
            .count()
    };
    let all = wait_for(Duration::from_secs(120), || {
        (written("a=1\n") == N).then_some(())
    });
    assert!(
        all.is_some(),
        "{} of {N} written\n{}",
        written("a=1\n"),
        tail(&log_of(d))
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn a_reload_cut_short_by_a_crash_runs_at_the_next_start() {
    let dir = tempdir();
    let d = dir.path();
    let state = d.join("state");
    file_conf(d, "a: \"1\"\n");
    write(d, "templates/t.tmpl", "a={{ getv(key=\"/a\") }}\n");
    let dest = d.join("out");
    let started = d.join("reload-started");
    let ran = d.join("reload-ran");
    let hang = d.join("hang");
    std::fs::write(&hang, "").unwrap();
    // While `hang` exists the reload hangs (as a busy master would).
    let reload = format!(
        "touch {s}; while [ -e {h} ]; do sleep 0.1; done; echo ok >> {r}",
        s = started.display(),
        h = hang.display(),
        r = ran.display()
    );
    write(
        d,
        "conf.d/t.toml",
        &format!(
            "[template]\nsrc = \"t.tmpl\"\ndest = \"{}\"\nkeys = [\"/a\"]\nreload_cmd = '''{reload}'''\n",
            dest.display()
        ),
    );
    let state_arg = state.display().to_string();
    let mut c = daemon(d, &["--state-dir", &state_arg]);
    assert!(
        wait_file(&dest, LIMIT, |s| s == "a=1\n").is_some(),
        "{}",
        log_of(d)
    );
    assert!(wait_for(LIMIT, || started.exists().then_some(())).is_some());
    c.kill();
    // The hung reload's shell outlives the crash; end it without letting it finish.
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &hang.display().to_string()])
        .status();
    std::fs::remove_file(&hang).unwrap();
    assert!(!ran.exists());
    // The file already matches, so only the record of the owed reload can run it.
    let _c = daemon(d, &["--state-dir", &state_arg]);
    assert!(
        wait_file(&ran, LIMIT, |s| s == "ok\n").is_some(),
        "the owed reload ran at start\n{}",
        log_of(d)
    );
    let said = wait_for(LIMIT, || {
        log_of(d).contains("reloaded (it was owed)").then_some(())
    });
    assert!(said.is_some(), "{}", log_of(d));
}
