//! The `confsync` binary on the file and env backends: bad input, permissions, flags,
//! and the real `haproxy -c` / `nginx -t` as check commands.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::{self, confsync, write};

/// A config dir with one resource `app` rendering `templates/app.tmpl` into `out/app.cfg`
/// from `data.yaml`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(template: &str, resource_extra: &str, data: &str) -> Fixture {
        let dir = support::tempdir();
        write(
            dir.path(),
            "confsync.toml",
            "backend = \"file\"\nfile = [\"data.yaml\"]\n",
        );
        write(dir.path(), "data.yaml", data);
        write(dir.path(), "templates/app.tmpl", template);
        write(
            dir.path(),
            "conf.d/app.toml",
            &format!(
                "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\n{resource_extra}"
            ),
        );
        std::fs::create_dir_all(dir.path().join("out")).unwrap();
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dest(&self) -> PathBuf {
        self.path().join("out/app.cfg")
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        confsync()
            .args(["run", "--confdir"])
            .arg(self.path())
            .arg("--onetime")
            .args(extra)
            .output()
            .unwrap()
    }

    pub fn check(&self) -> Output {
        confsync()
            .args(["check", "--confdir"])
            .arg(self.path())
            .output()
            .unwrap()
    }

    /// Files in out/ other than the destination (stage files left behind).
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "app.cfg")
            .collect()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SERVERS: &str = "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.key | base }} {{ s.value }}\n{% endfor %}";
const DATA: &str = "app:\n  servers:\n    web1: 127.0.0.1:8001\n    web2: 127.0.0.1:8002\n";

#[test]
fn onetime_renders_and_second_run_changes_nothing() {
    let f = Fixture::new(SERVERS, "mode = \"0640\"\n", DATA);
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(f.dest()).unwrap(),
        "server web1 127.0.0.1:8001\nserver web2 127.0.0.1:8002\n"
    );
    assert_eq!(std::fs::metadata(f.dest()).unwrap().mode() & 0o7777, 0o640);
    let before = std::fs::metadata(f.dest()).unwrap().ino();
    let o = f.run(&[]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::metadata(f.dest()).unwrap().ino(),
        before,
        "unchanged file was not rewritten"
    );
    assert!(f.leftovers().is_empty());
}

#[test]
fn owner_and_group_are_applied() {
    // Root can give files away; anyone else can only set their own ids.
    let (user, group, uid, gid) = if nix::unistd::Uid::effective().is_root() {
        ("nobody", "nogroup", 65534, 65534)
    } else {
        let u = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
            .unwrap()
            .unwrap();
        let g = nix::unistd::Group::from_gid(nix::unistd::Gid::effective())
            .unwrap()
            .unwrap();
        let (uid, gid) = (u.uid.as_raw(), g.gid.as_raw());
        (
            Box::leak(u.name.into_boxed_str()) as &str,
            Box::leak(g.name.into_boxed_str()) as &str,
            uid,
            gid,
        )
    };
    let f = Fixture::new(
        SERVERS,
        &format!("owner = \"{user}\"\ngroup = \"{group}\"\nmode = \"0600\"\n"),
        DATA,
    );
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = std::fs::metadata(f.dest()).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (uid, gid, 0o600));
}

#[test]
fn mode_change_alone_is_applied() {
    let f = Fixture::new(SERVERS, "mode = \"0600\"\n", DATA);
    assert!(f.run(&[]).status.success());
    let toml = std::fs::read_to_string(f.path().join("conf.d/app.toml")).unwrap();
    write(f.path(), "conf.d/app.toml", &toml.replace("0600", "0644"));
    assert!(f.run(&[]).status.success());
    assert_eq!(std::fs::metadata(f.dest()).unwrap().mode() & 0o7777, 0o644);
}

#[test]
fn template_syntax_error_names_file_and_line() {
    let f = Fixture::new("ok\n{% for s in %}\n", "", DATA);
    for o in [f.check(), f.run(&[])] {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("app.tmpl") && e.contains(":2:"), "{e}");
    }
    assert!(!f.dest().exists());
}

#[test]
fn unknown_resource_field_and_missing_src_are_reported_together() {
    let f = Fixture::new(SERVERS, "owners = \"root\"\n", DATA);
    write(
        f.path(),
        "conf.d/nosrc.toml",
        "[template]\ndest = \"out/x\"\n",
    );
    let o = f.check();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("app.toml:5:") && e.contains("owners"), "{e}");
    assert!(e.contains("nosrc.toml") && e.contains("src"), "{e}");
    assert!(e.contains("2 configuration error(s)"), "{e}");
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!f.dest().exists());
}

#[test]
fn missing_key_in_getv_leaves_dest_untouched() {
    let f = Fixture::new(SERVERS, "", DATA);
    assert!(f.run(&[]).status.success());
    let good = std::fs::read_to_string(f.dest()).unwrap();
    write(
        f.path(),
        "templates/app.tmpl",
        "x\ny {{ getv(key=\"/app/nope\") }}\n",
    );
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("/app/nope") && e.contains("app.tmpl") && e.contains(":2:"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), good);
    assert!(f.leftovers().is_empty());
}

#[test]
fn malformed_and_unreadable_data_files() {
    let f = Fixture::new(SERVERS, "", DATA);
    assert!(f.run(&[]).status.success());
    let good = std::fs::read_to_string(f.dest()).unwrap();
    write(f.path(), "data.yaml", "app:\n  servers: [1, 2\n");
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("data.yaml") && e.contains("line"), "{e}");
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), good);
    std::fs::remove_file(f.path().join("data.yaml")).unwrap();
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("data.yaml"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), good);
}

#[test]
fn random_bytes_as_template_resource_or_data() {
    let mut junk: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    // Ends in an unclosed action: a Go template that does not parse. (Bytes without any
    // action are a valid Go template, written out as they are, as confd does: the
    // golden case `random_bytes_no_actions`.)
    junk.extend_from_slice(&[0xff, 0xfe, 0x00, b'{', b'%', b'{', b'{']);
    for (rel, code) in [
        ("templates/app.tmpl", 2),
        ("conf.d/app.toml", 2),
        ("data.yaml", 1),
    ] {
        let f = Fixture::new(SERVERS, "", DATA);
        std::fs::write(f.path().join(rel), &junk).unwrap();
        let o = f.run(&[]);
        assert_eq!(o.status.code(), Some(code), "{rel}: {}", stderr(&o));
        let e = stderr(&o);
        let name = Path::new(rel)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(e.contains(&name), "{rel}: {e}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(!f.dest().exists());
    }
}

#[test]
fn noop_prints_a_diff_and_touches_nothing() {
    let f = Fixture::new(SERVERS, "check_cmd = \"false\"\n", DATA);
    let o = f.run(&["--noop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("+server web1 127.0.0.1:8001"), "{out}");
    assert!(!f.dest().exists());
    assert!(f.leftovers().is_empty());
}

#[test]
fn failed_check_keeps_dest_and_reports_stderr() {
    let f = Fixture::new(
        SERVERS,
        "check_cmd = \"grep -q web9 {{.src}} || { echo 'no web9 in {{ src }}' >&2; exit 4; }\"\n",
        DATA,
    );
    write(f.path(), "out/app.cfg", "live\n");
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no web9 in") && e.contains("exit status: 4") && e.contains("left unchanged"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), "live\n");
    assert!(f.leftovers().is_empty(), "stage file removed");
    let o = f.run(&["--keep-stage-file"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(f.leftovers().len(), 1, "stage file kept");
    assert!(f.leftovers()[0].starts_with(".app.cfg.confsync-"));
    // --sync-only skips the check (and the reload).
    let o = f.run(&["--sync-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(f.dest()).unwrap().contains("web1"));
}

#[test]
fn reload_runs_after_swap_and_its_failure_is_reported() {
    let f = Fixture::new(
        SERVERS,
        "reload_cmd = \"cp {{ dest }} {{ dest }}.reloaded\"\n",
        DATA,
    );
    assert!(f.run(&[]).status.success());
    assert!(f.path().join("out/app.cfg.reloaded").exists());
    let f = Fixture::new(
        SERVERS,
        "reload_cmd = \"echo reload broke >&2; exit 1\"\n",
        DATA,
    );
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("reload broke"), "{}", stderr(&o));
}

#[test]
fn render_command_with_data_file() {
    let f = Fixture::new(SERVERS, "", DATA);
    write(
        f.path(),
        "other.json",
        r#"{"app": {"servers": {"x": "1.2.3.4:80"}}}"#,
    );
    let o = confsync()
        .args(["render", "--confdir"])
        .arg(f.path())
        .args(["--resource", "app", "--data"])
        .arg(f.path().join("other.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "server x 1.2.3.4:80\n");
    let o = confsync()
        .args(["render", "--confdir"])
        .arg(f.path())
        .args(["--resource", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope"));
}

#[test]
fn precedence_flag_over_env_over_file() {
    let f = Fixture::new(
        "{{ getv(key=\"/v\") }}",
        "",
        "a:\n  v: from-a\nb:\n  v: from-b\nc:\n  v: from-c\n",
    );
    write(
        f.path(),
        "conf.d/app.toml",
        "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/v\"]\n",
    );
    write(
        f.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\nprefix = \"/a\"\n",
    );
    let render = |env: Option<&str>, flag: Option<&str>| {
        let mut c = confsync();
        c.args(["render", "--confdir"])
            .arg(f.path())
            .args(["--resource", "app"]);
        if let Some(e) = env {
            c.env("CONFSYNC_PREFIX", e);
        }
        if let Some(p) = flag {
            c.args(["--prefix", p]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(render(None, None), "from-a", "file");
    assert_eq!(render(Some("/b"), None), "from-b", "env over file");
    assert_eq!(render(Some("/b"), Some("/c")), "from-c", "flag over env");
}

#[test]
fn env_backend_maps_variables() {
    let f = Fixture::new(SERVERS, "", DATA);
    let o = confsync()
        .args(["run", "--confdir"])
        .arg(f.path())
        .args(["--onetime", "--backend", "env"])
        .env("APP_SERVERS_WEBX", "10.1.1.1:80")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(f.dest()).unwrap(),
        "server webx 10.1.1.1:80\n"
    );
}

#[test]
fn watch_follows_file_changes_and_survives_bad_data() {
    let f = Fixture::new(SERVERS, "", DATA);
    let mut p = support::Proc::spawn(
        "confsync",
        {
            let mut c = confsync();
            c.args(["run", "--watch", "--confdir"]).arg(f.path());
            c
        },
        &f.path().join("confsync.log"),
    );
    let dest = f.dest();
    assert!(support::wait_file(&dest, Duration::from_secs(10), |s| s.contains("web2")).is_some());
    write(
        f.path(),
        "data.yaml",
        "app:\n  servers:\n    web3: 127.0.0.1:8003\n",
    );
    assert!(
        support::wait_file(&dest, Duration::from_secs(10), |s| s
            == "server web3 127.0.0.1:8003\n")
        .is_some(),
        "change picked up"
    );
    write(f.path(), "data.yaml", "app: [broken\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "server web3 127.0.0.1:8003\n"
    );
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "daemon still running"
    );
    write(
        f.path(),
        "data.yaml",
        "app:\n  servers:\n    web4: 127.0.0.1:8004\n",
    );
    assert!(support::wait_file(&dest, Duration::from_secs(10), |s| s.contains("web4")).is_some());
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let st = p
        .wait_exit(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(st.success());
    let log = std::fs::read_to_string(f.path().join("confsync.log")).unwrap();
    assert!(
        log.contains("data.yaml"),
        "the bad data file is named in the log: {log}"
    );
}

/// The shipped HAProxy template, with its `balance` taken from `/app/balance` (a value
/// no filter guards, so the test can hand `haproxy -c` a file it rejects without any
/// name lookup).
fn haproxy_fixture(server_value: &str, balance: &str) -> Fixture {
    let tpl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/haproxy.cfg.tmpl"),
    )
    .unwrap()
    .replace(
        "balance roundrobin",
        "balance {{ getv(key=\"/app/balance\") }}",
    );
    let data = format!(
        "app:\n  balance: {balance}\n  servers:\n    web1: \"127.0.0.1:{}\"\n    web2: \"{server_value}\"\n  stats:\n    user: admin\n    password: pw\n  listen:\n    http: \"127.0.0.1:{}\"\n    stats: \"127.0.0.1:{}\"\n",
        support::free_port(),
        support::free_port(),
        support::free_port()
    );
    let haproxy = support::require_program("haproxy", "haproxy");
    Fixture::new(
        &tpl,
        &format!(
            "check_cmd = \"{} -c -q -f {{{{.src}}}}\"\n",
            haproxy.display()
        ),
        &data,
    )
}

#[test]
fn haproxy_check_accepts_good_and_rejects_bad() {
    let f = haproxy_fixture("127.0.0.1:8002", "roundrobin");
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = std::fs::read_to_string(f.dest()).unwrap();
    assert!(good.contains("server web2 127.0.0.1:8002 check"), "{good}");
    // A file haproxy -c rejects (an unknown balance algorithm; a malformed address never
    // gets past the `addr` filter): the live file stays.
    let f2 = haproxy_fixture("127.0.0.1:8002", "no-such-algorithm");
    write(f2.path(), "out/app.cfg", &good);
    let o = f2.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("haproxy") && e.contains("left unchanged"), "{e}");
    assert_eq!(std::fs::read_to_string(f2.dest()).unwrap(), good);
    assert!(f2.leftovers().is_empty());
}

fn nginx_fixture(fail_timeout: &str) -> Fixture {
    let tpl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/nginx-hundred.conf.tmpl"),
    )
    .unwrap();
    let mut data = String::from("app:\n  hundred:\n    servers:\n");
    for i in 0..100 {
        data.push_str(&format!("      app{i:03}: \"127.0.0.1:{}\"\n", 3001 + i));
    }
    data.push_str(&format!(
        "    fail_timeout: \"{fail_timeout}\"\n    listen: \"127.0.0.1:{}\"\n",
        support::free_port()
    ));
    let nginx = support::require_program("nginx", "nginx");
    let f = Fixture::new(&tpl, "", &data);
    let run = f.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    // nginx -t needs a whole config: wrap the rendered server block in a main config
    // whose pid, logs and temp paths live in the test's directory.
    write(
        f.path(),
        "main.conf",
        &format!(
            "pid {r}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {r};\n  proxy_temp_path {r};\n  fastcgi_temp_path {r};\n  uwsgi_temp_path {r};\n  scgi_temp_path {r};\n  include STAGED;\n}}\n",
            r = run.display()
        ),
    );
    write(
        f.path(),
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app/hundred\"]\ncheck_cmd = \"sed 's#STAGED#{{{{.src}}}}#' {main} > {{{{.src}}}}.main && {nginx} -t -q -p {r} -e stderr -c {{{{.src}}}}.main; s=$?; rm -f {{{{.src}}}}.main; exit $s\"\n",
            main = f.path().join("main.conf").display(),
            nginx = nginx.display(),
            r = run.display()
        ),
    );
    f
}

#[test]
fn nginx_check_rejects_fractional_fail_timeout() {
    let f = nginx_fixture("1s");
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = std::fs::read_to_string(f.dest()).unwrap();
    assert_eq!(
        good.matches("max_fails=1 fail_timeout=1s;").count(),
        100,
        "{good}"
    );
    let f2 = nginx_fixture("500ms");
    write(f2.path(), "out/app.cfg", &good);
    let o = f2.run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("fail_timeout") || e.contains("500ms"), "{e}");
    assert_eq!(std::fs::read_to_string(f2.dest()).unwrap(), good);
}

#[test]
fn render_with_data_and_convert_need_no_backend() {
    // A confd confdir: no confsync.toml, so the default file backend has no --file.
    let dir = support::tempdir();
    write(
        dir.path(),
        "data.yaml",
        "app:\n  servers:\n    a: 1.2.3.4:80\n",
    );
    write(
        dir.path(),
        "templates/app.tmpl",
        "{{ range gets \"/app/servers/*\" }}server {{ base .Key }} {{ .Value }}\n{{ end }}",
    );
    write(
        dir.path(),
        "conf.d/app.toml",
        "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\n",
    );
    let o = confsync()
        .args(["render", "--confdir"])
        .arg(dir.path())
        .args(["--resource", "app", "--data"])
        .arg(dir.path().join("data.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "server a 1.2.3.4:80\n");
    let o = confsync()
        .args(["convert", "--confdir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("converted: "));
    // Without --data, render reads the backend, which needs its settings.
    let o = confsync()
        .args(["render", "--confdir"])
        .arg(dir.path())
        .args(["--resource", "app"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--file"), "{}", stderr(&o));
}
