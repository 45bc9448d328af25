//! A real Docker engine (Debian docker.io) for tests, on a private socket.
//!
//! [`shared`] is one `dockerd` per test binary (tests tell their containers apart by
//! name: use [`unique_name`]); [`Dockerd::start`] is a dedicated engine for tests that
//! stop and restart it. Each engine gets its own temp dir (data, exec root, socket), its
//! own bridge (so two engines on one machine never share `docker0`), and the image
//! [`IMAGE`], imported from a tarball of Debian's static busybox (no registry is
//! needed). Containers always run with `--init` and publish on 127.0.0.1 only.
//!
//! Cleanup: containers removed, dockerd stopped by its pid (SIGTERM, then SIGKILL),
//! everything mounted below the temp dir unmounted (the netns files), the bridge
//! deleted, `/var/run/docker` removed when this engine created it. The shared engine is cleaned up when the binary exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::{Proc, require_program, wait_for};

/// The test image: busybox with `sh`, `httpd`, `sleep` and friends.
pub const IMAGE: &str = "confsync-test:busybox";

/// The private port every web container serves on.
pub const WEB_PORT: u16 = 8000;

/// How long dockerd may take to answer after it starts.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// busybox applets linked into the image.
const APPLETS: [&str; 12] = [
    "sh", "httpd", "sleep", "true", "false", "wget", "cat", "echo", "mkdir", "nc", "ls", "test",
];

/// One engine.
pub struct Dockerd {
    /// Owns the temp dir with the socket, data and exec roots and the log.
    dir: tempfile::TempDir,
    /// The bridge containers attach to.
    bridge: String,
    /// Its address with prefix length, e.g. `10.214.3.1/24`.
    bridge_cidr: String,
    /// `None` while stopped.
    proc: Mutex<Option<Proc>>,
    /// True when `/var/run/docker` did not exist before this engine started.
    made_run_docker: bool,
}

static SHARED: OnceLock<Dockerd> = OnceLock::new();

/// The engine shared by every ordinary test in this binary.
pub fn shared() -> &'static Dockerd {
    SHARED.get_or_init(|| {
        let d = Dockerd::start();
        // SAFETY: registering a plain extern "C" function with the C library.
        unsafe {
            libc::atexit(clean_shared);
        }
        d
    })
}

extern "C" fn clean_shared() {
    if let Some(d) = SHARED.get() {
        d.shut_down();
    }
}

/// A container name no other test uses, e.g. `web-3f9a1c2b`.
pub fn unique_name(stem: &str) -> String {
    format!("{stem}-{:08x}", fastrand::u32(..))
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub name: String,
    pub labels: Vec<(String, String)>,
    /// Publish [`WEB_PORT`] on a random 127.0.0.1 port.
    pub publish: bool,
    /// A HEALTHCHECK command (run by busybox `sh -c`), checked every 200 ms.
    pub health_cmd: Option<String>,
    /// A restart policy (`always`, `unless-stopped`).
    pub restart: Option<String>,
    /// The command; default: httpd on [`WEB_PORT`] serving a page that holds the name.
    pub cmd: Option<Vec<String>>,
}

impl RunSpec {
    /// A web container publishing [`WEB_PORT`], serving its own name.
    pub fn web(name: &str) -> RunSpec {
        RunSpec {
            name: name.to_string(),
            publish: true,
            ..RunSpec::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> RunSpec {
        self.labels.push((k.to_string(), v.to_string()));
        self
    }

    /// Sets a healthcheck command.
    pub fn health(mut self, cmd: &str) -> RunSpec {
        self.health_cmd = Some(cmd.to_string());
        self
    }
}

impl Dockerd {
    /// A dedicated engine with the test image imported; panics saying why it cannot start.
    pub fn start() -> Dockerd {
        if !nix::unistd::geteuid().is_root() {
            panic!(
                "the docker tests start their own dockerd, which needs root (run the tests \
                 as root, as CI does)"
            );
        }
        require_program("dockerd", "docker.io");
        require_program("docker", "docker.io");
        let dir = tempfile::Builder::new()
            .prefix("csd")
            .tempdir_in("/tmp")
            .expect("temp dir for dockerd");
        let bridge = format!("csd{:08x}", fastrand::u32(..));
        let bridge_cidr = format!(
            "10.{}.{}.1/24",
            fastrand::u8(200..250),
            fastrand::u8(1..255)
        );
        let d = Dockerd {
            dir,
            bridge,
            bridge_cidr,
            proc: Mutex::new(None),
            made_run_docker: !Path::new("/var/run/docker").exists(),
        };
        d.make_bridge();
        d.spawn();
        d.import_image();
        d
    }

    /// The socket path.
    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    /// The node string confsync connects with (`unix:///...`).
    pub fn node(&self) -> String {
        format!("unix://{}", self.sock().display())
    }

    /// dockerd's log.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("dockerd.log")
    }

    fn make_bridge(&self) {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(
                out.status.success(),
                "ip {args:?} failed (iproute2 is needed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["link", "add", "name", &self.bridge, "type", "bridge"]);
        ip(&["addr", "add", &self.bridge_cidr, "dev", &self.bridge]);
        ip(&["link", "set", &self.bridge, "up"]);
    }

    fn spawn(&self) {
        let p = self.dir.path();
        let mut cmd = Command::new(require_program("dockerd", "docker.io"));
        cmd.arg("--host")
            .arg(self.node())
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip-masq=false",
            ])
            .args(["--bridge", &self.bridge])
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("docker.pid"));
        let proc = Proc::spawn("dockerd", cmd, &self.log());
        *self.proc.lock().unwrap() = Some(proc);
        let ok = wait_for(READY_LIMIT, || {
            (self.sock().exists() && self.cli(&["version"]).status.success()).then_some(())
        });
        if ok.is_none() {
            panic!(
                "dockerd did not answer on {} within {READY_LIMIT:?}; log {}:\n{}",
                self.sock().display(),
                self.log().display(),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
        }
    }

    fn import_image(&self) {
        let busybox = require_program("busybox", "busybox-static");
        let bytes = std::fs::read(&busybox).expect("read busybox");
        if has_interpreter(&bytes) {
            panic!(
                "{} is dynamically linked; the test image needs the static one: \
                 `apt-get install busybox-static`",
                busybox.display()
            );
        }
        let root = self.dir.path().join("img");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        std::fs::write(root.join("www/index.html"), "confsync test\n").unwrap();
        let tar = self.dir.path().join("img.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(
            out.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.cli_ok(&["import", &tar.to_string_lossy(), IMAGE]);
    }

    /// Runs the docker CLI against this engine (bounded by `timeout 60`).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("60")
            .arg(require_program("docker", "docker.io"))
            .arg("-H")
            .arg(self.node())
            .args(args)
            .output()
            .expect("run docker")
    }

    /// Like [`Dockerd::cli`], panicking with stderr on failure; returns trimmed stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a container as `spec` says; returns its id.
    pub fn run(&self, spec: &RunSpec) -> String {
        let mut args: Vec<String> = ["run", "-d", "--init", "--name", &spec.name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["-e".into(), format!("NAME={}", spec.name)]);
        if spec.publish {
            args.extend(["-p".into(), format!("127.0.0.1::{WEB_PORT}")]);
        }
        for (k, v) in &spec.labels {
            args.extend(["--label".into(), format!("{k}={v}")]);
        }
        if let Some(r) = &spec.restart {
            args.extend(["--restart".into(), r.clone()]);
        }
        if let Some(h) = &spec.health_cmd {
            args.extend(["--health-cmd".into(), h.clone()]);
            args.extend(["--health-interval".into(), "200ms".into()]);
            args.extend(["--health-retries".into(), "1".into()]);
            args.extend(["--health-timeout".into(), "2s".into()]);
        }
        args.push(IMAGE.into());
        match &spec.cmd {
            Some(c) => args.extend(c.iter().cloned()),
            None => args.extend(
                [
                    "/bin/sh",
                    "-c",
                    "mkdir -p /w && echo \"$NAME\" > /w/index.html && \
                     exec httpd -f -p 8000 -h /w",
                ]
                .map(String::from),
            ),
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli_port_retry(&refs, &spec.name)
    }

    /// `docker stop` (the init forwards SIGTERM, so this is quick).
    pub fn stop(&self, name: &str) {
        self.cli_ok(&["stop", "-t", "5", name]);
    }

    /// `docker start`.
    pub fn start_container(&self, name: &str) {
        self.cli_port_retry(&["start", name], name);
    }

    /// `docker kill`.
    pub fn kill(&self, name: &str) {
        self.cli_ok(&["kill", name]);
    }

    /// `docker rm -f`.
    pub fn rm(&self, name: &str) {
        self.cli_ok(&["rm", "-f", name]);
    }

    /// `docker rename`.
    pub fn rename(&self, old: &str, new: &str) {
        self.cli_ok(&["rename", old, new]);
    }

    /// The 127.0.0.1 port `private`/tcp of `name` is published on.
    pub fn port(&self, name: &str, private: u16) -> u16 {
        let out = self.cli_ok(&["port", name, &format!("{private}/tcp")]);
        out.lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no 127.0.0.1 port for {name} {private}/tcp in {out:?}"))
    }

    /// Stops dockerd by its pid (its containers stop with it); the dirs stay.
    pub fn stop_daemon(&self) {
        let proc = self.proc.lock().map(|mut g| g.take()).ok().flatten();
        if let Some(mut p) = proc {
            p.signal(nix::sys::signal::Signal::SIGTERM);
            if p.wait_exit(Duration::from_secs(30)).is_none() {
                p.kill();
            }
        }
        self.unmount_all();
    }

    /// Lazily unmounts everything mounted below the temp dir, deepest first: the default
    /// netns, and any container netns a dockerd killed mid-shutdown left behind.
    fn unmount_all(&self) {
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(root.as_str()))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
    }

    /// Starts dockerd again on the same dirs (containers that were running stay
    /// stopped unless started again).
    pub fn restart_daemon(&self) {
        self.stop_daemon();
        self.spawn();
    }

    /// Removes every container, stops dockerd and undoes what starting it did.
    fn shut_down(&self) {
        let running = self.proc.lock().map(|g| g.is_some()).unwrap_or(false);
        if running {
            let ids = self.cli(&["ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.cli(&args);
            }
        }
        self.stop_daemon();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        if self.made_run_docker {
            let _ = std::fs::remove_dir("/var/run/docker/plugins");
            let _ = std::fs::remove_dir("/var/run/docker");
        }
        let _ = std::fs::remove_dir_all(self.dir.path());
    }
}

/// True when an ELF64 file names a program interpreter (it is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let num = |at: usize, len: usize| -> usize {
        elf.get(at..at + len)
            .map(|b| b.iter().rev().fold(0usize, |n, &x| n << 8 | x as usize))
            .unwrap_or(0)
    };
    let (phoff, phentsize, phnum) = (num(0x20, 8), num(0x36, 2), num(0x38, 2));
    (0..phnum).any(|i| num(phoff + i * phentsize, 4) == 3)
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Attempts at a free published port before giving up.
const PORT_ATTEMPTS: usize = 10;

impl Dockerd {
    /// Runs `docker args` for container `name` (`run` or `start`); when the host port the
    /// engine picked is taken (every engine on the machine picks from the same range), the
    /// container, created already, is started again and gets the next port. Returns the
    /// container's id.
    fn cli_port_retry(&self, args: &[&str], name: &str) -> String {
        let mut out = self.cli(args);
        for _ in 0..PORT_ATTEMPTS {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || !stderr.contains("address already in use") {
                break;
            }
            out = self.cli(&["start", name]);
        }
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.cli_ok(&["inspect", "-f", "{{.Id}}", name])
    }
}
