//! Helpers shared by every integration test: free ports, servers that die with the test
//! binary, the `confsync` binary, bounded waits and random prefixes.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the `confsync` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_confsync"))
}

/// A `confsync` command with logs kept short, no inherited `CONFSYNC_*` settings, and a
/// state directory of its own (`CONFSYNC_STATE_DIR`, fresh for every call): tests run
/// as root would otherwise all share `/var/lib/confsync` and see each other's saved
/// snapshots. A test that restarts the daemon over one state sets its own after this.
pub fn confsync() -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFSYNC_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0");
    cmd.env("CONFSYNC_STATE_DIR", fresh_state_dir());
    cmd
}

/// A new empty directory under one temp dir per test binary (left behind: a daemon may
/// still be writing into it when its test ends).
fn fresh_state_dir() -> PathBuf {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = BASE.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("confsync-it-state")
            .tempdir()
            .expect("temp dir")
            .keep()
    });
    let dir = base.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&dir).expect("state dir");
    dir
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A random key prefix such as `/t-3f9a1c2b5d7e9f01`, so tests sharing a server never collide.
pub fn random_prefix() -> String {
    format!("/t-{:016x}", fastrand::u64(..))
}

/// Finds a program on PATH or in the sbin directories Debian installs servers into;
/// panics with the install command when it is missing (tests never skip silently).
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is required by this test but was not found; install it with \
         `apt-get install {package}` (scripts/test.sh does this for you)"
    );
}

/// A child process that is killed when dropped and also when the test binary exits
/// (it gets SIGKILL when the thread that started it dies, and that thread lives as long
/// as the process).
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// Starts `cmd` with stdout/stderr sent to `log` (appended).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open log");
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child =
            spawn_on_keeper_thread(cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child,
            name: name.to_string(),
        }
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    /// SIGTERM first, so a server with children (nginx's master, HAProxy's master) takes
    /// its workers down with it; SIGKILL if it has not gone within 3 s.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(3)).is_some() {
                return;
            }
        }
        self.kill();
    }
}

/// Spawns `cmd` from one long-lived thread with PR_SET_PDEATHSIG, so servers shared in
/// statics die with the test binary instead of outliving it.
fn spawn_on_keeper_thread(cmd: Command) -> std::io::Result<Child> {
    use std::sync::mpsc;
    use std::sync::{Mutex, OnceLock};
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            for (mut cmd, reply) in rx {
                unsafe {
                    cmd.pre_exec(|| {
                        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                            .map_err(std::io::Error::from)
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (rtx, rrx) = mpsc::channel();
    keeper
        .lock()
        .unwrap()
        .send((cmd, rtx))
        .expect("keeper thread");
    rrx.recv().expect("keeper reply")
}

/// Polls `f` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Held by a test that loads every core for a few seconds (a browser starting) and by a
/// test whose timing such a load breaks (renders that take seconds against their
/// `render_timeout`), so the two never overlap.
pub fn cpu_heavy() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits until a TCP connect to 127.0.0.1:`port` succeeds.
pub fn wait_port(port: u16, limit: Duration) -> bool {
    wait_for(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .is_some()
}

/// Waits until `path` exists and its contents satisfy `pred`; returns the contents.
pub fn wait_file(path: &Path, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
    wait_for(limit, || {
        std::fs::read_to_string(path).ok().filter(|s| pred(s))
    })
}

/// A temp dir that is kept when the env var `CONFSYNC_KEEP_TMP` is set (for debugging).
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("confsync-test")
        .tempdir()
        .unwrap()
}

/// Writes `contents` to `dir/rel`, creating parent directories.
pub fn write(dir: &Path, rel: &str, contents: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, contents).unwrap();
    p
}

/// PEM files for a TLS test: a CA, a server certificate and a client certificate signed
/// by it (see [`make_certs`]).
#[derive(Clone, Debug)]
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Generates in `dir`, with Debian's `openssl` command and P-256 keys, a CA, a server
/// certificate whose subjectAltName lists `server_names` (such as `"IP:127.0.0.1"` or
/// `"DNS:localhost"`; the first also gives its CN) and a client certificate for
/// `confsync`, both signed by the CA and valid for two days.
pub fn make_certs(dir: &Path, server_names: &[&str]) -> Certs {
    let openssl = require_program("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A new P-256 key without a passphrase.
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &ca,
        &["-subj", "/CN=confsync test CA"],
    ]
    .concat());
    let server_cn = server_names
        .first()
        .and_then(|n| n.split_once(':'))
        .map_or("127.0.0.1", |(_, v)| v);
    write(
        dir,
        "server.ext",
        &format!(
            "subjectAltName={}\nextendedKeyUsage=serverAuth,clientAuth\n",
            server_names.join(",")
        ),
    );
    write(dir, "client.ext", "extendedKeyUsage=clientAuth\n");
    for (name, cn) in [("server", server_cn), ("client", "confsync")] {
        let subj = format!("/CN={cn}");
        let [key, csr, pem, ext] = ["key", "csr", "pem", "ext"].map(|e| format!("{name}.{e}"));
        let req = ["-keyout", &key, "-out", &csr, "-subj", &subj];
        run(&[&["req", "-new"][..], &ec, &req].concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ]);
    }
    Certs {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}

pub mod docker;
pub mod etcd;
pub mod http;
pub mod redis;
pub mod s1;
pub mod watch;
pub mod zookeeper;
