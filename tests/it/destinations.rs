//! Destinations as users have them: symlinked, in directories with spaces and quotes,
//! missing, shared by mistake, owned by another user than confsync's.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, confsync, tempdir, write};

/// A confdir on the file backend reading `data.yaml`, with resource `app` writing
/// `getv /app/msg` to `dest`.
pub fn conf(dir: &Path, dest: &Path, extra: &str, msg: &str) {
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
pub fn resource(dir: &Path, name: &str, dest: &Path, extra: &str) {
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
pub fn toml_str(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("'{s}'")
    }
}

pub fn onetime(dir: &Path) -> Output {
    confsync()
        .args(["run", "--onetime", "--confdir"])
        .arg(dir)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stage files (`.NAME.confsync-*`) in `dir`.
pub fn stage_files(dir: &Path) -> Vec<String> {
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

/// `confsync run --onetime` on `dir` as user `nobody` when the test runs as root (so
/// without CAP_CHOWN), else as the test's own user.
fn onetime_unprivileged(dir: &Path) -> Output {
    let mut c = if nix::unistd::geteuid().is_root() {
        let setpriv = support::require_program("setpriv", "util-linux");
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(support::bin());
        c
    } else {
        Command::new(support::bin())
    };
    c.env("RUST_BACKTRACE", "0")
        .args(["run", "--onetime", "--confdir"])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn a_daemon_without_cap_chown_keeps_another_users_file_going_or_says_why() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempdir();
    let dir = d.path();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let dest = out.join("app.cfg");
    std::fs::write(&dest, "old\n").unwrap();
    conf(dir, &dest, "", "hello");
    let root = nix::unistd::geteuid().is_root();
    if root {
        // nobody may read the confdir and write beside the root-owned dest.
        for p in [dir.to_path_buf(), dir.join("conf.d"), dir.join("templates")] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
        // No owner in the resource: the root-owned file cannot stay root's, so confsync
        // says so and writes it as its own instead of failing every update.
        let o = onetime_unprivileged(dir);
        let e = stderr(&o);
        assert!(o.status.success(), "{e}");
        assert!(
            e.contains(&format!("cannot give {} to uid 0 gid 0", dest.display()))
                && e.contains("confsync runs as uid 65534 without CAP_CHOWN"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n");
        assert_eq!(std::fs::metadata(&dest).unwrap().uid(), 65534);
        assert!(stage_files(&out).is_empty());
    }
    // An owner the resource sets and confsync cannot give: an error that says why.
    conf(dir, &dest, "uid = 0\n", "again");
    let o = onetime_unprivileged(dir);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let me = if root {
        65534
    } else {
        nix::unistd::geteuid().as_raw()
    };
    assert!(
        e.contains(&format!("cannot give {} to uid 0", dest.display()))
            && e.contains(&format!("confsync runs as uid {me} without CAP_CHOWN"))
            && e.contains("set owner/group in the resource"),
        "{e}"
    );
    assert!(!e.contains("Operation not permitted (os error 1)\n"), "{e}");
    let kept = if root { "hello\n" } else { "old\n" };
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), kept);
    assert!(stage_files(&out).is_empty(), "{:?}", stage_files(&out));
}
