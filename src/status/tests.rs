use std::path::PathBuf;

use super::*;
use crate::resource::stage::Old;
use crate::resource::{CommandError, Outcome, Synced, Timings};

fn res(name: &str, mode: Option<u32>) -> Resource {
    let mut r = crate::config::resource::test_resource();
    r.name = name.into();
    r.dest = PathBuf::from(format!("/srv/{name}.cfg"));
    r.mode = mode;
    r
}

/// The file a change replaced, holding `bytes` (open, as a sync hands it over).
fn old(bytes: &[u8]) -> Option<Old> {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    Some(Old::open(f.path()).unwrap())
}

fn updated() -> Synced {
    Synced {
        outcome: Outcome::Updated(Timings::default()),
        excluded: Vec::new(),
        runtime: None,
    }
}

fn check_failed(r: &Resource) -> SyncError {
    SyncError::Check {
        resource: r.name.clone(),
        dest: r.dest.display().to_string(),
        kept: String::new(),
        source: Box::new(CommandError::Failed {
            cmd: "check".into(),
            status: "exit status: 1".into(),
            output: "line 3: bad value </pre><script>\n".into(),
        }),
    }
}

#[test]
fn a_change_then_a_refused_check_are_both_reported() {
    let s = Status::new();
    let r = res("web", Some(0o644));
    s.add_resource(&r);
    s.add_backend("default", "file");
    s.backend_up("default", true, None);
    s.backend_keys("default", 3);
    s.backend_current("default", SystemTime::now(), false);
    let o = s.observer(&r);
    o.rendered(3, 0o644);
    o.replaced(old(b"a\n"), b"b\n".to_vec());
    let ok = updated();
    s.synced(
        &r,
        Ending {
            result: Ok(&ok),
            reload: Some(("reload", true)),
            pending: false,
            state: &ResourceState::InStep,
        },
    );
    let e = check_failed(&r);
    s.synced(
        &r,
        Ending {
            result: Err(&e),
            reload: None,
            pending: false,
            state: &ResourceState::Refused("check failed".into()),
        },
    );
    let rep = s.report();
    let b = &rep.backends[0];
    assert!(b.up && b.keys == Some(3) && b.last_sync.is_some());
    let w = &rep.resources[0];
    assert_eq!((w.name.as_str(), w.state.as_str()), ("web", "refused"));
    assert_eq!(w.keys_seen, Some(3));
    assert!(!w.secret);
    let d = w.diff.as_ref().unwrap();
    assert!(d.text.contains("-a\n+b\n"), "{}", d.text);
    assert_eq!(w.last_reload.as_ref().unwrap().path, "reload");
    let f = w.last_error.as_ref().unwrap();
    assert_eq!(f.stage, "check");
    assert!(
        f.message.contains("`check` failed (exit status: 1)"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("line 3"), "{}", f.message);
    assert_eq!(
        f.output.as_deref(),
        Some("line 3: bad value </pre><script>")
    );
    // The page escapes what the check printed.
    let page = html::page(&rep);
    assert!(page.contains("line 3: bad value &lt;/pre&gt;&lt;script&gt;"));
    assert!(!page.contains("<script"));
}

#[test]
fn a_file_others_cannot_read_shows_no_contents() {
    let s = Status::new();
    // No mode configured: secret until a sync sees the file's mode.
    let r = res("vault", None);
    s.add_resource(&r);
    assert!(s.report().resources[0].secret);
    let o = s.observer(&r);
    o.rendered(1, 0o600);
    o.replaced(None, b"password secret\n".to_vec());
    let e = check_failed(&r);
    s.synced(
        &r,
        Ending {
            result: Err(&e),
            reload: None,
            pending: false,
            state: &ResourceState::Refused("check failed".into()),
        },
    );
    let rep = s.report();
    let json = serde_json::to_string(&rep).unwrap();
    assert!(
        !json.contains("secret\\n") && !json.contains("line 3"),
        "{json}"
    );
    let w = &rep.resources[0];
    assert!(w.secret && w.diff.is_none());
    assert!(w.last_error.as_ref().unwrap().output.is_none());
}

#[test]
fn a_file_made_secret_drops_what_was_shown_before() {
    let s = Status::new();
    let r = res("web", None);
    s.add_resource(&r);
    let o = s.observer(&r);
    o.rendered(1, 0o644);
    o.replaced(None, b"x\n".to_vec());
    let e = check_failed(&r);
    let refused = ResourceState::Refused("check failed".into());
    let end = |e| Ending {
        result: Err(e),
        reload: None,
        pending: false,
        state: &refused,
    };
    s.synced(&r, end(&e));
    assert!(s.report().resources[0].diff.is_some());
    // The next sync finds the file chmod'ed to 0600.
    o.rendered(1, 0o600);
    let json = serde_json::to_string(&s.report()).unwrap();
    assert!(!json.contains("+x") && !json.contains("line 3"), "{json}");
}

#[test]
fn removed_resources_and_backends_are_forgotten_and_not_recorded_again() {
    let s = Status::new();
    let (a, b) = (res("a", Some(0o644)), res("b", Some(0o644)));
    s.add_resource(&a);
    s.add_resource(&b);
    s.add_backend("x", "env");
    s.retain_resources(&["b".to_owned()]);
    s.remove_backend("x");
    s.observer(&a).rendered(1, 0o644);
    s.backend_up("x", true, None);
    let rep = s.report();
    assert_eq!(rep.resources.len(), 1);
    assert_eq!(rep.resources[0].name, "b");
    assert!(rep.backends.is_empty());
}

#[test]
fn one_report_holds_a_bounded_amount_of_diff() {
    let s = Status::new();
    let big: Vec<u8> = (0..12_000)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let n = MAX_REPORT_DIFFS / diff::MAX_DIFF + 3;
    for i in 0..n {
        let r = res(&format!("r{i:04}"), Some(0o644));
        s.add_resource(&r);
        s.observer(&r).rendered(1, 0o644);
        s.observer(&r).replaced(None, big.clone());
    }
    let rep = s.report();
    let total: usize = rep
        .resources
        .iter()
        .filter_map(|r| r.diff.as_ref())
        .map(|d| d.text.len())
        .sum();
    assert!(total <= MAX_REPORT_DIFFS, "{total}");
    let last = rep.resources.last().unwrap();
    assert!(last.diff.is_none() && last.diff_withheld.as_deref().unwrap().contains("8 MiB"));
    assert!(rep.resources[0].diff.as_ref().unwrap().truncated);
}

#[test]
fn the_json_reads_back_as_the_same_report() {
    let s = Status::new();
    let r = res("web", Some(0o644));
    s.add_resource(&r);
    s.add_backend("default", "file");
    s.backend_up("default", false, Some("connection refused"));
    let rep = s.report();
    let back: Report = serde_json::from_str(&serde_json::to_string(&rep).unwrap()).unwrap();
    // Times may differ in their last bit (serde_json parses floats fast, not exactly).
    assert_eq!(back.resources[0].name, rep.resources[0].name);
    assert_eq!(
        back.backends[0].last_error.as_ref().unwrap().message,
        "connection refused"
    );
    assert!((back.generated_unix - rep.generated_unix).abs() < 1e-3);
    let table = table::render(&rep);
    assert!(
        table.contains("RESOURCE") && table.contains("/srv/web.cfg"),
        "{table}"
    );
    assert!(table.contains("connection refused"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_are_worked_out_beside_the_sync_and_only_the_last_change_kept() {
    let s = Status::new();
    let r = res("web", Some(0o644));
    s.add_resource(&r);
    let o = s.observer(&r);
    o.rendered(1, 0o644);
    // A slow diff (a large file) and a quick one right after: the quick one must win.
    let big_old: String = (0..20_000).map(|i| format!("server a{i}\n")).collect();
    let big_new: String = (0..20_000).map(|i| format!("server b{i}\n")).collect();
    o.replaced(old(big_old.as_bytes()), big_new.clone().into_bytes());
    o.replaced(old(b"x\n"), b"y\n".to_vec());
    let diff = || s.lock().resources["web"].diff.clone();
    for _ in 0..500 {
        if diff().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Give the slow one time to finish too: it must not replace the later diff.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (text, _) = diff().expect("the last change's diff");
    assert!(text.contains("-x\n+y\n"), "{text}");
}
