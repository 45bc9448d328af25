//! Property tests: every parser of configuration and templates, fed random input (raw
//! bytes, and text made of the tokens each format is built from), returns an error or a
//! value, and never panics.

use std::path::Path;

use proptest::prelude::*;

use crate::config::{self, Dialect};
use crate::template::Engine;

/// Random bytes, or random text from the tokens TOML, templates and durations use.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let tokens = prop::collection::vec(
        prop::sample::select(vec![
            "[template]",
            "[backends.x]",
            "\n",
            " = ",
            "\"",
            "'''",
            "src",
            "dest",
            "keys",
            "[\"/a\"]",
            "prefix",
            "mode",
            "\"0644\"",
            "owner",
            "uid",
            "0",
            "-1",
            "99999999999",
            "check_cmd",
            "reload_cmd",
            "wait",
            "\"1s:2s\"",
            "min_keys",
            "value_pattern",
            "key_pattern",
            "\"(\"",
            "engine",
            "\"go\"",
            "backend",
            "kind",
            "nodes",
            "file",
            "interval",
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "range",
            "end",
            "if",
            "getv",
            "(key=",
            ")",
            "|",
            "$x",
            ":=",
            ".",
            "#",
            "\\u{0}",
            "é",
            "\u{feff}",
            "true",
            "1e400",
            "[",
            "]",
            "service",
            "ttl",
            "key",
            "value",
            "check_http",
            "rise",
            "fall",
        ]),
        0..40,
    )
    .prop_map(|t| t.concat().into_bytes());
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), tokens]
}

fn with_file<T>(name: &str, bytes: &[u8], f: impl FnOnce(&Path, &Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/t.tmpl"), "x").unwrap();
    let path = conf_d.join(name);
    std::fs::write(&path, bytes).unwrap();
    f(dir.path(), &path)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn resource_files_never_panic(bytes in input()) {
        with_file("r.toml", &bytes, |dir, path| {
            for dialect in [Dialect::Confsync, Dialect::Confd] {
                let _ = config::resource::load_as(path, dir, &dir.join("templates"), "/p", dialect);
            }
        });
    }

    #[test]
    fn confsync_toml_never_panics(bytes in input()) {
        with_file("confsync.toml", &bytes, |dir, path| {
            let _ = config::run_config(dir, Some(path), config::Settings::default());
        });
    }

    #[test]
    fn confd_toml_never_panics(bytes in input()) {
        with_file("confd.toml", &bytes, |_, path| {
            let mut cfg = crate::confd::spec::Config::default();
            let _ = crate::confd::toml::read_file(&mut cfg, path);
        });
    }

    #[test]
    fn service_files_never_panic(bytes in input()) {
        with_file("services.toml", &bytes, |_, path| {
            let _ = crate::register::load_service_file(path);
        });
    }

    #[test]
    fn templates_never_panic(bytes in input()) {
        let mut engine = Engine::new();
        let _ = engine.add_go_raw("t", &bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = engine.add_raw("t.tera", text);
        }
    }

    #[test]
    fn durations_and_waits_never_panic(text in "[0-9a-z:. µ-]{0,20}") {
        let _ = config::duration::parse(&text);
        let _ = config::Wait::parse(&text);
    }
}
