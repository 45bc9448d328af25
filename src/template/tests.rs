use std::sync::Arc;

use super::*;
use crate::backend::KvMap;

fn data(pairs: &[(&str, &str)]) -> Arc<KvMap> {
    Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn render(tpl: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateError> {
    let mut e = Engine::new();
    e.add_raw("t.tmpl", tpl)?;
    e.render("t.tmpl", View::new(data(pairs), "", &["/".to_string()]))
        .map(|b| String::from_utf8(b).expect("UTF-8"))
}

#[test]
fn haproxy_servers_from_gets() {
    let out = render(
        "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.key | base }} {{ s.value }} check\n{% endfor %}",
        &[("/app/servers/web2", "127.0.0.1:8002"), ("/app/servers/web1", "127.0.0.1:8001")],
    )
    .unwrap();
    assert_eq!(
        out,
        "server web1 127.0.0.1:8001 check\nserver web2 127.0.0.1:8002 check\n"
    );
}

#[test]
fn getv_default_and_missing() {
    assert_eq!(
        render("{{ getv(key=\"/a\") }}", &[("/a", "x")]).unwrap(),
        "x"
    );
    assert_eq!(
        render("{{ getv(key=\"/b\", default=\"d\") }}", &[]).unwrap(),
        "d"
    );
    let err = render("line one\n{{ getv(key=\"/missing/key\") }}", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("/missing/key"), "{err}");
    assert!(err.contains("t.tmpl"), "{err}");
    assert!(err.contains(":2:"), "names the line: {err}");
}

#[test]
fn getvs_sorts_by_value_and_ls() {
    let pairs = [("/u/a", "z"), ("/u/b", "m"), ("/u/c/d", "deep")];
    assert_eq!(
        render("{{ getvs(key=\"/u/*\") | join(sep=\",\") }}", &pairs).unwrap(),
        "m,z"
    );
    assert_eq!(
        render("{{ ls(key=\"/u\") | join(sep=\",\") }}", &pairs).unwrap(),
        "a,b,c"
    );
    assert_eq!(
        render("{{ lsdir(key=\"/u\") | join(sep=\",\") }}", &pairs).unwrap(),
        "c"
    );
    assert_eq!(
        render(
            "{{ exists(key=\"/u/a\") }} {{ exists(key=\"/u/x\") }}",
            &pairs
        )
        .unwrap(),
        "true false"
    );
    assert_eq!(
        render("{% set a = get(key=\"/u/a\") %}{{ a.value }}", &pairs).unwrap(),
        "z"
    );
}

#[test]
fn filters() {
    assert_eq!(
        render("{{ \"/a/b/c\" | base }} {{ \"/a/b/c\" | dir }}", &[]).unwrap(),
        "c /a/b"
    );
    let out = render(
        "{% set j = getv(key=\"/j\") | json %}{{ j.host }}:{{ j.port }}",
        &[("/j", r#"{"host":"h","port":80}"#)],
    )
    .unwrap();
    assert_eq!(out, "h:80");
    assert_eq!(
        render("{{ \"a.conf\" | trim_suffix(suffix=\".conf\") }}", &[]).unwrap(),
        "a"
    );
    assert_eq!(
        render("{{ \"x\" | base64_encode | base64_decode }}", &[]).unwrap(),
        "x"
    );
    assert!(
        render(
            "{{ getv(key=\"/v\") | safe_line }}",
            &[("/v", "1.2.3.4:80\n server evil")]
        )
        .is_err()
    );
    assert_eq!(
        render("{{ \"<b>&\" }}", &[]).unwrap(),
        "<b>&",
        "no autoescaping"
    );
    assert_eq!(
        render(
            "{{ \"a,b\" | split(pat=\",\") | last }} {{ \"X\" | lower }} {{ \"7\" | int + 1 }}",
            &[]
        )
        .unwrap(),
        "b x 8"
    );
}

#[test]
fn syntax_errors_name_file_and_line() {
    let mut e = Engine::new();
    let err = e
        .add_raw("bad.tmpl", "ok\n{% for x in %}\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.tmpl"), "{err}");
    assert!(err.contains(":2:"), "{err}");
    let err = e
        .add_raw("bad2.tmpl", "{{ x | no_such_filter }}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_filter"), "{err}");
}

#[test]
fn rfc3339() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_400_110);
    assert_eq!(funcs::rfc3339_utc(t), "2026-11-23T02:15:10Z");
}

/// Every row of the README's confd -> confsync table renders as documented.
#[test]
fn readme_confd_table_holds() {
    let pairs = [
        ("/k", "v"),
        ("/d/a/x", "1"),
        ("/d/b", "2"),
        ("/s", "a:b"),
        ("/n", "41"),
        ("/j", "[1,2]"),
    ];
    let cases = [
        ("{{ getv(key=\"/k\") }}", "v"),
        ("{{ getv(key=\"/nope\", default=\"def\") }}", "def"),
        (
            "{% set x = get(key=\"/k\") %}{{ x.key }}={{ x.value }}",
            "/k=v",
        ),
        (
            "{% for x in gets(key=\"/d/*\") %}{{ x.key }} {% endfor %}",
            "/d/b ",
        ),
        ("{{ getvs(key=\"/d/*\") | join(sep=\",\") }}", "2"),
        ("{{ ls(key=\"/d\") | join(sep=\",\") }}", "a,b"),
        ("{{ lsdir(key=\"/d\") | join(sep=\",\") }}", "a"),
        ("{{ exists(key=\"/k\") }}", "true"),
        (
            "{{ getenv(name=\"SURELY_UNSET_IN_TESTS\", default=\"d\") }}",
            "d",
        ),
        (
            "{{ lookup_ip(name=\"127.0.0.1\") | join(sep=\",\") }}",
            "127.0.0.1",
        ),
        ("{{ file_exists(path=\"/\") }}", "true"),
        ("{{ datetime() | length }}", "20"),
        ("{{ \"/a/b\" | base }} {{ \"/a/b\" | dir }}", "b /a"),
        ("{{ getv(key=\"/j\") | json | length }}", "2"),
        (
            "{{ getv(key=\"/s\") | split(pat=\":\") | join(sep=\"-\") }}",
            "a-b",
        ),
        ("{{ \"aB\" | upper }} {{ \"aB\" | lower }}", "AB ab"),
        ("{{ \":\" in getv(key=\"/s\") }}", "true"),
        (
            "{{ getv(key=\"/s\") | replace(from=\":\", to=\"/\") }}",
            "a/b",
        ),
        (
            "{{ \"x.conf\" | trim_suffix(suffix=\".conf\") }}{{ \"/x\" | trim_prefix(prefix=\"/\") }}",
            "xx",
        ),
        ("{{ getv(key=\"/n\") | int + 1 }}", "42"),
        ("{{ \"true\" | parse_bool }}", "true"),
        (
            "{{ \"hi\" | base64_encode }} {{ \"aGk=\" | base64_decode }}",
            "aGk= hi",
        ),
        ("{{ [1, 2] | reverse | join(sep=\",\") }}", "2,1"),
        (
            "{{ [\"ccc\", \"a\", \"bb\"] | sort_by_length | join(sep=\",\") }}",
            "a,bb,ccc",
        ),
        (
            "{{ 7 + 1 }} {{ 7 - 1 }} {{ 7 * 2 }} {{ 9 / 2 }} {{ 9 // 2 }} {{ 7 % 4 }}",
            "8 6 14 4.5 4 3",
        ),
        ("{{ range(start=1, end=6) | join(sep=\",\") }}", "1,2,3,4,5"),
        ("{% set m = {\"a\": 1} %}{{ m.a }}", "1"),
    ];
    for (tpl, want) in cases {
        assert_eq!(
            render(tpl, &pairs).unwrap_or_else(|e| panic!("{tpl}: {e}")),
            want,
            "{tpl}"
        );
    }
}

#[test]
fn renders_with_the_entry_cache_follow_every_change() {
    let mut e = Engine::new();
    e.add_raw(
        "t.tmpl",
        "{% for s in gets(key=\"/s/*\") %}{{ s.key }}={{ s.value }};{% endfor %}|{% for s in gets(key=\"/t/*\") %}{{ s.key }};{% endfor %}",
    )
    .unwrap();
    let cache = Arc::new(EntryCache::default());
    let keys = ["/".to_string()];
    let run = |pairs: &[(&str, &str)]| {
        let view = View::new(data(pairs), "/app", &keys).with_cache(cache.clone());
        String::from_utf8(e.render("t.tmpl", view).unwrap()).unwrap()
    };
    assert_eq!(
        run(&[("/app/s/a", "1"), ("/app/s/b", "2")]),
        "/s/a=1;/s/b=2;|"
    );
    assert_eq!(
        run(&[("/app/s/a", "1"), ("/app/s/b", "3"), ("/app/t/x", "")]),
        "/s/a=1;/s/b=3;|/t/x;"
    );
    assert_eq!(run(&[("/app/s/b", "3")]), "/s/b=3;|");
    // Cached loops keep fragments rather than entry lists.
    assert_eq!(
        cache.len() + cache.fragments().len(),
        1,
        "only the last render's entries are kept"
    );
}

#[test]
fn the_engine_follows_the_resource_or_the_detection_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut e = Engine::new();
    let go = file("go.tmpl", b"{{range gets \"/s/*\"}}{{.Value}}{{end}}");
    let tera = file(
        "tera.tmpl",
        b"{% for s in gets(key=\"/s/*\") %}{{ s.value }}{% endfor %}",
    );
    let tera_expr = file("expr.tmpl", b"{{ getv(key=\"/s/a\") }}");
    let plain = file("plain.tmpl", b"no tags at all\n");
    let latin1 = file("latin1.tmpl", b"# caf\xe9 {{getv \"/s/a\"}}\n");
    let named = file("x.tera", b"{{ getv(key=\"/s/a\") }}");
    assert_eq!(e.add_file("go", &go, None).unwrap(), EngineKind::Go);
    assert_eq!(e.add_file("tera", &tera, None).unwrap(), EngineKind::Tera);
    assert_eq!(
        e.add_file("expr", &tera_expr, None).unwrap(),
        EngineKind::Tera
    );
    assert_eq!(e.add_file("plain", &plain, None).unwrap(), EngineKind::Go);
    assert_eq!(e.add_file("latin1", &latin1, None).unwrap(), EngineKind::Go);
    assert_eq!(e.add_file("named", &named, None).unwrap(), EngineKind::Tera);
    let tags = file("tags.tmpl", b"{% if x %}y{% endif %}");
    assert_eq!(e.add_file("tags", &tags, None).unwrap(), EngineKind::Tera);
    assert_eq!(
        e.add_file("forced", &tags, Some(EngineKind::Go)).unwrap(),
        EngineKind::Go
    );
    let kvs = data(&[("/s/a", "1"), ("/s/b", "2")]);
    let render = |name: &str| {
        e.render(name, View::new(kvs.clone(), "", &["/".to_string()]))
            .unwrap()
    };
    assert_eq!(render("go"), b"12");
    assert_eq!(render("tera"), b"12");
    assert_eq!(render("latin1"), b"# caf\xe9 1\n");
    assert_eq!(
        render("forced"),
        b"{% if x %}y{% endif %}",
        "Go prints Tera's tags as text"
    );

    // A broken Tera template (it has Tera tags) reports Tera's error, not a Go render.
    let broken = file("broken.tmpl", b"{% for s in %}x{% endfor %}");
    let err = e.add_file("broken", &broken, None).unwrap_err().to_string();
    assert!(err.contains("read as a Tera template"), "{err}");
    // A broken Go template reports Go's error with line and column.
    let bad_go = file("bad.tmpl", b"line\n{{ nosuch .Key }}");
    let err = e.add_file("bad", &bad_go, None).unwrap_err().to_string();
    assert!(
        err.contains("line 2, column 4: function \"nosuch\" not defined"),
        "{err}"
    );
}

#[test]
fn sort_by_length_orders_ties_by_value_or_as_confd() {
    let mut e = Engine::new();
    let list = (0..20)
        .map(|i| format!("\"{}\"", ["bb", "a", "cc", "d"][i % 4]))
        .collect::<Vec<_>>();
    let list = format!("[{}]", list.join(", "));
    e.add_raw(
        "own",
        &format!("{{{{ {list} | sort_by_length | join(sep=\",\") }}}}"),
    )
    .unwrap();
    e.add_raw(
        "confd",
        &format!("{{{{ {list} | sort_by_length(confd=true) | join(sep=\",\") }}}}"),
    )
    .unwrap();
    let v = || View::new(Arc::new(KvMap::new()), "", &["/".to_string()]);
    let own = String::from_utf8(e.render("own", v()).unwrap()).unwrap();
    assert!(own.starts_with("a,a,a,a,a,d,d,d,d,d,bb,bb"), "{own}");
    // What Go 1.19's sort.Sort by length leaves (20 elements: not an insertion sort).
    let mut go: Vec<String> = (0..20)
        .map(|i| ["bb", "a", "cc", "d"][i % 4].to_string())
        .collect();
    crate::template::go::sort::sort(&mut go, |a, b| a.len() < b.len());
    let confd = String::from_utf8(e.render("confd", v()).unwrap()).unwrap();
    assert_eq!(confd, go.join(","));
    assert_ne!(confd, own);
}

#[test]
fn getenv_refuses_the_daemons_own_settings_in_both_languages() {
    // Whatever the variables hold, the names alone are refused.
    let e = render("{{ getenv(name=\"CONFSYNC_PASSWORD\") }}", &[]).unwrap_err();
    assert!(e.to_string().contains("CONFSYNC_PASSWORD"), "{e}");
    let mut g = Engine::new();
    g.add_go_raw("g.tmpl", b"{{getenv \"CONFD_CLIENT_PASSWORD\" \"x\"}}")
        .unwrap();
    let e = g
        .render("g.tmpl", View::new(data(&[]), "", &["/".to_string()]))
        .unwrap_err();
    assert!(e.to_string().contains("CONFD_CLIENT_PASSWORD"), "{e}");
    let e = render(
        "{{ getenv(name=\"CONFSYNC_UNSET_X\", default=\"d\") }}",
        &[],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("CONFSYNC_UNSET_X"),
        "even when unset: {e}"
    );
}

#[test]
fn a_render_that_reaches_max_render_size_is_stopped_in_both_engines() {
    let mut e = Engine::new();
    e.add_raw(
        "big.tera",
        "{% for i in range(end=100000) %}0123456789{% endfor %}",
    )
    .unwrap();
    e.add_go_raw("big.go", b"{{range seq 1 100000}}0123456789{{end}}")
        .unwrap();
    let kvs = data(&[]);
    let view = || View::new(kvs.clone(), "", &["/".to_string()]);
    for name in ["big.tera", "big.go"] {
        let err = e
            .render_with(name, view(), &RenderLimits::sized(64 << 10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_render_size (64 KiB)"), "{name}: {err}");
        let out = e.render(name, view()).unwrap();
        assert_eq!(out.len(), 1_000_000, "{name}");
    }
}

// Issue 12: three nested loops that write nothing never reach the output writer, so
// only the functions they call can notice that the render was abandoned.
#[test]
fn nested_loops_that_write_nothing_stop_once_the_render_is_abandoned() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut e = Engine::new();
    e.add_raw(
        "spin.tera",
        "{% for i in range(end=100000) %}{% for j in range(end=100000) %}\
         {% for k in range(end=100000) %}{% endfor %}{% endfor %}{% endfor %}",
    )
    .unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let limits = RenderLimits {
        max_size: 1 << 20,
        cancel: Some(cancel.clone()),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let view = View::new(data(&[]), "", &["/".to_string()]);
        let _ = tx.send(e.render_with("spin.tera", view, &limits));
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(rx.try_recv().is_err(), "the loops are still running");
    cancel.store(true, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let done = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the render did not stop within 5 s of being abandoned");
    let err = done.unwrap_err().to_string();
    assert!(err.contains("render_timeout"), "{err}");
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(500), "{took:?}");
}

#[test]
fn range_keeps_teras_arguments_and_limit() {
    let mut e = Engine::new();
    for (i, (text, want)) in [
        ("{{ range(end=3) | join(sep=\",\") }}", "0,1,2"),
        (
            "{{ range(start=2, end=10, step_by=3) | join(sep=\",\") }}",
            "2,5,8",
        ),
        (
            "{{ range(start=5, end=1, step_by=-2) | join(sep=\",\") }}",
            "5,3",
        ),
        ("{{ range(start=1, end=5, step_by=-1) | length }}", "0"),
        ("{{ range(end=0) | length }}", "0"),
        ("{{ range(end=100000) | length }}", "100000"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("r{i}");
        e.add_raw(&name, text).unwrap();
        let view = View::new(data(&[]), "", &["/".to_string()]);
        let out = e.render(&name, view).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want, "{text}");
    }
    for (i, text) in [
        "{{ range(end=100001) }}",
        "{{ range(end=3, step_by=0) }}",
        "{{ range(start=3, end=1) }}",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("bad{i}");
        e.add_raw(&name, text).unwrap();
        let view = View::new(data(&[]), "", &["/".to_string()]);
        assert!(e.render(&name, view).is_err(), "{text}");
    }
}

#[test]
fn base64_decode_is_strict_like_gos_std_encoding() {
    use super::funcs::base64_decode_strict as decode;
    for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
        let e = render(&format!("{{{{ \"{s}\" | base64_encode }}}}"), &[]).unwrap();
        assert_eq!(decode(&e).unwrap(), s.as_bytes(), "{e}");
    }
    assert_eq!(
        decode("Zm9v\nYmFy\r\n").unwrap(),
        b"foobar",
        "line breaks skipped"
    );
    for bad in [
        "%%%",
        "a",
        "Zm8",
        "Zg=v",
        "Zm8=Zm8=",
        "Zm9v!",
        "Zg===",
        "Zm9=",
        "Zm9v YmFy",
    ] {
        assert!(decode(bad).is_err(), "{bad}");
    }
    assert_eq!(
        decode("%%%").unwrap_err(),
        "invalid character '%' at byte 0"
    );
    let e = decode("Zm9v\nZm9=").unwrap_err();
    assert!(
        e.contains("at byte 7") && e.contains("past the last byte"),
        "{e}"
    );
    let e = decode("Zm9v\nZ=9v").unwrap_err();
    assert!(e.contains("`=`") && e.contains("byte 6"), "{e}");
    let e = render("{{ \"c2VjcmV0\" | base64_decode | base64_encode }}", &[]).unwrap();
    assert_eq!(e, "c2VjcmV0");
}
