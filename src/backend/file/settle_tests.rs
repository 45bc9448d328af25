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

/// A test's timing precondition did not hold (the machine paused this thread, or the
/// writer thread, for longer than the settle period): the outcome says nothing.
#[derive(Debug)]
struct Late(String);

/// `Err(Late)` when more than `within` has passed since `since`.
fn on_time(what: &str, since: Instant, within: Duration) -> Result<(), Late> {
    let took = since.elapsed();
    if took < within {
        Ok(())
    } else {
        Err(Late(format!("{what} took {took:?}, not under {within:?}")))
    }
}

/// Runs `body` until its timing preconditions hold, at most five times: on a loaded
/// machine a pause longer than the settle period makes a file settled that the test
/// meant to be fresh, which is the rule working, not failing. Real failures panic.
fn unless_late(body: impl Fn() -> Result<(), Late>) {
    let mut lates = Vec::new();
    for _ in 0..5 {
        match body() {
            Ok(()) => return,
            Err(Late(why)) => lates.push(why),
        }
    }
    panic!("late five times in a row, the machine is too busy for this test: {lates:?}");
}

#[test]
fn a_file_changed_just_now_is_read_once_it_settles() {
    unless_late(|| {
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
        on_time("a vouched-for read", start, SETTLE / 2)?;
        // Until it is written to again.
        let written = Instant::now();
        std::fs::write(&f, "a: 3\n").unwrap();
        complete.unmark(&f);
        let start = Instant::now();
        let (m, _) = load(&mut Files::default(), &[&f], &complete, Patience::Now);
        assert_eq!(v(&m, "/a"), "3");
        if start.elapsed() < SETTLE / 2 {
            // Read at once: only right if the file had settled by the time it was read.
            on_time("write to read", written, SETTLE)?;
            panic!("a file written to again waits for the settle period");
        }
        Ok(())
    });
}

#[test]
fn an_unsettled_file_keeps_its_last_good_data_and_says_when_to_look_again() {
    unless_late(|| {
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
        let written = Instant::now();
        std::fs::write(&f, "a: 2\nb: part").unwrap();
        let (m, retry) = load(&mut files, &[&f], &complete, Patience::Now);
        on_time("write to listing", written, SETTLE / 2)?;
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
        Ok(())
    });
}

#[test]
fn a_new_file_is_left_out_until_it_settles_but_a_first_listing_waits() {
    unless_late(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
        let complete = Complete::default();
        let mut files = Files::default();
        let d = dir.path();
        assert_eq!(load(&mut files, &[d], &complete, Patience::Now).0.len(), 1);
        let written = Instant::now();
        std::fs::write(dir.path().join("b.yaml"), "b: 1\n").unwrap();
        let (m, retry) = load(&mut files, &[d], &complete, Patience::Now);
        on_time("write to listing", written, SETTLE / 2)?;
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(retry.is_some());
        std::thread::sleep(SETTLE + Duration::from_millis(20));
        let (m, retry) = load(&mut files, &[d], &complete, Patience::Now);
        assert_eq!(v(&m, "/b"), "1");
        assert_eq!(retry, None);
        Ok(())
    });
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    unless_late(|| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.yaml");
        std::fs::write(&f, "a: 1\n").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // The longest the writer went between two writes, in microseconds.
        let gap = Arc::new(AtomicU64::new(0));
        let writer = std::thread::spawn({
            let (f, stop, gap) = (f.clone(), stop.clone(), gap.clone());
            move || {
                let mut i = 0;
                let mut last = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    std::fs::write(&f, format!("a: {i}\n")).unwrap();
                    let micros = last.elapsed().as_micros() as u64;
                    gap.fetch_max(micros, Ordering::Relaxed);
                    last = Instant::now();
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        let start = Instant::now();
        let got = Files::default().load(
            std::slice::from_ref(&f),
            &Complete::default(),
            Patience::Wait,
        );
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let gap = Duration::from_micros(gap.load(Ordering::Relaxed));
        match got {
            Err(e) => {
                assert!(e.contains("d.yaml") && e.contains("not read yet"), "{e}");
                assert!(took >= MAX_WAIT / 2 && took < MAX_WAIT * 10, "{took:?}");
                Ok(())
            }
            // Taken: only right if the writer paused for a settle period.
            Ok(_) if gap >= SETTLE / 2 => Err(Late(format!("the writer paused {gap:?}"))),
            Ok(l) => panic!(
                "read a file rewritten every 5 ms (longest pause {gap:?}): {:?}",
                l.entries
            ),
        }
    });
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
