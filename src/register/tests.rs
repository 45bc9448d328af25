use super::*;
use clap::Parser;

#[derive(Debug, Parser)]
struct T {
    #[command(flatten)]
    args: RegisterArgs,
}

fn parse(extra: &[&str]) -> Result<RegisterArgs, clap::Error> {
    let mut v = vec!["t", "--backend", "etcd", "--node", "127.0.0.1:1"];
    v.extend(extra);
    T::try_parse_from(v).map(|t| t.args)
}

#[test]
fn flags_make_one_registration() {
    let a = parse(&[
        "--key",
        "/a/b",
        "--value",
        "v",
        "--ttl",
        "3",
        "--check-tcp",
        "127.0.0.1:80",
        "--check-interval",
        "500ms",
        "--fall",
        "3",
    ])
    .unwrap();
    let r = registrations(&a).unwrap();
    assert_eq!(r.len(), 1);
    let c = r[0].check.as_ref().unwrap();
    assert_eq!(c.interval, Duration::from_millis(500));
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    assert_eq!((c.rise, c.fall), (2, 3));
}

#[test]
fn bad_flags_are_all_reported() {
    let a = parse(&[
        "--key",
        "/a",
        "--value",
        "v",
        "--ttl",
        "0",
        "--check-http",
        "https://x/",
        "--check-interval",
        "2 parsecs",
    ])
    .unwrap();
    let e = registrations(&a).unwrap_err();
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 3, "{text:?}");
    assert!(text[0].contains("--ttl"), "{text:?}");
    assert!(text[1].contains("https://x/"), "{text:?}");
    assert!(text[2].contains("--check-interval"), "{text:?}");
    assert!(
        parse(&[
            "--key",
            "/a",
            "--value",
            "v",
            "--ttl",
            "1",
            "--check-tcp",
            "h:1",
            "--check-cmd",
            "true"
        ])
        .is_err()
    );
    assert!(parse(&["--value", "v", "--ttl", "1"]).is_err());
}

#[test]
fn only_etcd_redis_and_zookeeper() {
    let mut a = parse(&["--key", "/a", "--value", "v", "--ttl", "1"]).unwrap();
    a.backend = "file".into();
    let e = backend_config(&a).unwrap_err();
    assert!(e[0].message.contains("etcd, redis or zookeeper"), "{e:?}");
}
