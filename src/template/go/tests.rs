use std::sync::Arc;

use super::*;
use crate::backend::KvMap;

fn view(prefix: &str, data: &[(&str, &str)]) -> View {
    let kvs: KvMap = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    View::new(Arc::new(kvs), prefix, &["/".to_string()])
}

fn render_bytes(src: &str, data: &[(&str, &str)]) -> Result<Vec<u8>, GoError> {
    GoTemplate::parse("t.tmpl", src.to_string())?.render(&view("", data))
}

fn render(src: &str, data: &[(&str, &str)]) -> Result<String, GoError> {
    let out = render_bytes(src, data)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

fn fails(src: &str, data: &[(&str, &str)]) -> GoError {
    match render(src, data) {
        Ok(out) => panic!("{src:?} rendered {out:?}"),
        Err(e) => e,
    }
}

const SERVERS: &[(&str, &str)] = &[
    ("/app/servers/a", "10.0.0.1:80"),
    ("/app/servers/b", "10.0.0.2:80"),
];

#[test]
fn s1_style_loop() {
    let out = render(
        "backend app\n{{range gets \"/app/servers/*\"}}    server {{base .Key}} {{.Value}} check\n{{end}}",
        SERVERS,
    )
    .unwrap();
    assert_eq!(
        out,
        "backend app\n    server a 10.0.0.1:80 check\n    server b 10.0.0.2:80 check\n"
    );
}

#[test]
fn variables_dot_and_scopes() {
    let src = "{{$n := 0}}{{range $i, $kv := gets \"/app/servers/*\"}}{{$n = $i}}{{$kv.Value}}={{.Key}};{{end}}{{$n}}";
    assert_eq!(
        render(src, SERVERS).unwrap(),
        "10.0.0.1:80=/app/servers/a;10.0.0.2:80=/app/servers/b;1"
    );
    let src = "{{with getv \"/app/servers/a\"}}[{{.}}]{{else}}none{{end}}{{with getv \"/x\" \"\"}}x{{else}}empty{{end}}";
    assert_eq!(render(src, SERVERS).unwrap(), "[10.0.0.1:80]empty");
    let src = "{{define \"srv\"}}<{{.Value}}|{{$}}>{{end}}{{range gets \"/app/servers/*\"}}{{template \"srv\" .}}{{end}}";
    assert_eq!(
        render(src, SERVERS).unwrap(),
        "<10.0.0.1:80|{/app/servers/a 10.0.0.1:80}><10.0.0.2:80|{/app/servers/b 10.0.0.2:80}>"
    );
}

#[test]
fn and_or_return_an_operand_and_short_circuit() {
    assert_eq!(
        render("{{or (getv \"/x\" \"\") \"dflt\"}}", &[]).unwrap(),
        "dflt"
    );
    assert_eq!(
        render("{{and \"a\" \"b\"}} {{and \"\" (getv \"/missing\")}}|", &[]).unwrap(),
        "b |"
    );
    let e = fails("{{or (getv \"/missing\") \"d\"}}", &[]);
    assert!(e.message.contains("key does not exist: /missing"), "{e}");
}

#[test]
fn missing_things_print_as_go_prints_them() {
    let src = "{{$m := json \"{\\\"a\\\": null}\"}}[{{$m.a}}][{{$m.b}}][{{$m.b.c}}][{{.}}][{{printf \"%v\" $m.b}}]";
    assert_eq!(
        render(src, &[]).unwrap(),
        "[<no value>][<no value>][<no value>][<no value>][<nil>]"
    );
    let e = fails("{{$m := json \"{\\\"a\\\": null}\"}}{{$m.a.b}}", &[]);
    assert!(
        e.message.contains("nil pointer evaluating interface {}.b"),
        "{e}"
    );
}

#[test]
fn errors_name_line_column_and_construct() {
    let e = fails("line one\n  {{ getv \"/app/nope\" }}", SERVERS);
    assert_eq!((e.line, e.column), (2, 6), "{e}");
    assert_eq!(e.construct, "getv \"/app/nope\"");
    assert_eq!(
        e.message,
        "error calling getv: key does not exist: /app/nope"
    );
    let e = fails("{{ index (getvs \"/app/servers/*\") 5 }}", SERVERS);
    assert!(e.message.contains("index out of range: 5"), "{e}");
    let e = fails("{{ add (getv \"/app/servers/a\") 1 }}", SERVERS);
    assert!(
        e.message
            .contains("wrong type for value; expected int; got string"),
        "{e}"
    );
    let e = fails("{{ getv }}", SERVERS);
    assert!(
        e.message
            .contains("wrong number of args for getv: want at least 1 got 0"),
        "{e}"
    );
    let e = GoTemplate::parse("t.tmpl", "a\n {{ nosuch 1 }}".into()).unwrap_err();
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(
        e.to_string(),
        "line 2, column 5: function \"nosuch\" not defined"
    );
}

#[test]
fn runaway_templates_stop() {
    let e = fails(
        "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
        &[],
    );
    assert!(e.message.contains("exceeded maximum template depth"), "{e}");
    let e = fails(
        "{{define \"r\"}}{{template \"r\"}}{{template \"r\"}}{{end}}{{template \"r\"}}",
        &[],
    );
    assert!(
        e.message.contains("exceeded maximum template depth") || e.message.contains("nodes"),
        "{e}"
    );
    let e = fails("{{range seq 1 100000000}}{{end}}", &[]);
    assert!(e.message.contains("longer than"), "{e}");
}

#[test]
fn memkv_names_and_quirks() {
    let data = &[
        ("/app/upstream/a/host", "h"),
        ("/app/upstream/b", "leaf"),
        ("/top", "t"),
    ];
    let out = render(
        "{{ls \"/app/upstream\"}} {{lsdir \"/app/upstream\"}} {{ls \"/app/upstream/b\"}} {{ls \"/\"}} {{lsdir \"/\"}} {{exists \"/top/\"}} {{exists \"/top\"}}",
        data,
    )
    .unwrap();
    assert_eq!(out, "[a b] [a] [b] [top] [] false true");
    let out = render(
        "{{getvs \"/app/*/*\"}} {{reverse (gets \"/app/upstream/*\")}}",
        data,
    )
    .unwrap();
    assert_eq!(out, "[leaf] [{/app/upstream/b leaf}]");
    // A key confd would clean (`path.Join`) is seen under memkv's name.
    let v = view(
        "/app",
        &[("/app/x/", "trailing"), ("/application", "outside")],
    );
    let t = GoTemplate::parse("t", "{{getv \"/x\"}} {{getv \"/lication\"}}".into()).unwrap();
    assert_eq!(t.render(&v).unwrap(), b"trailing outside");
}

#[test]
fn in_place_sorting_is_shared_as_in_go() {
    let data = &[("/s/a", "ccc"), ("/s/b", "a"), ("/s/c", "bb")];
    let out = render(
        "{{$v := getvs \"/s/*\"}}{{sortByLength $v}} {{$v}} {{reverse $v}} {{$v}}",
        data,
    )
    .unwrap();
    assert_eq!(out, "[a bb ccc] [a bb ccc] [ccc bb a] [ccc bb a]");
}

#[test]
fn non_utf8_templates_keep_their_bytes() {
    let t = GoTemplate::parse_bytes("t", b"# caf\xe9\nserver {{getv \"/a\"}}\xff").unwrap();
    assert_eq!(
        t.render(&view("", &[("/a", "x")])).unwrap(),
        b"# caf\xe9\nserver x\xff"
    );
}

#[test]
fn the_deepest_templates_allowed_fit_a_small_stack() {
    // Renders run on threads with 2 MiB stacks; the limits fit in half of one even in
    // a debug build.
    let deep = parse::MAX_NESTING - 1;
    let nested = format!("{}x{}", "{{if 1}}".repeat(deep), "{{end}}".repeat(deep));
    let chain = format!(
        "{{{{if 0}}}}{}x{{{{end}}}}",
        "{{else if 0}}".repeat(deep - 1)
    );
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(deep), ")".repeat(deep));
    let recursion = "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}".to_string();
    let out = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let mut outs = Vec::new();
            for src in [nested, chain, parens, recursion] {
                outs.push(render(&src, &[]).map_err(|e| e.message));
            }
            outs
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(out[0].as_deref(), Ok("x"));
    assert_eq!(out[1].as_deref(), Ok(""));
    assert_eq!(out[2].as_deref(), Ok("1"));
    assert!(
        out[3]
            .as_ref()
            .unwrap_err()
            .contains("exceeded maximum template depth")
    );
}

#[test]
fn template_calls_nested_in_deep_controls_never_overflow_the_stack() {
    // 98 controls around a template that calls itself: Go nests them 98 levels per
    // call; the render stops at its nesting limit, on any stack, instead of crashing.
    let ifs = "{{if true}}".repeat(98);
    let ends = "{{end}}".repeat(98);
    let deep = format!(
        "{{{{define \"r\"}}}}{ifs}{{{{if lt (len $) 90}}}}{{{{template \"r\" (printf \"%sx\" $)}}}}{{{{end}}}}{ends}{{{{end}}}}{{{{template \"r\" \"\"}}}}"
    );
    let shallow = deep.replace("lt (len $) 90", "lt (len $) 20");
    let ranges = format!(
        "{{{{define \"r\"}}}}{}{{{{if lt (len $) 90}}}}{{{{template \"r\" (printf \"%sx\" $)}}}}{{{{end}}}}{}{{{{end}}}}{{{{template \"r\" \"\"}}}}",
        "{{range $i, $e := seq 1 1}}".repeat(98),
        "{{end}}".repeat(98)
    );
    let out = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || [deep, shallow, ranges].map(|src| render(&src, &[]).map_err(|e| e.message)))
        .unwrap()
        .join()
        .expect("no stack overflow");
    let limit = format!("nests deeper than {} levels", exec::MAX_RENDER_NESTING);
    assert!(
        out[0].as_ref().unwrap_err().contains(&limit),
        "{:?}",
        out[0]
    );
    assert_eq!(
        out[1].as_deref(),
        Ok(""),
        "20 calls of 99 levels each render"
    );
    assert!(
        out[2].as_ref().unwrap_err().contains(&limit),
        "{:?}",
        out[2]
    );
}

#[test]
fn strings_a_template_makes_are_bounded() {
    // A 1 MB string (Go's widths stop at a million), then what would pass 256 MiB.
    let mb = "{{ $m := printf \"%0999999d\" 0 }}";
    let a300 = "a".repeat(300);
    let e = fails(
        &format!("{mb}{{{{ replace \"{a300}\" \"a\" $m -1 }}}}"),
        &[],
    );
    assert!(e.message.contains("more than the 256 MiB"), "{e}");
    let e = fails(
        &format!("{mb}{{{{ join (split \"{a300}\" \"\") $m }}}}"),
        &[],
    );
    assert!(e.message.contains("more than the 256 MiB"), "{e}");
    let a150 = "a".repeat(150);
    let e = fails(
        &format!(
            "{mb}{{{{ $b := replace \"{a150}\" \"a\" $m -1 }}}}{{{{ printf \"%s%s\" $b $b }}}}"
        ),
        &[],
    );
    assert!(
        e.message.contains("error calling printf: it would make"),
        "{e}"
    );
    let e = fails(
        &format!("{mb}{{{{ split (replace \"aaaaaaaaaaaa\" \"a\" $m -1) \"\" }}}}"),
        &[],
    );
    assert!(e.message.contains("more than the 10000000"), "{e}");
    // A doubling loop stops at the limit.
    let e = fails(
        &format!("{mb}{{{{ range seq 1 20 }}}}{{{{ $m = printf \"%s%s\" $m $m }}}}{{{{ end }}}}"),
        &[],
    );
    assert!(e.message.contains("more than the 256 MiB"), "{e}");
}
