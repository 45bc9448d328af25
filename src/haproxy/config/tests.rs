use super::*;

const BASE: &str = "global\n    maxconn 100\ndefaults\n    mode http\n    timeout client 5s\nbackend app\n    balance roundrobin\n    server a 127.0.0.1:8001 check\n    server b 127.0.0.1:8002 check weight 5\nlisten stats\n    bind 127.0.0.1:8404\n";

fn with(from: &str, to: &str) -> String {
    BASE.replace(from, to)
}

#[test]
fn server_changes_per_backend() {
    let new = with(
        "    server b 127.0.0.1:8002 check weight 5\n",
        "    server b 127.0.0.2:9002 check weight 7   # moved\n    server c 127.0.0.1:8003 check\n",
    );
    let d = diff(BASE, &new).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].backend, "app");
    assert_eq!(d[0].added.len(), 1);
    assert_eq!(d[0].added[0].name, "c");
    assert_eq!(d[0].changed.len(), 1);
    assert_eq!(d[0].changed[0].1.weight, 7);
    assert_eq!(d[0].servers.len(), 3);
    let gone = with("    server a 127.0.0.1:8001 check\n", "");
    assert_eq!(diff(BASE, &gone).unwrap()[0].removed, vec!["a".to_string()]);
}

#[test]
fn comments_spacing_and_order_are_no_change() {
    let new = "# rendered\n".to_string()
        + &with(
            "    server a 127.0.0.1:8001 check\n    server b 127.0.0.1:8002 check weight 5\n",
            "  server   b 127.0.0.1:8002 check weight 5\n\n    server a 127.0.0.1:8001 check # first\n",
        );
    assert_eq!(diff(BASE, &new).unwrap(), Vec::new());
}

#[test]
fn anything_else_is_a_fallback_with_its_reason() {
    let cases = [
        (
            with("timeout client 5s", "timeout client 6s"),
            Reason::OtherChange,
        ),
        (BASE.to_string() + "backend more\n", Reason::OtherChange),
        (with("listen stats", "listen stats2"), Reason::OtherChange),
        (
            with("8001 check\n", "8001 check inter 3s\n"),
            Reason::OtherChange,
        ),
        (
            with("8001 check\n", "8001 check\n    server c localhost:80\n"),
            Reason::RefusedLine,
        ),
        (
            with("8001 check\n", "8001 check\n    server a 127.0.0.1:80\n"),
            Reason::OtherChange,
        ),
        (
            with("roundrobin", "static-rr")
                .replace("8001 check\n", "8001 check\n    server c 127.0.0.1:8003\n"),
            Reason::StaticRr,
        ),
        (
            with("mode http\n", "mode http\n    default-server inter 3s\n")
                .replace("8001 check\n", "8001 check\n    server c 127.0.0.1:8003\n"),
            Reason::DefaultServer,
        ),
    ];
    // The static-rr case changes `balance` itself too: check it on a static-rr base.
    for (new, reason) in cases
        .iter()
        .filter(|(_, r)| *r != Reason::StaticRr && *r != Reason::DefaultServer)
    {
        assert_eq!(diff(BASE, new).unwrap_err().reason, *reason, "{new}");
    }
    for (new, reason) in cases.iter().filter(|(_, r)| *r == Reason::StaticRr) {
        assert_eq!(
            diff(&with("roundrobin", "static-rr"), new)
                .unwrap_err()
                .reason,
            *reason
        );
    }
    let defaults = with("mode http\n", "mode http\n    default-server inter 3s\n");
    for (new, reason) in cases.iter().filter(|(_, r)| *r == Reason::DefaultServer) {
        assert_eq!(diff(&defaults, new).unwrap_err().reason, *reason);
    }
}

#[test]
fn quotes_and_comments_split_as_haproxy_does() {
    assert_eq!(
        words(r#"  http-request set-header X "a # b" # note"#),
        vec!["http-request", "set-header", "X", "\"a # b\""]
    );
    assert_eq!(
        words(r"acl x path_beg /a\ b"),
        vec!["acl", "x", "path_beg", r"/a\ b"]
    );
}

#[test]
fn a_backend_name_that_could_smuggle_a_command_is_refused() {
    let old = BASE.replace("backend app", "backend a;shutdown");
    let new = old.replace("8001 check\n", "8001 check\n    server c 127.0.0.1:8003\n");
    assert_eq!(diff(&old, &new).unwrap_err().reason, Reason::RefusedLine);
}
