use std::sync::Arc;

use proptest::prelude::*;

use super::{addr, base_name, ident, token};
use crate::template::{Engine, View};

fn view(pairs: &[(&str, &str)]) -> View {
    let kvs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    View::new(Arc::new(kvs), "", &["/".to_string()])
}

/// Renders `tpl` as Tera (`go = false`) or Go; the error as text.
fn render(go: bool, tpl: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
    let mut e = Engine::new();
    if go {
        e.add_go_raw("t.tmpl", tpl.as_bytes())
    } else {
        e.add_raw("t.tmpl", tpl)
    }
    .map_err(|e| e.to_string())?;
    e.render("t.tmpl", view(pairs))
        .map(|b| String::from_utf8(b).expect("UTF-8"))
        .map_err(|e| format!("{e:#}"))
}

const EVIL_KEY: &str = "/app/servers/web3 10.0.0.3:80\n    server evil 203.0.113.9:80\n#";

#[test]
fn tera_filters_pass_good_values_and_fail_the_render_on_bad_ones() {
    let tpl = "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.key | base | ident }} \
               {{ s.value | addr }} {{ s.key | base | haproxy_name }}{{ s.key | base | nginx_name }}\n\
               {% endfor %}{{ getv(key=\"/u\") | token }}";
    let good = [("/app/servers/web1", "10.0.0.1:80"), ("/u", "admin")];
    assert_eq!(
        render(false, tpl, &good).unwrap(),
        "server web1 10.0.0.1:80 web1web1\nadmin"
    );
    let e = render(
        false,
        tpl,
        &[
            ("/app/servers/web1", "10.0.0.1:80; server 203.0.113.9:80"),
            ("/u", "a"),
        ],
    )
    .unwrap_err();
    assert!(e.contains(r#""10.0.0.1:80; server 203.0.113.9:80""#), "{e}");
    let e = render(
        false,
        tpl,
        &[("/app/servers/web1", "10.0.0.1:80"), ("/u", "a b")],
    )
    .unwrap_err();
    assert!(e.contains("token") && e.contains(r#""a b""#), "{e}");
}

#[test]
fn base_of_a_key_with_whitespace_fails_unless_the_template_says_unsafe() {
    let pairs = [(EVIL_KEY, "10.0.0.3:80")];
    for go in [false, true] {
        let tpl = if go {
            "{{range gets \"/app/servers/*\"}}{{base .Key}}{{end}}"
        } else {
            "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base }}{% endfor %}"
        };
        let e = render(go, tpl, &pairs).unwrap_err();
        assert!(e.contains(r#""web3 10.0.0.3:80\n    server evil"#), "{e}");
    }
    let out = render(
        false,
        "{% for s in gets(key=\"/app/servers/*\") %}{{ s.key | base(unsafe=true) }}{% endfor %}",
        &pairs,
    )
    .unwrap();
    assert!(out.starts_with("web3 10.0.0.3:80\n"));
    assert_eq!(render(false, "{{ \"/a/b\" | base }}", &[]).unwrap(), "b");
}

#[test]
fn go_functions_check_like_the_tera_filters() {
    let tpl = "{{range gets \"/s/*\"}}server {{base .Key | ident}} {{addr .Value}}\n{{end}}{{token (getv \"/u\")}}";
    assert_eq!(
        render(true, tpl, &[("/s/web1", "[::1]:80"), ("/u", "x")]).unwrap(),
        "server web1 [::1]:80\nx"
    );
    for (k, v, u) in [
        (
            "/s/web1",
            "127.0.0.1:9002 weight 256 redir https://evil.example.com",
            "x",
        ),
        ("/s/-web1", "10.0.0.1:80", "x"),
        ("/s/web1", "10.0.0.1:80", "p#w"),
    ] {
        let e = render(true, tpl, &[(k, v), ("/u", u)]).unwrap_err();
        assert!(e.contains("refusing the value"), "{e}");
    }
}

/// What no checked value may ever hold: a way out of its token in nginx or HAProxy.
fn breaks_out(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || ";{}#\"'\\`".contains(c) || c == '\u{FEFF}')
}

#[test]
fn addr_takes_host_and_port() {
    for ok in [
        "10.0.0.1:80",
        "127.0.0.1:65535",
        "[::1]:8080",
        "[2001:db8::1]:443",
        "web-1.example.com:80",
        "localhost:1",
        "a:9",
    ] {
        assert_eq!(addr(ok), Ok(ok), "{ok}");
    }
    for bad in [
        "",
        "10.0.0.1",
        "10.0.0.1:0",
        "10.0.0.1:65536",
        "10.0.0.1:080",
        "10.0.0.1:+80",
        "10.0.0.1:",
        ":80",
        "::1:80",
        "[::1]",
        "[::1%eth0]:80",
        "[10.0.0.1]:80",
        "1.2.3:80",
        "010.0.0.1:80",
        "-web:80",
        "web-:80",
        "web..x:80",
        "web_1:80",
        "127.0.0.1:9002 weight=10",
        "127.0.0.1:9002;",
        "127.0.0.1:9002 weight 256 redir https://evil.example.com",
        "10.0.0.1:80\u{2028}",
        "10.0.0.1:80\u{0}",
        " 10.0.0.1:80",
    ] {
        assert!(addr(bad).is_err(), "{bad:?} passed");
    }
}

#[test]
fn ident_takes_names() {
    for ok in ["web1", "web-1", "a.b_c", "_x", "9", &"a".repeat(64)] {
        assert_eq!(ident(ok), Ok(ok));
    }
    for bad in [
        "",
        "-x",
        "web 1",
        "web1\n",
        "w;",
        "w}",
        "é",
        &"a".repeat(65),
    ] {
        assert!(ident(bad).is_err(), "{bad:?} passed");
    }
}

#[test]
fn token_refuses_every_way_out() {
    assert_eq!(token("admin"), Ok("admin"));
    assert_eq!(token("p@ss:w0rd/é"), Ok("p@ss:w0rd/é"));
    for bad in [
        "",
        "a b",
        "a\tb",
        "a\rb",
        "a\nb",
        "a;",
        "a{",
        "a}",
        "a#",
        "a\"",
        "a'",
        "a\\",
        "a`",
        "a\u{2028}",
        "a\u{2029}",
        "a\u{85}",
        "a\u{a0}",
        "a\u{3000}",
        "a\u{0}",
        "a\u{200B}",
        "a\u{202E}",
        "a\u{FEFF}",
        "a ",
    ] {
        assert!(token(bad).is_err(), "{bad:?} passed");
    }
}

#[test]
fn errors_quote_the_value_with_escapes() {
    let e = token("x;\u{2028}\0").unwrap_err();
    assert!(e.contains(r#""x;\u{2028}\0""#), "{e}");
    let long = "a ".repeat(10_000);
    assert!(token(&long).unwrap_err().len() < 400);
}

#[test]
fn base_name_refuses_whitespace_and_controls() {
    assert_eq!(base_name("web1"), Ok("web1"));
    for bad in [
        "web3 10.0.0.3:80\n    server evil",
        "a\0",
        "a\u{2028}",
        "a\tb",
        "a\r",
    ] {
        assert!(base_name(bad).is_err(), "{bad:?} passed");
    }
}

/// Strings made mostly of the characters that matter here.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_string()),
        Just(";".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("#".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("`".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{85}".to_string()),
        Just("\0".to_string()),
        Just("\t".to_string()),
        Just("\r\n".to_string()),
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        "[0-9]{1,5}",
        "[a-z.-]{1,6}",
        "(10|127)\\.0\\.0\\.[0-9]{1,3}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn addr_passes_only_host_port(s in hostile()) {
        if let Ok(out) = addr(&s) {
            prop_assert_eq!(out, s.as_str());
            prop_assert!(!breaks_out(out));
            let (host, port) = out.rsplit_once(':').unwrap();
            prop_assert!((1..=65535).contains(&port.parse::<u32>().unwrap()));
            prop_assert!(host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
        }
    }

    #[test]
    fn ident_passes_only_names(s in hostile()) {
        if let Ok(out) = ident(&s) {
            prop_assert_eq!(out, s.as_str());
            prop_assert!(!breaks_out(out));
            prop_assert!((1..=64).contains(&out.len()) && !out.starts_with('-'));
            prop_assert!(out.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
        }
    }

    #[test]
    fn token_passes_only_one_word(s in hostile()) {
        if let Ok(out) = token(&s) {
            prop_assert_eq!(out, s.as_str());
            prop_assert!(!out.is_empty() && !breaks_out(out));
        }
    }

    #[test]
    fn base_passes_no_whitespace_or_controls(segs in prop::collection::vec(hostile(), 1..4)) {
        let key = format!("/{}", segs.join("/"));
        let b = crate::gopath::base(&key);
        if let Ok(out) = base_name(b) {
            prop_assert_eq!(out, b);
            prop_assert!(!out.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
    }
}

#[test]
fn convert_maps_the_go_checks_to_the_filters() {
    let src = "{{range gets \"/s/*\"}}server {{base .Key | ident}} {{addr .Value}} {{token \"x\"}}\n{{end}}";
    let go = crate::template::GoTemplate::parse("t.tmpl", src.to_string()).unwrap();
    let c = crate::template::convert::convert(&go).unwrap();
    for filter in ["| ident", "| addr", "| token"] {
        assert!(c.text.contains(filter), "{filter} in {}", c.text);
    }
    let mut e = Engine::new();
    e.add_raw("t.tera", &c.text).unwrap();
    for (value, ok) in [("10.0.0.1:80", true), ("10.0.0.1:80;", false)] {
        let got = e.render("t.tera", view(&[("/s/web1", value)]));
        let want = go.render(&view(&[("/s/web1", value)]));
        assert_eq!(got.is_ok(), ok);
        assert_eq!(want.is_ok(), ok);
        if ok {
            assert_eq!(got.unwrap(), want.unwrap());
        }
    }
}
