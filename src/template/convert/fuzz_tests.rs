//! Robustness: every golden template, the inputs of Go's own parser tests and random
//! templates convert or are reported not convertible, never a panic; random templates
//! that convert render what the Go engine renders.

use super::convert;
use super::tests::view;
use crate::template::Engine;
use crate::template::go::GoTemplate;

/// Inputs in the style of Go's own parser tests (text/template/parse), and pieces of
/// templates to build random ones from.
const PARSER_INPUTS: &[&str] = &[
    "",
    "{{/*\n\n\n*/}}",
    " \t\n",
    "some text",
    "{{.X}}",
    "{{printf}}",
    "{{$}}",
    "{{with $x := 3}}{{$x 23}}{{end}}",
    "{{$.I}}",
    "{{printf `%d` 23}}",
    "{{.X|.Y}}",
    "{{$x := .X|.Y}}",
    "{{.X (.Y .Z) (.A | .B .C) (.E)}}",
    "{{(.Y .Z).Field}}",
    "{{if .X}}hello{{end}}",
    "{{if .X}}true{{else}}false{{end}}",
    "{{if .X}}true{{else if .Y}}false{{end}}",
    "+{{if .X}}X{{else if .Y}}Y{{else if .Z}}Z{{end}}+",
    "{{range .X}}hello{{end}}",
    "{{range .X.Y.Z}}hello{{end}}",
    "{{range .X}}hello{{range .Y}}goodbye{{end}}{{end}}",
    "{{range .X}}true{{else}}false{{end}}",
    "{{range .X|.M}}true{{else}}false{{end}}",
    "{{range $x := .SI}}{{.}}{{end}}",
    "{{range $x, $y := .SI}}{{.}}{{end}}",
    "{{range .SI}}{{.}}{{break}}{{end}}",
    "{{range .SI}}{{.}}{{continue}}{{end}}",
    "{{range .SI 1 -3.2i true false 'a' nil}}{{end}}",
    "{{template `x`}}",
    "{{template `x` .Y}}",
    "{{with .X}}hello{{end}}",
    "{{with .X}}hello{{else}}goodbye{{end}}",
    "{{with .X}}hello{{else with .Y}}goodbye{{end}}",
    "x \r\n\t{{- 3}}",
    "{{3 -}}\n\n\ty",
    "x \r\n\t{{- 3 -}}\n\n\ty",
    "x\n{{-  3   -}}\ny",
    "x \r\n\t{{- /* hi */}}",
    "{{/* hi */ -}}\n\n\ty",
    "x \r\n\t{{- /* */ -}}\n\n\ty",
    "{{block \"foo\" .}}hello{{end}}",
    "{{ $x \n := \n 1 \n }}",
    "{{\n\"x\"\n|\nprintf\n}}",
    "{{-\n/*\nhello\n*/\n-}}",
    "{{$x := 0}}{{$x}}",
    "{{$x:=.}}{{$x +2}}",
    "{{range $x := 0}}{{$x}}{{end}}",
    "{{range $x = 0}}{{$x}}{{end}}",
    "{{ (( 1 )) }}",
    "{{ if ((( true ))) }}YES{{ end }}",
    "{{if .X}}{{with .Y}}{{range .Z}}x{{end}}{{end}}{{end}}",
];

const PIECES: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/* c */}}",
    " ",
    "\n",
    "text",
    "{%",
    "{#",
    "{",
    "range ",
    "if ",
    "else ",
    "end",
    "with ",
    "break",
    "continue",
    "define \"d\"",
    "template \"d\" .",
    "$x := ",
    "$x = ",
    "$x",
    "$i, $v := ",
    "$v",
    ".",
    ".Key",
    ".Value",
    ".a.b",
    "|",
    "(",
    ")",
    "gets \"/s/*\"",
    "getvs \"/s/*\"",
    "getv \"/s/a\"",
    "getv \"/n\" \"d\"",
    "ls \"/s\"",
    "lsdir \"/\"",
    "exists \"/s/a\"",
    "json (getv \"/j\")",
    "printf \"%s-%d\" ",
    "printf \"%v\" ",
    "index ",
    "len ",
    "and ",
    "or ",
    "not ",
    "eq ",
    "lt ",
    "add 1 ",
    "seq 1 3",
    "base ",
    "split (getv \"/s/a\") \",\"",
    "map \"k\" 1",
    "reverse ",
    "toUpper ",
    "1",
    "-2",
    "1.5",
    "\"s\"",
    "`raw`",
    "'c'",
    "nil",
    "true",
];

fn data() -> Vec<(&'static str, &'static str)> {
    vec![
        ("/s/a", "x,y"),
        ("/s/b", "2"),
        ("/n", "7"),
        ("/j", "{\"a\": {\"b\": 1}, \"l\": [1, \"two\"]}"),
    ]
}

/// Converts `src` if it parses: must not panic; when it converts, the Tera text loads.
/// Returns a difference in output when both engines render from `data()`.
fn try_convert(src: &str) -> Option<String> {
    let t = GoTemplate::parse_bytes("t.tmpl", src.as_bytes()).ok()?;
    let c = convert(&t).ok()?;
    let mut e = Engine::new();
    if let Err(err) = e.add_raw("t.tera", &c.text) {
        return Some(format!(
            "{src:?}: the converted template does not load: {err}"
        ));
    }
    let want = match t.render(&view(&data())) {
        Ok(w) => w,
        Err(err) => {
            return match e.render("t.tera", view(&data())) {
                Ok(got) if c.notes.is_empty() => Some(format!(
                    "{src:?}\n  go failed: {err}\n  tera: {:?}\n  text: {:?}",
                    String::from_utf8_lossy(&got),
                    c.text
                )),
                _ => None,
            };
        }
    };
    match e.render("t.tera", view(&data())) {
        Ok(got) if got == want => None,
        Ok(got) => Some(format!(
            "{src:?}\n  go:   {:?}\n  tera: {:?}\n  text: {:?}",
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
            c.text
        )),
        Err(err) => Some(format!(
            "{src:?}\n  go:   {:?}\n  tera failed: {err}\n  text: {:?}",
            String::from_utf8_lossy(&want),
            c.text
        )),
    }
}

#[test]
fn never_panics_on_golden_parser_and_random_templates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cases");
    let mut sources: Vec<String> = PARSER_INPUTS.iter().map(|s| s.to_string()).collect();
    if let Ok(dirs) = std::fs::read_dir(&root) {
        for d in dirs.flatten() {
            if let Ok(b) = std::fs::read(d.path().join("template.tmpl")) {
                sources.push(String::from_utf8_lossy(&b).into_owned());
            }
        }
    }
    let mut rng = fastrand::Rng::with_seed(20_241_122);
    for s in &sources {
        try_convert(s);
    }
    // Random cuts and splices of real templates.
    for _ in 0..3000 {
        let a = &sources[rng.usize(..sources.len())];
        let b = &sources[rng.usize(..sources.len())];
        let cut = |s: &str, rng: &mut fastrand::Rng| {
            let mut i = rng.usize(..=s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let (i, j) = (cut(a, &mut rng), cut(b, &mut rng));
        try_convert(&format!("{}{}", &a[..i], &b[j..]));
    }
    // Random templates from pieces.
    for _ in 0..20_000 {
        let n = rng.usize(1..14);
        let src: String = (0..n).map(|_| PIECES[rng.usize(..PIECES.len())]).collect();
        try_convert(&src);
    }
}

/// A random Go template from a small grammar of what confd templates do.
fn random_template(rng: &mut fastrand::Rng, depth: usize) -> String {
    const STR: &[&str] = &[
        "(getv \"/s/a\")",
        "(getv \"/x\" \"d\")",
        "(getv \"/missing\")",
        "\"lit\"",
        "(base \"/a/b\")",
        "(printf \"%s-%d\" \"a\" 3)",
        "(toUpper \"ab\")",
        "(join (getvs \"/s/*\") \",\")",
        "(index (split (getv \"/s/a\") \",\") 0)",
        "(trimSuffix \"ab\" \"b\")",
    ];
    const INT: &[&str] = &[
        "1",
        "(len (gets \"/s/*\"))",
        "(atoi (getv \"/n\"))",
        "(add 2 3)",
        "(mod 7 3)",
    ];
    const LIST: &[&str] = &[
        "(gets \"/s/*\")",
        "(getvs \"/s/*\")",
        "(ls \"/s\")",
        "(lsdir \"/\")",
        "(seq 1 3)",
        "(split (getv \"/s/a\") \",\")",
        "(jsonArray \"[1, 2.5, \\\"x\\\"]\")",
        "(json (getv \"/j\")).l",
    ];
    const ANY: &[&str] = &[
        "(json (getv \"/j\")).a",
        "(index (json (getv \"/j\")) \"a\" \"b\")",
        "(get \"/s/b\")",
        "(exists \"/s/a\")",
        "(map \"k\" 1 \"s\" \"v\")",
        "(and \"a\" 0)",
        "(or \"\" \"b\")",
        "(not 0)",
        "(eq (getv \"/s/b\") \"2\")",
        "(lt 1 2)",
        "1.5",
        "(print nil 1 \"s\")",
    ];
    let pick = |rng: &mut fastrand::Rng, v: &[&str]| v[rng.usize(..v.len())].to_string();
    let expr = |rng: &mut fastrand::Rng| match rng.usize(..4) {
        0 => pick(rng, STR),
        1 => pick(rng, INT),
        2 => pick(rng, LIST),
        _ => pick(rng, ANY),
    };
    let mut out = String::new();
    for _ in 0..rng.usize(1..5) {
        let l = if rng.bool() { "{{- " } else { "{{ " };
        let r = if rng.bool() { " -}}" } else { " }}" };
        let text = ["x", " ", "\n", " y \n ", "\t"][rng.usize(..5)];
        out.push_str(text);
        match rng.usize(..11) {
            0 | 1 => out.push_str(&format!("{l}{}{r}", expr(rng))),
            7 if depth == 0 => {
                let name = format!("d{}", rng.u32(..));
                out.push_str(&format!(
                    "{l}define \"{name}\"{r}({{{{ . }}}}){}{l}end{r}{l}template \"{name}\" {}{r}",
                    random_template(rng, 2),
                    expr(rng)
                ));
            }
            8 => out.push_str(&format!(
                "{l}$w := {}{r}{l}range getvs \"/s/*\"{r}{l}$w = {}{r}{l}end{r}{{{{ $w }}}}",
                pick(rng, STR),
                pick(rng, STR)
            )),
            9 if depth < 3 => out.push_str(&format!(
                "{l}if {}{r}a{l}else if {}{r}b{l}else{r}{l}with {}{r}{{{{ . }}}}{l}else with {}{r}-{l}end{r}{l}end{r}",
                expr(rng),
                expr(rng),
                expr(rng),
                expr(rng)
            )),
            10 => out.push_str(&format!(
                "{l}printf \"%s|%d|%v|%5s|%q\" {} {} {} {} {}{r}",
                pick(rng, STR),
                pick(rng, INT),
                expr(rng),
                pick(rng, STR),
                pick(rng, STR)
            )),
            2 if depth < 3 => out.push_str(&format!(
                "{l}if {}{r}{}{l}else{r}{}{l}end{r}",
                expr(rng),
                random_template(rng, depth + 1),
                random_template(rng, depth + 1)
            )),
            3 if depth < 3 => out.push_str(&format!(
                "{l}range $i, $e := {}{r}[{{{{ $i }}}}:{{{{ . }}}}]{}{l}end{r}",
                pick(rng, LIST),
                random_template(rng, depth + 1)
            )),
            4 if depth < 3 => out.push_str(&format!(
                "{l}with {}{r}<{{{{ . }}}}>{}{l}end{r}",
                expr(rng),
                random_template(rng, depth + 1)
            )),
            5 => out.push_str(&format!("{l}$v := {}{r}{{{{ $v }}}}", expr(rng))),
            _ => out.push_str(if rng.bool() {
                "{{/* c */}}"
            } else {
                "{{- /* c */ -}}"
            }),
        }
    }
    out
}

/// Random templates rendered by both engines: a converted template renders what the Go
/// one renders, and fails where it fails (unless a note says why not).
/// `CONFSYNC_CONVERT_ROUNDS=100000` runs more of them.
#[test]
fn random_templates_render_alike() {
    let rounds = std::env::var("CONFSYNC_CONVERT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1500);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut diffs = Vec::new();
    for _ in 0..rounds {
        let src = random_template(&mut rng, 0);
        if let Some(d) = try_convert(&src) {
            diffs.push(d);
        }
    }
    diffs.sort();
    diffs.dedup();
    for d in diffs.iter().take(40) {
        println!("{d}\n");
    }
    assert!(diffs.is_empty(), "{} differences", diffs.len());
}

#[test]
fn deep_nesting_is_reported_not_a_crash() {
    let ifs = format!("{}x{}", "{{ if true }}".repeat(90), "{{ end }}".repeat(90));
    let e = convert(&GoTemplate::parse("t.tmpl", ifs).unwrap()).unwrap_err();
    assert!(e.reason.contains("does not compile as Tera"), "{e}");
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(90), ")".repeat(90));
    let c = convert(&GoTemplate::parse("t.tmpl", parens).unwrap()).unwrap();
    assert_eq!(c.text, "{{ 1 }}");
    let calls = format!(
        "{{{{ {}\"a\"{} }}}}",
        "(toUpper ".repeat(60),
        ")".repeat(60)
    );
    let _ = convert(&GoTemplate::parse("t.tmpl", calls).unwrap());
}
