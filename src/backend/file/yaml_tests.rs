//! YAML as confd reads it (gopkg.in/yaml.v2 into `map[interface{}]interface{}`, then
//! `nodeWalk`). Every expected string here is what confd gives for the same input
//! (checked against yaml.v2 v2.4.0, the version confd vendors), unless a test says why
//! confsync differs. Each case is read both through the fast path (where it applies)
//! and through the full parser, which must agree.

use std::collections::BTreeMap;

use super::yaml;
use super::{Entries, into_map};

/// The keys of `text`, read with the fast path where it applies and with the full
/// parser alone; both must give the same answer.
pub(super) fn read(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut fast = Entries::new();
    let a = yaml::read(text, &mut fast).map(|()| into_map(fast));
    let mut full = Entries::new();
    let b = yaml::read_full(text.strip_prefix('\u{feff}').unwrap_or(text), &mut full)
        .map(|()| into_map(full));
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "fast path and full parser differ on {text:?}");
            Ok(a)
        }
        (Err(a), Err(_)) => Err(a.to_string()),
        (a, b) => panic!("fast path and full parser differ on {text:?}: {a:?} / {b:?}"),
    }
}

pub(super) fn ok(text: &str) -> Vec<(String, String)> {
    read(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .into_iter()
        .collect()
}

pub(super) fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

pub(super) fn err(text: &str) -> String {
    match read(text) {
        Ok(m) => panic!("{text:?} should fail, gave {m:?}"),
        Err(e) => e,
    }
}

#[test]
fn golden_corpus_structure_and_dotdot() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cases/");
    let m = ok(&std::fs::read_to_string(format!("{dir}yaml_structure/data.yaml")).unwrap());
    let want = kv(&[
        ("/base/k1", "from anchor"),
        ("/derived/k1", "from anchor"),
        ("/derived/k2", "own"),
        ("/dot..dot", "dots"),
        ("/list/0", "first"),
        ("/list/1", "second"),
        ("/list/3", "fourth"),
        ("/nested/0/0", "x"),
        ("/nested/0/1", "y"),
        ("/nested/1/0", "z"),
        ("/objects/0/name", "a"),
        ("/objects/0/port", "80"),
        ("/objects/1/name", "b"),
        ("/with space", "space in a key"),
        ("/with/slash", "slash in a key"),
        ("/ünïcode", "unicode key"),
    ]);
    assert_eq!(m, want);
    let m = ok(&std::fs::read_to_string(format!("{dir}yaml_dotdot_key/data.yaml")).unwrap());
    assert_eq!(m, kv(&[("/a", "empty key"), ("/escaped", "parent")]));
}

#[test]
fn golden_corpus_errors_are_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/cases/");
    // confd: `yaml: unmarshal errors:`.
    let e = super::load(&[format!("{dir}err_yaml_toplevel_list/data.yaml").into()]).unwrap_err();
    assert!(
        e.contains("err_yaml_toplevel_list/data.yaml: line 1:") && e.contains("list"),
        "{e}"
    );
    // confd crashes on these (a Go panic); confsync names the file, the line and the key.
    let e = super::load(&[format!("{dir}err_yaml_bool_key/data.yaml").into()]).unwrap_err();
    assert!(e.contains("err_yaml_bool_key/data.yaml: line 1:"), "{e}");
    assert!(
        e.contains("`n` is a boolean") && e.contains("quote it (\"n\")"),
        "{e}"
    );
    let e = super::load(&[format!("{dir}err_yaml_int_key/data.yaml").into()]).unwrap_err();
    assert!(e.contains("err_yaml_int_key/data.yaml: line 2:"), "{e}");
    assert!(
        e.contains("`80` is a number") && e.contains("quote it (\"80\")"),
        "{e}"
    );
}

#[test]
fn maps_lists_and_paths() {
    assert_eq!(
        ok(
            "app:\n  servers:\n    web1: 10.0.0.1:80\n  ports: [80, 443]\n  \"on\": true\n  none: ~\n  empty: {}\n  list: []\n"
        ),
        kv(&[
            ("/app/on", "true"),
            ("/app/ports/0", "80"),
            ("/app/ports/1", "443"),
            ("/app/servers/web1", "10.0.0.1:80"),
        ])
    );
    // Null items keep their index; nested lists.
    assert_eq!(
        ok("l:\n- a\n- ~\n-\n- [x, [y]]\n"),
        kv(&[("/l/0", "a"), ("/l/3/0", "x"), ("/l/3/1/0", "true")])
    );
    // path.Join: `/`, `.`, `..` and empty keys are cleaned; `..` cannot climb above `/`.
    assert_eq!(
        ok(
            "a:\n  \"b/c\": 1\n  \"./d\": 2\n  \"../e\": 3\n  \"\": 4\n  \"/f/\": 5\n\"../../g\": 6\n\"..\": 7\n"
        ),
        kv(&[
            ("/", "7"),
            ("/a", "4"),
            ("/a/b/c", "1"),
            ("/a/d", "2"),
            ("/a/f", "5"),
            ("/e", "3"),
            ("/g", "6"),
        ])
    );
    // Lists of maps, block and flow.
    assert_eq!(
        ok("o:\n  - name: a\n    port: \"80\"\n  - {name: b}\n"),
        kv(&[("/o/0/name", "a"), ("/o/0/port", "80"), ("/o/1/name", "b")])
    );
}

#[test]
fn a_key_given_twice_replaces_the_whole_value() {
    // A Go map: the later value replaces the earlier one, whatever its shape.
    assert_eq!(ok("a: {b: 1, c: 2}\na: {c: 3}\n"), kv(&[("/a/c", "3")]));
    assert_eq!(ok("a: 1\na: ~\n"), kv(&[]));
    assert_eq!(
        ok("a: [1, 2]\nb: x\na: 3\n"),
        kv(&[("/a", "3"), ("/b", "x")])
    );
    // Quoted and plain spellings are the same key.
    assert_eq!(ok("a: 1\n\"a\": 2\n'a': 3\n"), kv(&[("/a", "3")]));
    // Many keys (the indexed case) and a duplicate far apart.
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!("k{i}:\n  v: {i}\n"));
    }
    text.push_str("k7: seven\n");
    let m = read(&text).unwrap();
    assert_eq!(m.len(), 50);
    assert_eq!(m["/k7"], "seven");
    assert!(!m.contains_key("/k7/v"));
    // Different keys that clean to the same path both stay: the later one wins a clash.
    assert_eq!(
        ok("a/: {b: 1}\na: {c: 2}\n"),
        kv(&[("/a/b", "1"), ("/a/c", "2")])
    );
}

#[test]
fn anchors_aliases_and_merges() {
    assert_eq!(
        ok("base: &b {x: 1, w: [2, 3]}\ncopy: *b\nlist: [*b]\n"),
        kv(&[
            ("/base/w/0", "2"),
            ("/base/w/1", "3"),
            ("/base/x", "1"),
            ("/copy/w/0", "2"),
            ("/copy/w/1", "3"),
            ("/copy/x", "1"),
            ("/list/0/w/0", "2"),
            ("/list/0/w/1", "3"),
            ("/list/0/x", "1"),
        ])
    );
    // An anchor can be redefined; an alias takes the latest definition.
    assert_eq!(
        ok("a: &x 1\nb: &x 2\nc: *x\n"),
        kv(&[("/a", "1"), ("/b", "2"), ("/c", "2")])
    );
    // yaml.v2 merges in place: a key after `<<` wins, a key before it loses, and a
    // merged value replaces the whole earlier value.
    let d = "d: &d {x: 1, w: {p: 1}}\n";
    assert_eq!(
        ok(&format!("{d}e:\n  w: {{q: 2}}\n  x: 0\n  <<: *d\n")),
        kv(&[
            ("/d/w/p", "1"),
            ("/d/x", "1"),
            ("/e/w/p", "1"),
            ("/e/x", "1")
        ])
    );
    assert_eq!(
        ok(&format!("{d}e:\n  <<: *d\n  w: {{q: 2}}\n")),
        kv(&[
            ("/d/w/p", "1"),
            ("/d/x", "1"),
            ("/e/w/q", "2"),
            ("/e/x", "1")
        ])
    );
    // A list of merges: earlier maps win.
    assert_eq!(
        ok("a: &a {x: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n"),
        kv(&[
            ("/a/x", "1"),
            ("/b/x", "2"),
            ("/b/z", "2"),
            ("/c/x", "1"),
            ("/c/z", "2")
        ])
    );
    assert_eq!(
        ok("c:\n  <<: [{x: 1}, {x: 2, z: 2}]\n"),
        kv(&[("/c/x", "1"), ("/c/z", "2")])
    );
    // Merges inside merged maps, merges inside aliases.
    assert_eq!(
        ok("c:\n  <<: {x: 1, <<: {x: 3, k: 4}}\n"),
        kv(&[("/c/k", "4"), ("/c/x", "3")])
    );
    assert_eq!(
        ok("a: &a {k: 1}\nb: &b {<<: [*a], j: 2}\nc: *b\n"),
        kv(&[
            ("/a/k", "1"),
            ("/b/j", "2"),
            ("/b/k", "1"),
            ("/c/j", "2"),
            ("/c/k", "1")
        ])
    );
    // `<<` quoted or tagged `!!str` is an ordinary key; `!!merge <<` and `! <<` merge.
    assert_eq!(
        ok("c:\n  \"<<\": 1\n  !!str <<: 2\n"),
        kv(&[("/c/<<", "2")])
    );
    assert_eq!(ok("c:\n  !!merge <<: {a: 1}\n"), kv(&[("/c/a", "1")]));
    assert_eq!(ok("c:\n  ! <<: {a: 1}\n"), kv(&[("/c/a", "1")]));
    // An alias of `<<` is the key `<<` (yaml.v2 merges only on a scalar node).
    assert_eq!(
        ok("m: &m <<\nc:\n  *m : 1\n"),
        kv(&[("/c/<<", "1"), ("/m", "<<")])
    );
    // Only maps merge.
    for bad in ["1", "~", "[1]", "[[{a: 1}]]", "*s", "[*s]", "*l"] {
        let e = err(&format!("s: &s x\nl: &l [{{a: 1}}]\nc:\n  <<: {bad}\n"));
        assert!(e.contains("map merge requires map"), "{bad}: {e}");
    }
    // An alias inside its own anchor, an unknown anchor.
    assert!(err("a: &x [*x]\n").contains("contains itself"));
    assert!(err("a: &x {<<: [*x]}\n").contains("contains itself"));
    assert!(err("a: *nope\n").contains("line 1"));
}

#[test]
fn documents() {
    // Nothing at all, only comments, an empty or null document: no keys.
    for text in [
        "",
        "\n",
        "# c\n",
        "---\n",
        "--- # c\n",
        "~\n",
        "null\n",
        "...\n",
    ] {
        assert_eq!(ok(text), kv(&[]), "{text:?}");
    }
    // yaml.v2 reads the first document only.
    assert_eq!(ok("a: 1\n---\nb: 2\n"), kv(&[("/a", "1")]));
    assert_eq!(ok("---\na: 1\n...\n---\nb: 2\n"), kv(&[("/a", "1")]));
    // The document must be a map.
    assert!(err("- a\n- b\n").contains("list"));
    assert!(err("hello\n").contains("`hello`"));
    assert!(err("!!str\n").starts_with("line 1"));
    // A byte order mark at the start, CRLF line ends.
    assert_eq!(ok("\u{feff}a: 1\n"), kv(&[("/a", "1")]));
    assert_eq!(
        ok("a: b\r\nc:\r\n  d: e\r\n"),
        kv(&[("/a", "b"), ("/c/d", "e")])
    );
}

#[test]
fn errors_name_the_line() {
    assert!(err("a:\n  b: [1, 2\n").starts_with("line 3:"));
    assert!(err("a: 1\nb: \u{1}\n").starts_with("line 2: control characters"));
    assert!(err("a: 1\nb: x\u{fffe}\n").starts_with("line 2: control characters"));
    // YAML 1.1 line breaks that YAML 1.2 reads as text: refused rather than read
    // differently from confd.
    for c in ['\u{85}', '\u{2028}', '\u{2029}'] {
        assert!(
            err(&format!("a: 1\nb: 'x{c}y'\n")).starts_with("line 2: U+0085"),
            "{c:?}"
        );
        assert!(
            err(&format!("a: 1 # {c}b: 2\n")).starts_with("line 1: U+0085"),
            "{c:?}"
        );
    }
    assert!(err("a: 1\n b: 2\n").starts_with("line 2"));
    assert!(
        err("a:\n  b: !!int 1.5\n").starts_with("line 2: cannot decode !!float `1.5` as a !!int")
    );
    assert!(err("? [a]\n: 1\n").contains("invalid map key"));
    assert!(err("{a: 1}: 1\n").contains("invalid map key"));
}

#[test]
fn hostile_files_fail_cleanly() {
    // Billion laughs: yaml.v2's alias ratio stops it early.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let name = (b'a' + i) as char;
        bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    assert!(err(&bomb).contains("excessive aliasing"));
    // Wide but legitimate reuse is fine (defaults merged into many maps).
    let mut reuse = String::from("defaults: &d {a: 1, b: 2, c: 3}\n");
    for i in 0..2000 {
        reuse.push_str(&format!("s{i}: {{<<: *d, name: s{i}}}\n"));
    }
    assert_eq!(read(&reuse).unwrap().len(), 3 + 2000 * 4);
    // Long keys under many aliases hit the byte budget, not the memory.
    let key = "k".repeat(256 << 10);
    let mut wide = format!("a: &a {{{key}: 1}}\nb: [");
    wide.push_str(&vec!["*a"; 1000].join(", "));
    wide.push_str("]\n");
    assert!(err(&wide).contains("MiB"));
    // Deep nesting: block and flow.
    let deep = format!("a:\n{}x\n", "- ".repeat(20_000));
    assert!(err(&deep).contains("exceeded max depth of 10000"));
    let mut deep = String::new();
    for i in 0..2_000 {
        deep.push_str(&" ".repeat(i));
        deep.push_str("k:\n");
    }
    assert_eq!(read(&deep).unwrap().len(), 0);
    let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    err(&flow);
    let flow = format!("a: {}\n", "{a: ".repeat(50_000));
    err(&flow);
    // yaml.v2's alias guard, to the node: a chain of 298 anchors, each an alias of the
    // one before, is read and 299 are refused; so are 58,059 aliases of a list of ten,
    // where 58,058 are read (both limits found with yaml.v2 itself).
    let chain = |n: usize| {
        let mut s = String::from("a0: &a0 [x]\n");
        for i in 1..n {
            s.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        s
    };
    assert_eq!(read(&chain(298)).unwrap().len(), 298);
    assert!(err(&chain(299)).contains("excessive aliasing"));
    let wide = |n: usize| {
        format!(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [{}]\n",
            vec!["*a"; n].join(", ")
        )
    };
    assert_eq!(read(&wide(58_058)).unwrap().len(), 10 + 58_058 * 10);
    assert!(err(&wide(58_059)).contains("excessive aliasing"));
    // A very long line; a key of 1,024 characters, and one too long for YAML (as in
    // yaml.v2).
    let long = format!("a: {}\n{}: 2\n", "v".repeat(1 << 20), "k".repeat(1024));
    let m = read(&long).unwrap();
    assert_eq!(m["/a"].len(), 1 << 20);
    assert_eq!(m.len(), 2);
    err(&format!("{}: 2\n", "k".repeat(1025)));
    // Garbage never panics.
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet = b"ab:-[]{}&*!|>'\"%@`#,? \n\t\r0.~<\\";
    for _ in 0..3_000 {
        let n = rng.usize(0..60);
        let s: String = (0..n)
            .map(|_| alphabet[rng.usize(..alphabet.len())] as char)
            .collect();
        let _ = read(&s);
    }
}
