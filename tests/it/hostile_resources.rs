//! Issue 12, parts 2 and 3: secrets stay inside (commands get no `CONFSYNC_*`/`CONFD_*`
//! variables, `--password` on the command line is warned about) and resources stay in
//! their room (templates inside `templates/`, destinations regular files that are not
//! confsync's own, no set-id or world-writable modes).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Output;
use std::time::Duration;

use crate::cli::{Fixture, stderr};
use crate::support::{Proc, confsync, wait_file, write};

const TEMPLATE: &str =
    "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.value }}\n{% endfor %}";
const DATA: &str = "app:\n  servers:\n    web1: 127.0.0.1:8001\n";

/// Both `check` and `run --onetime` refuse the fixture, naming its resource file and
/// saying `why`; nothing is written.
fn refused(f: &Fixture, why: &str) {
    let outputs: [(&str, Output); 2] = [("check", f.check()), ("run", f.run(&[]))];
    for (what, o) in outputs {
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {e}");
        assert!(
            e.contains("conf.d/app.toml"),
            "{what} does not name the resource: {e}"
        );
        assert!(e.contains(why), "{what} does not say {why:?}: {e}");
    }
}

fn accepted(f: &Fixture) {
    let o = f.check();
    assert!(o.status.success(), "check: {}", stderr(&o));
    let o = f.run(&[]);
    assert!(o.status.success(), "run: {}", stderr(&o));
}

#[test]
fn reload_and_check_commands_never_see_secrets_and_get_what_command_env_lists() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let check_env = f.path().join("check.env");
    let reload_env = f.path().join("reload.env");
    write(
        f.path(),
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\ncheck_cmd = \"env > {}\"\nreload_cmd = \"env > {}\"\n",
            check_env.display(),
            reload_env.display()
        ),
    );
    write(
        f.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\ncommand_env = [\"PATH\", \"HOSTILE_KEEP\", \"HOSTILE_LC_*\"]\n",
    );
    let mut c = confsync();
    c.args(["run", "--confdir"])
        .arg(f.path())
        .env("CONFSYNC_PASSWORD", "s3cret")
        .env("CONFD_CLIENT_PASSWORD", "c0nfd-s3cret")
        .env("CONFSYNC_LOG_LEVEL", "debug")
        .env("HOSTILE_KEEP", "kept")
        .env("HOSTILE_LC_ALL", "kept-too")
        .env("HOSTILE_DROP", "dropped");
    let _daemon = Proc::spawn("confsync", c, &f.path().join("confsync.log"));
    let reload = wait_file(&reload_env, Duration::from_secs(20), |t| {
        t.contains("HOSTILE")
    });
    let log = std::fs::read_to_string(f.path().join("confsync.log")).unwrap_or_default();
    let reload = reload.unwrap_or_else(|| panic!("the reload never ran: {log}"));
    let check = std::fs::read_to_string(&check_env).unwrap();
    for (what, env) in [("check", &check), ("reload", &reload)] {
        assert!(!env.contains("s3cret"), "{what} saw a password:\n{env}");
        assert!(
            !env.lines()
                .any(|l| l.starts_with("CONFSYNC_") || l.starts_with("CONFD_")),
            "{what} saw confsync's variables:\n{env}"
        );
        assert!(env.contains("HOSTILE_KEEP=kept\n"), "{what}:\n{env}");
        assert!(env.contains("HOSTILE_LC_ALL=kept-too\n"), "{what}:\n{env}");
        assert!(
            !env.contains("HOSTILE_DROP"),
            "{what} got an unlisted variable:\n{env}"
        );
    }
}

#[test]
fn without_command_env_commands_keep_the_environment_but_the_secrets() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let reload_env = f.path().join("reload.env");
    write(
        f.path(),
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\nreload_cmd = \"env > {}\"\n",
            reload_env.display()
        ),
    );
    let o = confsync()
        .args(["run", "--onetime", "--confdir"])
        .arg(f.path())
        .env("CONFSYNC_PASSWORD", "s3cret")
        .env("CONFD_CLIENT_PASSWORD", "c0nfd-s3cret")
        .env("HOSTILE_KEEP", "kept")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let env = std::fs::read_to_string(&reload_env).unwrap();
    assert!(env.contains("HOSTILE_KEEP=kept\n"), "{env}");
    assert!(!env.contains("s3cret"), "{env}");
    assert!(
        !env.lines()
            .any(|l| l.starts_with("CONFSYNC_") || l.starts_with("CONFD_"))
    );
}

#[test]
fn command_env_cannot_name_confsyncs_own_variables() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let o = f.run(&["--command-env", "PATH,CONFSYNC_PASSWORD"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("command_env"), "{}", stderr(&o));
}

#[test]
fn a_password_on_the_command_line_is_warned_about_once_and_the_env_var_is_not() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let warning = "--password is visible";
    let o = confsync()
        .args(["check", "--password", "hunter2", "--confdir"])
        .arg(f.path())
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert_eq!(e.matches(warning).count(), 1, "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    for env in ["CONFSYNC_PASSWORD", "CONFSYNC_PASSWORD_FILE"] {
        let o = confsync()
            .args(["check", "--confdir"])
            .arg(f.path())
            .env(env, f.path().join("data.yaml"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains(warning), "{env}: {}", stderr(&o));
    }
}

#[test]
fn a_template_outside_templates_is_refused_unless_allowed() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let templates = std::fs::canonicalize(f.path().join("templates")).unwrap();
    // Exactly as many `..` as reach the root, so the path really is /etc/passwd.
    let up = "../".repeat(templates.components().count() - 1);
    for src in ["/etc/passwd".to_string(), format!("{up}etc/passwd")] {
        let resource = |extra: &str| {
            format!(
                "[template]\nsrc = \"{src}\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\n{extra}"
            )
        };
        write(f.path(), "conf.d/app.toml", &resource(""));
        refused(&f, "outside the templates directory");
        assert!(!f.dest().exists());
        write(
            f.path(),
            "conf.d/app.toml",
            &resource("src_outside_templates = true\n"),
        );
        accepted(&f);
        assert_eq!(
            std::fs::read(f.dest()).unwrap(),
            std::fs::read("/etc/passwd").unwrap()
        );
        std::fs::remove_file(f.dest()).unwrap();
    }
}

#[test]
fn a_template_symlinked_out_of_templates_is_refused() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    std::os::unix::fs::symlink("/etc/passwd", f.path().join("templates/link.tmpl")).unwrap();
    write(
        f.path(),
        "conf.d/app.toml",
        "[template]\nsrc = \"link.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\n",
    );
    refused(&f, "outside the templates directory");
}

/// A fixture whose destination is `dest` (relative to the confdir, or absolute).
fn with_dest(dest: &str) -> Fixture {
    let f = Fixture::new(TEMPLATE, "", DATA);
    write(
        f.path(),
        "conf.d/app.toml",
        &format!("[template]\nsrc = \"app.tmpl\"\ndest = \"{dest}\"\nkeys = [\"/app\"]\n"),
    );
    f
}

#[test]
fn a_device_fifo_or_directory_dest_is_refused() {
    let f = with_dest("/dev/null");
    refused(&f, "is a character device");
    let f = with_dest("out/fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(f.path().join("out/fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    refused(&f, "is a FIFO");
    assert!(
        std::fs::symlink_metadata(f.path().join("out/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let f = with_dest("out/dir");
    std::fs::create_dir(f.path().join("out/dir")).unwrap();
    refused(&f, "is a directory");
    // Through a symlink: the link's target counts.
    let f = with_dest("out/link");
    std::os::unix::fs::symlink("/dev/null", f.path().join("out/link")).unwrap();
    refused(&f, "is a character device");
}

#[test]
fn confsyncs_own_files_are_refused_as_dest() {
    for dest in [
        "templates/app.tmpl",
        "conf.d/app.toml",
        "confsync.toml",
        "templates/new.tmpl",
    ] {
        let f = with_dest(dest);
        let before = std::fs::read(f.path().join(dest)).ok();
        refused(&f, "confsync's own files");
        assert_eq!(std::fs::read(f.path().join(dest)).ok(), before, "{dest}");
    }
}

#[test]
fn a_settings_file_outside_the_confdir_is_refused_as_dest() {
    let elsewhere = crate::support::tempdir();
    let settings = elsewhere.path().join("settings.toml");
    let f = with_dest(&settings.display().to_string());
    let text = format!(
        "backend = \"file\"\nfile = [\"{}\"]\n",
        f.path().join("data.yaml").display()
    );
    std::fs::write(&settings, &text).unwrap();
    let by_flag = |cmd: &[&str]| {
        let mut c = confsync();
        c.args(cmd)
            .arg("--confdir")
            .arg(f.path())
            .arg("--config-file");
        c.arg(&settings).output().unwrap()
    };
    let by_env = |cmd: &[&str]| {
        let mut c = confsync();
        c.args(cmd).arg("--confdir").arg(f.path());
        c.env("CONFSYNC_CONFIG_FILE", &settings).output().unwrap()
    };
    for (what, o) in [
        ("check", by_flag(&["check"])),
        ("run", by_flag(&["run", "--onetime"])),
        ("run (env)", by_env(&["run", "--onetime"])),
    ] {
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: {e}");
        assert!(e.contains("conf.d/app.toml"), "{what}: {e}");
        assert!(e.contains("confsync's own files"), "{what}: {e}");
        assert_eq!(std::fs::read_to_string(&settings).unwrap(), text, "{what}");
    }
}

#[test]
fn set_id_sticky_and_world_writable_modes_are_refused_unless_allowed() {
    for (mode, why) in [
        ("4755", "set-uid"),
        ("2755", "set-gid"),
        ("1644", "sticky"),
        ("0666", "world-writable"),
    ] {
        let f = Fixture::new(TEMPLATE, &format!("mode = \"{mode}\"\n"), DATA);
        refused(&f, why);
        assert!(!f.dest().exists());
        let f = Fixture::new(
            TEMPLATE,
            &format!("mode = \"{mode}\"\nallow_special_mode = true\n"),
            DATA,
        );
        accepted(&f);
        let got = std::fs::metadata(f.dest()).unwrap().mode() & 0o7777;
        assert_eq!(got, u32::from_str_radix(mode, 8).unwrap(), "{mode}");
    }
}

/// A destination that turns into a FIFO after load is neither read (which would block)
/// nor replaced; the daemon says why. (The same check right before the swap has a unit
/// test in `resource::stage`.)
#[test]
fn a_dest_that_becomes_a_fifo_after_load_is_left_alone() {
    let f = Fixture::new(TEMPLATE, "", DATA);
    let reload_log = f.path().join("reloads");
    write(
        f.path(),
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"out/app.cfg\"\nkeys = [\"/app\"]\nreload_cmd = \"echo r >> {}\"\n",
            reload_log.display()
        ),
    );
    let mut c = confsync();
    c.args(["run", "--interval", "1", "--confdir"])
        .arg(f.path());
    let _daemon = Proc::spawn("confsync", c, &f.path().join("confsync.log"));
    assert!(wait_file(&reload_log, Duration::from_secs(20), |t| !t.is_empty()).is_some());
    std::fs::remove_file(f.dest()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(f.dest())
        .status()
        .unwrap();
    assert!(made.success());
    write(
        f.path(),
        "data.yaml",
        "app:\n  servers:\n    web1: 127.0.0.1:8009\n",
    );
    let log = wait_file(
        &f.path().join("confsync.log"),
        Duration::from_secs(20),
        |t| t.contains("is a FIFO"),
    );
    assert!(log.is_some(), "{}", daemon_log(&f));
    assert!(
        std::fs::symlink_metadata(f.dest())
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

fn daemon_log(f: &Fixture) -> String {
    std::fs::read_to_string(f.path().join("confsync.log")).unwrap_or_default()
}
