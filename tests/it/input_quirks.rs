//! Issue 12, part 5: input quirks that would hide data. Keys and values that are not
//! UTF-8 (etcd, Redis) are left out with a warning naming them, never turned into
//! U+FFFD, where `a\xff` and `a\xfe` would become one key; an empty data file is an error
//! naming it (and its last good data stays) while `{}` is a file with no keys; and
//! `base64_decode` of what is not base64 fails the render.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::Client;
use redis::Commands;

use crate::cli::{Fixture, stderr};
use crate::support::{Proc, confsync, random_prefix, tempdir, wait_file, wait_for, write};

/// Bound on one expected change reaching the file or the log.
const LIMIT: Duration = Duration::from_secs(10);

/// Renders `/app/servers/*` as `name=value` lines.
const LINES: &str =
    "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base }}={{ s.value }}\n{% endfor %}";

/// A config dir with one resource rendering [`LINES`] under `prefix` into `out.cfg`, and
/// a daemon on it, logging to `confsync.log`.
struct Daemon {
    dir: tempfile::TempDir,
    _proc: Option<Proc>,
}

impl Daemon {
    fn start(prefix: &str, backend: &[&str]) -> Daemon {
        let dir = tempdir();
        write(dir.path(), "templates/lines.tmpl", LINES);
        write(
            dir.path(),
            "conf.d/lines.toml",
            &format!(
                "[template]\nsrc = \"lines.tmpl\"\ndest = \"out.cfg\"\nprefix = \"{prefix}\"\nkeys = [\"/app/servers\"]\n"
            ),
        );
        let mut cmd = confsync();
        cmd.args(["run", "--watch", "--log-level", "info", "--confdir"])
            .arg(dir.path())
            .args(backend);
        let proc = Proc::spawn("confsync", cmd, &dir.path().join("confsync.log"));
        Daemon {
            dir,
            _proc: Some(proc),
        }
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("out.cfg")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("confsync.log")).unwrap_or_default()
    }

    /// Waits until the rendered file satisfies `pred`, and returns it.
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_file(&self.dest(), LIMIT, &pred).unwrap_or_else(|| {
            panic!(
                "{what}: file {:?}\nlog:\n{}",
                std::fs::read_to_string(self.dest()).ok(),
                self.log()
            )
        })
    }

    /// Waits until the log holds `needle`.
    fn wait_log(&self, needle: &str) {
        if wait_for(LIMIT, || self.log().contains(needle).then_some(())).is_none() {
            panic!("no {needle:?} in the log:\n{}", self.log());
        }
    }
}

/// What the warning shows for a key of text `text` then `tail` (letters, and bytes that
/// are not UTF-8): `"text\xff" (bytes <hex of it all>)`.
fn shown(text: &str, tail: &[u8]) -> String {
    let mut escaped = text.to_string();
    let mut hex = String::new();
    for b in text.as_bytes() {
        let _ = write!(hex, "{b:02x}");
    }
    for &b in tail {
        if b.is_ascii_alphanumeric() {
            escaped.push(b as char);
        } else {
            let _ = write!(escaped, "\\x{b:02x}");
        }
        let _ = write!(hex, "{b:02x}");
    }
    format!("\"{escaped}\" (bytes {hex})")
}

fn bytes(s: &str, tail: &[u8]) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.extend_from_slice(tail);
    v
}

/// No key or value that is not UTF-8 reached the file, and the two keys that collide
/// under a lossy conversion are not there at all.
fn nothing_lossy(file: &str) {
    assert!(!file.contains('\u{fffd}'), "{file:?}");
    assert!(!file.lines().any(|l| l.starts_with("a")), "{file:?}");
}

#[test]
fn etcd_keys_and_values_that_are_not_utf8_are_left_out_and_named() {
    let etcd = crate::support::etcd::shared();
    let p = random_prefix();
    let servers = format!("{p}/app/servers/");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = rt.block_on(Client::connect([etcd.url()], None)).unwrap();
    let mut put = |k: Vec<u8>, v: Vec<u8>| rt.block_on(c.put(k, v, None)).unwrap();
    put(bytes(&servers, b"web1"), b"10.0.0.1:80".to_vec());
    put(bytes(&servers, b"a\xff"), b"10.0.0.7:80".to_vec());
    put(bytes(&servers, b"a\xfe"), b"10.0.0.8:80".to_vec());
    put(bytes(&servers, b"badval"), b"10.0.0.9\xff".to_vec());

    let d = Daemon::start(&p, &["--backend", "etcd", "--node", &etcd.url()]);
    let file = d.wait("the good key", |f| f.contains("web1=10.0.0.1:80"));
    assert_eq!(file, "web1=10.0.0.1:80\n");
    d.wait_log(&shown(&servers, b"a\xff"));
    d.wait_log(&shown(&servers, b"a\xfe"));
    d.wait_log(&format!("{:?}", format!("{servers}badval")));
    assert!(d.log().contains("its value is not UTF-8 (byte 8 of 9)"));

    // Watch events: a new bad key is named, a good key whose value turns bad leaves.
    put(bytes(&servers, b"b\xff"), b"x".to_vec());
    put(bytes(&servers, b"web2"), b"10.0.0.2:80".to_vec());
    put(bytes(&servers, b"web1"), b"\xc3(".to_vec());
    let file = d.wait("web2 in, web1 out", |f| f == "web2=10.0.0.2:80\n");
    nothing_lossy(&file);
    d.wait_log(&shown(&servers, b"b\xff"));
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[test]
fn redis_keys_fields_and_values_that_are_not_utf8_are_left_out_and_named() {
    let srv = crate::support::redis::shared();
    let p = random_prefix();
    let servers = format!("{p}/app/servers/");
    let mut c = srv.conn();
    let mut set = |k: Vec<u8>, v: Vec<u8>| {
        let _: () = c.set(k, v).unwrap();
    };
    set(bytes(&servers, b"web1"), b"10.0.0.1:80".to_vec());
    set(bytes(&servers, b"a\xff"), b"10.0.0.7:80".to_vec());
    set(bytes(&servers, b"a\xfe"), b"10.0.0.8:80".to_vec());
    set(bytes(&servers, b"badval"), b"10.0.0.9\xff".to_vec());
    let _: () = c
        .hset(format!("{p}/app/servers"), b"a\xfd".to_vec(), "10.0.0.6:80")
        .unwrap();

    let d = Daemon::start(&p, &["--backend", "redis", "--node", &srv.node()]);
    let file = d.wait("the good key", |f| f.contains("web1=10.0.0.1:80"));
    assert_eq!(file, "web1=10.0.0.1:80\n");
    d.wait_log(&shown(&servers, b"a\xff"));
    d.wait_log(&shown(&servers, b"a\xfe"));
    d.wait_log(&shown(&format!("{p}/app/servers/"), b"a\xfd"));
    d.wait_log(&format!("{:?}", format!("{servers}badval")));

    // Watch events: a good key whose value turns bad leaves the file.
    let mut c = srv.conn();
    let _: () = c.set(format!("{servers}web2"), "10.0.0.2:80").unwrap();
    let _: () = c.set(format!("{servers}web1"), b"\xc3(".to_vec()).unwrap();
    let file = d.wait("web2 in, web1 out", |f| f == "web2=10.0.0.2:80\n");
    nothing_lossy(&file);
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

/// `run --onetime` on a file backend reading `data` (named `name`).
fn onetime_on(name: &str, data: &str) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempdir();
    write(
        dir.path(),
        "confsync.toml",
        &format!("backend = \"file\"\nfile = [\"{name}\"]\n"),
    );
    write(dir.path(), name, data);
    write(dir.path(), "templates/lines.tmpl", LINES);
    write(
        dir.path(),
        "conf.d/lines.toml",
        "[template]\nsrc = \"lines.tmpl\"\ndest = \"out.cfg\"\nkeys = [\"/app/servers\"]\n",
    );
    let o = confsync()
        .args(["run", "--onetime", "--confdir"])
        .arg(dir.path())
        .output()
        .unwrap();
    (dir, o)
}

#[test]
fn an_empty_data_file_is_an_error_naming_it_and_an_explicit_empty_map_is_not() {
    for (name, data) in [
        ("data.yaml", ""),
        ("data.yaml", "# nothing yet\n\n"),
        ("data.yaml", "---\n"),
        ("data.json", " \n"),
        ("data.toml", "# empty\n"),
    ] {
        let (dir, o) = onetime_on(name, data);
        assert_eq!(o.status.code(), Some(1), "{name} {data:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(name) && e.contains("the file is empty"), "{e}");
        assert!(!dir.path().join("out.cfg").exists());
    }
    for (name, data) in [
        ("data.yaml", "# no servers on purpose\n{}\n"),
        ("data.json", "{}"),
        ("data.toml", "[unused]\n"),
    ] {
        let (dir, o) = onetime_on(name, data);
        assert!(o.status.success(), "{name} {data:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.cfg")).unwrap(),
            ""
        );
    }
}

#[test]
fn a_data_file_emptied_while_watched_keeps_its_last_good_data_until_it_says_empty() {
    let dir = tempdir();
    write(
        dir.path(),
        "data/a.yaml",
        "app:\n  servers:\n    web1: 10.0.0.1:80\n",
    );
    let b = write(
        dir.path(),
        "data/b.yaml",
        "app:\n  servers:\n    web2: 10.0.0.2:80\n",
    );
    let data = dir.path().join("data");
    let d = Daemon::start("", &["--backend", "file", "--file", path(&data)]);
    let both = "web1=10.0.0.1:80\nweb2=10.0.0.2:80\n";
    d.wait("both files", |f| f == both);

    // `> b.yaml`: refused, naming the file; b's server stays.
    std::fs::write(&b, "").unwrap();
    d.wait_log("b.yaml: the file is empty");
    assert_eq!(std::fs::read_to_string(d.dest()).unwrap(), both);
    // A sign that the daemon is still following the files: a change to a.yaml arrives.
    std::fs::write(
        dir.path().join("data/a.yaml"),
        "app:\n  servers:\n    web1: 10.0.0.3:80\n",
    )
    .unwrap();
    d.wait("a.yaml's change, b's last good data", |f| {
        f == "web1=10.0.0.3:80\nweb2=10.0.0.2:80\n"
    });

    // `{}` says no keys on purpose: b's server goes.
    std::fs::write(&b, "{}\n").unwrap();
    d.wait("b.yaml empty on purpose", |f| f == "web1=10.0.0.3:80\n");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

#[test]
fn base64_decode_of_invalid_input_fails_the_render_naming_it() {
    let data = "app:\n  enc: \"%%%\"\n";
    let tera_engine = "engine = \"tera\"\n";
    let tera = Fixture::new(
        "{{ getv(key=\"/app/enc\") | base64_decode }}\n",
        tera_engine,
        data,
    );
    let go = Fixture::new("{{ base64Decode (getv \"/app/enc\") }}\n", "", data);
    for (f, want) in [
        (&tera, "base64_decode: invalid character '%' at byte 0"),
        (
            &go,
            "error calling base64Decode: illegal base64 data at input byte 0",
        ),
    ] {
        let o = f.run(&[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
        assert!(!f.dest().exists());
    }
    // A stray `=` inside, or a length no encoder makes, are not base64 either.
    for bad in ["Zm8=Zm8=", "Zm8=a"] {
        let f = Fixture::new(
            &format!("{{{{ \"{bad}\" | base64_decode }}}}\n"),
            tera_engine,
            data,
        );
        let o = f.run(&[]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("base64_decode"), "{}", stderr(&o));
    }
}
