//! When a data file is used: settled, vouched for by the watch, or not yet (its last good
//! data stands in); a file that fails to parse keeps its last good data too.

use std::path::Path;
use std::time::{Duration, Instant};

use super::settle::{Complete, Files, MAX_WAIT, Patience, SETTLE};
use super::{KvMap, into_map};

fn load(
    files: &mut Files,
    paths: &[&Path],
    complete: &Complete,
    p: Patience,
) -> (KvMap, Option<Instant>) {
    let paths: Vec<_> = paths.iter().map(|p| p.to_path_buf()).collect();
    let listed = files.load(&paths, complete, p).unwrap();
    (into_map(listed.entries), listed.retry_at)
}

fn v(m: &KvMap, k: &str) -> String {
    m.get(k).cloned().unwrap_or_default()
}

#[test]
fn a_file_changed_just_now_is_read_once_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.yaml");
    std::fs::write(&f, "a: 1\n").unwrap();
    let start = Instant::now();
    let (m, retry) = load(
        &mut Files::default(),
        &[&f],
        &Complete::default(),
        Patience::Wait,
    );
    assert_eq!(v(&m, "/a"), "1");
    assert_eq!(retry, None);
    assert!(
        start.elapsed() >= SETTLE / 2,
        "a file written just now waits for the settle period ({:?})",
        start.elapsed()
    );
    // The watch's word (closed after writing, renamed in) makes it complete at once.
    std::fs::write(&f, "a: 2\n").unwrap();
    let complete = Complete::default();
    complete.mark(&f);
    let start = Instant::now();
    let (m, _) = load(&mut Files::default(), &[&f], &complete, Patience::Now);
    assert_eq!(v(&m, "/a"), "2");
    assert!(start.elapsed() < SETTLE / 2, "{:?}", start.elapsed());
    // Until it is written to again.
    std::fs::write(&f, "a: 3\n").unwrap();
    complete.unmark(&f);
    let start = Instant::now();
    let (m, _) = load(&mut Files::default(), &[&f], &complete, Patience::Now);
    assert_eq!(v(&m, "/a"), "3");
    assert!(start.elapsed() >= SETTLE / 2, "{:?}", start.elapsed());
}

#[test]
fn an_unsettled_file_keeps_its_last_good_data_and_says_when_to_look_again() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.yaml");
    std::fs::write(&f, "a: 1\n").unwrap();
    let complete = Complete::default();
    let mut files = Files::default();
    assert_eq!(
        v(&load(&mut files, &[&f], &complete, Patience::Wait).0, "/a"),
        "1"
    );
    // Rewritten in place, half-way: the watch's listing does not wait for it.
    std::fs::write(&f, "a: 2\nb: part").unwrap();
    let start = Instant::now();
    let (m, retry) = load(&mut files, &[&f], &complete, Patience::Now);
    assert!(start.elapsed() < SETTLE / 2, "{:?}", start.elapsed());
    assert_eq!(v(&m, "/a"), "1", "last good data");
    assert!(!m.contains_key("/b"));
    let retry = retry.expect("a time to look again");
    assert!(retry <= Instant::now() + SETTLE, "{retry:?}");
    std::fs::write(&f, "a: 2\nb: whole\n").unwrap();
    std::thread::sleep(SETTLE + Duration::from_millis(20));
    let (m, retry) = load(&mut files, &[&f], &complete, Patience::Now);
    assert_eq!((v(&m, "/a"), v(&m, "/b")), ("2".into(), "whole".into()));
    assert_eq!(retry, None);
    // A poll waits for it instead.
    std::fs::write(&f, "a: 3\n").unwrap();
    let (m, _) = load(&mut files, &[&f], &complete, Patience::Wait);
    assert_eq!(v(&m, "/a"), "3");
}

#[test]
fn a_new_file_is_left_out_until_it_settles_but_a_first_listing_waits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
    let complete = Complete::default();
    let mut files = Files::default();
    let d = dir.path();
    assert_eq!(load(&mut files, &[d], &complete, Patience::Now).0.len(), 1);
    std::fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
    let (m, retry) = load(&mut files, &[d], &complete, Patience::Now);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(retry.is_some());
    std::thread::sleep(SETTLE + Duration::from_millis(20));
    let (m, retry) = load(&mut files, &[d], &complete, Patience::Now);
    assert_eq!(v(&m, "/b"), "1");
    assert_eq!(retry, None);
}

#[test]
fn a_file_that_fails_to_parse_keeps_its_last_good_data() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.yaml");
    std::fs::write(&f, "a: 1\n").unwrap();
    let complete = Complete::default();
    // A first listing has nothing to fall back on: the error names the file and line.
    std::fs::write(&f, "a: [1\n").unwrap();
    complete.mark(&f);
    let e = Files::default()
        .load(std::slice::from_ref(&f), &complete, Patience::Now)
        .unwrap_err();
    assert!(e.contains("d.yaml: line 2"), "{e}");
    let mut files = Files::default();
    std::fs::write(&f, "a: 1\n").unwrap();
    complete.mark(&f);
    assert_eq!(
        v(&load(&mut files, &[&f], &complete, Patience::Now).0, "/a"),
        "1"
    );
    std::fs::write(&f, "a: 2\nb: [\n").unwrap();
    complete.mark(&f);
    let (m, retry) = load(&mut files, &[&f], &complete, Patience::Now);
    assert_eq!(v(&m, "/a"), "1");
    assert_eq!(
        retry, None,
        "nothing to wait for: the file is complete and broken"
    );
    std::fs::write(&f, "a: 3\n").unwrap();
    complete.mark(&f);
    assert_eq!(
        v(&load(&mut files, &[&f], &complete, Patience::Now).0, "/a"),
        "3"
    );
}

#[test]
fn a_file_that_never_settles_fails_a_first_listing_within_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.yaml");
    std::fs::write(&f, "a: 1\n").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (f, stop) = (f.clone(), stop.clone());
        move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                std::fs::write(&f, format!("a: {i}\n")).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let start = Instant::now();
    let e = Files::default()
        .load(
            std::slice::from_ref(&f),
            &Complete::default(),
            Patience::Wait,
        )
        .unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(e.contains("d.yaml") && e.contains("not read yet"), "{e}");
    let took = start.elapsed();
    assert!(took >= MAX_WAIT / 2 && took < MAX_WAIT * 10, "{took:?}");
}

#[test]
fn an_emptied_file_keeps_its_last_good_data_until_it_says_empty() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("d.yaml");
    let complete = Complete::default();
    let mut files = Files::default();
    // With nothing to fall back on, an empty file fails the first listing, naming it.
    std::fs::write(&f, "# soon\n").unwrap();
    complete.mark(&f);
    let e = files
        .load(std::slice::from_ref(&f), &complete, Patience::Now)
        .unwrap_err();
    assert!(e.contains("d.yaml: the file is empty"), "{e}");
    std::fs::write(&f, "a: 1\n").unwrap();
    complete.mark(&f);
    assert_eq!(
        v(&load(&mut files, &[&f], &complete, Patience::Now).0, "/a"),
        "1"
    );
    // Truncated: the last good data stays.
    std::fs::write(&f, "").unwrap();
    complete.mark(&f);
    assert_eq!(
        v(&load(&mut files, &[&f], &complete, Patience::Now).0, "/a"),
        "1"
    );
    // `{}`: no keys, on purpose.
    std::fs::write(&f, "{}\n").unwrap();
    complete.mark(&f);
    assert!(
        load(&mut files, &[&f], &complete, Patience::Now)
            .0
            .is_empty()
    );
}
