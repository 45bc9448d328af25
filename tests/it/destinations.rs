//! Destinations as users have them (symlinked, in directories with spaces and quotes,
//! missing, shared by mistake), disk faults while staging, SIGKILL mid-write, and
//! commands that outlive a stopping daemon.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{self, Proc, confsync, tempdir, wait_file, wait_for, write};

const LIMIT: Duration = Duration::from_secs(10);

/// A confdir on the file backend reading `data.yaml`, with resource `app` writing
/// `getv /app/msg` to `dest`.
fn conf(dir: &Path, dest: &Path, extra: &str, msg: &str) {
    write(
        dir,
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n",
    );
    write(dir, "data.yaml", &format!("app:\n  msg: \"{msg}\"\n"));
    write(dir, "templates/app.tmpl", "{{ getv(key=\"/app/msg\") }}\n");
    resource(dir, "app", dest, extra);
}

/// Writes `conf.d/NAME.toml` rendering `app.tmpl` into `dest`.
fn resource(dir: &Path, name: &str, dest: &Path, extra: &str) {
    write(
        dir,
        &format!("conf.d/{name}.toml"),
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = {}\nkeys = [\"/app\"]\n{extra}",
            toml_str(&dest.display().to_string())
        ),
    );
}

/// `s` as a TOML literal string (no escapes inside), or a basic one when it holds `'`.
fn toml_str(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("'{s}'")
    }
}

fn onetime(dir: &Path) -> Output {
    confsync()
        .args(["run", "--onetime", "--confdir"])
        .arg(dir)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stage files (`.NAME.confsync-*`) in `dir`.
fn stage_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.contains(".confsync-"))
                .collect()
        })
        .unwrap_or_default()
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

#[test]
fn a_symlinked_haproxy_cfg_keeps_its_link_and_its_target_is_checked_and_replaced() {
    let haproxy = support::require_program("haproxy", "haproxy");
    let d = tempdir();
    let dir = d.path();
    // As Debian-style setups have it: /etc/haproxy/haproxy.cfg -> a file elsewhere.
    let real = write(dir, "shared/haproxy/haproxy.cfg", "# old\n");
    std::fs::create_dir_all(dir.join("etc/haproxy")).unwrap();
    let link = dir.join("etc/haproxy/haproxy.cfg");
    symlink("../../shared/haproxy/haproxy.cfg", &link).unwrap();
    let tpl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/haproxy.cfg.tmpl"),
    )
    .unwrap();
    conf(
        dir,
        &link,
        &format!(
            "check_cmd = \"{} -c -q -f {{{{.src}}}}\"\n",
            haproxy.display()
        ),
        "unused",
    );
    write(dir, "templates/app.tmpl", &tpl);
    write(
        dir,
        "data.yaml",
        &format!(
            "app:\n  servers:\n    web1: \"127.0.0.1:{}\"\n  stats:\n    user: admin\n    password: pw\n  listen:\n    http: \"127.0.0.1:{}\"\n    stats: \"127.0.0.1:{}\"\n",
            support::free_port(),
            support::free_port(),
            support::free_port()
        ),
    );
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_link(&link), "the link is still a link");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        PathBuf::from("../../shared/haproxy/haproxy.cfg")
    );
    let got = std::fs::read_to_string(&real).unwrap();
    assert!(got.contains("server web1 127.0.0.1:"), "{got}");
    assert!(stage_files(&dir.join("etc/haproxy")).is_empty());
    assert!(stage_files(&dir.join("shared/haproxy")).is_empty());
    // A second run finds it up to date through the link.
    let o = onetime(dir);
    assert!(
        o.status.success() && !stderr(&o).contains("updated"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_symlinked_nginx_site_keeps_its_link_and_nginx_reads_the_new_target() {
    let nginx = support::require_program("nginx", "nginx");
    let d = tempdir();
    let dir = d.path();
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let port = support::free_port();
    let main = |include: &str| {
        format!(
            "pid {r}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {r};\n  proxy_temp_path {r};\n  fastcgi_temp_path {r};\n  uwsgi_temp_path {r};\n  scgi_temp_path {r};\n  include {include};\n}}\n",
            r = run.display()
        )
    };
    // nginx.conf includes sites-enabled/*; the site there links to sites-available/.
    write(
        dir,
        "nginx/nginx.conf",
        &main(&dir.join("nginx/sites-enabled/*").display().to_string()),
    );
    write(dir, "nginx/check.conf", &main("STAGED"));
    write(dir, "nginx/sites-available/app", "# old\n");
    std::fs::create_dir_all(dir.join("nginx/sites-enabled")).unwrap();
    let link = dir.join("nginx/sites-enabled/app");
    symlink("../sites-available/app", &link).unwrap();
    let check = format!(
        "sed 's#STAGED#{{{{.src}}}}#' {check} > {{{{.src}}}}.main && {nginx} -t -q -p {r} -e stderr -c {{{{.src}}}}.main; s=$?; rm -f {{{{.src}}}}.main; exit $s",
        check = dir.join("nginx/check.conf").display(),
        nginx = nginx.display(),
        r = run.display()
    );
    conf(
        dir,
        &link,
        &format!("check_cmd = {}\n", toml_str(&check)),
        "hello",
    );
    write(
        dir,
        "templates/app.tmpl",
        &format!(
            "server {{\n  listen 127.0.0.1:{port};\n  location / {{ return 200 \"{{{{ getv(key=\"/app/msg\") }}}}\"; }}\n}}\n"
        ),
    );
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(is_link(&link));
    let site = std::fs::read_to_string(dir.join("nginx/sites-available/app")).unwrap();
    assert!(site.contains("return 200 \"hello\""), "{site}");
    assert!(stage_files(&dir.join("nginx/sites-available")).is_empty());
    // nginx itself, through the link, accepts what was written.
    let t = Command::new(&nginx)
        .args(["-t", "-q", "-p"])
        .arg(&run)
        .args(["-e", "stderr", "-c"])
        .arg(dir.join("nginx/nginx.conf"))
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", stderr(&t));
    // A site nginx rejects is refused, and the live target stays.
    write(dir, "data.yaml", "app:\n  msg: \"bad\\\" ; }\"\n");
    let o = onetime(dir);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("nginx/sites-available/app")).unwrap(),
        site
    );
    assert!(is_link(&link));
}

#[test]
fn paths_with_spaces_quotes_and_dollars_reach_check_and_reload_whole() {
    let d = tempdir();
    let dir = d.path();
    let out = dir.join("my conf's $HOME dir");
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("app $x.cfg");
    // {{.src}} bare and in double quotes; {{ dest }} bare, in double and in single quotes.
    let extra = concat!(
        "check_cmd = \"grep -q hello {{.src}} && cp \\\"{{.src}}\\\" {{ dest }}.checked\"\n",
        "reload_cmd = \"cat \\\"{{ dest }}\\\" > {{ dest }}.reloaded && printf '%s' '{{ dest }}' > \\\"{{ dest }}.name\\\"\"\n",
    );
    conf(dir, &dest, extra, "hello");
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", dest.display()));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n");
    assert_eq!(
        std::fs::read_to_string(with(".checked")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(with(".reloaded")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(with(".name")).unwrap(),
        dest.display().to_string()
    );
    // Nothing landed where a split word or an expanded $HOME would have put it.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "app $x.cfg",
            "app $x.cfg.checked",
            "app $x.cfg.name",
            "app $x.cfg.reloaded"
        ]
    );
}

#[test]
fn a_relative_confdir_still_gives_commands_absolute_paths() {
    let d = tempdir();
    let dir = d.path().join("conf");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    conf(
        &dir,
        Path::new("out/app.cfg"),
        "reload_cmd = \"cd / && printf '%s' {{ dest }} > {{ dest }}.name\"\n",
        "hello",
    );
    let o = confsync()
        .current_dir(d.path())
        .args(["run", "--onetime", "--confdir", "conf"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let name = std::fs::read_to_string(dir.join("out/app.cfg.name")).unwrap();
    assert!(Path::new(&name).is_absolute(), "{name}");
    assert_eq!(Path::new(&name), dir.join("out/app.cfg"));
}

#[test]
fn a_missing_dest_directory_is_an_error_naming_it_unless_create_dest_dirs() {
    let d = tempdir();
    let dir = d.path();
    let dest = dir.join("missing/sub/app.cfg");
    conf(dir, &dest, "", "hello");
    let o = onetime(dir);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&dir.join("missing/sub").display().to_string())
            && e.contains(&dir.join("conf.d/app.toml").display().to_string())
            && e.contains("create_dest_dirs"),
        "{e}"
    );
    assert!(!dir.join("missing").exists());
    conf(dir, &dest, "create_dest_dirs = true\n", "hello");
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n");
}

#[test]
fn two_resources_with_one_dest_are_a_configuration_error_naming_both() {
    let d = tempdir();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("out/real")).unwrap();
    let dest = dir.join("out/real/app.cfg");
    conf(dir, &dest, "", "hello");
    // The same file through a symlinked directory and a `..` detour.
    symlink("real", dir.join("out/alias")).unwrap();
    resource(dir, "b-alias", &dir.join("out/alias/app.cfg"), "");
    resource(dir, "c-detour", &dir.join("out/x/../real/app.cfg"), "");
    // A file that does not exist yet, named twice lexically differently.
    resource(dir, "d-new", &dir.join("out/new.cfg"), "");
    resource(dir, "e-new", &dir.join("out/./new.cfg"), "");
    resource(dir, "f-other", &dir.join("out/other.cfg"), "");
    let o = onetime(dir);
    assert!(!o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let file = |n: &str| dir.join(format!("conf.d/{n}.toml")).display().to_string();
    for (second, first) in [("b-alias", "app"), ("c-detour", "app"), ("e-new", "d-new")] {
        assert!(
            e.lines()
                .any(|l| l.contains(&file(second)) && l.contains(&file(first))),
            "{second} and {first} named together: {e}"
        );
    }
    assert!(!e.contains(&file("f-other")), "{e}");
    assert!(!dest.exists(), "nothing was written");
}

/// A guard that unmounts a tmpfs (lazily, so a failed test cannot leave it busy).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills `dir` with no room left for a big render: a small tmpfs when root, else a
/// read-only directory. Returns the guard and how to make room again.
fn cramped(dir: &Path) -> (Option<Mount>, Box<dyn Fn()>) {
    std::fs::create_dir_all(dir).unwrap();
    if nix::unistd::geteuid().is_root() {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "confsync-test"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs at {}", dir.display());
        let guard = Mount(dir.to_path_buf());
        std::fs::write(dir.join("filler"), vec![b'f'; 48 * 1024]).unwrap();
        let filler = dir.join("filler");
        (
            Some(guard),
            Box::new(move || std::fs::remove_file(&filler).unwrap()),
        )
    } else {
        use std::os::unix::fs::PermissionsExt;
        let d = dir.to_path_buf();
        (
            None,
            Box::new(move || {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap()
            }),
        )
    }
}

#[test]
fn a_full_disk_leaves_the_dest_intact_and_no_stage_file_then_a_change_gets_written() {
    let d = tempdir();
    let dir = d.path();
    let full = dir.join("full");
    let (_mount, make_room) = cramped(&full);
    let dest = full.join("app.cfg");
    std::fs::write(&dest, "intact\n").unwrap();
    if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let big = "b".repeat(24 * 1024);
    conf(dir, &dest, "", &big);
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir);
    let log = dir.join("confsync.log");
    let mut p = Proc::spawn("confsync", c, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let fault = if nix::unistd::geteuid().is_root() {
        "No space left on device"
    } else {
        "Permission denied"
    };
    assert!(
        wait_for(LIMIT, || (read_log().contains(fault)
            && read_log().contains(&dest.display().to_string()))
        .then_some(()))
        .is_some(),
        "the fault is logged with the path: {}",
        read_log()
    );
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "intact\n");
    assert!(stage_files(&full).is_empty(), "{:?}", stage_files(&full));
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );
    // Room again, and a change: the new file is written.
    make_room();
    write(dir, "data.yaml", &format!("app:\n  msg: \"{big}-v2\"\n"));
    assert!(
        wait_file(&dest, LIMIT, |s| s.ends_with("-v2\n")).is_some(),
        "{}",
        read_log()
    );
    assert!(stage_files(&full).is_empty(), "{:?}", stage_files(&full));
}

/// The complete render of version `v`: about 2 MiB.
fn version(v: usize) -> String {
    format!("v{v:03} {}", "x".repeat(2 * 1024 * 1024))
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_partial_dest_and_the_next_start_sweeps() {
    let d = tempdir();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let dest = dir.join("out/app.cfg");
    conf(dir, &dest, "", &version(0));
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    // How long a whole run takes, to spread the kills over it.
    write(
        dir,
        "data.yaml",
        &format!("app:\n  msg: \"{}\"\n", version(1)),
    );
    let begun = Instant::now();
    assert!(onetime(dir).status.success());
    let whole = begun.elapsed();
    let mut killed_running = 0;
    for v in 2..52 {
        write(
            dir,
            "data.yaml",
            &format!("app:\n  msg: \"{}\"\n", version(v)),
        );
        let mut child = confsync()
            .args(["run", "--onetime", "--confdir"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(fastrand::f64() * 1.2));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let got = std::fs::read_to_string(&dest).unwrap();
        let n: usize = got[1..4].parse().expect("a version number");
        assert!(n <= v, "version {n} after {v}");
        assert!(
            got == format!("{}\n", version(n)),
            "dest is a partial version {n} after kill {v}"
        );
    }
    assert!(
        killed_running >= 10,
        "only {killed_running} of 50 kills hit a running confsync"
    );
    // Whatever stage files the kills left, and one planted for sure, go at the next start;
    // files that only look alike stay.
    std::fs::write(dir.join("out/.app.cfg.confsync-0badf00d"), "partial").unwrap();
    std::fs::write(dir.join("out/.app.cfg.confsync-0badf00d.rejected"), "kept").unwrap();
    std::fs::write(dir.join("out/.other.confsync-0badf00d"), "other").unwrap();
    let o = onetime(dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed stage files left by an earlier run"),
        "{}",
        stderr(&o)
    );
    let mut left = stage_files(&dir.join("out"));
    left.sort();
    assert_eq!(
        left,
        [
            ".app.cfg.confsync-0badf00d.rejected",
            ".other.confsync-0badf00d"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        format!("{}\n", version(51))
    );
}

/// Live (not zombie) `sleep`s whose command line holds `marker`.
fn alive_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(marker)
                && stat.contains("(sleep) ")
                && !stat.contains(") Z ")
        })
        .count()
}

/// The daemon's limit on draining in-flight syncs at shutdown.
const DRAIN: Duration = Duration::from_secs(30);

#[test]
fn a_reload_hung_at_shutdown_takes_its_whole_process_group_with_it() {
    let d = tempdir();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let marker = format!("300.{}", fastrand::u32(100_000..u32::MAX));
    conf(
        dir,
        &dir.join("out/app.cfg"),
        &format!(
            "reload_timeout = \"10m\"\nreload_cmd = \"sh -c 'sleep {marker} & sleep {marker}'\"\n"
        ),
        "hello",
    );
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir);
    let mut p = Proc::spawn("confsync", c, &dir.join("confsync.log"));
    assert!(
        wait_for(LIMIT, || (alive_with(&marker) == 2).then_some(())).is_some(),
        "both sleeps of the reload run"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let st = p.wait_exit(DRAIN + Duration::from_secs(10));
    assert!(st.is_some(), "confsync exits after its drain limit");
    assert!(
        wait_for(Duration::from_secs(3), || (alive_with(&marker) == 0)
            .then_some(()))
        .is_some(),
        "{} sleep(s) of the hung reload outlived confsync",
        alive_with(&marker)
    );
}
