//! confd's Go templates through the `confsync` binary: rendered as confd renders them,
//! and every kind of bad template a clear error that names the file, line and column,
//! with nothing written.

use crate::cli::{Fixture, stderr};

const DATA: &str =
    "app:\n  servers:\n    web1: 127.0.0.1:8001\n    web2: 127.0.0.1:8002\n  port: \"8080\"\n";

const SERVERS: &str = "backend app\n{{range gets \"/app/servers/*\"}}    server {{base .Key}} {{.Value}} check\n{{end}}";

#[test]
fn a_confd_template_renders_with_run_and_render() {
    let f = Fixture::new(SERVERS, "", DATA);
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want =
        "backend app\n    server web1 127.0.0.1:8001 check\n    server web2 127.0.0.1:8002 check\n";
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), want);
    let o = crate::support::confsync()
        .args(["render", "--resource", "app", "--confdir"])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);
    let o = f.check();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `check` and `run` both refuse the template at load time, naming file, line, column.
fn refused_at_load(template: &str, want: &[&str]) {
    let f = Fixture::new(template, "", DATA);
    for o in [f.check(), f.run(&[])] {
        assert_eq!(o.status.code(), Some(2), "{template:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("app.tmpl"), "{e}");
        for w in want {
            assert!(e.contains(w), "{template:?}: wanted {w:?} in {e}");
        }
        assert!(!e.contains("panicked"), "{e}");
    }
    assert!(!f.dest().exists());
}

#[test]
fn syntax_errors_unknown_functions_and_junk_are_refused_at_load() {
    refused_at_load(
        "ok\n{{range gets \"/app/servers/*\"}}\n",
        &["line 3", "unexpected EOF"],
    );
    refused_at_load(
        "ok\n  {{ getvee \"/app/port\" }}\n",
        &["line 2, column 6", "function \"getvee\" not defined"],
    );
    refused_at_load("{{ if }}{{ end }}", &["line 1", "missing value for if"]);
    refused_at_load("{{ $x }}", &["undefined variable \"$x\""]);
    refused_at_load(
        "{{ .Key \n",
        &["line 2", "unclosed action started at line 1"],
    );
    refused_at_load(
        "\u{1}\u{7f}\u{fffd}{{ \u{2603} }}",
        &["line 1", "unrecognized character in action"],
    );
}

#[test]
fn render_errors_name_the_line_and_construct_and_write_nothing() {
    for (template, want) in [
        (
            "a\n{{ getv \"/app/missing\" }}",
            vec![
                "line 2, column 4",
                "getv \"/app/missing\"",
                "key does not exist: /app/missing",
            ],
        ),
        (
            "{{ getv \"/app/port\" \"a\" \"b\" | add 1 }}",
            vec!["wrong type for value; expected int; got string"],
        ),
        (
            "{{ add 1 }}",
            vec!["wrong number of args for add: want 2 got 1"],
        ),
        (
            "{{ index (getvs \"/app/servers/*\") 7 }}",
            vec!["index out of range: 7"],
        ),
        (
            "{{ json (getv \"/app/port\") }}",
            vec!["error calling json", "cannot unmarshal number"],
        ),
        (
            "{{ atoi \"x\" }}",
            vec!["error calling atoi", "invalid syntax"],
        ),
    ] {
        let f = Fixture::new(template, "", DATA);
        let o = f.run(&[]);
        assert_eq!(o.status.code(), Some(1), "{template:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("app.tmpl") || e.contains("app"), "{e}");
        for w in &want {
            assert!(e.contains(w), "{template:?}: wanted {w:?} in {e}");
        }
        assert!(!f.dest().exists(), "{template:?}");
        assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());
    }
}

#[test]
fn a_failed_render_keeps_the_live_file() {
    let f = Fixture::new(SERVERS, "", DATA);
    assert!(f.run(&[]).status.success());
    let good = std::fs::read_to_string(f.dest()).unwrap();
    crate::support::write(f.path(), "templates/app.tmpl", "{{ getv \"/app/none\" }}");
    let o = f.run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), good);
}

#[test]
fn the_resource_names_the_engine() {
    // Tera's tags make a file Tera by the detection rule; `engine = "go"` prints them.
    let f = Fixture::new(
        "{% raw %}{{ getv \"/app/port\" }}",
        "engine = \"go\"\n",
        DATA,
    );
    let o = f.run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(f.dest()).unwrap(), "{% raw %}8080");
    let f = Fixture::new(SERVERS, "engine = \"jinja\"\n", DATA);
    let o = f.check();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("engine"), "{}", stderr(&o));
}
