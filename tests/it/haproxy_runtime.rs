//! HAProxy without reloads (issue 14): a real HAProxy 2.6 in master-worker mode with an
//! admin stats socket, real HTTP backends on loopback, and the daemon on the file
//! backend. Server changes go through the Runtime API (no reload, one worker), anything
//! else and every failure reloads, and the file always says what HAProxy runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::http::TinyHttp;
use crate::support::{
    Proc, confsync, free_port, require_program, tempdir, wait_file, wait_for, write,
};

const LIMIT: Duration = Duration::from_secs(10);

/// The template: one backend whose servers come from `/hx/servers/*` (the value is the
/// rest of the line: an address, maybe keywords), and a `timeout queue` from the store.
fn template(sock: &Path, port: u16) -> String {
    format!(
        "global\n    stats socket {} level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 5s\n    timeout http-keep-alive 30s\n    timeout queue {{{{ getv(key=\"/hx/queue\", default=\"5s\") }}}}\n\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend app\n\nbackend app\n    balance roundrobin\n{{% for s in gets(key=\"/hx/servers/*\") %}}    server {{{{ s.key | base }}}} {{{{ s.value }}}}\n{{% endfor %}}",
        sock.display()
    )
}

/// A confdir, HAProxy started from the first render, and the daemon watching the data.
struct Rig {
    dir: tempfile::TempDir,
    dest: PathBuf,
    sock: PathBuf,
    port: u16,
    /// The daemon's `--metrics-addr` port (for `/status.json`).
    status_port: u16,
    haproxy: Option<Proc>,
    daemon: Option<Proc>,
}

impl Rig {
    /// `extra`: more lines for the resource file.
    fn start(servers: &BTreeMap<String, String>, extra: &str) -> Rig {
        let haproxy = require_program("haproxy", "haproxy");
        let dir = tempdir();
        let d = dir.path();
        let (sock, port) = (d.join("admin.sock"), free_port());
        let dest = d.join("out/haproxy.cfg");
        std::fs::create_dir_all(d.join("out")).unwrap();
        write(d, "templates/hx.tmpl", &template(&sock, port));
        write(
            d,
            "confsync.toml",
            &format!(
                "backend = \"file\"\nfile = [\"{}\"]\n",
                d.join("data.yaml").display()
            ),
        );
        let reload = format!(
            "echo r >> {0}/reloads && kill -USR2 $(cat {0}/haproxy.pid)",
            d.display()
        );
        write(
            d,
            "conf.d/hx.toml",
            &format!(
                "[template]\nsrc = \"hx.tmpl\"\ndest = \"{}\"\nkeys = [\"/hx\"]\nwait = \"10ms:50ms\"\ncheck_cmd = \"{} -c -q -f {{{{ src }}}}\"\nreload_cmd = \"{reload}\"\nhaproxy_socket = \"{}\"\n{extra}",
                dest.display(),
                haproxy.display(),
                sock.display()
            ),
        );
        let mut rig = Rig {
            dir,
            dest,
            sock,
            port,
            status_port: free_port(),
            haproxy: None,
            daemon: None,
        };
        rig.data(servers, "5s");
        // The first file, as the daemon renders it, so HAProxy and the file agree from
        // the start and the daemon finds nothing to do.
        let out = confsync()
            .args(["render", "--resource", "hx", "--confdir"])
            .arg(rig.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&rig.dest, &out.stdout).unwrap();
        rig.start_haproxy();
        let mut c = confsync();
        c.args(["run", "--watch", "--confdir"])
            .arg(rig.dir.path())
            .args(["--metrics-addr", &format!("127.0.0.1:{}", rig.status_port)]);
        rig.daemon = Some(Proc::spawn(
            "confsync",
            c,
            &rig.dir.path().join("confsync.log"),
        ));
        rig
    }

    fn start_haproxy(&mut self) {
        let d = self.dir.path();
        let mut cmd = Command::new(require_program("haproxy", "haproxy"));
        cmd.arg("-W")
            .arg("-S")
            .arg(d.join("master.sock"))
            .arg("-p")
            .arg(d.join("haproxy.pid"))
            .arg("-f")
            .arg(&self.dest);
        self.haproxy = Some(Proc::spawn("haproxy", cmd, &d.join("haproxy.log")));
        assert!(
            crate::support::wait_port(self.port, LIMIT)
                && wait_for(LIMIT, || self.sock.exists().then_some(())).is_some(),
            "haproxy did not start: {}",
            std::fs::read_to_string(d.join("haproxy.log")).unwrap_or_default()
        );
        assert!(wait_for(LIMIT, || (self.workers().len() == 1).then_some(())).is_some());
    }

    /// Writes the data file (renamed into place, so the file backend takes it at once).
    fn data(&self, servers: &BTreeMap<String, String>, queue: &str) {
        let mut y = format!("hx:\n  queue: \"{queue}\"\n  servers:\n");
        for (k, v) in servers {
            y.push_str(&format!("    {k}: \"{v}\"\n"));
        }
        let tmp = self.dir.path().join("data.yaml.tmp");
        std::fs::write(&tmp, y).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("data.yaml")).unwrap();
    }

    /// Writes the data and waits until the file has exactly these servers.
    fn set(&self, servers: &BTreeMap<String, String>, queue: &str) {
        self.data(servers, queue);
        let want: BTreeMap<String, String> = servers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.split(' ').next().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let got = wait_file(&self.dest, LIMIT, |s| {
            file_servers(s) == want && s.contains(&format!("timeout queue {queue}"))
        });
        assert!(
            got.is_some(),
            "the file never had {want:?}; log:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("confsync.log")).unwrap_or_default()
    }

    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("reloads"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn master(&self) -> u32 {
        self.haproxy.as_ref().map_or(0, |p| p.child.id())
    }

    /// The master's children: its workers, old and new.
    fn workers(&self) -> Vec<u32> {
        children(self.master())
    }

    /// Servers as the runtime has them: name -> (`addr:port`, in maintenance).
    fn live(&self) -> BTreeMap<String, String> {
        let text = cli(&self.sock, "show servers state app");
        text.lines()
            .skip(2)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let maint = f.get(6)?.parse::<u32>().ok()? & 0x05 != 0;
                let entry = (
                    f.get(3)?.to_string(),
                    format!("{}:{}", f.get(4)?, f.get(18)?),
                );
                (!maint).then_some(entry)
            })
            .collect()
    }

    /// Asserts that the runtime, the file and the traffic agree on `servers`.
    fn agree(&self, servers: &BTreeMap<String, String>, names: &BTreeMap<String, String>) {
        let file = file_servers(&std::fs::read_to_string(&self.dest).unwrap());
        let ok = wait_for(LIMIT, || (self.live() == file).then_some(()));
        assert!(ok.is_some(), "runtime {:?} != file {file:?}", self.live());
        // Every server answers with its backend's name: round robin reaches them all.
        let want: BTreeSet<String> = servers
            .values()
            .map(|a| names[a.split(' ').next().unwrap()].clone())
            .collect();
        let mut seen = BTreeSet::new();
        for _ in 0..(servers.len() * 3 + 3) {
            seen.insert(get(self.port));
        }
        assert_eq!(seen, want, "traffic reached {seen:?}, servers are {want:?}");
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The daemon first, so it does not reload a HAProxy on its way down.
        drop(self.daemon.take());
        drop(self.haproxy.take());
    }
}

/// The `server` lines of backend `app`: name -> address.
fn file_servers(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"server")).then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Pids whose parent is `parent` (from /proc).
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// One command on the stats socket.
fn cli(sock: &Path, cmd: &str) -> String {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(format!("{cmd}\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One request on a new connection: the body, or the status line of a failure.
fn get(port: u16) -> String {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return "connect failed".into();
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => body.to_string(),
        _ => out.lines().next().unwrap_or("no answer").to_string(),
    }
}

/// A request on a kept-alive connection: the body.
fn get_on(conn: &mut BufReader<TcpStream>) -> String {
    let _ = conn
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut len = 0;
    let mut status = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).unwrap_or(0) == 0 {
            return format!("closed after {status:?}");
        }
        if status.is_empty() {
            status = line.trim().to_string();
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    let _ = conn.read_exact(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// `n` backends answering `b00`, `b01`... and the name each address answers with.
fn backends(n: usize) -> (Vec<TinyHttp>, BTreeMap<String, String>) {
    let apps: Vec<TinyHttp> = (0..n)
        .map(|i| TinyHttp::body(&format!("b{i:02}")))
        .collect();
    let names = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.addr(), format!("b{i:02}")))
        .collect();
    (apps, names)
}

#[test]
fn servers_join_leave_and_move_without_a_reload() {
    let (apps, names) = backends(24);
    let mut servers: BTreeMap<String, String> =
        [("s00".to_string(), apps[0].addr())].into_iter().collect();
    let mut rig = Rig::start(&servers, "");
    let worker = rig.workers();
    let mut kept = BufReader::new(TcpStream::connect(("127.0.0.1", rig.port)).unwrap());
    kept.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(get_on(&mut kept), "b00");
    let check = |servers: &BTreeMap<String, String>| {
        rig.agree(servers, &names);
        assert_eq!(rig.workers(), worker, "a worker was replaced or added");
        assert_eq!(rig.reloads(), 0, "reload_cmd ran; log:\n{}", rig.log());
    };
    for (i, app) in apps.iter().enumerate().take(21).skip(1) {
        servers.insert(format!("s{i:02}"), app.addr());
        rig.set(&servers, "5s");
        check(&servers);
    }
    for i in 1..=10 {
        servers.remove(&format!("s{i:02}"));
        rig.set(&servers, "5s");
        check(&servers);
    }
    for (s, to) in [("s11", 21), ("s12", 22)] {
        servers.insert(s.to_string(), apps[to].addr());
        rig.set(&servers, "5s");
        check(&servers);
    }
    // The connection opened at the start is still served, by a server there now.
    let body = get_on(&mut kept);
    let now: BTreeSet<&String> = servers.values().map(|a| &names[a]).collect();
    assert!(now.contains(&body), "kept-alive connection got {body:?}");
    wait_paths(&rig, "runtime", 32);
    let log = rig.log();
    assert_eq!(paths(&log, "runtime"), 32, "{log}");
    assert_eq!(paths(&log, "reload"), 0, "{log}");
    // The status page says how the last change got there.
    let (_, json) = crate::daemon::http_get(rig.status_port, "/status.json").expect("status");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let last = &v["resources"][0]["last_reload"];
    assert_eq!(
        (&last["path"], &last["ok"]),
        (&"runtime".into(), &true.into()),
        "{v}"
    );
    // HAProxy started again from the file runs the same servers.
    let before = rig.live();
    drop(rig.haproxy.take());
    rig.start_haproxy();
    assert_eq!(rig.live(), before);
}

/// The number of updates logged with `path` (`runtime` or `reload`).
fn paths(log: &str, path: &str) -> usize {
    log.matches(&format!("path=\"{path}\"")).count() + log.matches(&format!("path={path} ")).count()
}

/// Waits until `n` updates went by `path`.
fn wait_paths(rig: &Rig, path: &str, n: usize) {
    let ok = wait_for(LIMIT, || (paths(&rig.log(), path) >= n).then_some(()));
    assert!(
        ok.is_some(),
        "fewer than {n} updates by {path}; log:\n{}",
        rig.log()
    );
}

/// Writes `servers` (with `timeout queue 6s`), waits for the file and for the `n`th
/// update by `path`.
fn step(rig: &Rig, servers: &BTreeMap<String, String>, path: &str, n: usize) {
    rig.set(servers, "6s");
    wait_paths(rig, path, n);
}

/// Waits until the master has one worker and it is not `old`; returns it.
fn new_worker(rig: &Rig, old: &[u32]) -> Vec<u32> {
    let w = wait_for(LIMIT, || {
        let w = rig.workers();
        (w.len() == 1 && w != old).then_some(w)
    });
    w.unwrap_or_else(|| panic!("no new single worker: {:?} (was {old:?})", rig.workers()))
}

#[test]
fn other_changes_refusals_and_a_lost_socket_reload_then_the_runtime_resumes() {
    let (apps, names) = backends(6);
    let mut servers: BTreeMap<String, String> =
        [("s0".to_string(), apps[0].addr())].into_iter().collect();
    let mut rig = Rig::start(&servers, "");
    let w0 = rig.workers();

    // A `timeout` line: a reload (a new worker), and the reason in the log.
    step(&rig, &servers, "reload", 1);
    let w1 = new_worker(&rig, &w0);
    assert_eq!(rig.reloads(), 1);
    assert!(rig.log().contains("other_change"), "{}", rig.log());
    rig.agree(&servers, &names);

    // A keyword `add server` refuses: a reload, and it still ends right.
    servers.insert("s1".into(), format!("{} cookie c1", apps[1].addr()));
    step(&rig, &servers, "reload", 2);
    let w2 = new_worker(&rig, &w1);
    assert!(rig.log().contains("refused_line"), "{}", rig.log());
    rig.agree(&servers, &names);

    // Back on the runtime path.
    servers.insert("s2".into(), apps[2].addr());
    step(&rig, &servers, "runtime", 1);
    rig.agree(&servers, &names);
    assert_eq!(rig.workers(), w2);

    // The socket is gone: a reload; once it is back, the runtime again.
    std::fs::rename(&rig.sock, rig.dir.path().join("moved.sock")).unwrap();
    servers.insert("s3".into(), apps[3].addr());
    step(&rig, &servers, "reload", 3);
    let w3 = new_worker(&rig, &w2);
    assert!(
        rig.log().contains("reason=\"socket\"") || rig.log().contains("reason=socket"),
        "{}",
        rig.log()
    );
    // A reload takes its listeners over from the old worker by file descriptor, so
    // it does not bind the path again: put the socket back.
    std::fs::rename(rig.dir.path().join("moved.sock"), &rig.sock).unwrap();
    rig.agree(&servers, &names);
    servers.insert("s4".into(), apps[4].addr());
    step(&rig, &servers, "runtime", 2);
    rig.agree(&servers, &names);
    assert_eq!(rig.workers(), w3);

    // HAProxy restarted from the file between two changes: the runtime again.
    drop(rig.haproxy.take());
    rig.start_haproxy();
    servers.remove("s2");
    step(&rig, &servers, "runtime", 3);
    rig.agree(&servers, &names);
    assert_eq!(rig.reloads(), 3, "{}", rig.log());
}

#[test]
fn a_removed_server_drains_its_requests_before_it_is_deleted() {
    let slow = TinyHttp::start(|| {
        std::thread::sleep(Duration::from_millis(800));
        ("200 OK", "slow".into())
    });
    let fast = TinyHttp::body("fast");
    let mut servers: BTreeMap<String, String> =
        [("s0".to_string(), slow.addr())].into_iter().collect();
    let rig = Rig::start(&servers, "drain_timeout = \"5s\"\n");
    let port = rig.port;
    let in_flight = std::thread::spawn(move || get(port));
    // The request has reached the slow server before it is removed.
    let busy = wait_for(LIMIT, || {
        cli(&rig.sock, "show stat app 4 -1")
            .lines()
            .any(|l| l.starts_with("app,s0,") && l.split(',').nth(4) == Some("1"))
            .then_some(())
    });
    assert!(busy.is_some(), "the request never reached s0");
    servers.remove("s0");
    servers.insert("s1".into(), fast.addr());
    rig.set(&servers, "5s");
    assert_eq!(
        in_flight.join().unwrap(),
        "slow",
        "the drained request was cut"
    );
    assert_eq!(get(port), "fast");
    // The log line follows the swap.
    wait_paths(&rig, "runtime", 1);
    assert_eq!(rig.reloads(), 0);
}
