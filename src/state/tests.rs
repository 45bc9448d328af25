use super::*;
use crate::backend::BackendKind;
use proptest::prelude::*;

fn etcd(nodes: &[&str]) -> BackendConfig {
    BackendConfig {
        kind: BackendKind::Etcd,
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        ..BackendConfig::default()
    }
}

fn kvs(pairs: &[(&str, &str)]) -> KvMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn prefixes(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

#[test]
fn saves_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
    let path = id.path_in(dir.path());
    assert_eq!(load(&path, &id).unwrap(), None, "no file yet");
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let keys = kvs(&[("/app/a", "1"), ("/app/b", "line\nbreak \"quoted\" \u{e9}")]);
    save(&path, &id, &keys, at).unwrap();
    let back = load(&path, &id).unwrap().unwrap();
    assert_eq!(back.kvs, keys);
    assert_eq!(back.synced_at, at);
    // Saving again replaces it and leaves no temp file behind.
    save(&path, &id, &kvs(&[("/app/c", "3")]), at).unwrap();
    assert_eq!(
        load(&path, &id).unwrap().unwrap().kvs,
        kvs(&[("/app/c", "3")])
    );
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![id.file_name()]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "values may be secrets");
    assert!(std::fs::read(&path).unwrap().starts_with(HEADER.as_bytes()));
}

#[test]
fn a_failed_save_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
    let path = id.path_in(dir.path());
    save(&path, &id, &kvs(&[("/app/a", "1")]), SystemTime::now()).unwrap();
    // A directory where the temp file's rename must land: the rename fails.
    let blocked = dir.path().join("blocked.json");
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    assert!(save(&blocked, &id, &kvs(&[("/app/a", "2")]), SystemTime::now()).is_err());
    assert_eq!(
        load(&path, &id).unwrap().unwrap().kvs,
        kvs(&[("/app/a", "1")])
    );
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0, "the temp file is removed");
}

#[test]
fn refuses_files_over_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
    let path = id.path_in(dir.path());
    save(
        &path,
        &id,
        &kvs(&[("/app/a", &"x".repeat(1000))]),
        SystemTime::now(),
    )
    .unwrap();
    let err = load_capped(&path, &id, 512).unwrap_err();
    assert!(matches!(err, StateError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(load_capped(&path, &id, 4096).unwrap().is_some());
}

#[test]
fn refuses_a_wrong_header_or_identity() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
    let path = id.path_in(dir.path());
    save(&path, &id, &kvs(&[("/app/a", "1")]), SystemTime::now()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("snapshot 1", "snapshot 2", 1)).unwrap();
    let err = load(&path, &id).unwrap_err();
    assert!(matches!(err, StateError::Header { .. }), "{err}");
    std::fs::write(&path, "{}").unwrap();
    assert!(matches!(load(&path, &id), Err(StateError::Header { .. })));
    std::fs::write(&path, format!("{HEADER}{{\"keys\": 5}}")).unwrap();
    assert!(matches!(load(&path, &id), Err(StateError::Corrupt { .. })));
    // Another backend's file copied over this one's name.
    let other = Identity::new(&etcd(&["http://b:2379"]), &prefixes(&["/app"]));
    save(&path, &other, &kvs(&[("/app/a", "1")]), SystemTime::now()).unwrap();
    let err = load(&path, &id).unwrap_err();
    assert!(matches!(err, StateError::Identity { .. }), "{err}");
}

#[test]
fn identity_covers_what_decides_the_keys() {
    let base = etcd(&["http://a:2379"]);
    let p = prefixes(&["/app"]);
    let name = |cfg: &BackendConfig, p: &[String]| Identity::new(cfg, p).file_name();
    let same = name(&base, &p);
    assert_eq!(same, name(&base.clone(), &p), "stable");
    assert!(
        same.starts_with("etcd-") && same.ends_with(".json"),
        "{same}"
    );
    let mut differ = vec![
        name(&etcd(&["http://b:2379"]), &p),
        name(&base, &prefixes(&["/app", "/other"])),
        name(&base, &prefixes(&["/ap"])),
    ];
    let mut user = base.clone();
    user.username = Some("u".into());
    differ.push(name(&user, &p));
    let mut sep = base.clone();
    sep.separator = Some(":".into());
    differ.push(name(&sep, &p));
    let mut redis = base.clone();
    redis.kind = BackendKind::Redis;
    differ.push(name(&redis, &p));
    // Parts that could be confused when joined are kept apart.
    differ.push(name(&etcd(&["http://a:2379", ""]), &p));
    differ.push(name(&base, &prefixes(&["/app,/x"])));
    differ.push(name(&base, &prefixes(&["/app", ",/x"])));
    for d in &differ {
        assert_ne!(d, &same);
    }
    let file = |f: &str| BackendConfig {
        kind: BackendKind::File,
        files: vec![f.into()],
        ..BackendConfig::default()
    };
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        name(&file("data.yaml"), &p),
        name(&file(cwd.join("data.yaml").to_str().unwrap()), &p),
        "relative files are taken from the working directory"
    );
    assert_ne!(
        name(&file("data.yaml"), &p),
        name(&file("/elsewhere/data.yaml"), &p)
    );
    let mut pw = base.clone();
    pw.password = Some("secret".into());
    assert_eq!(name(&pw, &p), same, "the password is not part of it");
    // The hash is fixed: files saved by one build are found by the next.
    assert_eq!(format!("{:016x}", fnv1a(b"")), "cbf29ce484222325");
    assert_eq!(format!("{:016x}", fnv1a(b"a")), "af63dc4c8601ec8c");
}

/// A snapshot writer for an etcd backend on `/app`, writing into `dir`.
struct Writer {
    id: Identity,
    path: PathBuf,
    snaps: watch::Sender<Option<Arc<KvMap>>>,
    synced: watch::Sender<Option<SystemTime>>,
    writer: tokio::task::JoinHandle<()>,
}

fn writer_in(dir: &Path) -> Writer {
    let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
    let path = id.path_in(dir);
    let (snaps, snaps_rx) = watch::channel(None);
    let (synced, synced_rx) = watch::channel(None);
    let writer = tokio::spawn(run_writer(path.clone(), id.clone(), snaps_rx, synced_rx));
    Writer {
        id,
        path,
        snaps,
        synced,
        writer,
    }
}

#[tokio::test]
async fn the_writer_coalesces_and_writes_the_last_state_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer_in(dir.path());
    // A loaded snapshot is published before any sync: not written back.
    w.snaps
        .send_replace(Some(Arc::new(kvs(&[("/app/saved", "1")]))));
    tokio::time::sleep(MIN_GAP * 2).await;
    assert!(!w.path.exists());
    let t0 = UNIX_EPOCH + Duration::from_secs(1000);
    w.synced.send_replace(Some(t0));
    for i in 0..50 {
        w.snaps
            .send_replace(Some(Arc::new(kvs(&[("/app/n", &i.to_string())]))));
    }
    // Only the sync time moves: written at the end.
    w.synced.send_replace(Some(t0 + Duration::from_secs(5)));
    drop((w.snaps, w.synced));
    w.writer.await.unwrap();
    let back = load(&w.path, &w.id).unwrap().unwrap();
    assert_eq!(back.kvs, kvs(&[("/app/n", "49")]));
    assert_eq!(back.synced_at, t0 + Duration::from_secs(5));
}

#[tokio::test]
async fn a_change_is_written_once_the_keys_are_quiet_not_while_they_move() {
    let dir = tempfile::tempdir().unwrap();
    let w = writer_in(dir.path());
    w.synced
        .send_replace(Some(UNIX_EPOCH + Duration::from_secs(1000)));
    // Changes closer together than QUIET: nothing is written while they come.
    let mut longest = Duration::ZERO;
    let mut last = std::time::Instant::now();
    for i in 0..6 {
        w.snaps
            .send_replace(Some(Arc::new(kvs(&[("/app/n", &i.to_string())]))));
        longest = longest.max(last.elapsed());
        last = std::time::Instant::now();
        tokio::time::sleep(QUIET / 5).await;
    }
    // (Unless this machine paused the test for a quiet period.)
    if longest < QUIET / 2 {
        assert!(!w.path.exists(), "written while the keys were moving");
    }
    // Then quiet: written without the daemon stopping.
    let deadline = std::time::Instant::now() + QUIET * 10;
    while !w.path.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(QUIET / 10).await;
    }
    let back = load(&w.path, &w.id).unwrap().expect("written once quiet");
    assert_eq!(back.kvs, kvs(&[("/app/n", "5")]));
    drop((w.snaps, w.synced));
    w.writer.await.unwrap();
}

proptest! {
    #[test]
    fn random_bytes_never_panic_on_load(bytes in proptest::collection::vec(any::<u8>(), 0..2048), with_header in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::new(&etcd(&["http://a:2379"]), &prefixes(&["/app"]));
        let path = id.path_in(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut data = if with_header { HEADER.as_bytes().to_vec() } else { Vec::new() };
        data.extend_from_slice(&bytes);
        std::fs::write(&path, &data).unwrap();
        let _ = load(&path, &id);
    }
}
