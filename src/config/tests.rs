use std::path::Path;

use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn settings(backend: &str) -> Settings {
    Settings {
        backend: Some(backend.into()),
        ..Settings::default()
    }
}

#[test]
fn flag_beats_file_and_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"env\"\ninterval = 30\nprefix = \"/file\"\nwatch = true\n",
    );
    let cli = Settings {
        prefix: Some("/flag".into()),
        ..Settings::default()
    };
    let cfg = run_config(dir.path(), None, cli).unwrap();
    assert_eq!(cfg.prefix, "/flag", "flag wins over file");
    let b = &cfg.backends[DEFAULT_BACKEND];
    assert_eq!(
        b.interval,
        Some(Duration::from_secs(30)),
        "file wins over default"
    );
    assert_eq!(b.kind, BackendKind::Env);
    assert!(b.watch);
    let cfg = run_config(
        dir.path(),
        None,
        Settings {
            watch: Some(false),
            ..Settings::default()
        },
    )
    .unwrap();
    assert!(
        !cfg.backends[DEFAULT_BACKEND].watch,
        "an explicit false flag wins over the file's true"
    );
}

#[test]
fn defaults_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = run_config(dir.path(), None, settings("env")).unwrap();
    assert_eq!(
        cfg.backends[DEFAULT_BACKEND].interval,
        Some(Duration::from_secs(600))
    );
    assert_eq!(cfg.prefix, "");
    assert_eq!(cfg.wait, Wait::default());
    assert!(!cfg.onetime && !cfg.noop && !cfg.backends[DEFAULT_BACKEND].watch);
}

#[test]
fn file_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sub/confsync.toml", "file = [\"data.yaml\"]\n");
    let cfg = run_config(
        dir.path(),
        Some(&dir.path().join("sub/confsync.toml")),
        Settings::default(),
    )
    .unwrap();
    assert_eq!(
        cfg.backends[DEFAULT_BACKEND].files,
        vec![dir.path().join("sub/data.yaml")]
    );
}

#[test]
fn settings_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"env\"\nbogus = 1\n",
    );
    let errs = run_config(dir.path(), None, Settings::default()).unwrap_err();
    let text = errs[0].to_string();
    assert!(
        text.contains("confsync.toml:2:") && text.contains("bogus"),
        "{text}"
    );
}

#[test]
fn every_validation_error_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let errs = run_config(
        dir.path(),
        None,
        Settings {
            backend: Some("etcd".into()),
            log_format: Some("xml".into()),
            ..Settings::default()
        },
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    // The etcd backend without --node is reported once a resource uses it.
    let cfg = run_config(dir.path(), None, settings("etcd")).unwrap();
    write(dir.path(), "templates/a.tmpl", "x");
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\n",
    );
    let set = load_resources(dir.path(), "").unwrap();
    let errs = cfg.check_backends(&set.resources);
    assert!(
        errs[0].to_string().contains("needs at least one --node"),
        "{errs:?}"
    );
}

#[test]
fn named_backends_and_resource_options() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"env\"\nwait = \"50ms:2s\"\n[backends.files]\nkind = \"file\"\nfile = [\"d.yaml\"]\nwatch = true\n",
    );
    write(dir.path(), "templates/a.tmpl", "x");
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nbackend = \"files\"\nwait = \"10ms:20ms\"\nmin_keys = 3\nmin_reload_interval = \"2s\"\nvalue_pattern = \"[0-9.]+:[0-9]+\"\n",
    );
    write(
        dir.path(),
        "conf.d/b.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/b\"\nbackend = \"nope\"\n",
    );
    let cfg = run_config(dir.path(), None, Settings::default()).unwrap();
    assert_eq!(
        cfg.wait,
        Wait {
            min: Duration::from_millis(50),
            max: Duration::from_secs(2)
        }
    );
    let files = &cfg.backends["files"];
    assert_eq!(files.kind, BackendKind::File);
    assert_eq!(files.files, vec![dir.path().join("d.yaml")]);
    assert!(files.watch);
    let set = load_resources(dir.path(), "").unwrap();
    let a = &set.resources[0];
    assert_eq!(a.backend, "files");
    assert_eq!(
        a.wait,
        Some(Wait {
            min: Duration::from_millis(10),
            max: Duration::from_millis(20)
        })
    );
    assert_eq!(a.min_keys, 3);
    assert_eq!(a.min_reload_interval, Duration::from_secs(2));
    let p = a.value_pattern.as_ref().unwrap();
    assert!(p.regex.is_match("10.0.0.1:80"));
    assert!(
        !p.regex
            .is_match("10.0.0.1:80\n  server evil 203.0.113.9:80"),
        "whole value must match"
    );
    let errs = cfg.check_backends(&set.resources);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].to_string().contains("b.toml") && errs[0].to_string().contains("nope"),
        "{errs:?}"
    );
    write(
        dir.path(),
        "conf.d/b.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/b\"\nvalue_pattern = \"(\"\nwait = \"2s:1s\"\nkey_pattern = \"[\"\n",
    );
    let errs = load_resources(dir.path(), "").unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|e| e.contains("b.toml:4: `value_pattern`")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("b.toml:6: `key_pattern`")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("b.toml:5: `wait`")),
        "{text:?}"
    );
}

#[test]
fn resources_join_prefixes_and_report_all_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "templates/a.tmpl", "x");
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nprefix = \"/app\"\nkeys = [\"/servers\", \"/stats\"]\nmode = \"0640\"\n",
    );
    let set = load_resources(dir.path(), "/prod").unwrap();
    let r = &set.resources[0];
    assert_eq!(r.prefix, "/prod/app");
    assert_eq!(
        r.key_prefixes(),
        vec!["/prod/app/servers", "/prod/app/stats"]
    );
    assert_eq!(r.mode, Some(0o640));
    assert_eq!(r.check_timeout, Duration::from_secs(30));
    assert_eq!(r.reload_timeout, Duration::from_secs(60));

    write(
        dir.path(),
        "conf.d/b.toml",
        "[template]\nsrc = \"missing.tmpl\"\ndest = \"/tmp/b\"\nmode = \"rw\"\nowner = \"no-such-user-x\"\n",
    );
    write(
        dir.path(),
        "conf.d/c.toml",
        "[template]\ndest = \"/tmp/c\"\n",
    );
    write(
        dir.path(),
        "conf.d/d.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/d\"\nowners = \"root\"\n",
    );
    let errs = load_resources(dir.path(), "").unwrap_err();
    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = all.join("\n");
    assert!(
        joined.contains("b.toml:2: template `missing.tmpl` not found"),
        "{joined}"
    );
    assert!(joined.contains("b.toml:4: `mode`"), "{joined}");
    assert!(joined.contains("b.toml:5: unknown user"), "{joined}");
    assert!(
        joined.contains("c.toml") && joined.contains("src"),
        "{joined}"
    );
    assert!(
        joined.contains("d.toml:4:") && joined.contains("owners"),
        "{joined}"
    );
}

#[test]
fn timeouts_accept_units() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "templates/a.tmpl", "x");
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"out/a\"\ncheck_timeout = \"500ms\"\nreload_timeout = 5\n",
    );
    let set = load_resources(dir.path(), "").unwrap();
    let r = &set.resources[0];
    assert_eq!(r.check_timeout, Duration::from_millis(500));
    assert_eq!(r.reload_timeout, Duration::from_secs(5));
    assert_eq!(r.dest, dir.path().join("out/a"));
}

#[test]
fn resync_interval_and_max_staleness() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"env\"\nwatch = true\nresync_interval = \"2m\"\n\
         [backends.polled]\nkind = \"env\"\nwatch = false\ninterval = 20\n\
         [backends.off]\nkind = \"env\"\nresync_interval = \"off\"\nmax_staleness = 0\n\
         [backends.secs]\nkind = \"env\"\nresync_interval = 30\nmax_staleness = \"1h\"\n",
    );
    let cfg = run_config(dir.path(), None, Settings::default()).unwrap();
    let b = |name: &str| cfg.backends[name].clone();
    let min = |m: u64| Some(Duration::from_secs(m * 60));
    // A watcher's data is confirmed continuously: 3 x resync_interval of outage.
    assert_eq!(b(DEFAULT_BACKEND).resync_interval, min(2));
    assert_eq!(b(DEFAULT_BACKEND).max_staleness, min(6));
    // A poller's ages by `interval` between polls: 3 x interval.
    assert_eq!(b("polled").resync_interval, min(2), "inherited");
    assert_eq!(b("polled").max_staleness, Some(Duration::from_secs(60)));
    assert_eq!(b("off").resync_interval, None);
    assert_eq!(b("off").max_staleness, None);
    assert_eq!(b("secs").resync_interval, Some(Duration::from_secs(30)));
    assert_eq!(b("secs").max_staleness, min(60));
    // The defaults: 10 minutes, and 30 minutes either way.
    let plain = tempfile::tempdir().unwrap();
    let cfg = run_config(plain.path(), None, settings("env")).unwrap();
    let d = &cfg.backends[DEFAULT_BACKEND];
    assert_eq!((d.resync_interval, d.max_staleness), (min(10), min(30)));
    // Flags and env come as text; bad ones are errors naming the setting.
    let cli = Settings {
        resync_interval: Some(duration::Raw::Text("soon".into())),
        ..settings("env")
    };
    let cfg = run_config(plain.path(), None, cli).unwrap();
    let errs = &cfg.backend_errors[DEFAULT_BACKEND];
    assert!(errs[0].message.contains("resync_interval"), "{errs:?}");
}

#[test]
fn command_env_comes_from_the_file_and_never_names_secrets() {
    use std::ffi::OsStr;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"env\"\ncommand_env = [\"PATH\", \"LC_*\"]\n",
    );
    let cfg = run_config(dir.path(), None, Settings::default()).unwrap();
    assert!(cfg.command_env.passes(OsStr::new("LC_ALL")));
    assert!(!cfg.command_env.passes(OsStr::new("HOME")));
    let cfg = run_config(&dir.path().join("none"), None, settings("env")).unwrap();
    assert_eq!(cfg.command_env, crate::resource::CommandEnv::INHERIT);
    let bad = Settings {
        command_env: Some(vec!["CONFD_CLIENT_PASSWORD".into()]),
        ..settings("env")
    };
    let errors = run_config(dir.path(), None, bad).unwrap_err();
    assert!(errors[0].message.contains("CONFD_"), "{errors:?}");
}

#[test]
fn haproxy_socket_and_drain_timeout() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "templates/a.tmpl", "x");
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"out/a\"\nhaproxy_socket = \"/run/haproxy/admin.sock\"\ndrain_timeout = \"1500ms\"\n",
    );
    let set = load_resources(dir.path(), "").unwrap();
    let r = &set.resources[0];
    assert_eq!(
        r.haproxy_socket.as_deref(),
        Some(Path::new("/run/haproxy/admin.sock"))
    );
    assert_eq!(r.drain_timeout, Duration::from_millis(1500));
    write(
        dir.path(),
        "conf.d/a.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"out/a\"\nhaproxy_socket = \"admin.sock\"\n",
    );
    write(
        dir.path(),
        "conf.d/b.toml",
        "[template]\nsrc = \"a.tmpl\"\ndest = \"out/b\"\ndrain_timeout = \"2s\"\n",
    );
    let errs = load_resources(dir.path(), "").unwrap_err();
    let joined: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = joined.join("\n");
    assert!(
        joined.contains("a.toml:4: `haproxy_socket` \"admin.sock\" is not an absolute path"),
        "{joined}"
    );
    assert!(
        joined.contains("b.toml:4: `drain_timeout` applies only with `haproxy_socket`"),
        "{joined}"
    );
}

#[test]
fn docker_settings_from_file_tables_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"docker\"\ndocker_host_ip = \"10.0.0.5\"\ndocker_label = [\"team=blue\"]\n\
         [backends.other]\nkind = \"docker\"\nnode = [\"tcp://127.0.0.1:2375\"]\n\
         docker-label = [\"a\", \"b=c\"]\n",
    );
    let cfg = run_config(dir.path(), None, Settings::default()).unwrap();
    let d = &cfg.backends[DEFAULT_BACKEND];
    assert_eq!(d.kind, BackendKind::Docker);
    assert_eq!(d.docker_host_ip, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(d.docker_labels, vec!["team=blue".to_string()]);
    let o = &cfg.backends["other"];
    assert_eq!(o.docker_labels, vec!["a".to_string(), "b=c".to_string()]);
    assert_eq!(o.docker_host_ip, None);
    let cli = Settings {
        docker_host_ip: Some("::1".into()),
        ..Settings::default()
    };
    let cfg = run_config(dir.path(), None, cli).unwrap();
    let d = &cfg.backends[DEFAULT_BACKEND];
    assert_eq!(d.docker_host_ip, Some("::1".parse().unwrap()), "flag wins");

    let plain = tempfile::tempdir().unwrap();
    let bad = Settings {
        docker_host_ip: Some("localhost".into()),
        ..settings("docker")
    };
    let cfg = run_config(plain.path(), None, bad).unwrap();
    let errs = &cfg.backend_errors[DEFAULT_BACKEND];
    assert!(errs[0].message.contains("\"localhost\""), "{errs:?}");
    let misplaced = Settings {
        docker_label: Some(vec!["a".into()]),
        ..settings("env")
    };
    let cfg = run_config(plain.path(), None, misplaced).unwrap();
    let errs = &cfg.backend_errors[DEFAULT_BACKEND];
    assert!(errs[0].message.contains("docker backend only"), "{errs:?}");
}

#[test]
fn zookeeper_settings_from_file_tables_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"zookeeper\"\nnode = [\"127.0.0.1:2181/app\"]\nsession_timeout = \"4s\"\n\
         [backends.smartstack]\nkind = \"zookeeper\"\nnode = [\"h1:2181\", \"h2:2181\"]\nnerve = true\n",
    );
    let cfg = run_config(dir.path(), None, Settings::default()).unwrap();
    let d = &cfg.backends[DEFAULT_BACKEND];
    assert_eq!(d.kind, BackendKind::Zookeeper);
    assert_eq!(d.session_timeout, Some(Duration::from_secs(4)));
    assert!(!d.nerve);
    let s = &cfg.backends["smartstack"];
    assert!(s.nerve && s.session_timeout.is_none());

    let plain = tempfile::tempdir().unwrap();
    for (bad, want) in [
        (
            Settings {
                session_timeout: Some(duration::Raw::Text("10ms".into())),
                nodes: Some(vec!["h".into()]),
                ..settings("zookeeper")
            },
            "between 100ms and 1h",
        ),
        (
            Settings {
                nerve: Some(true),
                ..settings("env")
            },
            "zookeeper backend only",
        ),
        (settings("zookeeper"), "at least one --node"),
    ] {
        let cfg = run_config(plain.path(), None, bad).unwrap();
        let errs = &cfg.backend_errors[DEFAULT_BACKEND];
        assert!(errs[0].message.contains(want), "{errs:?}");
    }
}
