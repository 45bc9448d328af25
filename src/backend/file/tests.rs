//! The file backend: formats, files and directories; YAML as confd reads it.

use super::*;

fn flat(name: &str, text: &str) -> KvMap {
    let mut m = Entries::new();
    flatten_str(Path::new(name), text, &mut m).unwrap();
    into_map(m)
}

#[test]
fn yaml_maps_lists_and_scalars() {
    let m = flat(
        "d.yaml",
        "app:\n  servers:\n    web1: 10.0.0.1:80\n  ports: [80, 443]\n  \"on\": yes\n  ratio: 1.50\n  none: ~\n",
    );
    assert_eq!(m["/app/servers/web1"], "10.0.0.1:80");
    assert_eq!(m["/app/ports/0"], "80");
    assert_eq!(m["/app/ports/1"], "443");
    assert_eq!(m["/app/on"], "true");
    assert_eq!(m["/app/ratio"], "1.5");
    // confd drops nulls.
    assert!(!m.contains_key("/app/none"));
    // Anything but .json and .toml is YAML.
    assert_eq!(flat("d.yml", "a: 010\n")["/a"], "8");
    assert_eq!(flat("d", "a: 010\n")["/a"], "8");
}

#[test]
fn json_and_toml() {
    let m = flat("d.json", r#"{"a": {"b": "c", "n": 3}}"#);
    assert_eq!(m["/a/b"], "c");
    assert_eq!(m["/a/n"], "3");
    let m = flat("d.toml", "[a]\nb = \"c\"\nlist = [1, 2]\n");
    assert_eq!(m["/a/b"], "c");
    assert_eq!(m["/a/list/1"], "2");
}

#[test]
fn errors_name_the_line() {
    let mut m = Entries::new();
    let e = flatten_str(Path::new("x.yaml"), "a:\n  b: [1, 2\n", &mut m).unwrap_err();
    assert!(e.starts_with("line 3:"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.yaml"), "a: 1\nyes: 2\n").unwrap();
    let e = load(&[dir.path().join("d.yaml")]).unwrap_err();
    assert!(
        e.contains("d.yaml: line 2: the map key `yes` is a boolean"),
        "{e}"
    );
    let e = flatten_str(Path::new("x.toml"), "a = \n", &mut m).unwrap_err();
    assert!(e.contains("line"), "{e}");
}

#[test]
fn later_files_override() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.yaml"), "a: one\nb: keep\n").unwrap();
    std::fs::write(dir.path().join("2.json"), r#"{"a": "two"}"#).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let m = load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(m["/a"], "two");
    assert_eq!(m["/b"], "keep");
    assert_eq!(m.len(), 2);
}

#[test]
fn last_of_equal_keys_wins_within_a_file() {
    let m = flat("d.json", r#"{"a": "one", "b": "x", "a": "two"}"#);
    assert_eq!(m["/a"], "two");
    // `a/` and `/a` are different YAML keys with one path: the later wins (confd's Go
    // map order makes it either).
    let m = flat("d.yaml", "a/: one\n/a: two\nb: [x]\n");
    assert_eq!(m["/a"], "two");
    assert_eq!(m["/b/0"], "x");
}

mod never_panic {
    use proptest::prelude::*;

    use super::*;

    /// Flattens `text` as each format; any answer but a panic will do.
    fn each_format(text: &str) {
        for name in ["d.yaml", "d.json", "d.toml"] {
            let mut out = Entries::new();
            let _ = flatten_str(Path::new(name), text, &mut out);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn random_bytes_as_data_files(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            each_format(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn random_text_of_data_file_punctuation(
            text in "[a-z0-9 :,\\-\\[\\]{}&*!|>'\"#%@=.~<\\n\\t]{0,300}"
        ) {
            each_format(&text);
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.yaml");
        std::fs::write(&f, b"a: \xff\xfe\n").unwrap();
        let e = load(&[f]).unwrap_err();
        assert!(e.contains("d.yaml: not UTF-8 text (byte 3)"), "{e}");
    }
}

#[test]
fn an_empty_file_is_an_error_and_an_empty_map_is_not() {
    let mut m = Entries::new();
    for (name, text) in [("d.yaml", "# c\n"), ("d.json", ""), ("d.toml", "\n# c\n")] {
        let e = flatten_str(Path::new(name), text, &mut m).unwrap_err();
        assert!(e.starts_with("the file is empty"), "{name}: {e}");
    }
    assert!(flat("d.yaml", "{}").is_empty());
    assert!(flat("d.json", "{}").is_empty());
    assert!(flat("d.toml", "[unused]\n").is_empty());
    // A file after others: only its own keys count.
    let mut m = vec![("/a".to_string(), "1".to_string())];
    assert!(flatten_str(Path::new("d.yaml"), "", &mut m).is_err());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.yaml"), "").unwrap();
    let e = load(&[dir.path().join("d.yaml")]).unwrap_err();
    assert!(e.contains("d.yaml: the file is empty"), "{e}");
}
