use std::sync::Arc;

use super::*;
use crate::backend::KvMap;
use crate::template::{Engine, View};

pub(super) fn view(data: &[(&str, &str)]) -> View {
    let kvs: KvMap = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    View::new(Arc::new(kvs), "", &["/".to_string()])
}

fn go(src: &str) -> GoTemplate {
    GoTemplate::parse("t.tmpl", src.to_string()).expect("the Go template parses")
}

/// Converts `src`, renders both from `data`, asserts the same bytes (or both failing),
/// and returns the Tera text and the notes.
fn same(src: &str, data: &[(&str, &str)]) -> (String, Vec<String>) {
    let t = go(src);
    let c = convert(&t).unwrap_or_else(|e| panic!("{src:?} is not convertible: {e}"));
    let want = t.render(&view(data)).map_err(|e| e.to_string());
    let mut e = Engine::new();
    e.add_raw("t.tera", &c.text)
        .expect("the Tera template loads");
    let got = e.render("t.tera", view(data)).map_err(|e| e.to_string());
    match (&want, &got) {
        (Ok(w), Ok(g)) => assert_eq!(
            String::from_utf8_lossy(w),
            String::from_utf8_lossy(g),
            "\n--- go\n{src}\n--- tera\n{}",
            c.text
        ),
        (Err(_), Err(_)) => {}
        _ => panic!("{src:?}: go {want:?}, tera {got:?}\n{}", c.text),
    }
    let notes = c.notes.iter().map(ToString::to_string).collect();
    (c.text, notes)
}

fn not_convertible(src: &str) -> NotConvertible {
    match convert(&go(src)) {
        Ok(c) => panic!("{src:?} converted to {}", c.text),
        Err(e) => e,
    }
}

const SERVERS: &[(&str, &str)] = &[
    ("/app/servers/web1", "10.0.0.1:80"),
    ("/app/servers/web2", "10.0.0.2:80"),
    ("/app/stats/user", "admin"),
];

#[test]
fn haproxy_backend_reads_like_tera() {
    let (t, notes) = same(
        "backend app\n{{- range gets \"/app/servers/*\" }}\n    server {{ base .Key }} {{ .Value }} check\n{{- end }}\n",
        SERVERS,
    );
    assert_eq!(
        t,
        "backend app\n{%- for server in gets(key=\"/app/servers/*\") %}\n    server {{ server.key | base }} {{ server.value }} check\n{%- endfor %}\n"
    );
    assert!(notes.is_empty(), "{notes:?}");
}

#[test]
fn getv_exists_and_operators() {
    let (t, _) = same(
        "{{ getv \"/app/stats/user\" }} {{ getv \"/app/x\" \"d\" }}{{ if and (exists \"/app/stats/user\") (eq (getv \"/app/stats/user\") \"admin\") }} ok{{ end }}{{ if not (exists \"/x\") }} none{{ end }}",
        SERVERS,
    );
    assert_eq!(
        t,
        "{{ getv(key=\"/app/stats/user\") }} {{ getv(key=\"/app/x\", default=\"d\") }}{% if exists(key=\"/app/stats/user\") and getv(key=\"/app/stats/user\") == \"admin\" %} ok{% endif %}{% if not exists(key=\"/x\") %} none{% endif %}"
    );
}

#[test]
fn trim_markers_and_comments_carry_over() {
    let (t, _) = same(
        "a {{- /* why */ -}} b\n{{/* kept */}}\nc {{- getv \"/app/stats/user\" -}}\n\n d",
        SERVERS,
    );
    assert_eq!(
        t,
        "a {#- why -#} b\n{# kept #}\nc {{- getv(key=\"/app/stats/user\") -}}\n\n d"
    );
    // A form feed is white space to Tera but not to Go: that side is trimmed as Go does.
    let (t, _) = same("x\x0c\n{{- 1 }}", &[]);
    assert_eq!(t, "x\x0c{{ 1 }}");
}

#[test]
fn text_that_looks_like_tera_is_escaped() {
    let (t, _) = same("{% raw %} {# x #} {{ 1 }}{", &[]);
    assert_eq!(t, "{{ \"{%\" }} raw %} {{ \"{#\" }} x #} {{ 1 }}{");
    same("a{{\"{{\"}}b{\n{{ 2 }}", &[]);
}

#[test]
fn loop_variables_indexes_and_dot() {
    let data = [("/s/a", "1"), ("/s/b", "2"), ("/t/x", "y")];
    let (t, _) = same(
        "{{ range $i, $v := getvs \"/s/*\" }}{{ $i }}={{ $v }}{{ . }};{{ end }}",
        &data,
    );
    assert_eq!(
        t,
        "{% for v in getvs(key=\"/s/*\") %}{{ loop.index0 }}={{ v }}{{ v }};{% endfor %}"
    );
    // Read in a nested loop, the index needs a name of its own.
    let (t, _) = same(
        "{{ range $i, $k := gets \"/s/*\" }}{{ range ls \"/t\" }}{{ $i }}{{ . }}{{ end }}{{ end }}",
        &data,
    );
    assert!(
        t.contains(
            "{% set i = loop.index0 %}{% for name in ls(key=\"/t\", confd=true) %}{{ i }}{{ name }}"
        ),
        "{t}"
    );
}

#[test]
fn with_if_chains_and_range_else() {
    let data = [("/a", "x"), ("/n", "5")];
    let (t, _) = same(
        "{{ with get \"/a\" }}{{ .Key }}{{ end }}{{ with getv \"/b\" \"\" }}b{{ else with getv \"/a\" }}{{ . }}{{ end }}",
        &data,
    );
    assert_eq!(
        t,
        "{% set kv = get(key=\"/a\") %}{% if kv %}{{ kv.key }}{% endif %}{% if getv(key=\"/b\", default=\"\") %}b{% else %}{% set value = getv(key=\"/a\") %}{% if value %}{{ value }}{% endif %}{% endif %}"
    );
    let (t, _) = same(
        "{{ $n := atoi (getv \"/n\") }}{{ if lt $n 0 }}neg{{ else if eq $n 0 }}zero{{ else }}pos{{ end }}{{ range gets \"/none/*\" }}x{{ else }}empty{{ end }}",
        &data,
    );
    assert_eq!(
        t,
        "{% set n = getv(key=\"/n\") | atoi %}{% if n < 0 %}neg{% elif n == 0 %}zero{% else %}pos{% endif %}{% for kv in gets(key=\"/none/*\") %}x{% else %}empty{% endfor %}"
    );
}

#[test]
fn variables_follow_go_scopes() {
    let data = [("/p/a", "80"), ("/p/b", "443")];
    let (t, _) = same(
        "{{ $total := 0 }}{{ range getvs \"/p/*\" }}{{ $total = add $total (atoi .) }}{{ end }}{{ $total }}",
        &data,
    );
    assert_eq!(
        t,
        "{% set total = 0 %}{% for value in getvs(key=\"/p/*\") %}{% set_global total = total + value | atoi %}{% endfor %}{{ total }}"
    );
    // A declaration that shadows a live variable gets a name of its own.
    let (t, _) = same(
        "{{ $x := \"outer\" }}{{ if true }}{{ $x := \"inner\" }}{{ $x }}{{ end }}{{ $x }}",
        &[],
    );
    assert!(t.contains("set x2 = \"inner\""), "{t}");
    let e = not_convertible(
        "{{ range getvs \"/p/*\" }}{{ $n := 0 }}{{ range getvs \"/p/*\" }}{{ $n = 1 }}{{ end }}{{ end }}",
    );
    assert!(e.reason.contains("nested range"), "{e}");
}

#[test]
fn printf_becomes_concatenation_or_format() {
    let data = [("/d/a", "x")];
    let (t, notes) = same(
        "{{ range $d := lsdir \"/\" }}{{ end }}{{ $p := printf \"/d/%s\" \"a\" }}{{ getv $p }} {{ printf \"%05d|%q\" 42 (getv $p) }}",
        &data,
    );
    assert!(t.contains("{% set p = \"/d/\" ~ \"a\" %}"), "{t}");
    assert!(
        t.contains("\"%05d|%q\" | format(args=[42, getv(key=p)])"),
        "{t}"
    );
    assert!(
        notes.iter().any(|n| n.contains("became the format filter")),
        "{notes:?}"
    );
}

#[test]
fn json_values_print_as_go() {
    let data = [(
        "/b/x",
        "{\"IP\": \"10.0.0.1\", \"Port\": 1000000, \"Tags\": [\"a\", \"b\"], \"N\": {\"k\": 1.5}}",
    )];
    let (t, notes) = same(
        "{{ range gets \"/b/*\" }}{{ $d := json .Value }}{{ $d.IP }}:{{ $d.Port }} {{ $d.Tags }} {{ $d.N.k }} {{ $d.Missing }} {{ $d.N.none.deeper }}{{ end }}",
        &data,
    );
    assert!(t.contains("{{ d.Port | go_print(json=true) }}"), "{t}");
    assert!(t.contains("d.N?.none?.deeper"), "{t}");
    assert_eq!(notes.len(), 1, "{notes:?}");
}

#[test]
fn confd_quirks_are_kept() {
    let data = [("/top", "t"), ("/dir/leaf", "v"), ("/dir/sub/x", "y")];
    same(
        "{{ ls \"/\" }} {{ ls \"/dir/leaf\" }} {{ lsdir \"/\" }} {{ lsdir \"/dir\" }}",
        &data,
    );
    same(
        "{{ reverse (gets \"/dir/*\") }} {{ reverse (getvs \"/dir/*\") }}",
        &data,
    );
    same(
        "{{ getvs \"/dir/*\" }} {{ get \"/top\" }} {{ . }} {{ $ }} {{ map \"b\" 1 \"a\" 2 }}",
        &data,
    );
    let (t, notes) = same("{{ exists \"top\" }}", &data);
    assert_eq!(t, "{{ false }}");
    assert_eq!(notes.len(), 1);
    same(
        "{{ toUpper \"straße\" }} {{ len \"héllo\" }} {{ split \"a,b\" \",\" }} {{ split \"ab\" \"\" }}",
        &[],
    );
    same(
        "{{ and \"a\" 0 }}|{{ or \"\" \"b\" }}|{{ and nil \"x\" }}|{{ seq 3 1 }}|{{ seq 1 3 }}",
        &[],
    );
}

#[test]
fn what_confd_always_rejects_is_reported_with_its_place() {
    let e = not_convertible("line one\n  {{ base \"/a\" \"/b\" }}");
    assert_eq!((e.line, e.column), (2, 6));
    assert_eq!(e.construct, "base");
    assert!(e.reason.contains("wrong number of args"), "{e}");
    let e = not_convertible("{{ add (getv \"/n\") 1 }}");
    assert!(e.reason.contains("expected int"), "{e}");
    let e = not_convertible("{{ html \"<\" 1 }}");
    assert!(
        e.to_string()
            .starts_with("line 1, column 4: <html \"<\" 1>: "),
        "{e}"
    );
    let e = not_convertible("{{ if true }}{{ block \"x\" . }}y{{ end }}{{ end }}");
    assert!(e.reason.contains("top level"), "{e}");
    let e = not_convertible("{{ template \"nosuch\" }}");
    assert!(e.reason.contains("not defined"), "{e}");
}

#[test]
fn a_comparison_needs_two_operands() {
    let e = not_convertible("{{ eq 1 }}");
    assert!(e.reason.contains("missing argument"), "{e}");
}

#[test]
fn defined_templates_become_components() {
    let (t, _) = same(
        "{{- define \"server\" -}}\nserver {{ base .Key }} {{ .Value }}\n{{ end -}}\n{{ range gets \"/app/servers/*\" }}{{ template \"server\" . }}{{ end }}{{ template \"n\" }}{{ define \"n\" }}[{{ . }}]{{ end }}",
        SERVERS,
    );
    assert_eq!(
        t,
        "{% component t_tmpl.server(dot) -%}\nserver {{ dot.key | base }} {{ dot.value }}\n{% endcomponent -%}\n{% for server in gets(key=\"/app/servers/*\") %}{{ <t_tmpl.server dot={server} /> }}{% endfor %}{{ <t_tmpl.n dot={nil} /> }}{% component t_tmpl.n(dot) %}[{{ \"<no value>\" }}]{% endcomponent %}"
    );
    same(
        "a{{ block \"b\" (getv \"/app/stats/user\") }}<{{ . }}>{{ end }}{{ template \"b\" \"x\" }}",
        SERVERS,
    );
}

#[test]
fn in_place_changes_of_a_variable_carry_over() {
    let data = [("/s/a", "1"), ("/s/b", "22"), ("/s/c", "333")];
    let (t, _) = same(
        "{{ $l := getvs \"/s/*\" }}{{ reverse $l }} {{ $l }}{{ range getvs \"/s/*\" }}{{ sortByLength $l }}{{ end }}",
        &data,
    );
    assert!(
        t.starts_with("{% set l = getvs(key=\"/s/*\") %}{% set l = l | reverse %}{{ l | go_print }} {{ l | go_print }}"),
        "{t}"
    );
    assert!(
        t.contains("{% set_global l = l | sort_by_length(confd=true) %}"),
        "{t}"
    );
}

#[test]
fn loop_index_arithmetic_and_dot_named_variables() {
    let data = [("/s/a", "1"), ("/s/b", "2")];
    same(
        "{{ range $i, $v := getvs \"/s/*\" }}{{ sub $i 1 }}{{ add $i 1 }}{{ mul $i 2 }}{{ end }}",
        &data,
    );
    let (t, _) = same(
        "{{ define \"t\" }}{{ $dot := \"x\" }}{{ $dot }}{{ . }}{{ end }}{{ template \"t\" \"y\" }}",
        &data,
    );
    assert!(t.contains("set dot2 = \"x\""), "{t}");
}

#[test]
fn what_a_condition_sets_first_stays_in_its_branch() {
    let data = [("/s/a", "1"), ("/s/b", "22")];
    let (t, _) = same(
        "{{ $l := getvs \"/s/*\" }}{{ if false }}x{{ else if reverse $l }}y{{ end }}{{ $l }}",
        &data,
    );
    assert!(
        t.contains("{% else %}{% set l = l | reverse %}{% if l %}y{% endif %}{% endif %}"),
        "{t}"
    );
}

#[test]
fn print_joins_as_sprint() {
    same(
        "{{ print \"a\" 1 2 \"b\" (json \"{\\\"n\\\": 1000000}\") (get \"/k\") nil 1.5 }}|{{ println 1 \"x\" }}",
        &[("/k", "v")],
    );
}

#[test]
fn components_are_named_after_the_template_path() {
    let t = go("{{ define \"d\" }}x{{ end }}{{ template \"d\" }}");
    let c = convert_for(&t, "nginx/site.conf.tmpl").unwrap();
    assert!(
        c.text
            .contains("{% component nginx_site_conf_tmpl.d(dot) %}"),
        "{}",
        c.text
    );
}

#[test]
fn escapers_interface_lookups_and_time_layouts() {
    let (t, _) = same(
        "{{ html (getv \"/app/stats/user\") }} {{ js \"<a href='x'>\" }} {{ urlquery \"a b&c\" }} {{ html .missing }} [{{ lookupIfaceIPV4 \"no-such-if0\" }}]",
        SERVERS,
    );
    assert_eq!(
        t,
        "{{ getv(key=\"/app/stats/user\") | html }} {{ \"<a href='x'>\" | js }} {{ \"a b&c\" | urlquery }} {{ \"<no value>\" | html }} [{{ lookup_iface_ipv4(name=\"no-such-if0\") }}]"
    );
    // confd's documented header line: the layout is Go's, so the output is alike but
    // for the moment it is rendered in.
    let c = convert(&go(
        "# {{ datetime.Format \"2006\" }} {{ (datetime).Format \"Jan\" }}",
    ))
    .unwrap();
    assert_eq!(
        c.text,
        "# {{ datetime(layout=\"2006\") }} {{ datetime(layout=\"Jan\") }}"
    );
    let mut e = Engine::new();
    e.add_raw("t.tera", &c.text).unwrap();
    let out = String::from_utf8(e.render("t.tera", view(&[])).unwrap()).unwrap();
    let go_out = String::from_utf8(
        go("# {{ datetime.Format \"2006\" }} {{ (datetime).Format \"Jan\" }}")
            .render(&view(&[]))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out, go_out);
    assert!(
        not_convertible("{{ html \"a\" 1 }}")
            .to_string()
            .contains("several operands")
    );
}

#[test]
fn constant_div_and_mod_truncate_as_go() {
    let (t, notes) = same(
        "{{ div -7 2 }} {{ mod -7 3 }} {{ mod 7 -2 }} {{ div 7 -2 }} {{ add 2 (mul 3 4) }}",
        &[],
    );
    assert_eq!(t, "{{ -3 }} {{ -1 }} {{ 1 }} {{ -3 }} {{ 14 }}");
    assert!(notes.is_empty(), "{notes:?}");
    let (_, notes) = same(
        "{{ $n := atoi (getv \"/n\") }}{{ mod 7 $n }}",
        &[("/n", "3")],
    );
    assert!(
        notes.iter().any(|n| n.contains("an operand is negative")),
        "a divisor that may be negative: {notes:?}"
    );
}

#[test]
fn slice_with_a_negative_index_is_what_confd_rejects() {
    let e = not_convertible("{{ slice \"héllo\" -1 }}");
    assert!(e.reason.contains("index out of range: -1"), "{e}");
    let e = not_convertible("{{ slice (split \"a,b\" \",\") 0 -1 }}");
    assert!(e.reason.contains("index out of range: -1"), "{e}");
    let (_, notes) = same(
        "{{ $n := atoi (getv \"/n\") }}{{ slice \"abc\" $n }}",
        &[("/n", "1")],
    );
    assert!(
        notes.iter().any(|n| n.contains("negative index")),
        "{notes:?}"
    );
}

#[test]
fn a_template_called_with_dots_of_different_types() {
    let e = not_convertible(
        "{{ define \"t\" }}[{{ .Value }}]{{ end }}{{ template \"t\" get \"/a\" }}{{ template \"t\" (json \"{\\\"Value\\\": 2}\") }}",
    );
    assert!(e.reason.contains("different types"), "{e}");
    let e = not_convertible(
        "{{ define \"t\" }}{{ with .Value }}x{{ end }}{{ end }}{{ template \"t\" $ }}{{ template \"t\" get \"/a\" }}",
    );
    assert!(e.reason.contains("different types"), "{e}");
    // No value and a map: a field is no value for the first, the entry for the second.
    same(
        "{{ define \"t\" }}[{{ .x }}|{{ with .x }}y{{ end }}]{{ end }}{{ template \"t\" $ }}{{ template \"t\" (json \"{\\\"x\\\": 2}\") }}",
        &[("/a", "1")],
    );
}
