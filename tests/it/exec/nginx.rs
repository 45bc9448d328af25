//! nginx as the exec child.

use nix::sys::signal::Signal;

use super::{LIMIT, alive, conf_dir, daemon, descendants, log_of, replace};
use crate::support::http::body_of as get;
use crate::support::{require_program, wait_for, wait_port, write};

/// An nginx config (a template) answering every request with `/app/greeting`, its
/// pid and temp files under `run`.
fn nginx_conf(run: &str, port: u16) -> String {
    let temps: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {run}/{t};\n"))
        .collect();
    let answer = r#"return 200 "{{ getv(key="/app/greeting") | safe_line }}\n";"#;
    format!(
        "pid {run}/nginx.pid;\nerror_log stderr;\nevents {{ worker_connections 64; }}\n\
         http {{\n    access_log off;\n{temps}    server {{\n        listen 127.0.0.1:{port};\n        \
         location / {{ {answer} }}\n    }}\n}}\n"
    )
}
/// nginx as the exec child: it starts after the first render, a key change reaches its
/// traffic through the reload signal (HUP) with the same master, and SIGTERM to
/// confsync stops nginx and exits 0.
#[test]
fn nginx_as_the_child_reloads_on_a_change_and_stops_with_confsync() {
    let nginx = require_program("nginx", "nginx");
    let (dir, data) = conf_dir("app:\n  greeting: hello-1\n");
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let run_s = run.display().to_string();
    let port = crate::support::free_port();
    write(
        dir.path(),
        "templates/nginx.tmpl",
        &nginx_conf(&run_s, port),
    );
    let dest = dir.path().join("nginx.conf");
    let nginx_s = nginx.display().to_string();
    write(
        dir.path(),
        "conf.d/nginx.toml",
        &format!(
            "[template]\nsrc = \"nginx.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n\
             check_cmd = \"{nginx_s} -t -q -p {run_s} -e stderr -c {{{{.src}}}}\"\n",
            dest.display()
        ),
    );
    let exec = format!(
        "{nginx_s} -p {run_s} -e stderr -g 'daemon off;' -c {}",
        dest.display()
    );
    let mut d = daemon(dir.path(), &["--exec", &exec]);
    let confsync_pid = d.child.id() as i32;
    assert!(
        wait_port(port, LIMIT),
        "nginx never listened; log:\n{}",
        log_of(dir.path())
    );
    // Listening is not yet serving the rendered page on a loaded machine: ask until it does.
    let first = wait_for(LIMIT, || {
        (get(port).as_deref() == Some("hello-1")).then_some(())
    });
    assert!(
        first.is_some(),
        "nginx never served hello-1: {:?}",
        get(port)
    );
    let master = |()| {
        descendants(confsync_pid)
            .into_iter()
            .filter(|p| p.1 == confsync_pid && p.3 == "nginx")
            .map(|p| p.0)
            .collect::<Vec<_>>()
    };
    let first = master(());
    assert_eq!(first.len(), 1, "one nginx master, confsync's child");

    let changed = std::time::Instant::now();
    replace(&data, "app:\n  greeting: hello-2\n");
    wait_for(LIMIT, || {
        (get(port).as_deref() == Some("hello-2")).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the change never reached nginx (got {:?}); log:\n{}",
            get(port),
            log_of(dir.path())
        )
    });
    eprintln!(
        "exec: the change reached nginx's traffic {:?} after the data file was replaced",
        changed.elapsed()
    );
    assert_eq!(
        master(()),
        first,
        "the same master, reloaded, and no second one"
    );
    assert!(
        log_of(dir.path()).contains("exec child told to reload"),
        "{}",
        log_of(dir.path())
    );

    d.signal(Signal::SIGTERM);
    let status = d
        .wait_exit(LIMIT)
        .unwrap_or_else(|| panic!("confsync did not stop; log:\n{}", log_of(dir.path())));
    assert_eq!(status.code(), Some(0), "log:\n{}", log_of(dir.path()));
    assert!(!alive(first[0]), "nginx outlived confsync");
    assert!(
        wait_for(LIMIT, || (!wait_port_once(port)).then_some(())).is_some(),
        "nginx still listens"
    );
}

fn wait_port_once(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
