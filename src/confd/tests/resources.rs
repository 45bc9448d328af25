use std::path::Path;

use crate::config::{Dialect, load_resources, load_resources_as};
use crate::template::EngineKind;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn confdir(resource: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "templates/app.tmpl", "plain text\n");
    write(dir.path(), "conf.d/app.toml", resource);
    dir
}

#[test]
fn confd_mode_accepts_what_confd_accepts() {
    let dir = confdir(
        "[template]\nSRC = \"app.tmpl\"\nDest = \"/tmp/app.cfg\"\nkeys = [\"/servers\"]\nprefix = \"app\"\nuid = -1\ngid = -1\nowner_note = \"x\"\n\n[extra]\ny = 2\n",
    );
    let (set, warnings) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    let r = &set.resources[0];
    assert_eq!(r.src, "app.tmpl");
    assert_eq!(r.dest, Path::new("/tmp/app.cfg"));
    assert_eq!(r.prefix, "/app", "a prefix without a leading / gets one");
    assert_eq!((r.uid, r.gid), (None, None), "-1 means unset, as in confd");
    let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("app.toml:8: [template] `owner_note` ignored"),
        "{}",
        w[0]
    );
    assert!(w[1].contains("app.toml:10: `extra` ignored"), "{}", w[1]);
    // confsync's own rules still refuse the unknown key, naming it.
    let errs = load_resources(dir.path(), "").unwrap_err();
    assert!(
        errs[0].to_string().contains("SRC") || errs[0].to_string().contains("unknown field"),
        "{errs:?}"
    );
}

#[test]
fn confd_mode_still_refuses_what_confd_refuses() {
    // keys as a string is a decode error in confd too; errors keep their lines.
    let dir = confdir("[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\nkeys = \"/servers\"\n");
    let errs = load_resources_as(dir.path(), "", Dialect::Confd).unwrap_err();
    assert_eq!(errs[0].line, Some(4), "{errs:?}");
    let dir = confdir("[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\nmode = \"rw\"\n");
    let errs = load_resources_as(dir.path(), "", Dialect::Confd).unwrap_err();
    assert_eq!(errs[0].line, Some(4), "{errs:?}");
}

#[test]
fn a_global_prefix_replaces_the_resources_own_in_confd_mode_only() {
    let dir = confdir(
        "[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\nprefix = \"/app\"\nkeys = [\"/servers\"]\n",
    );
    let (set, _) = load_resources_as(dir.path(), "/prod", Dialect::Confd).unwrap();
    assert_eq!(set.resources[0].prefix, "/prod");
    assert_eq!(set.resources[0].key_prefixes(), ["/prod/servers"]);
    let (set, _) = load_resources_as(dir.path(), "prod", Dialect::Confd).unwrap();
    assert_eq!(set.resources[0].prefix, "/prod");
    let (set, _) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    assert_eq!(set.resources[0].prefix, "/app");
    // confsync's rule: joined in front.
    let set = load_resources(dir.path(), "/prod").unwrap();
    assert_eq!(set.resources[0].prefix, "/prod/app");
}

#[test]
fn paths_resolve_as_confd_resolves_them() {
    let dir = confdir("[template]\nsrc = \"/app.tmpl\"\ndest = \"out/a.cfg\"\n");
    let (set, _) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    let r = &set.resources[0];
    assert_eq!(
        r.src_path,
        dir.path().join("templates/app.tmpl"),
        "an absolute src stays below templates/"
    );
    assert_eq!(
        r.dest,
        std::env::current_dir().unwrap().join("out/a.cfg"),
        "a relative dest is relative to the working directory"
    );
}

#[test]
fn resource_files_are_found_recursively() {
    let dir = confdir("[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\n");
    let r = |dest: &str| format!("[template]\nsrc = \"app.tmpl\"\ndest = \"{dest}\"\n");
    write(dir.path(), "conf.d/sub/deeper/b.toml", &r("/tmp/b"));
    write(dir.path(), "conf.d/c-no-dot-toml", &r("/tmp/c"));
    write(dir.path(), "conf.d/notes.txt", "not a resource");
    write(dir.path(), "conf.d/..2024_01_01/app.toml", &r("/tmp/b"));
    let (set, _) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    let names: Vec<&str> = set.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["app", "c-no-dot-toml", "b"],
        "hidden directories are skipped"
    );
    assert_eq!(load_resources(dir.path(), "").unwrap().resources.len(), 1);
}

#[test]
fn templates_are_go_templates_in_confd_mode() {
    // Tera would read this as a comment; Go prints it.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "templates/app.tmpl",
        "{{ \"x\" }}{# not a comment #}\n",
    );
    write(
        dir.path(),
        "conf.d/app.toml",
        "[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\n",
    );
    let (set, _) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    assert_eq!(set.resources[0].engine, Some(EngineKind::Go));
    assert_eq!(set.engine.kind_of("app.tmpl"), Some(EngineKind::Go));
    let set = load_resources(dir.path(), "").unwrap();
    assert_eq!(
        set.engine.kind_of("app.tmpl"),
        Some(EngineKind::Tera),
        "detected in confsync mode"
    );
    // A resource that names its engine keeps it.
    write(
        dir.path(),
        "conf.d/app.toml",
        "[template]\nsrc = \"app.tmpl\"\ndest = \"/tmp/a\"\nengine = \"tera\"\n",
    );
    let (set, _) = load_resources_as(dir.path(), "", Dialect::Confd).unwrap();
    assert_eq!(set.engine.kind_of("app.tmpl"), Some(EngineKind::Tera));
}
