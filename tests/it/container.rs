//! The container example (`examples/container`): its image is built offline by
//! `build-image.sh` from the host's nginx and the test's confsync binary, and run on the
//! harness's private dockerd with `--network host`, so the container reaches the Redis
//! and the web apps on the host's 127.0.0.1 and its nginx serves on a free 127.0.0.1
//! port of the host (the container has no network of its own to publish from). confsync
//! is the container's PID 1 and runs nginx as its exec child.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::docker::{Dockerd, shared, unique_name};
use crate::support::http::TinyHttp;
use crate::support::http::body_of as get;
use crate::support::redis::RedisServer;
use crate::support::{bin, free_port, require_program, wait_for};

/// How long any one step may take.
const LIMIT: Duration = Duration::from_secs(20);

/// How long building and importing the image may take.
const BUILD_LIMIT: &str = "120";

/// Removes the container and the image, also when the test fails half way.
struct Cleanup<'a> {
    d: &'a Dockerd,
    name: String,
    image: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.d.cli(&["rm", "-f", &self.name]);
        let _ = self.d.cli(&["rmi", "-f", &self.image]);
    }
}

/// A process's command line, its arguments joined by spaces.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Every process on the host with its parent, from /proc.
fn processes() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            out.push((pid, ppid));
        }
    }
    out
}

/// The host pids of the nginx masters below `root`.
fn nginx_masters(root: i32) -> Vec<i32> {
    let procs = processes();
    let below = |mut pid: i32| {
        for _ in 0..64 {
            match procs.iter().find(|p| p.0 == pid) {
                Some(&(_, ppid)) if ppid == root => return true,
                Some(&(_, ppid)) if ppid > 1 => pid = ppid,
                _ => return false,
            }
        }
        false
    };
    let mut masters: Vec<i32> = procs
        .iter()
        .map(|p| p.0)
        .filter(|&p| cmdline(p).starts_with("nginx: master") && below(p))
        .collect();
    masters.sort();
    masters
}

/// The container's output, for failure messages.
fn logs(d: &Dockerd, name: &str) -> String {
    let out = d.cli(&["logs", name]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// nginx and confsync in one container built by the example's script: nginx serves the
/// upstream rendered from Redis, a key change reaches its traffic through the exec
/// reload signal with the same nginx master, confsync is PID 1, and `docker stop` ends
/// the container with exit code 0 within a few seconds.
#[test]
fn example_image_runs_nginx_under_confsync_as_pid_1() {
    let started = Instant::now();
    require_program("nginx", "nginx");
    let d = shared();
    let image = format!("confsync-nginx:it-{:08x}", fastrand::u32(..));
    let name = unique_name("confsync-nginx");
    let _cleanup = Cleanup {
        d,
        name: name.clone(),
        image: image.clone(),
    };

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/container/build-image.sh");
    let build_started = Instant::now();
    let out = Command::new("timeout")
        .arg(BUILD_LIMIT)
        .arg("bash")
        .arg(&script)
        .arg(bin())
        .arg(&image)
        .env("DOCKER_HOST", d.node())
        .output()
        .expect("run build-image.sh");
    assert!(
        out.status.success(),
        "build-image.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some(image.as_str()),
        "the script prints the image's name last"
    );
    eprintln!(
        "container: image built and imported in {:?}",
        build_started.elapsed()
    );

    // S2's shape: the apps' addresses under /work/webapp/ips in a Redis on the host.
    let redis = RedisServer::start(&[]);
    let app1 = TinyHttp::body("app1");
    let app2 = TinyHttp::body("app2");
    let mut c = redis.conn();
    redis::cmd("SET")
        .arg("/work/webapp/ips/10.0.0.1")
        .arg(app1.addr())
        .query::<()>(&mut c)
        .unwrap();

    let port = free_port();
    d.cli_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "-e",
        &format!("CONFSYNC_NODE={}", redis.node()),
        "-e",
        &format!("NGINX_LISTEN=127.0.0.1:{port}"),
        &image,
    ]);

    // confsync is PID 1: the container's first process on the host runs confsync, and
    // its pid in the container's own namespace is 1.
    let pid: i32 = d
        .cli_ok(&["inspect", "-f", "{{.State.Pid}}", &name])
        .parse()
        .expect("State.Pid");
    assert!(
        pid > 0,
        "the container does not run; logs:\n{}",
        logs(d, &name)
    );
    assert!(
        cmdline(pid).starts_with("/usr/bin/confsync run"),
        "PID 1 runs {:?}",
        cmdline(pid)
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .map(str::to_string);
    assert_eq!(nspid.as_deref(), Some("1"), "pid in the container");

    let first = wait_for(LIMIT, || {
        (get(port).as_deref() == Some("app1")).then_some(())
    });
    assert!(
        first.is_some(),
        "nginx never served app1 (got {:?}); logs:\n{}",
        get(port),
        logs(d, &name)
    );
    let masters = nginx_masters(pid);
    assert_eq!(
        masters.len(),
        1,
        "one nginx master below confsync: {masters:?}"
    );

    // app2 registers and app1's key goes: nginx follows after one HUP, same master.
    let changed = Instant::now();
    redis::cmd("SET")
        .arg("/work/webapp/ips/10.0.0.2")
        .arg(app2.addr())
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("DEL")
        .arg("/work/webapp/ips/10.0.0.1")
        .query::<()>(&mut c)
        .unwrap();
    let only_app2 = || {
        (0..4)
            .all(|_| get(port).as_deref() == Some("app2"))
            .then_some(())
    };
    wait_for(LIMIT, only_app2).unwrap_or_else(|| {
        panic!(
            "the change never reached nginx (got {:?}); logs:\n{}",
            get(port),
            logs(d, &name)
        )
    });
    eprintln!(
        "container: the change reached nginx's traffic {:?} after the keys changed",
        changed.elapsed()
    );
    assert_eq!(
        nginx_masters(pid),
        masters,
        "the same nginx master, reloaded, and no second one"
    );
    let log = logs(d, &name);
    assert!(log.contains("exec child told to reload"), "logs:\n{log}");

    // docker stop: SIGTERM to PID 1, which stops nginx and exits 0.
    let stopping = Instant::now();
    d.cli_ok(&["stop", "-t", "10", &name]);
    let took = stopping.elapsed();
    eprintln!("container: docker stop took {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "docker stop took {took:?} (the 10 s SIGKILL limit is for an init that ignores TERM)"
    );
    let exit = d.cli_ok(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(exit, "0", "exit code; logs:\n{}", logs(d, &name));
    assert!(
        masters
            .iter()
            .all(|m| !Path::new(&format!("/proc/{m}")).exists()),
        "nginx outlived the container"
    );
    assert!(get(port).is_none(), "nginx still answers on {port}");

    d.cli_ok(&["rm", &name]);
    d.cli_ok(&["rmi", &image]);
    eprintln!("container: whole test took {:?}", started.elapsed());
}
