//! The binary run as `confd` (through a symlink of that name), with confd's flags and
//! confd.toml, against the shared etcd and the file backend. Templates are Go templates,
//! as confd users have them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::etcd;
use crate::support::{self, Proc, random_prefix, wait_file, write};

/// Bound on one expected change reaching the file.
const LIMIT: Duration = Duration::from_secs(10);

/// The Go template confd users write for a server list.
const SERVERS: &str = "{{range gets \"/app/servers/*\"}}server {{base .Key}} {{.Value}}\n{{end}}";

/// A temp dir holding a `confd` symlink to the binary, `conf.d/`, `templates/`, and
/// whatever a test writes.
struct Confd {
    dir: tempfile::TempDir,
}

impl Confd {
    /// One resource `app` rendering `template` into `out/app.cfg` from `keys`, with its
    /// own `prefix` line (`extra`) as written.
    fn new(template: &str, keys: &str, extra: &str) -> Confd {
        let dir = support::tempdir();
        std::os::unix::fs::symlink(support::bin(), dir.path().join("confd")).unwrap();
        write(dir.path(), "templates/app.tmpl", template);
        let dest = dir.path().join("out/app.cfg");
        write(
            dir.path(),
            "conf.d/app.toml",
            &format!(
                "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [{keys}]\n{extra}",
                dest.display()
            ),
        );
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        Confd { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn dest(&self) -> PathBuf {
        self.path().join("out/app.cfg")
    }

    fn dest_text(&self) -> Option<String> {
        std::fs::read_to_string(self.dest()).ok()
    }

    /// `DIR/confd ARGS`, run in DIR, with no CONFD_*, CONFSYNC_* or ETCDCTL_* settings
    /// inherited.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path().join("confd"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CONFD_") || k.starts_with("CONFSYNC_") || k.starts_with("ETCDCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_BACKTRACE", "0")
            .current_dir(self.path())
            .args(args);
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `-confdir DIR -config-file DIR/none.toml` (no confd.toml), then `args`.
    fn with_dirs<'a>(&'a self, args: &[&'a str]) -> Vec<String> {
        let d = self.path().display().to_string();
        let mut v = vec![
            "-confdir".to_string(),
            d.clone(),
            "-config-file".into(),
            format!("{d}/none.toml"),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    fn log(&self) -> PathBuf {
        self.path().join("confd.log")
    }

    /// Waits for the destination to satisfy `pred`; panics with the file and log.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_file(&self.dest(), LIMIT, pred).unwrap_or_else(|| {
            panic!(
                "{what}: not in {} within {LIMIT:?}; file: {:?}\nlog:\n{}",
                self.dest().display(),
                self.dest_text(),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            )
        })
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn confd_flags_on_etcdv3_watch_put_update_delete() {
    let etcd = etcd::shared();
    let p = random_prefix();
    // confd's -prefix replaces the resource's own prefix (which would read nothing).
    let c = Confd::new(SERVERS, "\"/app/servers\"", "prefix = \"/not-this\"\n");
    let node = format!("127.0.0.1:{}", etcd.client_port); // no scheme: http:// is added
    let key = |n: &str| format!("{p}/app/servers/{n}");
    etcd.ctl_ok(&["put", &key("web1"), "10.0.0.1:80"]);
    let args = c.with_dirs(&[
        "-backend", "etcdv3", "-node", &node, "-watch", "-prefix", &p,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _d = Proc::spawn("confd", c.command(&args), &c.log());
    c.wait("initial listing", |s| s == "server web1 10.0.0.1:80\n");
    etcd.ctl_ok(&["put", &key("web2"), "10.0.0.2:80"]);
    c.wait("put", |s| {
        s == "server web1 10.0.0.1:80\nserver web2 10.0.0.2:80\n"
    });
    etcd.ctl_ok(&["put", &key("web1"), "10.0.0.9:80"]);
    c.wait("update", |s| s.starts_with("server web1 10.0.0.9:80\n"));
    etcd.ctl_ok(&["del", &key("web1")]);
    c.wait("delete", |s| s == "server web2 10.0.0.2:80\n");
}

#[test]
fn configured_only_through_confd_toml() {
    let etcd = etcd::shared();
    let p = random_prefix();
    let c = Confd::new("x={{getv \"/app/x\"}}\n", "\"/app\"", "");
    etcd.ctl_ok(&["put", &format!("{p}/app/x"), "from-etcd"]);
    let toml = format!(
        "backend = \"etcdv3\"\nnodes = [\"{}\"]\nconfdir = \"{}\"\nprefix = \"{p}\"\nonetime = true\nlog-level = \"warn\"\n",
        etcd.url(),
        c.path().display()
    );
    let file = write(c.path(), "etc/confd.toml", &toml);
    let o = c.output(&["-config-file", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(c.dest_text().as_deref(), Some("x=from-etcd\n"));
}

#[test]
fn the_file_beats_the_flags_as_in_confd() {
    // A template without actions: only whether the file is written is tested.
    let c = Confd::new("static\n", "\"/app\"", "");
    write(c.path(), "data.yaml", "app:\n  x: 1\n");
    let toml = write(c.path(), "confd.toml", "noop = false\nbackend = \"file\"\n");
    let conf = c.path().display().to_string();
    let args = [
        "-confdir",
        &conf,
        "-config-file",
        toml.to_str().unwrap(),
        "-onetime",
        "-noop",
        "-backend",
        "env",
        "-file",
        "data.yaml",
    ];
    let o = c.output(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        c.dest_text().as_deref(),
        Some("static\n"),
        "the file's noop = false beat -noop"
    );
}

#[test]
fn onetime_with_the_file_backend() {
    let c = Confd::new(SERVERS, "\"/app/servers\"", "prefix = \"/\"\n");
    write(
        c.path(),
        "data.yaml",
        "app:\n  servers:\n    web1: 127.0.0.1:8001\n    web2: 127.0.0.1:8002\n",
    );
    let args = c.with_dirs(&["-onetime", "-backend", "file", "-file", "data.yaml"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = c.output(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        c.dest_text().as_deref(),
        Some("server web1 127.0.0.1:8001\nserver web2 127.0.0.1:8002\n")
    );
}

#[test]
fn the_forks_form_with_the_backend_as_a_word() {
    let c = Confd::new("x={{getv \"/app/x\"}}\n", "\"/app\"", "");
    write(c.path(), "data.yaml", "app:\n  x: forked\n");
    let conf = c.path().display().to_string();
    let none = format!("{conf}/none.toml");
    let o = c.output(&[
        "--onetime",
        "--confdir",
        &conf,
        "--config-file",
        &none,
        "file",
        "--file",
        "data.yaml",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(c.dest_text().as_deref(), Some("x=forked\n"));
}

#[test]
fn unsupported_flags_and_backends_exit_2_naming_them() {
    let c = Confd::new("static\n", "\"/app\"", "");
    let cases: &[(&[&str], &str)] = &[
        (&["-backend", "consul"], "consul backend is not supported"),
        (&["-backend", "vault"], "vault backend is not supported"),
        (
            &["-backend", "dynamodb"],
            "dynamodb backend is not supported",
        ),
        (&["-backend", "ssm"], "ssm backend is not supported"),
        (&["-backend", "rancher"], "rancher backend is not supported"),
        (&["consul"], "consul backend is not supported"),
        (&["-backend", "nosuch"], "unknown backend `nosuch`"),
        (
            &["-srv-domain", "example.com"],
            "-srv-domain: not supported",
        ),
        (
            &["-srv-record", "_etcd._tcp.example.com"],
            "-srv-record: not supported",
        ),
        (&["-scheme", "https"], "-scheme: not supported"),
        (&["-client-insecure"], "-client-insecure: not supported"),
        (&["-auth-token", "t"], "-auth-token: not supported"),
        (&["-auth-type", "token"], "-auth-type: not supported"),
        (&["-app-id", "a"], "-app-id: not supported"),
        (&["-user-id", "u"], "-user-id: not supported"),
        (&["-role-id", "r"], "-role-id: not supported"),
        (&["-secret-id", "s"], "-secret-id: not supported"),
        (&["-path", "p"], "-path: not supported"),
        (&["-table", "t"], "-table: not supported"),
        (
            &["-secret-keyring", "/k.asc"],
            "-secret-keyring: not supported",
        ),
        (
            &["-backend", "file", "-file", ".", "-filter", "*.yaml"],
            "-filter: not supported",
        ),
        (&["-bogus"], "flag provided but not defined: -bogus"),
        (
            &["-interval", "ten"],
            "invalid value \"ten\" for flag -interval",
        ),
    ];
    for (args, want) in cases {
        let all = c.with_dirs(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = c.output(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(want),
            "{args:?}: want {want:?} in:\n{}",
            text(&o)
        );
    }
    assert!(c.dest_text().is_none(), "nothing was rendered");
    // zookeeper is served: with nothing listening, -onetime fails as confd does (exit 1).
    let all = c.with_dirs(&["-onetime", "-backend", "zookeeper", "-node", "127.0.0.1:1"]);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let o = c.output(&all);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("zookeeper at 127.0.0.1:1"),
        "{}",
        text(&o)
    );
}

#[test]
fn version_help_and_detection() {
    let c = Confd::new("static\n", "\"/app\"", "");
    let o = c.output(&["-version"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("confsync ")
            && out.contains(env!("CARGO_PKG_VERSION"))
            && out.contains("confd 0.16"),
        "{out}"
    );
    let o = c.output(&["-h"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("Usage of confd:"));
    // Under its own name, a single-dash long flag first selects confd's command line.
    let o = support::confsync().arg("-version").output().unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("confd 0.16"),
        "{}",
        text(&o)
    );
}

#[test]
fn sighup_reads_confd_toml_again() {
    // A template without actions: whether the file is written shows which noop applies.
    let c = Confd::new("static\n", "\"/app\"", "");
    write(c.path(), "data.yaml", "app:\n  x: 1\n");
    let toml = write(c.path(), "confd.toml", "noop = true\n");
    let conf = c.path().display().to_string();
    let args = [
        "-confdir",
        &conf,
        "-config-file",
        toml.to_str().unwrap(),
        "-watch",
        "-backend",
        "file",
        "-file",
        "data.yaml",
        "-log-level",
        "debug",
    ];
    let d = Proc::spawn("confd", c.command(&args), &c.log());
    let log = || std::fs::read_to_string(c.log()).unwrap_or_default();
    // With noop, the diff is logged and the file not written.
    support::wait_for(LIMIT, || log().contains("+static").then_some(()))
        .unwrap_or_else(|| panic!("no noop diff logged:\n{}", log()));
    assert!(c.dest_text().is_none(), "noop wrote the file");
    write(c.path(), "confd.toml", "noop = false\n");
    d.signal(nix::sys::signal::Signal::SIGHUP);
    c.wait("after SIGHUP", |s| s == "static\n");
}

#[test]
fn confd_toml_outside_the_confdir_is_never_a_destination() {
    // The resource's dest is `out/app.cfg`, and that is where -config-file points.
    let c = Confd::new("overwritten\n", "\"/app\"", "");
    write(c.path(), "data.yaml", "app:\n  x: 1\n");
    let settings = "backend = \"file\"\nfile = [\"data.yaml\"]\n";
    let file = write(c.path(), "out/app.cfg", settings);
    let conf = c.path().display().to_string();
    let args = ["-confdir", &conf, "-config-file", file.to_str().unwrap()];
    let o = c.output(&[&args[..], &["-onetime"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("conf.d/app.toml"), "{}", text(&o));
    assert_eq!(
        c.dest_text().as_deref(),
        Some(settings),
        "confd.toml untouched"
    );
}
