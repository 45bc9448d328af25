use super::*;

#[test]
fn parses_a_template() {
    let t = parse("t", "a {{ .Key }} b", false).unwrap();
    assert!(t.trees.contains_key("t"));
}
