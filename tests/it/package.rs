//! `scripts/package.sh`: the Debian package built from the test binary (no second build),
//! installed with `dpkg --root` into a throwaway root; its files, conffiles, the
//! installed binary, the shipped confsync.toml and the systemd units.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, require_program};

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

/// Panics with what to run when cargo-deb is not installed.
fn require_cargo_deb() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let found = Command::new(cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "cargo-deb is required by this test but is not installed: run scripts/test.sh \
         (it installs it) or `cargo install cargo-deb --locked`"
    );
}

/// A dpkg database with nothing installed, under `root`.
fn empty_dpkg_root(root: &Path) {
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
}

/// The man pages `confsync man --dir` writes: one for the command and each subcommand.
fn expected_man_pages() -> Vec<String> {
    let cmd = <confsync::cli::Cli as clap::CommandFactory>::command();
    let mut pages = vec!["usr/share/man/man1/confsync.1.gz".to_string()];
    for sub in cmd.get_subcommands() {
        pages.push(format!(
            "usr/share/man/man1/confsync-{}.1.gz",
            sub.get_name()
        ));
    }
    pages
}

#[test]
fn the_debian_package_installs_into_an_empty_root() {
    require_cargo_deb();
    let dpkg = require_program("dpkg", "dpkg");
    let out = support::tempdir();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new(repo.join("scripts/package.sh"))
        .arg("--bin")
        .arg(support::bin())
        .arg("--output")
        .arg(out.path())
        .arg("--fast")
        .current_dir(repo));
    let arch = stdout(Command::new(&dpkg).arg("--print-architecture"));
    let deb = out.path().join(format!(
        "confsync_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    ));
    assert!(deb.is_file(), "package.sh wrote no {}", deb.display());

    let root = out.path().join("root");
    empty_dpkg_root(&root);
    // No libc6 in the empty root: its dependency is forced; scripts run outside a
    // chroot with DPKG_ROOT set.
    run(Command::new(&dpkg)
        .arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("var/log/dpkg.log").display()))
        .args([
            "--force-not-root",
            "--force-script-chrootless",
            "--force-depends",
            "-i",
        ])
        .arg(&deb));

    let listed = stdout(
        Command::new(&dpkg)
            .arg(format!("--root={}", root.display()))
            .args(["-L", "confsync"]),
    );
    let mut want: Vec<String> = [
        "usr/bin/confsync",
        "lib/systemd/system/confsync.service",
        "lib/systemd/system/confsync-register@.service",
        "etc/confsync/confsync.toml",
        "usr/share/bash-completion/completions/confsync",
        "usr/share/zsh/vendor-completions/_confsync",
        "usr/share/fish/vendor_completions.d/confsync.fish",
        "usr/share/doc/confsync/README.md",
    ]
    .map(String::from)
    .into();
    want.extend(expected_man_pages());
    for path in &want {
        assert!(
            listed.lines().any(|l| l == format!("/{path}")),
            "/{path} is not in the package:\n{listed}"
        );
        assert!(root.join(path).is_file(), "/{path} was not installed");
    }

    let conffiles = stdout(
        Command::new("dpkg-query")
            .arg(format!("--root={}", root.display()))
            .args(["-W", "-f=${Conffiles}", "confsync"]),
    );
    assert!(
        conffiles.contains("/etc/confsync/confsync.toml"),
        "confsync.toml is not a conffile: {conffiles:?}"
    );
    for dir in ["conf.d", "templates"] {
        let d = root.join("etc/confsync").join(dir);
        let entries = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("/etc/confsync/{dir} was not made: {e}"))
            .count();
        assert_eq!(entries, 0, "/etc/confsync/{dir} is not empty");
    }

    let version = stdout(Command::new(root.join("usr/bin/confsync")).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("confsync {}", env!("CARGO_PKG_VERSION"))
    );
    // The shipped confsync.toml is valid (unknown settings would be errors) once a
    // resource is there; env needs no server.
    let etc = root.join("etc/confsync");
    support::write(&etc, "templates/app.tmpl", "x\n");
    support::write(
        &etc,
        "conf.d/app.toml",
        &format!(
            "[template]\nsrc = \"app.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n",
            out.path().join("app.cfg").display()
        ),
    );
    run(Command::new(root.join("usr/bin/confsync"))
        .env_clear()
        .args(["check", "--backend", "env", "--confdir"])
        .arg(&etc));
    let zsh = std::fs::read_to_string(root.join("usr/share/zsh/vendor-completions/_confsync"));
    assert!(zsh.unwrap().starts_with("#compdef confsync"));

    verify_units(&root);
}

/// `systemd-analyze verify` on copies of the installed units whose commands point into
/// `root` (it checks that they exist); without systemd, the units' text.
fn verify_units(root: &Path) {
    let units = root.join("lib/systemd/system");
    let main = std::fs::read_to_string(units.join("confsync.service")).unwrap();
    let register = std::fs::read_to_string(units.join("confsync-register@.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecStart=/usr/bin/confsync run",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(
            main.lines().any(|l| l.starts_with(line)),
            "confsync.service has no {line}"
        );
    }
    assert!(register.contains("ExecStart=/usr/bin/confsync register --service-file"));
    assert!(register.contains("%i"), "the register unit is a template");

    let Some(analyze) = which("systemd-analyze") else {
        eprintln!(
            "systemd-analyze is not installed here: the units were checked as text only \
             (install systemd to verify them)"
        );
        return;
    };
    let dir = support::tempdir();
    let binary = root.join("usr/bin/confsync");
    for (name, text) in [
        ("confsync.service", &main),
        ("confsync-register@.service", &register),
    ] {
        let text = text.replace("/usr/bin/confsync", &binary.display().to_string());
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // `Documentation=man:` pages are looked up in the root when `man` is here.
    let man = which("man").is_some();
    if !man {
        eprintln!("man is not installed here: systemd-analyze verify runs with --man=no");
    }
    for unit in ["confsync.service", "confsync-register@web1.service"] {
        let out = run(Command::new(&analyze)
            .arg("verify")
            .arg(if man { "--man=yes" } else { "--man=no" })
            .arg(dir.path().join(unit))
            .env("MANPATH", root.join("usr/share/man")));
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            warnings.trim().is_empty(),
            "systemd-analyze verify {unit} warns:\n{warnings}"
        );
        eprintln!("systemd-analyze verify {unit}: ok");
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
