//! Issue #12, part 1: keys and values an instance writes into the store never reach the
//! shipped HAProxy and nginx templates' output. Each injection goes in through the file
//! backend as a value and as a key name; the render then fails with the destination
//! untouched, or leaves the key out, and the real `haproxy -c` / `nginx -t` accept what
//! is on disk, which holds nothing injected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::stderr;
use crate::support::{self, confsync, free_port, write};

/// What an injected directive carries; none of it may reach a rendered file.
const MARKERS: &[&str] = &["203.0.113.9", "pwned", "evil"];

/// The issue's nginx payload: a second server, and a whole new server block.
const NGINX_PAYLOAD: &str = "127.0.0.1:9002 weight=10; server 203.0.113.9:80 weight=1000; } \
    server { listen 127.0.0.1:18999; location /evil { return 200 pwned; } } upstream x { \
    server 127.0.0.1:1";
/// The issue's HAProxy payload: no separator at all, HAProxy takes more words.
const HAPROXY_PAYLOAD: &str = "127.0.0.1:9002 weight 256 redir https://evil.example.com";
/// The issue's key: a server line of its own through `base`.
const EVIL_KEY: &str = "web3 10.0.0.3:80\n    server evil 203.0.113.9:80\n#";

/// What can end a token or a directive in one of the two proxies.
const SEPARATORS: &[&str] = &[
    ";", "}", "{", "#", "\\", "\"", "'", "`", "\u{2028}", "\u{2029}", "\u{85}", "\0", "\t", "\r",
    "\n", " ", "\u{a0}",
];

fn values() -> Vec<String> {
    let mut v = vec![
        NGINX_PAYLOAD.to_string(),
        HAPROXY_PAYLOAD.to_string(),
        "127.0.0.1:9002 ".to_string(),
    ];
    v.extend(
        SEPARATORS
            .iter()
            .map(|s| format!("127.0.0.1:9002{s}server evil 203.0.113.9:80{s}")),
    );
    v
}

fn key_names() -> Vec<String> {
    let mut v = vec![EVIL_KEY.to_string(), "evil\0".to_string()];
    v.extend(
        SEPARATORS
            .iter()
            .map(|s| format!("web3{s}10.0.0.3:80{s}server{s}evil{s}203.0.113.9:80{s}#")),
    );
    v
}

/// A shipped template and the data that renders it.
struct Shipped {
    /// Under templates/.
    file: &'static str,
    /// The resource's `keys`.
    keys: &'static [&'static str],
    /// Where the servers are, one key per server.
    servers: &'static str,
    /// Other keys the template reads, each a place a value can be injected into.
    settings: Vec<(&'static str, String)>,
    /// A shell command that checks FILE with the real proxy.
    check: String,
}

fn haproxy() -> Shipped {
    let haproxy = support::require_program("haproxy", "haproxy");
    Shipped {
        file: "haproxy.cfg.tmpl",
        keys: &["/app/servers", "/app/listen", "/app/stats"],
        servers: "/app/servers",
        settings: vec![
            ("/app/listen/http", format!("127.0.0.1:{}", free_port())),
            ("/app/listen/stats", format!("127.0.0.1:{}", free_port())),
            ("/app/stats/user", "admin".into()),
            ("/app/stats/password", "pw".into()),
        ],
        check: format!("{} -c -q -f FILE", haproxy.display()),
    }
}

/// nginx -t needs a whole config: the rendered file is included from a main config
/// whose pid, logs and temp paths live in `run`.
fn nginx(file: &'static str, dir: &Path) -> Shipped {
    let nginx = support::require_program("nginx", "nginx");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let main = write(
        dir,
        "main.conf",
        &format!(
            "pid {r}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {r};\n  proxy_temp_path {r};\n  fastcgi_temp_path {r};\n  \
             uwsgi_temp_path {r};\n  scgi_temp_path {r};\n  include STAGED;\n}}\n",
            r = run.display()
        ),
    );
    let check = format!(
        "sed 's#STAGED#FILE#' {main} > FILE.main && {nginx} -t -q -p {r} -e stderr -c FILE.main; \
         s=$?; rm -f FILE.main; exit $s",
        main = main.display(),
        nginx = nginx.display(),
        r = run.display()
    );
    let listen = format!("127.0.0.1:{}", free_port());
    if file == "nginx-upstream.conf.tmpl" {
        Shipped {
            file,
            keys: &["/work/webapp"],
            servers: "/work/webapp/ips",
            settings: vec![("/work/webapp/listen", listen)],
            check,
        }
    } else {
        Shipped {
            file,
            keys: &["/app/hundred"],
            servers: "/app/hundred/servers",
            settings: vec![
                ("/app/hundred/listen", listen),
                ("/app/hundred/fail_timeout", "1s".into()),
            ],
            check,
        }
    }
}

/// A confdir rendering one shipped template into out/app.cfg from data.json, checked by
/// the real proxy.
struct Room {
    dir: tempfile::TempDir,
    shipped: Shipped,
}

impl Room {
    fn new(file: &'static str, resource_extra: &str) -> Room {
        let dir = support::tempdir();
        let shipped = match file {
            "haproxy.cfg.tmpl" => haproxy(),
            _ => nginx(file, dir.path()),
        };
        let tpl = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("templates")
                .join(file),
        )
        .unwrap();
        write(dir.path(), "templates/app.tmpl", &tpl);
        write(
            dir.path(),
            "confsync.toml",
            "backend = \"file\"\nfile = [\"data.json\"]\n",
        );
        let keys: Vec<String> = shipped.keys.iter().map(|k| format!("{k:?}")).collect();
        let check = shipped.check.replace("FILE", "{{.src}}");
        write(
            dir.path(),
            "conf.d/app.toml",
            &format!(
                "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [{}]\n\
                 check_cmd = {check:?}\n{resource_extra}",
                keys.join(", ")
            ),
        );
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        Room { dir, shipped }
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("out/app.cfg")
    }

    /// The good data, with `set` replacing (or adding) keys.
    fn data(&self, set: &[(String, String)]) -> BTreeMap<String, String> {
        let mut d: BTreeMap<String, String> = self
            .shipped
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for i in 1..=2 {
            d.insert(
                format!("{}/web{i}", self.shipped.servers),
                format!("127.0.0.1:{}", 8000 + i),
            );
        }
        d.extend(set.iter().cloned());
        d
    }

    /// `run --onetime` on `data` (written as JSON, which spells every character).
    fn run(&self, data: &BTreeMap<String, String>) -> Output {
        write(
            self.dir.path(),
            "data.json",
            &serde_json::to_string(data).unwrap(),
        );
        confsync()
            .args(["run", "--confdir"])
            .arg(self.dir.path())
            .arg("--onetime")
            .output()
            .unwrap()
    }

    /// Renders the good data and returns the file.
    fn good(&self) -> String {
        let o = self.run(&self.data(&[]));
        assert!(o.status.success(), "{}", stderr(&o));
        let good = std::fs::read_to_string(self.dest()).unwrap();
        assert!(good.contains("127.0.0.1:8001"), "{good}");
        self.assert_clean_and_accepted();
        good
    }

    /// The file on disk holds nothing injected, and the real proxy accepts it.
    fn assert_clean_and_accepted(&self) {
        let text = std::fs::read_to_string(self.dest()).unwrap();
        for m in MARKERS {
            assert!(
                !text.contains(m),
                "{m:?} reached {}:\n{text}",
                self.shipped.file
            );
        }
        assert!(!text.contains('\0'), "NUL reached {}", self.shipped.file);
        let script = self
            .shipped
            .check
            .replace("FILE", &self.dest().display().to_string());
        let o = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(o.status.success(), "{}: {}", self.shipped.file, stderr(&o));
    }
}

const SHIPPED: &[&str] = &[
    "haproxy.cfg.tmpl",
    "nginx-upstream.conf.tmpl",
    "nginx-hundred.conf.tmpl",
];

#[test]
fn issue12_injected_values_fail_the_render_of_every_shipped_template() {
    for file in SHIPPED {
        let room = Room::new(file, "");
        let good = room.good();
        let places: Vec<String> = std::iter::once(format!("{}/web2", room.shipped.servers))
            .chain(room.shipped.settings.iter().map(|(k, _)| k.to_string()))
            .collect();
        for place in &places {
            for value in values() {
                let o = room.run(&room.data(&[(place.clone(), value.clone())]));
                let e = stderr(&o);
                assert_eq!(o.status.code(), Some(1), "{file} {place} = {value:?}: {e}");
                assert!(e.contains("refusing the value"), "{file} {place}: {e}");
                assert_eq!(
                    std::fs::read_to_string(room.dest()).unwrap(),
                    good,
                    "{file}: {place} = {value:?} changed the file"
                );
            }
        }
        room.assert_clean_and_accepted();
    }
}

#[test]
fn issue12_injected_key_names_never_reach_a_shipped_template() {
    for file in SHIPPED {
        let room = Room::new(file, "");
        let good = room.good();
        for name in key_names() {
            let key = format!("{}/{name}", room.shipped.servers);
            let o = room.run(&room.data(&[(key, "10.0.0.3:80".into())]));
            let e = stderr(&o);
            if *file == "haproxy.cfg.tmpl" {
                // The key's base name is printed: the render fails, in `base` for
                // whitespace and control characters, in `ident` for the rest.
                assert_eq!(o.status.code(), Some(1), "{name:?}: {e}");
                assert!(
                    e.contains("base: refusing the key name")
                        || e.contains("ident: refusing the value"),
                    "{name:?}: {e}"
                );
                assert_eq!(std::fs::read_to_string(room.dest()).unwrap(), good);
            } else {
                // nginx's templates print values only: the server is there, its name not.
                assert!(o.status.success(), "{file} {name:?}: {e}");
                let text = std::fs::read_to_string(room.dest()).unwrap();
                assert!(text.contains("server 10.0.0.3:80 "), "{text}");
            }
            room.assert_clean_and_accepted();
        }
    }
}

#[test]
fn issue12_key_pattern_leaves_hostile_keys_out_with_a_warning() {
    let room = Room::new(
        "haproxy.cfg.tmpl",
        "key_pattern = \"/app/(servers/[A-Za-z0-9._-]{1,64}|listen/(http|stats)|stats/(user|password))\"\n",
    );
    room.good();
    for name in key_names() {
        let key = format!("/app/servers/{name}");
        let o = room.run(&room.data(&[(key.clone(), "10.0.0.3:80".into())]));
        let e = stderr(&o);
        assert!(o.status.success(), "{name:?}: {e}");
        assert!(
            e.contains("key_pattern") && e.contains(&format!("{key:?}")),
            "the warning names the key: {e}"
        );
        let text = std::fs::read_to_string(room.dest()).unwrap();
        assert!(text.contains("server web1 127.0.0.1:8001 check"), "{text}");
        assert!(!text.contains("10.0.0.3"), "{text}");
        room.assert_clean_and_accepted();
    }
}
