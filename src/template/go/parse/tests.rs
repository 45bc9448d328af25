use proptest::prelude::*;

use super::literal::number;
use super::*;

fn trees(src: &str) -> Trees {
    parse("t", src, false).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
}

fn error(src: &str) -> String {
    match parse("t", src, false) {
        Ok(_) => panic!("{src:?} parsed"),
        Err(e) => e.message,
    }
}

#[test]
fn the_main_tree_and_definitions() {
    let t = trees("a {{ .Key }} b{{define \"x\"}}X{{end}}{{block \"y\" .}}Y{{end}}");
    for name in ["t", "x", "y"] {
        assert!(t.trees.contains_key(name), "{name}");
    }
    // An empty definition never replaces a non-empty one; two non-empty ones clash.
    trees("{{define \"x\"}}X{{end}}{{define \"x\"}}  {{end}}");
    assert!(
        error("{{define \"x\"}}X{{end}}{{define \"x\"}}Y{{end}}").contains("multiple definition")
    );
}

#[test]
fn go_checks() {
    assert_eq!(error("{{ foo }}"), "function \"foo\" not defined");
    assert_eq!(error("{{ $x }}"), "undefined variable \"$x\"");
    assert_eq!(
        error("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}"),
        "undefined variable \"$x\""
    );
    assert_eq!(error("{{ break }}"), "{{break}} outside {{range}}");
    assert_eq!(error("{{ end }}"), "unexpected {{end}}");
    assert_eq!(error("{{ if 1 }}"), "unexpected EOF");
    assert_eq!(error("{{ }}"), "missing value for command");
    assert_eq!(
        error("{{ 1 | 2 }}"),
        "non executable command in pipeline stage 2"
    );
    assert_eq!(error("{{ \"a\".x }}"), "unexpected . after term");
    assert_eq!(
        error("{{ range $a, $b, $c := . }}{{end}}"),
        "too many declarations in range"
    );
    assert_eq!(
        error("{{ if 1 }}{{ else }}{{ else }}{{ end }}"),
        "expected end; found {{else}}"
    );
    assert!(error("{{ 99999999999999999999 }}").contains("integer overflow"));
    assert_eq!(error("{{ 1e400 }}"), "illegal number syntax: \"1e400\"");
    assert_eq!(error("{{ 1__0 }}"), "illegal number syntax: \"1__0\"");
    assert_eq!(error("{{ 1_ }}"), "illegal number syntax: \"1_\"");
    assert_eq!(error("{{ len }} {{ ( }}"), "unclosed left paren");
}

#[test]
fn what_go_accepts() {
    // A trailing pipe, literal braces, variables seen in nested blocks and after `=`.
    trees("{{ \"x\" | toUpper | }}{{\"{{\"}}");
    trees("{{ $x := 1 }}{{ range . }}{{ $x = 2 }}{{ $x }}{{ end }}{{ $x }}");
    trees("{{ range $i, $v := . }}{{ $i }}{{ else }}{{ $v }}{{ end }}");
    trees("{{ if 1 }}a{{ else if 2 }}b{{ else }}c{{ end }}");
    trees("{{ with 1 }}a{{ else with 2 }}b{{ end }}");
    trees("{{ range . }}{{ if . }}{{ break }}{{ end }}{{ continue }}{{ end }}");
    trees(
        "{{ (getv \"/a\").x.y }} {{ $.a }} {{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -2 }} {{ nil | len }}",
    );
    trees("{{- /* a comment */ -}}");
}

#[test]
fn numbers_as_go_types_them() {
    let n = |t: &str| number(t, Kind::Number).unwrap();
    assert!(n("42").is_int && n("42").is_uint && n("42").is_float);
    assert_eq!(n("0x1F").int, 31);
    assert_eq!(n("0755").int, 493);
    assert_eq!(n("1_000").int, 1000);
    assert!(n("-1").is_int && !n("-1").is_uint);
    assert!(n("1.5").is_float && !n("1.5").is_int);
    assert!(
        n("1e3").is_int,
        "a float with an integral value is an int too"
    );
    assert!(number("08", Kind::Number).is_err());
    assert_eq!(n("0x1.8p1").float, 3.0);
    assert!(
        n("0x1p4").is_int,
        "a hex float with an integral value is an int too"
    );
    assert!(
        !n("9.223372036854775808e18").is_int,
        "2^63 is past int64, whatever a saturating cast says"
    );
    assert!(!n("1.8446744073709551616e19").is_uint);
    let c = number("'\\n'", Kind::CharConst).unwrap();
    assert_eq!(c.int, 10);
}

#[test]
fn quoted_strings() {
    assert_eq!(unquote("\"a\\tb\\n\\\"\"").unwrap(), "a\tb\n\"");
    assert_eq!(
        unquote("\"\\u00e9\\U0001F600\\x41\\101\"").unwrap(),
        "é😀AA"
    );
    assert_eq!(unquote("`raw \\n`").unwrap(), "raw \\n");
    assert!(unquote("\"\\q\"").is_err());
}

#[test]
fn non_utf8_text_keeps_its_bytes() {
    let bytes = b"caf\xe9 {{ \"x\" }}\xff";
    let text = escape_raw_bytes(bytes).unwrap();
    let t = parse("t", &text, true).unwrap();
    let Node::Text(head) = &t.trees["t"][0] else {
        panic!("text first")
    };
    assert_eq!(&**head, b"caf\xe9 ");
}

/// The parser's work (characters examined plus tokens read) for `src`, which must stay
/// within a constant factor of its length.
fn work(src: &str) -> u64 {
    parse_counting("t", src, false).1
}

const LINEAR: u64 = 32;

/// A family of inputs, one per size.
type Family = (&'static str, Box<dyn Fn(usize) -> String>);

#[test]
fn pathological_inputs_take_linear_work() {
    let families: Vec<Family> = vec![
        ("open delimiters", Box::new(|n| "{{".repeat(n))),
        (
            "nested parens",
            Box::new(|n| format!("{{{{ {} }}}}", "(".repeat(n))),
        ),
        (
            "nested ranges",
            Box::new(|n| "{{range .}}".repeat(n) + &"{{end}}".repeat(n)),
        ),
        (
            "many variables",
            Box::new(|n| (0..n).map(|i| format!("{{{{$v{i} := 1}}}}")).collect()),
        ),
        (
            "variables in scope",
            Box::new(|n| "{{$x := 1}}".repeat(n) + &"{{$x}}".repeat(n)),
        ),
        ("braces in text", Box::new(|n| "{ } {- -} }} ".repeat(n))),
        ("unclosed comments", Box::new(|n| "{{/* ".repeat(n))),
        (
            "long pipelines",
            Box::new(|n| format!("{{{{ \"a\"{} }}}}", " | toUpper".repeat(n))),
        ),
        (
            "else-if chains",
            Box::new(|n| format!("{{{{if 1}}}}{}{{{{end}}}}", "{{else if 1}}".repeat(n))),
        ),
        (
            "spaces",
            Box::new(|n| format!("{{{{{}1{}}}}}", " ".repeat(n), " ".repeat(n))),
        ),
        (
            "trim markers",
            Box::new(|n| format!("{}{{{{- 1 -}}}}{}", " \n".repeat(n), "\t".repeat(n))),
        ),
    ];
    for (name, make) in &families {
        for n in [10, 100, 1000, 10_000] {
            let src = make(n);
            let w = work(&src);
            assert!(
                w <= LINEAR * (src.len() as u64 + 1),
                "{name}, n = {n}: {w} units of work for {} bytes",
                src.len()
            );
        }
    }
}

/// Pieces random templates are made of: Go's syntax and some of what breaks it.
const PIECES: &[&str] = &[
    "{{", "}}", "{{-", "-}}", "{{- ", " -}}", " ", "\n", "\t", "(", ")", "|", "$", "$x", "$y",
    ":=", "=", ",", ".", ".Key", ".a.b", "range", "if", "else", "end", "with", "define", "block",
    "template", "break", "continue", "nil", "true", "\"s\"", "\"\\n\"", "`r`", "'c'", "'", "\"",
    "`", "1", "-1", "0x1F", "1.5e3", "gets", "getv", "len", "and", "or", "printf", "/*", "*/",
    "{{/*", "*/}}", "text", "é", "\u{0}", "#", "}", "{",
];

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..80).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_templates_never_panic_and_take_linear_work(src in template()) {
        let w = work(&src);
        prop_assert!(w <= LINEAR * (src.len() as u64 + 1), "{w} for {src:?}");
    }

    #[test]
    fn random_text_never_panics(src in "\\PC{0,300}") {
        let w = work(&src);
        prop_assert!(w <= LINEAR * (src.len() as u64 + 1), "{w} for {src:?}");
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = crate::template::go::GoTemplate::parse_bytes("t", &bytes);
    }
}
