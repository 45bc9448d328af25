//! The status page (issue #17) against a running daemon on the file backend: a render,
//! a change, and a check that fails with output, as the page shows them in a real
//! headless Chromium, as `/status.json` serves them and as `confsync status` prints them.
//! Keys and values are hostile: one value is markup that must stay text.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::http_get;
use crate::support::{
    Proc, confsync, free_port, require_program, tempdir, wait_file, wait_for, write,
};

const LIMIT: Duration = Duration::from_secs(20);
/// A value that closes the diff's `<pre>` and opens elements, if it were not escaped.
const HOSTILE: &str =
    r#"10.0.0.2:80 </pre><script>document.title="pwned"</script><b id="injected">x</b>"#;
/// What the check refuses, and prints (markup again) on stderr.
const BAD: &str = "BAD <img src=x onerror=alert(1)>";

/// A config dir on the file backend with one resource `web` that renders a line per
/// server, checks for `BAD` (printing the offending lines on stderr) and reloads with
/// `true`; `/` and `/status.json` on 127.0.0.1:`port`.
fn conf() -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    write(
        dir.path(),
        "confsync.toml",
        "backend = \"file\"\nfile = [\"data.yaml\"]\n",
    );
    data(dir.path(), &[("a", "10.0.0.1:80")]);
    write(
        dir.path(),
        "templates/web.tmpl",
        "{% for s in gets(key=\"/servers/*\") %}server {{ s.key | base }} {{ s.value }}\n{% endfor %}",
    );
    let dest = dir.path().join("out/web.cfg");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    write(
        dir.path(),
        "conf.d/web.toml",
        &format!(
            "[template]\nsrc = \"web.tmpl\"\ndest = \"{}\"\nkeys = [\"/servers\"]\n\
             check_cmd = \"if grep -q BAD {{{{ src }}}}; then grep BAD {{{{ src }}}} >&2; exit 3; fi\"\n\
             reload_cmd = \"true\"\n",
            dest.display()
        ),
    );
    (dir, dest)
}

/// Replaces `data.yaml` at once (a rename) with `servers`.
fn data(dir: &Path, servers: &[(&str, &str)]) {
    let mut s = String::from("servers:\n");
    for (k, v) in servers {
        s.push_str(&format!("  {k}: '{v}'\n"));
    }
    let tmp = dir.join(".data.yaml.new");
    std::fs::write(&tmp, s).unwrap();
    std::fs::rename(&tmp, dir.join("data.yaml")).unwrap();
}

/// Starts the daemon, then makes it render, change and refuse a change: returns it
/// with its port once `/status.json` reports the failed check.
fn daemon_with_history(dir: &Path, dest: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"])
        .arg(dir)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")]);
    let p = Proc::spawn("confsync", c, &dir.join("confsync.log"));
    let log = || std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default();
    wait_file(dest, LIMIT, |s| s.contains("server a"))
        .unwrap_or_else(|| panic!("first render; log:\n{}", log()));
    data(dir, &[("a", "10.0.0.1:80"), ("b", HOSTILE)]);
    wait_file(dest, LIMIT, |s| s.contains("server b"))
        .unwrap_or_else(|| panic!("the change; log:\n{}", log()));
    data(dir, &[("a", "10.0.0.1:80"), ("b", HOSTILE), ("c", BAD)]);
    wait_for(LIMIT, || {
        let (_, body) = http_get(port, "/status.json")?;
        body.contains("\"stage\": \"check\"").then_some(())
    })
    .unwrap_or_else(|| panic!("no failed check in /status.json; log:\n{}", log()));
    (p, port)
}

#[test]
fn status_page_in_headless_chromium_shows_the_change_and_the_failed_check_escaped() {
    let chromium = require_program("chromium", "chromium");
    let (dir, dest) = conf();
    let (_p, port) = daemon_with_history(dir.path(), &dest);
    let dom = dump_dom(&chromium, &format!("http://127.0.0.1:{port}/"));
    let show = || format!("DOM:\n{dom}");
    assert!(dom.contains("<h1>confsync</h1>"), "{}", show());
    assert!(dom.contains(">web</a>"), "the resource: {}", show());
    assert!(
        dom.contains(&dest.display().to_string()),
        "the dest: {}",
        show()
    );
    // The failed check and what it printed (markup, as text).
    assert!(dom.contains("check at "), "{}", show());
    assert!(
        dom.contains("<pre class=\"stderr\">server c BAD &lt;img src=x onerror=alert(1)&gt;</pre>"),
        "the check's stderr: {}",
        show()
    );
    // The last change's diff, hostile value and all, as text.
    assert!(
        dom.contains("<span class=\"add\">+server b 10.0.0.2:80 &lt;/pre&gt;&lt;script&gt;"),
        "the diff: {}",
        show()
    );
    assert!(
        dom.contains("&lt;b id=\"injected\"&gt;x&lt;/b&gt;"),
        "{}",
        show()
    );
    // Nothing was injected: no element, no script, no changed title.
    assert!(!dom.contains("<b id=\"injected\">"), "{}", show());
    assert!(
        !dom.contains("<script") && !dom.contains("<img"),
        "{}",
        show()
    );
    assert!(dom.contains("<title>confsync status</title>"), "{}", show());
    assert!(
        dom.contains("<td>file</td>") && dom.contains(">up</span>"),
        "the backend: {}",
        show()
    );
}

#[test]
fn status_json_and_confsync_status_report_the_resource_and_the_backend() {
    let (dir, dest) = conf();
    let (_p, port) = daemon_with_history(dir.path(), &dest);
    let (status, body) = http_get(port, "/status.json").expect("answer");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let r = &v["resources"][0];
    assert_eq!(r["name"], "web");
    assert_eq!(r["dest"], dest.display().to_string());
    assert_eq!(r["backend"], "default");
    assert_eq!(r["state"], "refused");
    assert_eq!(r["state_detail"], "check failed");
    assert_eq!(r["keys_seen"], 3, "{r}");
    assert_eq!(r["secret"], false);
    assert_eq!(r["reload_pending"], false);
    assert_eq!(r["last_reload"]["path"], "reload");
    assert_eq!(r["last_reload"]["ok"], true);
    for t in ["last_render", "last_change"] {
        assert!(r[t]["unix"].as_f64().unwrap() > 1e9, "{t}: {r}");
        assert!(r[t]["age_seconds"].as_f64().unwrap() >= 0.0, "{t}: {r}");
    }
    let e = &r["last_error"];
    assert_eq!(e["stage"], "check");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("failed (exit status: 3)"),
        "{e}"
    );
    assert_eq!(e["output"], format!("server c {BAD}"));
    let diff = r["diff"]["text"].as_str().unwrap();
    assert!(diff.contains(&format!("+server b {HOSTILE}\n")), "{diff}");
    assert!(!diff.contains("server c"), "only swapped changes: {diff}");
    let b = &v["backends"][0];
    assert_eq!(
        (&b["name"], &b["kind"], &b["up"]),
        (&"default".into(), &"file".into(), &true.into())
    );
    assert_eq!(b["keys"], 3);
    assert!(
        b["last_sync"]["age_seconds"].as_f64().unwrap() < 60.0,
        "{b}"
    );
    assert!(b["last_listing"]["unix"].as_f64().unwrap() > 1e9, "{b}");

    let out = confsync()
        .args(["status", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for want in [
        "BACKEND",
        "default  file  up",
        "RESOURCE",
        "refused: check failed",
        "web last error (check,",
        "  | server c BAD <img src=x onerror=alert(1)>",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    assert!(text.contains(&dest.display().to_string()), "{text}");
}

#[test]
fn confsync_status_names_the_address_when_nothing_answers() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = confsync()
        .args(["status", "--metrics-addr", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("nothing answers on {addr}")), "{err}");
    assert!(err.contains("--metrics-addr"), "{err}");
}

/// `chromium --headless --dump-dom URL` in its own process group with a fresh profile,
/// bounded in time; the group is killed at the end whatever happened.
fn dump_dom(chromium: &Path, url: &str) -> String {
    use std::os::unix::process::CommandExt;
    let _heavy = crate::support::cpu_heavy();
    let tmp = tempdir();
    let out_path = tmp.path().join("dom.html");
    let err_path = tmp.path().join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .args(["--dump-dom", url])
        .env("HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= end {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let dom = std::fs::read_to_string(&out_path).unwrap_or_default();
    let log = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(st) if st.success() && !dom.is_empty() => dom,
        Some(st) => panic!("chromium exited {st} with no DOM; its log:\n{log}"),
        None => panic!("chromium did not finish within 60 s; its log:\n{log}"),
    }
}
