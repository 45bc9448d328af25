use std::ffi::OsString;

use crate::confd::args::{Parsed, parse, parse_int, usage};
use crate::confd::detect;
use crate::confd::spec::{Config, Origin, SPECS};

fn run(args: &[&str]) -> Config {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse(&args) {
        Ok(Parsed::Run(c)) => c,
        other => panic!("{args:?}: expected a run, got {other:?}"),
    }
}

fn usage_error(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse(&args) {
        Err(e) => e.0,
        other => panic!("{args:?}: expected a usage error, got {other:?}"),
    }
}

#[test]
fn every_form_of_a_value_flag() {
    for args in [
        &["-confdir", "/x"][..],
        &["-confdir=/x"],
        &["--confdir", "/x"],
        &["--confdir=/x"],
    ] {
        let c = run(args);
        assert_eq!(c.str("confdir"), "/x", "{args:?}");
        assert_eq!(*c.origin("confdir"), Origin::Flag);
    }
    // A value may start with a dash and may hold `=`.
    assert_eq!(run(&["-prefix", "-x"]).str("prefix"), "-x");
    assert_eq!(run(&["-prefix=a=b"]).str("prefix"), "a=b");
    assert_eq!(run(&["-prefix="]).str("prefix"), "");
}

#[test]
fn defaults_are_confds() {
    let c = run(&[]);
    assert_eq!(c.str("backend"), "etcd");
    assert_eq!(c.str("confdir"), "/etc/confd");
    assert_eq!(c.str("config-file"), "/etc/confd/confd.toml");
    assert_eq!(c.int("interval"), 600);
    assert_eq!(c.str("filter"), "*");
    assert_eq!(c.str("scheme"), "http");
    assert!(!c.flag("watch") && !c.flag("onetime"));
    assert!(c.list("node").is_empty());
    assert_eq!(*c.origin("backend"), Origin::Default);
}

#[test]
fn booleans_take_only_inline_values() {
    assert!(run(&["-watch"]).flag("watch"));
    assert!(run(&["--watch"]).flag("watch"));
    for v in ["true", "1", "t", "T", "TRUE", "True"] {
        assert!(run(&[&format!("-watch={v}")]).flag("watch"), "{v}");
    }
    for v in ["false", "0", "f", "F", "FALSE", "False"] {
        assert!(!run(&[&format!("-onetime={v}")]).flag("onetime"), "{v}");
    }
    assert_eq!(
        usage_error(&["-watch=yes"]),
        "invalid boolean value \"yes\" for -watch: parse error"
    );
    // `-watch false` is the flag, then an argument.
    assert!(usage_error(&["-watch", "false"]).contains("unexpected argument \"false\""));
}

#[test]
fn repeatable_flags_append() {
    let c = run(&[
        "-node",
        "a",
        "--node=b",
        "-node",
        "c",
        "-file",
        "x.yaml",
        "-file=y.yaml",
    ]);
    assert_eq!(c.list("node"), ["a", "b", "c"]);
    assert_eq!(c.list("file"), ["x.yaml", "y.yaml"]);
    // A repeated plain flag: the last wins.
    assert_eq!(run(&["-prefix", "/a", "-prefix", "/b"]).str("prefix"), "/b");
}

#[test]
fn integers_parse_as_go_does() {
    assert_eq!(run(&["-interval", "30"]).int("interval"), 30);
    assert_eq!(run(&["-interval=0x10"]).int("interval"), 16);
    assert_eq!(run(&["-interval", "010"]).int("interval"), 8);
    assert_eq!(run(&["-interval", "1_000"]).int("interval"), 1000);
    assert_eq!(parse_int("-0b101"), Ok(-5));
    assert_eq!(parse_int("0o17"), Ok(15));
    assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
    assert_eq!(parse_int("9223372036854775808"), Err("value out of range"));
    for bad in ["", "abc", "1__0", "_1", "1_", "0x", "08", "1.5"] {
        assert_eq!(parse_int(bad), Err("parse error"), "{bad:?}");
    }
    assert_eq!(
        usage_error(&["-interval", "abc"]),
        "invalid value \"abc\" for flag -interval: parse error"
    );
}

#[test]
fn usage_errors_say_what_go_says() {
    assert_eq!(
        usage_error(&["-bogus"]),
        "flag provided but not defined: -bogus"
    );
    assert_eq!(
        usage_error(&["--bogus=1"]),
        "flag provided but not defined: -bogus"
    );
    assert_eq!(
        usage_error(&["-confdir"]),
        "flag needs an argument: -confdir"
    );
    assert_eq!(usage_error(&["---x"]), "bad flag syntax: ---x");
    assert_eq!(usage_error(&["-=x"]), "bad flag syntax: -=x");
    assert!(usage_error(&["-"]).contains("unexpected argument \"-\""));
    assert!(usage_error(&["-onetime", "extra"]).contains("unexpected argument \"extra\""));
    // The fork's `-n` is only known after a BACKEND word.
    assert_eq!(
        usage_error(&["-n", "x"]),
        "flag provided but not defined: -n"
    );
}

#[test]
fn double_dash_ends_the_flags() {
    assert!(run(&["-onetime", "--"]).flag("onetime"));
    assert!(usage_error(&["--", "-onetime"]).contains("after `--`"));
}

#[test]
fn help_and_version() {
    for h in ["-h", "-help", "--help", "--h"] {
        assert_eq!(parse(&[h.to_string()]), Ok(Parsed::Help), "{h}");
    }
    assert_eq!(parse(&["-version".into()]), Ok(Parsed::Version));
    // As in Go, every flag is parsed before -version is acted on.
    assert!(parse(&["-version".into(), "-bogus".into()]).is_err());
    let text = usage();
    assert!(text.starts_with("Usage of confd:\n"));
    for s in SPECS {
        assert!(text.contains(&format!("  -{}", s.name)), "{}", s.name);
    }
    assert!(text.contains("  -interval int\n    \tbackend polling interval (default 600)\n"));
    assert!(
        text.contains("  -confdir string\n    \tconfd conf directory (default \"/etc/confd\")\n")
    );
}

#[test]
fn the_forks_backend_word_form() {
    let c = run(&[
        "--onetime",
        "--confdir",
        "/x",
        "etcd",
        "--node",
        "http://127.0.0.1:2379",
        "-n",
        "h:2",
    ]);
    assert_eq!(c.str("backend"), "etcd");
    assert!(c.flag("onetime"));
    assert_eq!(c.str("confdir"), "/x");
    assert_eq!(c.list("node"), ["http://127.0.0.1:2379", "h:2"]);
    let c = run(&["--onetime", "file", "--file", "data.yaml"]);
    assert_eq!(c.str("backend"), "file");
    assert_eq!(c.list("file"), ["data.yaml"]);
    // Global flags may follow the word too, as kong allows.
    assert!(run(&["redis", "--watch"]).flag("watch"));
    assert!(usage_error(&["-backend", "redis", "etcd"]).contains("given twice"));
    assert!(usage_error(&["etcd", "-backend=redis"]).contains("given twice"));
    assert!(usage_error(&["etcd", "file"]).contains("unexpected argument \"file\""));
    assert!(usage_error(&["nosuch"]).contains("unexpected argument \"nosuch\""));
}

#[test]
fn detection() {
    let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(detect(&argv(&["/usr/local/bin/confd"])));
    assert!(detect(&argv(&["confd", "--onetime"])));
    assert!(detect(&argv(&["confsync", "-onetime"])));
    assert!(detect(&argv(&["./confsync", "-backend=etcd"])));
    assert!(detect(&argv(&["confsync", "-version"])));
    assert!(!detect(&argv(&["confsync", "-h"])));
    assert!(!detect(&argv(&["confsync", "--onetime"])));
    assert!(!detect(&argv(&["confsync", "run", "-onetime"])));
    assert!(!detect(&argv(&["confsync"])));
    assert!(!detect(&argv(&["/usr/bin/confd.real"])));
}

#[test]
fn debug_output_of_the_flags_and_their_mapping_never_shows_a_password() {
    let cfg = run(&[
        "-backend",
        "redis",
        "-node",
        "127.0.0.1:6379",
        "-client-key",
        "hunter2-redis",
        "-password",
        "hunter2-etcd",
    ]);
    let text = format!("{cfg:?} {cfg:#?}");
    assert!(!text.contains("hunter2") && text.contains("***"), "{text}");
    let mapped = crate::confd::settings::map(&cfg, &|_| None).expect("maps");
    let text = format!("{mapped:?}");
    assert!(!text.contains("hunter2") && text.contains("***"), "{text}");
}
