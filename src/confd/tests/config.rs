use std::path::{Path, PathBuf};

use crate::confd::Confd;
use crate::confd::args::{Parsed, parse};
use crate::confd::settings::{Mapped, map};
use crate::confd::spec::{Config, Origin};
use crate::confd::toml::{apply, apply_env, read_file};
use crate::config::ConfigError;

fn flags(args: &[&str]) -> Config {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse(&args) {
        Ok(Parsed::Run(c)) => c,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn file(cfg: &mut Config, text: &str) -> Result<Vec<ConfigError>, Vec<ConfigError>> {
    apply(cfg, Path::new("/etc/confd/confd.toml"), text)
}

fn mapped(args: &[&str]) -> Mapped {
    map(&flags(args), &no_env).unwrap_or_else(|e| panic!("{args:?}: {e:?}"))
}

fn map_errors(args: &[&str]) -> Vec<String> {
    match map(&flags(args), &no_env) {
        Ok(m) => panic!("{args:?}: expected errors, got {m:?}"),
        Err(es) => es.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn the_file_beats_the_flags_and_the_env_fills_what_is_left() {
    let mut cfg = flags(&[
        "-prefix",
        "/flag",
        "-node",
        "a",
        "-node",
        "b",
        "-onetime",
        "-client-cert",
        "/flag.pem",
        "-interval",
        "5",
    ]);
    file(
        &mut cfg,
        "prefix = \"/file\"\nnodes = [\"c\"]\nonetime = false\nclient_key = \"/file.key\"\n",
    )
    .unwrap();
    assert_eq!(
        cfg.str("prefix"),
        "/file",
        "a file key beats an explicit flag"
    );
    assert_eq!(
        cfg.list("node"),
        ["c"],
        "the file's list replaces the flags'"
    );
    assert!(
        !cfg.flag("onetime"),
        "even a false in the file beats -onetime"
    );
    assert_eq!(
        cfg.int("interval"),
        5,
        "what the file does not set stays as the flags set it"
    );
    let env = |k: &str| {
        Some(
            match k {
                "CONFD_CLIENT_CERT" => "/env.pem",
                "CONFD_CLIENT_KEY" => "/env.key",
                "CONFD_CLIENT_CAKEYS" => "/env-ca.pem",
                _ => return None,
            }
            .to_string(),
        )
    };
    apply_env(&mut cfg, &env);
    assert_eq!(cfg.str("client-cert"), "/flag.pem", "a flag beats the env");
    assert_eq!(cfg.str("client-key"), "/file.key", "the file beats the env");
    assert_eq!(
        cfg.str("client-ca-keys"),
        "/env-ca.pem",
        "the env fills what is empty"
    );
    assert_eq!(
        *cfg.origin("client-ca-keys"),
        Origin::Env("CONFD_CLIENT_CAKEYS")
    );
    assert_eq!(
        *cfg.origin("prefix"),
        Origin::File {
            path: PathBuf::from("/etc/confd/confd.toml"),
            line: 1
        }
    );
}

#[test]
fn keys_match_as_gos_decoder_matches_them() {
    let mut cfg = flags(&[]);
    let w = file(&mut cfg, "Backend = \"file\"\nLOG-LEVEL = \"debug\"\nsync-only = true\nKeepStageFile = true\nfile = [\"a.yaml\"]\nconfigdir = \"/x\"\n").unwrap();
    assert_eq!(cfg.str("backend"), "file");
    assert_eq!(cfg.str("log-level"), "debug");
    assert!(cfg.flag("sync-only") && cfg.flag("keep-stage-file"));
    assert_eq!(cfg.list("file"), ["a.yaml"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].to_string().contains("`configdir` has no effect"),
        "{}",
        w[0]
    );
}

#[test]
fn file_errors_name_the_file_the_line_and_the_key() {
    let mut cfg = flags(&[]);
    let errs = file(
        &mut cfg,
        "backend = \"etcd\"\nlog_level = \"debug\"\ninterval = \"10\"\nnodes = \"x\"\n",
    )
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text[0].starts_with("/etc/confd/confd.toml:2: unknown key `log_level`"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("/etc/confd/confd.toml:3: `interval`: expected an integer"),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with("/etc/confd/confd.toml:4: `nodes`: expected an array of strings"),
        "{}",
        text[2]
    );
    let errs = file(&mut cfg, "backend = \"etcd\"\nwatch = \n").unwrap_err();
    assert_eq!(errs[0].line, Some(2), "{errs:?}");
    let errs = file(&mut cfg, "backend = \"etcd\"\nBACKEND = \"redis\"\n").unwrap_err();
    assert!(errs[0].message.contains("set the same setting"), "{errs:?}");
}

#[test]
fn an_absent_file_is_skipped_and_a_present_one_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = flags(&["-prefix", "/flag"]);
    assert!(
        read_file(&mut cfg, &dir.path().join("none.toml"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(cfg.str("prefix"), "/flag");
    let path = dir.path().join("confd.toml");
    std::fs::write(&path, "prefix = \"/file\"\n").unwrap();
    read_file(&mut cfg, &path).unwrap();
    assert_eq!(cfg.str("prefix"), "/file");
    // The whole chain, through -config-file.
    let c = Confd::new(flags(&[
        "-config-file",
        path.to_str().unwrap(),
        "-backend",
        "env",
        "-prefix",
        "/flag",
    ]));
    assert_eq!(
        c.settings(&no_env).unwrap().settings.prefix.as_deref(),
        Some("/file")
    );
}

#[test]
fn backends_and_their_default_nodes() {
    let m = mapped(&[]);
    assert_eq!(m.settings.backend.as_deref(), Some("etcd"));
    assert_eq!(
        m.settings.nodes.as_deref(),
        Some(&["http://127.0.0.1:2379".to_string()][..])
    );
    let peers = |k: &str| (k == "ETCDCTL_PEERS").then(|| "http://a:1,http://b:2".to_string());
    let m = map(&flags(&["-backend", "etcd"]), &peers).unwrap();
    assert_eq!(m.settings.nodes.unwrap(), ["http://a:1", "http://b:2"]);
    let m = map(&flags(&["-backend", "etcdv3"]), &peers).unwrap();
    assert_eq!(m.settings.backend.as_deref(), Some("etcd"));
    assert_eq!(
        m.settings.nodes.unwrap(),
        ["127.0.0.1:2379"],
        "ETCDCTL_PEERS is only for etcd"
    );
    let m = mapped(&["-backend", "redis"]);
    assert_eq!(m.settings.nodes.unwrap(), ["127.0.0.1:6379"]);
    let m = mapped(&["-backend", "etcdv3", "-node", "h:1"]);
    assert_eq!(m.settings.nodes.unwrap(), ["h:1"]);
    let m = mapped(&["-backend", "file", "-file", "a.yaml"]);
    assert_eq!(m.settings.file.unwrap(), [PathBuf::from("a.yaml")]);
    assert_eq!(m.settings.nodes.unwrap(), Vec::<String>::new());
    let m = mapped(&["-backend", "zookeeper"]);
    assert_eq!(
        m.settings.nodes.unwrap(),
        ["127.0.0.1:2181"],
        "confd's default"
    );
    assert_eq!(m.settings.backend.as_deref(), Some("zookeeper"));
    for b in ["consul", "vault", "dynamodb", "ssm", "rancher"] {
        let e = map_errors(&["-backend", b]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(&format!(
                "-backend: the {b} backend is not supported by confsync yet"
            )),
            "{}",
            e[0]
        );
    }
    assert!(map_errors(&["-backend", "nosuch"])[0].contains("unknown backend `nosuch`"));
}

#[test]
fn flags_confsync_cannot_honour_exit_with_their_name() {
    for (flag, value) in [
        ("app-id", "x"),
        ("auth-token", "x"),
        ("auth-type", "token"),
        ("path", "x"),
        ("role-id", "x"),
        ("secret-id", "x"),
        ("user-id", "x"),
        ("table", "t"),
        ("secret-keyring", "/k.asc"),
        ("srv-domain", "example.com"),
        ("srv-record", "_etcd._tcp.example.com"),
        ("scheme", "https"),
    ] {
        let e = map_errors(&[&format!("-{flag}"), value]);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(&format!("<command line>: -{flag}: not supported")),
            "{}",
            e[0]
        );
    }
    let e = map_errors(&["-client-insecure"]);
    assert!(e[0].contains("-client-insecure: not supported"), "{e:?}");
    // Their defaults, or values that do nothing in confd either, are fine.
    mapped(&[
        "-scheme",
        "http",
        "-filter",
        "*",
        "-table",
        "",
        "-client-insecure=false",
    ]);
    // Every error at once.
    assert_eq!(
        map_errors(&["-table", "t", "-backend", "vault", "-log-level", "loud"]).len(),
        3
    );
}

#[test]
fn an_error_from_the_file_names_the_file_and_line() {
    let mut cfg = flags(&[]);
    file(&mut cfg, "backend = \"etcd\"\n\ntable = \"t\"\n").unwrap();
    let e = map(&cfg, &no_env).unwrap_err();
    assert_eq!(e[0].file, PathBuf::from("/etc/confd/confd.toml"));
    assert_eq!(e[0].line, Some(3));
    assert!(
        e[0].message.starts_with("`table`: not supported"),
        "{}",
        e[0].message
    );
}

#[test]
fn filter_is_refused_only_where_confd_would_apply_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a.yaml");
    std::fs::write(&data, "a: 1\n").unwrap();
    let d = dir.path().to_str().unwrap();
    mapped(&[
        "-backend",
        "file",
        "-file",
        data.to_str().unwrap(),
        "-filter",
        "*.yaml",
    ]);
    let e = map_errors(&["-backend", "file", "-file", d, "-filter", "*.yaml"]);
    assert!(
        e[0].contains("-filter: not supported with a directory"),
        "{e:?}"
    );
}

#[test]
fn log_levels_map_onto_confsyncs() {
    for (given, want) in [
        ("", "info"),
        ("debug", "debug"),
        ("INFO", "info"),
        ("warn", "warn"),
        ("warning", "warn"),
        ("error", "error"),
        ("fatal", "error"),
        ("panic", "error"),
    ] {
        let m = mapped(&["-log-level", given]);
        assert_eq!(m.settings.log_level.as_deref(), Some(want), "{given}");
    }
    assert!(map_errors(&["-log-level", "trace"])[0].contains("not a valid level: \"trace\""));
}

#[test]
fn auth_and_tls_as_confd_uses_them() {
    // etcd: the user and password only with -basic-auth.
    let m = mapped(&["-username", "u", "-password", "p"]);
    assert_eq!((m.settings.username, m.settings.password), (None, None));
    assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
    assert!(
        m.warnings[0]
            .to_string()
            .contains("-username: ignored without -basic-auth")
    );
    let m = mapped(&["-basic-auth", "-username", "u", "-password", "p"]);
    assert_eq!(m.settings.username.as_deref(), Some("u"));
    assert_eq!(m.settings.password.map(|s| s.0).as_deref(), Some("p"));
    // Redis: confd sends -client-key as the password.
    let m = mapped(&[
        "-backend",
        "redis",
        "-client-key",
        "secret",
        "-password",
        "p",
        "-separator",
        ":",
    ]);
    assert_eq!(m.settings.password.map(|s| s.0).as_deref(), Some("secret"));
    assert_eq!(m.settings.client_key, None);
    assert_eq!(m.settings.separator.as_deref(), Some(":"));
    assert!(
        m.warnings
            .iter()
            .any(|w| w.message.contains("-password: ignored with -backend=redis"))
    );
    // etcd TLS files pass through; a certificate without its key is ignored, as in confd.
    let m = mapped(&[
        "-client-cert",
        "/c.pem",
        "-client-key",
        "/c.key",
        "-client-ca-keys",
        "/ca.pem",
    ]);
    assert_eq!(m.settings.client_cert, Some(PathBuf::from("/c.pem")));
    assert_eq!(m.settings.client_ca_keys, Some(PathBuf::from("/ca.pem")));
    let m = mapped(&["-client-cert", "/c.pem"]);
    assert_eq!(m.settings.client_cert, None);
    assert!(m.warnings[0].message.contains("unless both are given"));
}

#[test]
fn interval_and_modes() {
    let m = mapped(&[
        "-interval",
        "30",
        "-watch",
        "-noop",
        "-sync-only",
        "-keep-stage-file",
        "-prefix",
        "app",
    ]);
    assert_eq!(m.settings.interval, Some(30));
    assert_eq!(m.settings.watch, Some(true));
    assert_eq!(m.settings.noop, Some(true));
    assert_eq!(m.settings.sync_only, Some(true));
    assert_eq!(m.settings.keep_stage_file, Some(true));
    assert_eq!(m.settings.prefix.as_deref(), Some("app"));
    assert_eq!(m.confdir, PathBuf::from("/etc/confd"));
    assert!(map_errors(&["-interval", "0"])[0].contains("-interval: must be at least 1"));
    mapped(&["-interval", "0", "-watch"]);
}

#[test]
fn an_interval_too_long_names_where_it_came_from() {
    assert!(
        map_errors(&["-interval", "99999999999"])[0]
            .contains("-interval: must be at most 31536000 (365 days)")
    );
    let mut cfg = flags(&[]);
    file(&mut cfg, "backend = \"env\"\ninterval = 99999999999\n").unwrap();
    let e = map(&cfg, &no_env).unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "/etc/confd/confd.toml:2: `interval`: must be at most 31536000 (365 days)"
    );
    // Not polling, confd never uses it.
    mapped(&["-interval", "99999999999", "-onetime"]);
}

#[test]
fn the_file_backend_without_a_file_is_an_error_in_confds_words() {
    let e = map_errors(&["-backend", "file"]);
    assert!(
        e[0].contains("-file: the file backend needs at least one -file"),
        "{e:?}"
    );
}
