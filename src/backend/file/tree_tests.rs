//! The directory walk and the capped read: loops, special files, depth and size caps.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::read::{self, ReadError};
use super::tree::{self, MAX_DEPTH};

fn names(root: &Path, paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

fn skipped(root: &Path, t: &tree::Tree) -> Vec<String> {
    t.skipped
        .iter()
        .map(|(p, why)| format!("{}: {why}", p.strip_prefix(root).unwrap().display()))
        .collect()
}

#[test]
fn links_back_into_the_tree_are_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("a.yaml"), "a: 1\n").unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/b.yaml"), "b: 1\n").unwrap();
    symlink(".", root.join("x")).unwrap();
    symlink(".", root.join("y")).unwrap();
    symlink("..", root.join("sub/up")).unwrap();
    // A link to a directory outside the tree is followed.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("c.json"), "{}").unwrap();
    symlink(other.path(), root.join("sub/other")).unwrap();
    let t = tree::data_files(&[root.to_path_buf()]).unwrap();
    assert_eq!(
        names(root, &t.files),
        ["a.yaml", "sub/b.yaml", "sub/other/c.json"]
    );
    let s = skipped(root, &t);
    assert_eq!(s.len(), 3, "{s:?}");
    for (got, name) in s.iter().zip(["sub/up", "x", "y"]) {
        assert!(
            got.starts_with(&format!("{name}: a directory already walked")),
            "{got}"
        );
    }
    // Each --file path is its own walk: a directory given twice applies twice.
    let t = tree::data_files(&[other.path().to_path_buf(), root.join("sub/other")]).unwrap();
    assert_eq!(t.files.len(), 2);
}

#[test]
fn fifos_sockets_and_devices_are_skipped_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("good.yaml"), "a: 1\n").unwrap();
    nix::unistd::mkfifo(&root.join("a.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(root.join("s.yaml")).unwrap();
    symlink("/dev/zero", root.join("z.yaml")).unwrap();
    symlink("nowhere", root.join("dangling.yaml")).unwrap();
    // Not data names: ignored without a word.
    nix::unistd::mkfifo(&root.join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let t = tree::data_files(&[root.to_path_buf()]).unwrap();
    assert_eq!(names(root, &t.files), ["good.yaml"]);
    let s = skipped(root, &t);
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(
        s[0].starts_with("a.yaml: a FIFO, not a regular file"),
        "{s:?}"
    );
    assert!(s[1].starts_with("dangling.yaml: cannot be read"), "{s:?}");
    assert!(s[2].starts_with("s.yaml: a socket"), "{s:?}");
    assert!(s[3].starts_with("z.yaml: a character device"), "{s:?}");
    // Given by name, such a file is an error (the data it stands for cannot be read).
    let e = tree::data_files(&[root.join("a.yaml")]).unwrap_err();
    assert!(e.contains("a.yaml: a FIFO, not a regular file"), "{e}");
    // And the reader refuses it too, without blocking.
    let e = read::read_file(&root.join("a.yaml"), 1 << 20).unwrap_err();
    assert!(matches!(e, ReadError::NotRegular("a FIFO")), "{e}");
    let e = read::read_file(&root.join("z.yaml"), 1 << 20).unwrap_err();
    assert!(matches!(e, ReadError::NotRegular(_)), "{e}");
}

#[test]
fn the_walk_is_capped_in_depth() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = dir.path().to_path_buf();
    for _ in 0..MAX_DEPTH + 2 {
        p.push("d");
    }
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("deep.yaml"), "a: 1\n").unwrap();
    let e = tree::data_files(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(
        e.contains(&format!("deeper than {MAX_DEPTH} directories")),
        "{e}"
    );
}

#[test]
fn reads_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.yaml");
    std::fs::write(&f, vec![b'#'; 4097]).unwrap();
    let e = read::read_file(&f, 4096).unwrap_err();
    assert_eq!(
        e.to_string(),
        "larger than the 4096 byte cap on a data file"
    );
    let got = read::read_file(&f, 4097).unwrap();
    assert_eq!(got.bytes.len(), 4097);
    assert!(!got.changed);
    // A source that never ends stops at the cap.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let e = read::read_limited(zero, 1 << 20, 0).unwrap_err();
    assert_eq!(e.to_string(), "larger than the 1 MiB cap on a data file");
}
