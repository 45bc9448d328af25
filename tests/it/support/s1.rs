//! Scenario S1's parts for end-to-end tests on any store: the shipped HAProxy template
//! and a resource like the shipped one in a temp dir, a real master-worker HAProxy
//! started first with a config of its own (as on a real host), and the daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Proc, confsync, free_port, require_program, tempdir, wait_for, wait_port, write};

/// Bound on HAProxy starting.
const LIMIT: Duration = Duration::from_secs(10);

/// A confdir with the S1 resource under `prefix`, and HAProxy running on `http`.
pub struct S1 {
    pub dir: tempfile::TempDir,
    /// HAProxy's frontend and stats ports.
    pub http: u16,
    pub stats: u16,
    /// The rendered haproxy.cfg.
    pub cfg: PathBuf,
    _haproxy: Proc,
}

impl S1 {
    /// Writes the resource and template, starts HAProxy on a config of its own.
    pub fn start(prefix: &str) -> S1 {
        let haproxy = require_program("haproxy", "haproxy");
        let dir = tempdir();
        let d = dir.path();
        let (http, stats) = (free_port(), free_port());
        let cfg = d.join("haproxy.cfg");
        let pidfile = d.join("haproxy.pid");
        let tpl = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/haproxy.cfg.tmpl"),
        )
        .unwrap();
        write(d, "templates/haproxy.cfg.tmpl", &tpl);
        write(
            d,
            "conf.d/haproxy.toml",
            &format!(
                "[template]\nsrc = \"haproxy.cfg.tmpl\"\ndest = \"{cfg}\"\nprefix = \"{prefix}\"\n\
                 keys = [\"/app/servers\", \"/app/stats\", \"/app/listen\"]\n\
                 check_cmd = \"{haproxy} -c -q -f {{{{.src}}}}\"\n\
                 reload_cmd = \"kill -USR2 $(cat {pid})\"\n",
                cfg = cfg.display(),
                haproxy = haproxy.display(),
                pid = pidfile.display(),
            ),
        );
        std::fs::write(
            &cfg,
            format!("defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\nfrontend www\n  bind 127.0.0.1:{http}\n"),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(&haproxy);
        cmd.arg("-W").arg("-f").arg(&cfg).arg("-p").arg(&pidfile);
        let proc = Proc::spawn("haproxy", cmd, &d.join("haproxy.log"));
        assert!(wait_port(http, LIMIT), "haproxy listens on {http}");
        assert!(wait_for(LIMIT, || pidfile.exists().then_some(())).is_some());
        S1 {
            dir,
            http,
            stats,
            cfg,
            _haproxy: proc,
        }
    }

    /// The keys S1's template needs besides the servers, as (key below the prefix, value).
    pub fn settings(&self) -> [(&'static str, String); 3] {
        [
            ("/app/listen/http", format!("127.0.0.1:{}", self.http)),
            ("/app/listen/stats", format!("127.0.0.1:{}", self.stats)),
            ("/app/stats/password", "stats-pw".to_string()),
        ]
    }

    /// `confsync run --watch` on this confdir with `backend` flags, logging at debug.
    pub fn daemon(&self, backend: &[&str]) -> Proc {
        let mut cmd = confsync();
        cmd.args(["run", "--confdir"])
            .arg(self.dir.path())
            .args(backend)
            .args(["--watch", "--log-level", "debug"]);
        Proc::spawn("confsync", cmd, &self.log())
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("confsync.log")
    }

    /// The daemon's and HAProxy's logs and the config, for a failure message.
    pub fn show(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "\nconfsync log:\n{}\nhaproxy log:\n{}\nconfig:\n{}",
            read(self.log()),
            read(self.dir.path().join("haproxy.log")),
            read(self.cfg.clone())
        )
    }
}
