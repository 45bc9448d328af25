//! YAML 1.1 scalars and keys as confd reads them: every expected string is what confd
//! gives for `v: <scalar>` (checked against yaml.v2 v2.4.0, the version confd vendors),
//! through both the fast path and the full parser.

use super::yaml_tests::{err, kv, ok, read};

/// What confd keeps for `v: <scalar>`.
#[derive(Debug, Clone, Copy)]
enum X {
    /// This text.
    T(&'static str),
    /// No key (null, or an integer beyond int64).
    N,
    /// An error.
    E,
}
use X::{E, N, T};

#[test]
fn scalars_resolve_as_yaml_v2_does() {
    let cases: &[(&str, X)] = &[
        ("plain words", T("plain words")),
        ("10.0.0.1", T("10.0.0.1")),
        ("10.0.0.1:8080", T("10.0.0.1:8080")),
        ("http://h:80/p?q=1", T("http://h:80/p?q=1")),
        ("\"quoted\"", T("quoted")),
        ("'single'", T("single")),
        ("'it''s'", T("it's")),
        ("\"with \\\"escape\\\"\"", T("with \"escape\"")),
        ("42", T("42")),
        ("-7", T("-7")),
        ("+12", T("12")),
        ("0", T("0")),
        ("-0", T("0")),
        ("00", T("0")),
        ("0x1F", T("31")),
        ("0X1f", T("31")),
        ("-0x1F", T("-31")),
        ("+0x1F", T("31")),
        ("010", T("8")),
        ("08", T("8")),
        ("09.5", T("9.5")),
        ("0o17", T("15")),
        ("0O17", T("15")),
        ("0o8", T("0o8")),
        ("0b101", T("5")),
        ("0B11", T("3")),
        ("-0b101", T("-5")),
        ("0b102", T("0b102")),
        ("1_000", T("1000")),
        ("1__0", T("10")),
        ("_1", T("_1")),
        ("1_", T("1")),
        ("0x_1F", T("31")),
        ("9223372036854775807", T("9223372036854775807")),
        ("-9223372036854775808", T("-9223372036854775808")),
        ("9223372036854775808", N),
        ("12345678901234567890", N),
        ("18446744073709551615", N),
        ("18446744073709551616", T("18446744073709552000")),
        ("-9223372036854775809", T("-9223372036854776000")),
        ("0xFFFFFFFFFFFFFFFF", N),
        ("0x10000000000000000", T("0x10000000000000000")),
        ("0777777777777777777777777", T("777777777777777800000000")),
        ("1.50", T("1.5")),
        ("1.10", T("1.1")),
        ("1e3", T("1000")),
        ("1E+3", T("1000")),
        ("1e-7", T("0.0000001")),
        ("0.1e-7", T("0.00000001")),
        (".5", T("0.5")),
        ("-.5", T("-0.5")),
        ("+.5", T("0.5")),
        ("1.", T("1")),
        ("1e400", T("1e400")),
        ("-1e400", T("-1e400")),
        ("1e-400", T("0")),
        (".5_0", T("0.5")),
        ("._5", T("._5")),
        (".5_", T(".5_")),
        ("1_0.5", T("10.5")),
        (".5e1_0", T("5000000000")),
        ("3.14e+2", T("314")),
        ("0.1", T("0.1")),
        ("-0.0", T("-0")),
        ("0e0", T("0")),
        ("1e", T("1e")),
        ("1.0e+", T("1.0e+")),
        (".e5", T(".e5")),
        (".", T(".")),
        ("+", T("+")),
        ("-", E),
        ("+.", T("+.")),
        (
            "123456789012345678901234567890",
            T("123456789012345680000000000000"),
        ),
        (".inf", T("+Inf")),
        (".Inf", T("+Inf")),
        (".INF", T("+Inf")),
        ("+.inf", T("+Inf")),
        ("-.inf", T("-Inf")),
        ("-.Inf", T("-Inf")),
        (".nan", T("NaN")),
        (".NaN", T("NaN")),
        (".NAN", T("NaN")),
        (".Nan", T(".Nan")),
        ("inf", T("inf")),
        ("nan", T("nan")),
        ("infinity", T("infinity")),
        ("true", T("true")),
        ("True", T("true")),
        ("TRUE", T("true")),
        ("tRUE", T("tRUE")),
        ("false", T("false")),
        ("False", T("false")),
        ("FALSE", T("false")),
        ("yes", T("true")),
        ("Yes", T("true")),
        ("YES", T("true")),
        ("yES", T("yES")),
        ("y", T("true")),
        ("Y", T("true")),
        ("no", T("false")),
        ("No", T("false")),
        ("NO", T("false")),
        ("nO", T("nO")),
        ("n", T("false")),
        ("N", T("false")),
        ("on", T("true")),
        ("On", T("true")),
        ("ON", T("true")),
        ("oN", T("oN")),
        ("off", T("false")),
        ("Off", T("false")),
        ("OFF", T("false")),
        ("~", N),
        ("null", N),
        ("Null", N),
        ("NULL", N),
        ("nULL", T("nULL")),
        ("", N),
        ("\"\"", T("")),
        ("''", T("")),
        ("2001-12-14", T("2001-12-14")),
        (
            "2001-12-14t21:59:43.10-05:00",
            T("2001-12-14t21:59:43.10-05:00"),
        ),
        ("2001-13-14", T("2001-13-14")),
        ("12:30:45", T("12:30:45")),
        ("1:2", T("1:2")),
        ("!!str 12", T("12")),
        ("!!int \"12\"", T("12")),
        ("!!float 1", T("1")),
        ("!!float \"1.5\"", T("1.5")),
        ("!!binary aGVsbG8=", T("hello")),
        ("!!timestamp 2001-12-14", T("2001-12-14")),
        (
            "!!timestamp \"2001-12-14 21:59:43.5\"",
            T("2001-12-14 21:59:43.5"),
        ),
        ("!foo bar", T("bar")),
        ("! 12", T("12")),
        ("!!null \"\"", N),
        ("!!null ~", N),
        ("!!bool yes", T("true")),
        ("!!bool \"on\"", T("true")),
        ("!!str", T("")),
        ("!!str ~", T("~")),
        ("!!int 1.5", E),
        ("!!int", E),
        ("!!timestamp 2001-13-1", E),
        ("!!null x", E),
        ("!!float 18446744073709551615", E),
        ("!!binary \"*\"", E),
        ("<<", T("<<")),
        ("a#b", T("a#b")),
        ("a #b", T("a")),
        ("é", T("é")),
        ("|\n  line one\n  line two", T("line one\nline two\n")),
        (">\n  folded\n  text", T("folded text\n")),
        ("|-\n  keep", T("keep")),
        ("\"\\t\\u00e9\\x41\"", T("\téA")),
    ];
    for &(scalar, want) in cases {
        let text = format!("v: {scalar}\n");
        let got = read(&text);
        match (want, &got) {
            (T(s), Ok(m)) if m.get("/v").map(String::as_str) == Some(s) && m.len() == 1 => {}
            (N, Ok(m)) if m.is_empty() => {}
            (E, Err(_)) => {}
            _ => panic!("{scalar:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn floats_print_as_go_formats_them() {
    // strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent.
    let m = read("max: 1.7976931348623157e308\nmin: 4.9e-324\nbig: 1e21\n").unwrap();
    assert_eq!(m["/max"], format!("17976931348623157{}", "0".repeat(292)));
    assert_eq!(m["/min"], format!("0.{}5", "0".repeat(323)));
    assert_eq!(m["/big"], format!("1{}", "0".repeat(21)));
}

#[test]
fn golden_corpus_yaml_types() {
    // tests/golden/cases/yaml_types: confd's own output for every line of the file.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/cases/yaml_types/data.yaml"
    );
    let m = read(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want = kv(&[
        ("/binary", "5"),
        ("/boolOFF", "false"),
        ("/boolno", "false"),
        ("/boolon", "true"),
        ("/booltrue", "true"),
        ("/boolyes", "true"),
        ("/date", "2001-12-14"),
        ("/emptystr", ""),
        ("/float", "1.5"),
        ("/floatdot", "0.5"),
        ("/floatexp", "1000"),
        ("/folded", "folded text\n"),
        ("/hex", "31"),
        ("/inf", "+Inf"),
        ("/int", "42"),
        ("/ip", "10.0.0.1"),
        ("/multiline", "line one\nline two\n"),
        ("/nan", "NaN"),
        ("/negint", "-7"),
        ("/octal", "8"),
        ("/plain", "plain words here"),
        ("/plusint", "12"),
        ("/str", "quoted"),
        ("/time", "12:30:45"),
        ("/underscore", "1000"),
        ("/version", "1.1"),
    ]);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), want);
}

#[test]
fn keys_that_are_not_strings_fail_naming_line_and_key() {
    // Each of these is a bool, int, float or null map key in yaml.v2: confd panics.
    for key in [
        "80",
        "0x1F",
        "1.5",
        ".inf",
        "yes",
        "n",
        "No",
        "on",
        "OFF",
        "true",
        "y",
        "~",
        "null",
        "-1",
        "+1",
        "08",
        ".5",
        "1_",
        "0b1",
        "12345678901234567890",
        "!!int \"80\"",
    ] {
        let e = err(&format!("a:\n  b: 1\n  {key}: x\n"));
        assert!(e.starts_with("line 3: "), "{key}: {e}");
        assert!(e.contains("quote it"), "{key}: {e}");
    }
    let e = err("a:\n  yes: 1\n");
    assert!(
        e.contains("`yes` is a boolean") && e.contains("(\"yes\")"),
        "{e}"
    );
    let e = err("a: [{~: 1}]\n");
    assert!(e.contains("`~` is null"), "{e}");
    // These are strings.
    for key in [
        "a",
        "\"80\"",
        "'yes'",
        "2001-12-14",
        "12:30:45",
        "\"~\"",
        "!!str 80",
        "! yes",
        "\"<<\"",
        "_1",
        "nO",
        "tRUE",
        "a b",
    ] {
        assert_eq!(read(&format!("{key}: x\n")).unwrap().len(), 1, "{key}");
    }
    // A mapping replaced by a later one with the same key is never walked by confd.
    assert_eq!(ok("a: {80: x}\na: {b: 2}\n"), kv(&[("/a/b", "2")]));
}
