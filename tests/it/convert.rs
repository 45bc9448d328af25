//! `confsync convert`: the report and exit codes, nothing written without `--write`, and
//! with it a converted template that the daemon renders as confd rendered the Go one.

use std::path::Path;
use std::process::Output;

use crate::support::{self, confsync, write};

const GO_HAPROXY: &str = "backend app\n{{- range gets \"/app/servers/*\" }}\n    server {{ base .Key }} {{ .Value }} check\n{{- end }}\n";
const DATA: &str = "app:\n  servers:\n    web1: 127.0.0.1:8001\n    web2: 127.0.0.1:8002\n";
const RESOURCE: &str = "# the HAProxy backend\n[template]\nsrc = \"haproxy.cfg.tmpl\"  # Go, from confd\ndest = \"out/haproxy.cfg\"\nkeys = [\"/app\"]\n";

fn confdir(templates: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = support::tempdir();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n",
    );
    write(dir.path(), "data.yaml", DATA);
    for (name, text) in templates {
        write(dir.path(), &format!("templates/{name}"), text);
    }
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    dir
}

fn convert(dir: &Path, extra: &[&str]) -> Output {
    confsync()
        .args(["convert", "--confdir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn convert_reports_and_touches_nothing_without_write() {
    let dir = confdir(&[
        ("haproxy.cfg.tmpl", GO_HAPROXY),
        (
            "srv.tmpl",
            "{{ lookupSRV \"xmpp\" \"tcp\" \"example.com\" }}\n",
        ),
    ]);
    write(dir.path(), "conf.d/haproxy.toml", RESOURCE);
    let o = convert(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        stdout(&o),
        "converted: templates/haproxy.cfg.tmpl -> templates/haproxy.cfg.tmpl.tera\n"
    );
    assert!(!dir.path().join("templates/haproxy.cfg.tmpl.tera").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf.d/haproxy.toml")).unwrap(),
        RESOURCE
    );

    write(
        dir.path(),
        "conf.d/srv.toml",
        "[template]\nsrc = \"srv.tmpl\"\ndest = \"out/srv\"\nkeys = [\"/app\"]\n",
    );
    let o = convert(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(
            "not convertible: templates/srv.tmpl: line 1, column 4: <lookupSRV \"xmpp\" \"tcp\" \"example.com\">: lookupSRV: confsync's Tera has no such function\n"
        ),
        "{}",
        stdout(&o)
    );

    write(
        dir.path(),
        "conf.d/bad.toml",
        "[template]\nsrc = \"nosuch.tmpl\"\n",
    );
    assert_eq!(convert(dir.path(), &[]).status.code(), Some(2));
}

#[test]
fn convert_write_points_the_resource_at_a_template_that_renders_the_same() {
    let dir = confdir(&[("haproxy.cfg.tmpl", GO_HAPROXY)]);
    write(dir.path(), "conf.d/haproxy.toml", RESOURCE);
    let before = confsync()
        .args(["render", "--confdir"])
        .arg(dir.path())
        .args(["--resource", "haproxy"])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(0));

    let o = convert(dir.path(), &["--write"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("templates/haproxy.cfg.tmpl")).unwrap(),
        GO_HAPROXY,
        "the Go template stays"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("templates/haproxy.cfg.tmpl.tera")).unwrap(),
        "backend app\n{%- for server in gets(key=\"/app/servers/*\") %}\n    server {{ server.key | base }} {{ server.value }} check\n{%- endfor %}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf.d/haproxy.toml")).unwrap(),
        "# the HAProxy backend\n[template]\nsrc = \"haproxy.cfg.tmpl.tera\"  # Go, from confd\nengine = \"tera\"\ndest = \"out/haproxy.cfg\"\nkeys = [\"/app\"]\n"
    );
    let after = confsync()
        .args(["render", "--confdir"])
        .arg(dir.path())
        .args(["--resource", "haproxy"])
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(0));
    assert_eq!(stdout(&after), stdout(&before));

    // Nothing is left to convert.
    let o = convert(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("no Go templates"), "{}", stdout(&o));
}

#[test]
fn convert_confd_reads_and_edits_a_confd_confdir() {
    // As confd reads it: a resource in a subdirectory, keys in any case, a key confd
    // ignores, no confsync.toml.
    let dir = support::tempdir();
    write(dir.path(), "data.yaml", DATA);
    write(dir.path(), "templates/haproxy.cfg.tmpl", GO_HAPROXY);
    let out = dir.path().join("haproxy.cfg");
    write(
        dir.path(),
        "conf.d/lb/haproxy.toml",
        &format!(
            "[Template]\nSrc = \"haproxy.cfg.tmpl\"\nDest = \"{}\"\nkeys = [\"/app\"]\nuid = -1\nmystery = 1\n",
            out.display()
        ),
    );
    let run_as_confd = || {
        let o = confsync()
            .arg("-onetime")
            .args(["-backend", "file", "-file"])
            .arg(dir.path().join("data.yaml"))
            .arg("-confdir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(&out).unwrap()
    };
    let before = run_as_confd();

    let o = convert(dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "confsync's rules find no resource there"
    );
    let o = convert(dir.path(), &["--confd", "--write"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let edited = std::fs::read_to_string(dir.path().join("conf.d/lb/haproxy.toml")).unwrap();
    assert!(
        edited.starts_with("[Template]\nSrc = \"haproxy.cfg.tmpl.tera\"\nengine = \"tera\"\n"),
        "{edited}"
    );
    std::fs::remove_file(&out).unwrap();
    assert_eq!(run_as_confd(), before);
}
