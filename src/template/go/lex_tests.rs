use super::*;

fn kinds(s: &str) -> Vec<(Kind, String)> {
    lex(s).into_iter().map(|t| (t.kind, t.text)).collect()
}

#[test]
fn text_and_actions() {
    use Kind::*;
    assert_eq!(
        kinds("a {{ .Key }} b"),
        vec![
            (Text, "a ".into()),
            (LeftDelim, "{{".into()),
            (Space, " ".into()),
            (Field, ".Key".into()),
            (Space, " ".into()),
            (RightDelim, "}}".into()),
            (Text, " b".into()),
            (Eof, "".into()),
        ]
    );
}

#[test]
fn trim_markers_eat_spaces_on_their_side() {
    let t = lex("a \n {{- 1 -}} \n b");
    let texts: Vec<_> = t
        .iter()
        .filter(|t| t.kind == Kind::Text)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(texts, vec!["a", "b"]);
    // A dash without a space is a number's sign.
    let t = lex("{{-1}}");
    assert_eq!(t[1].kind, Kind::Number);
    assert_eq!(t[1].text, "-1");
}

#[test]
fn comments_vanish_and_trim() {
    let t = lex("a  {{- /* hi */ -}}  b");
    let texts: Vec<_> = t
        .iter()
        .filter(|t| t.kind == Kind::Text)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(texts, vec!["a", "b"]);
    assert_eq!(lex("{{/* x").last().unwrap().text, "unclosed comment");
    assert_eq!(
        lex("{{/* x */ }}").last().unwrap().text,
        "comment ends before closing delimiter"
    );
}

#[test]
fn lines_are_counted() {
    let t = lex("a\nb\n{{ x\n y }}\nz");
    let y = t.iter().find(|t| t.text == "y").unwrap();
    assert_eq!(y.line, 4);
    let z = t.iter().find(|t| t.text == "\nz").unwrap();
    assert_eq!(z.line, 4);
}

#[test]
fn errors() {
    assert_eq!(lex("{{ x").last().unwrap().text, "unclosed action");
    assert_eq!(
        lex("{{ \"a }}").last().unwrap().text,
        "unterminated quoted string"
    );
    assert_eq!(lex("{{ (x }}").last().unwrap().text, "unclosed left paren");
    assert_eq!(
        lex("{{ 3x }}").last().unwrap().text,
        "bad number syntax: \"3x\""
    );
    assert!(
        lex("{{ a# }}")
            .last()
            .unwrap()
            .text
            .starts_with("bad character U+0023")
    );
}

#[test]
fn keywords_variables_numbers() {
    use Kind::*;
    let k: Vec<Kind> = lex("{{range $i, $v := .}}{{end}}{{ 0x1F 1.5e3 'a' nil true }}")
        .into_iter()
        .map(|t| t.kind)
        .filter(|k| *k != Space)
        .collect();
    assert_eq!(
        k,
        vec![
            LeftDelim, Range, Variable, Char, Variable, Declare, Dot, RightDelim, LeftDelim, End,
            RightDelim, LeftDelim, Number, Number, CharConst, Nil, Bool, RightDelim, Eof
        ]
    );
}
