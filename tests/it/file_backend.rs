//! The file backend with real files and the real binary (issue #11): files rewritten in
//! place are never rendered half-written, trees with link loops, FIFOs and devices never
//! hang the daemon, and a file that fails to parse keeps its last good data.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Proc, confsync, tempdir, wait_file, wait_for, write};

const LIMIT: Duration = Duration::from_secs(15);
const SERVERS: usize = 3000;

/// One line per server and a trailer with the generation and the count.
const TEMPLATE: &str = "{% for s in gets(key=\"/app/servers/*\") %}server {{ s.key | base }} {{ s.value }}\n{% endfor %}# gen {{ getv(key=\"/app/gen\") }} servers {{ gets(key=\"/app/servers/*\") | length }}\n";

/// A config dir on the file backend reading `data` (a file or directory in it), with
/// one resource rendering [`TEMPLATE`] into `out/servers.cfg`; `check` is its check_cmd.
fn conf(data: &str, check: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    write(
        dir.path(),
        "confsync.toml",
        &format!("backend = \"file\"\nfile = [\"{data}\"]\n"),
    );
    write(dir.path(), "templates/servers.tmpl", TEMPLATE);
    let dest = dir.path().join("out/servers.cfg");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    write(
        dir.path(),
        "conf.d/servers.toml",
        &format!(
            "[template]\nsrc = \"servers.tmpl\"\ndest = \"{}\"\nkeys = [\"/app\"]\n{check}",
            dest.display()
        ),
    );
    (dir, dest)
}

fn daemon(dir: &Path) -> Proc {
    let mut c = confsync();
    c.args(["run", "--watch", "--confdir"]).arg(dir);
    Proc::spawn("confsync", c, &dir.join("confsync.log"))
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("confsync.log")).unwrap_or_default()
}

/// The data file of generation `generation`: `n` servers. Values are long plain
/// scalars, so a file cut almost anywhere still parses (as real files do).
fn data(generation: usize, n: usize) -> String {
    let mut s = format!("app:\n  gen: \"{generation}\"\n  servers:\n");
    for i in 0..n {
        s.push_str(&format!(
            "    s{i:05}: 10.{}.{}.{}:{} check weight 10 maxconn 100 inter 2s rise 2 fall 3\n",
            i / 65536,
            i / 256 % 256,
            i % 256,
            8000 + generation
        ));
    }
    s
}

/// The generation and server lines of a rendered file, and whether its trailer counts
/// exactly those lines.
fn parse_render(text: &str) -> Option<(usize, usize, bool)> {
    let trailer = text.lines().last()?;
    let rest = trailer.strip_prefix("# gen ")?;
    let (generation, count) = rest.split_once(" servers ")?;
    let lines = text.lines().filter(|l| l.starts_with("server ")).count();
    Some((
        generation.parse().ok()?,
        lines,
        count.parse::<usize>().ok()? == lines,
    ))
}

/// Rewrites `path` in place: truncated, then written in 8 KiB chunks with a few
/// milliseconds between them.
fn rewrite_in_chunks(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    for (i, chunk) in text.as_bytes().chunks(8192).enumerate() {
        f.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(2 + (i as u64 % 4)));
    }
}

#[test]
fn a_data_file_rewritten_in_place_is_never_rendered_half_written() {
    let versions = tempdir();
    let check = format!(
        "check_cmd = \"cp {{{{ src }}}} {}/$(date +%s%N)\"\n",
        versions.path().display()
    );
    let (dir, dest) = conf("data.yaml", &check);
    let file = dir.path().join("data.yaml");
    std::fs::write(&file, data(0, SERVERS)).unwrap();
    let _p = daemon(dir.path());
    assert!(
        wait_file(&dest, LIMIT, |s| s.ends_with("# gen 0 servers 3000\n")).is_some(),
        "first render: {}",
        log_of(dir.path())
    );
    // Every version of the destination a fast reader sees, by content.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let (dest, stop) = (dest.clone(), stop.clone());
        move || {
            let mut seen = BTreeSet::new();
            loop {
                // One more read after the stop, so the last render is among those seen.
                let last = stop.load(Ordering::Relaxed);
                if let Ok(text) = std::fs::read_to_string(&dest) {
                    seen.insert(parse_render(&text));
                }
                if last {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    for generation in 1..=20 {
        let text = data(generation, SERVERS);
        if generation % 2 == 1 {
            rewrite_in_chunks(&file, &text);
        } else {
            std::fs::write(&file, &text).unwrap();
        }
        let want = format!("# gen {generation} servers 3000\n");
        assert!(
            wait_file(&dest, LIMIT, |s| s.ends_with(&want)).is_some(),
            "generation {generation} rendered: {}",
            log_of(dir.path())
        );
    }
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    // Every version the daemon rendered went through check_cmd: each is complete.
    let mut checked = BTreeSet::new();
    for e in std::fs::read_dir(versions.path()).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let got = parse_render(&text);
        assert!(
            matches!(got, Some((_, SERVERS, true))),
            "a rendered version is partial: {got:?}"
        );
        checked.insert(got.unwrap().0);
    }
    assert_eq!(
        checked,
        (0..=20).collect::<BTreeSet<_>>(),
        "every generation rendered, once complete"
    );
    let gens: BTreeSet<usize> = seen.iter().flatten().map(|(g, _, _)| *g).collect();
    assert!(gens.contains(&20), "the reader saw renders: {seen:?}");
    for v in &seen {
        assert!(
            matches!(v, Some((_, SERVERS, true))),
            "the destination was partial: {v:?}"
        );
    }
}

/// A data dir with `good.yaml`, two links back to itself, a FIFO named `a.yaml` and
/// `z.yaml -> /dev/zero`.
fn hostile_tree(dir: &Path) -> PathBuf {
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::os::unix::fs::symlink(".", data_dir.join("x")).unwrap();
    std::os::unix::fs::symlink(".", data_dir.join("y")).unwrap();
    nix::unistd::mkfifo(&data_dir.join("a.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink("/dev/zero", data_dir.join("z.yaml")).unwrap();
    data_dir.join("good.yaml")
}

#[test]
fn link_loops_fifos_and_devices_are_skipped_and_sigterm_still_stops() {
    let (dir, dest) = conf("data", "");
    let good = hostile_tree(dir.path());
    // SIGTERM during the first listing: a file written to all the time keeps that
    // listing waiting for it to settle.
    std::fs::write(&good, data(1, 3)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (good, stop) = (good.clone(), stop.clone());
        move || {
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&good, data(1, 3)).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let mut p = daemon(dir.path());
    assert!(
        wait_for(LIMIT, || log_of(dir.path())
            .contains("a.yaml")
            .then_some(()))
        .is_some(),
        "the first listing ran: {}",
        log_of(dir.path())
    );
    std::thread::sleep(Duration::from_millis(200));
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    let st = p.wait_exit(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        st.is_some(),
        "SIGTERM during the first listing stops the daemon: {}",
        log_of(dir.path())
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!dest.exists(), "nothing rendered before a good listing");

    // Later: the good file renders, each skipped path is named once, SIGTERM stops it.
    std::fs::remove_file(dir.path().join("confsync.log")).unwrap();
    let mut p = daemon(dir.path());
    assert!(
        wait_file(&dest, LIMIT, |s| s.ends_with("# gen 1 servers 3\n")).is_some(),
        "{}",
        log_of(dir.path())
    );
    std::fs::write(&good, data(2, 4)).unwrap();
    assert!(wait_file(&dest, LIMIT, |s| s.ends_with("# gen 2 servers 4\n")).is_some());
    let log = log_of(dir.path());
    let data_dir = dir.path().join("data");
    for (name, why) in [
        ("x", "a directory already walked"),
        ("y", "a directory already walked"),
        ("a.yaml", "a FIFO, not a regular file"),
        ("z.yaml", "a character device, not a regular file"),
    ] {
        let line = format!("{}: {why}", data_dir.join(name).display());
        assert_eq!(log.matches(&line).count(), 1, "{line} once in: {log}");
    }
    p.signal(nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    let st = p
        .wait_exit(Duration::from_secs(5))
        .expect("SIGTERM stops it");
    assert!(st.success(), "{st:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_data_file_that_fails_to_parse_keeps_its_last_good_data() {
    let (dir, dest) = conf("data.yaml", "");
    let file = dir.path().join("data.yaml");
    std::fs::write(&file, data(1, 3)).unwrap();
    let _p = daemon(dir.path());
    let good = wait_file(&dest, LIMIT, |s| s.ends_with("# gen 1 servers 3\n")).expect("rendered");
    // An unclosed flow list on line 4, reported where the input ends (line 5).
    std::fs::write(
        &file,
        "app:\n  gen: \"2\"\n  servers:\n    s00000: [\"10.0.0.1:80\"\n",
    )
    .unwrap();
    let needle = format!("{}: line 5", file.display());
    assert!(
        wait_for(LIMIT, || log_of(dir.path()).contains(&needle).then_some(())).is_some(),
        "the error names the file and line: {}",
        log_of(dir.path())
    );
    assert!(log_of(dir.path()).contains("keeping its last good data"));
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        good,
        "render unchanged"
    );
    std::fs::write(&file, data(3, 5)).unwrap();
    assert!(
        wait_file(&dest, LIMIT, |s| s.ends_with("# gen 3 servers 5\n")).is_some(),
        "the fixed file is used: {}",
        log_of(dir.path())
    );
}
