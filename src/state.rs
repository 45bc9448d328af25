//! Each backend's last good snapshot on disk, so that a restart while the backend is
//! unreachable renders from what was last known instead of from nothing.
//!
//! One file per backend identity in `STATE_DIR/snapshots/`, named by a hash of
//! everything that decides what a listing returns ([`Identity`]): two configurations
//! never read each other's file, and the identity is also written inside the file and
//! checked on load. The file is a version line ([`HEADER`]) and then JSON:
//! `{"identity": "...", "synced_at_ms": UNIX_MS, "keys": {KEY: VALUE, ...}}`.
//!
//! Writes are atomic (a temp file in the same directory, fsync, rename, fsync of the
//! directory), run on a blocking thread, and are coalesced by [`run_writer`]: once the
//! keys are quiet, at most one per gap; the latest state is always written in the end,
//! also at shutdown.
//! Loading refuses a file over [`MAX_BYTES`], with another header, or for another
//! identity; the caller logs why and goes on without it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::backend::{BackendConfig, KvMap};

/// Where snapshots live under the state directory.
pub const SUBDIR: &str = "snapshots";
/// First line of every snapshot file: format name and version.
pub const HEADER: &str = "confsync-snapshot 1\n";
/// Largest snapshot file loaded (a million keys of 200 bytes is well below it).
pub const MAX_BYTES: u64 = 256 << 20;
/// Least time between two writes of one backend's snapshot.
pub const MIN_GAP: Duration = Duration::from_millis(250);
/// A write is followed by a pause this many times as long as it took: a 100,000-key
/// snapshot takes tens of milliseconds to write, and writing it after every change made
/// it the largest part of the CPU each change cost. The writer stays under 5% of a core
/// whatever the size.
const GAP_PER_WRITE: u32 = 20;
/// Longest pause between two writes, and the longest a change waits to be written
/// under a steady stream of changes.
const MAX_GAP: Duration = Duration::from_secs(30);
/// A change is written once the snapshot has stayed the same this long (or
/// [`MAX_GAP`] after the change, under a steady stream of them).
const QUIET: Duration = Duration::from_millis(500);

/// Why a snapshot could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {size} bytes is over the {MAX_BYTES}-byte limit", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}: not a confsync snapshot of this version (want the header {:?})", path.display(), HEADER.trim_end())]
    Header { path: PathBuf },
    #[error("{}: saved for another backend ({found:?})", path.display())]
    Identity { path: PathBuf, found: String },
    #[error("{}: corrupt: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}

/// What decides the keys a backend's listing returns: kind, endpoints or files, user,
/// separator, Sentinel master and the listed prefixes. Not the password or TLS files
/// (they change who may read, not what is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    kind: &'static str,
    /// Every part, as JSON: written into the file and compared on load.
    text: String,
}

impl Identity {
    /// The identity of `cfg` listing `prefixes`.
    pub fn new(cfg: &BackendConfig, prefixes: &[String]) -> Identity {
        // serde_json quotes every part, so no choice of values can make two different
        // configurations produce the same text.
        // Absolute (without touching the disk), so `data.yaml` in two directories differs.
        let files: Vec<String> = cfg
            .files
            .iter()
            .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()))
            .map(|f| f.display().to_string())
            .collect();
        let text = serde_json::json!({
            "kind": cfg.kind.name(),
            "nodes": cfg.nodes,
            "files": files,
            "username": cfg.username,
            "separator": cfg.separator,
            "sentinel_master": cfg.sentinel_master,
            "prefixes": prefixes,
        })
        .to_string();
        Identity {
            kind: cfg.kind.name(),
            text,
        }
    }

    /// The file name for this identity: the kind and a 64-bit FNV-1a hash of the text.
    pub fn file_name(&self) -> String {
        format!("{}-{:016x}.json", self.kind, fnv1a(self.text.as_bytes()))
    }

    /// `STATE_DIR/snapshots/FILE`.
    pub fn path_in(&self, state_dir: &Path) -> PathBuf {
        state_dir.join(SUBDIR).join(self.file_name())
    }
}

/// 64-bit FNV-1a: stable across builds and platforms (std's hashers promise neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A snapshot read back from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub kvs: KvMap,
    /// When the daemon that wrote it last knew the keys to be current.
    pub synced_at: SystemTime,
}

impl Saved {
    /// How old the keys are now (zero if the clock went back).
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.synced_at)
            .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct BodyOut<'a> {
    identity: &'a str,
    synced_at_ms: u64,
    keys: &'a KvMap,
}

#[derive(Deserialize)]
struct BodyIn {
    identity: String,
    synced_at_ms: u64,
    keys: KvMap,
}

/// Reads the snapshot at `path` saved for `identity`; `Ok(None)` when there is none.
pub fn load(path: &Path, identity: &Identity) -> Result<Option<Saved>, StateError> {
    load_capped(path, identity, MAX_BYTES)
}

fn load_capped(path: &Path, identity: &Identity, cap: u64) -> Result<Option<Saved>, StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let size = file.metadata().map_err(io)?.len();
    if size > cap {
        return Err(StateError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Bounded again while reading: the file may grow after the size check.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(StateError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    let Some(json) = bytes.strip_prefix(HEADER.as_bytes()) else {
        return Err(StateError::Header {
            path: path.to_path_buf(),
        });
    };
    let body: BodyIn = serde_json::from_slice(json).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if body.identity != identity.text {
        return Err(StateError::Identity {
            path: path.to_path_buf(),
            found: body.identity,
        });
    }
    Ok(Some(Saved {
        kvs: body.keys,
        synced_at: UNIX_EPOCH + Duration::from_millis(body.synced_at_ms),
    }))
}

/// Writes `kvs` as the snapshot of `identity` at `path`, atomically: readers (and a
/// crash) see the old file or the new one, never a part. Blocking.
pub fn save(
    path: &Path,
    identity: &Identity,
    kvs: &KvMap,
    synced_at: SystemTime,
) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(io)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let body = BodyOut {
        identity: &identity.text,
        synced_at_ms: synced_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        keys: kvs,
    };
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        // The values may be secrets: readable by the daemon's user only.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut out = std::io::BufWriter::new(file);
        out.write_all(HEADER.as_bytes())?;
        serde_json::to_writer(&mut out, &body)?;
        out.write_all(b"\n")?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes the backend's published snapshots (`snaps`, as the daemon's workers see them)
/// to `path` until the daemon drops their sender. Nothing is written before `synced`
/// holds a time (a snapshot loaded from disk is not written back). A changed key set is
/// written once it has been quiet for [`QUIET`] (under a steady stream of changes, at
/// most [`MAX_GAP`] after it changed), and at most once per gap, [`GAP_PER_WRITE`]
/// times the last write's time (a burst writes its last state);
/// at the end the final state is written if its keys or sync time are newer than the
/// file's. It keeps no reference to a snapshot between writes, so the daemon can go on
/// patching its map in place. Errors are logged (once until a write works again).
pub async fn run_writer(
    path: PathBuf,
    identity: Identity,
    mut snaps: watch::Receiver<Option<Arc<KvMap>>>,
    mut synced: watch::Receiver<Option<SystemTime>>,
) {
    // The map last written and its sync time. A weak reference: it neither keeps the
    // keys alive nor makes the daemon copy them (`Arc::make_mut` moves them out instead),
    // and it keeps the address from being reused by another map.
    let mut written: Option<(Weak<KvMap>, SystemTime)> = None;
    let mut failing = false;
    let mut gap = MIN_GAP;
    // When the last write ended: the next starts `gap` later at the earliest.
    let mut last_end: Option<tokio::time::Instant> = None;
    // The keys are not the ones last written; or, at the end, the sync time is not.
    let due = |written: &Option<(Weak<KvMap>, SystemTime)>, kvs: &Arc<KvMap>, end: Option<_>| {
        written
            .as_ref()
            .is_none_or(|(w, t)| w.as_ptr() != Arc::as_ptr(kvs) || end.is_some_and(|at| at != *t))
    };
    loop {
        let mut open = tokio::select! {
            r = snaps.changed() => r.is_ok(),
            r = synced.changed() => r.is_ok(),
        };
        let pending = synced.borrow().is_some()
            && snaps
                .borrow()
                .as_ref()
                .is_some_and(|kvs| due(&written, kvs, None));
        if open && pending {
            // Not while keys are changing: a write holds the map, and a change meanwhile
            // copies every key (a 100,000-key store, 12 MB, for each change that lands
            // in a write). Once the keys are quiet, or under a steady stream of changes
            // at the latest MAX_GAP after this first unsaved one.
            let first = tokio::time::Instant::now();
            let earliest = last_end.map_or(first, |e| e + gap);
            open = quiet(&mut snaps, &mut synced, first + MAX_GAP, earliest).await;
        }
        let at = *synced.borrow_and_update();
        let kvs = snaps.borrow_and_update().clone();
        if let (Some(at), Some(kvs)) = (at, kvs)
            && due(&written, &kvs, (!open).then_some(at))
        {
            let weak = Arc::downgrade(&kvs);
            let (p, id) = (path.clone(), identity.clone());
            let keys = kvs.len();
            let begun = std::time::Instant::now();
            let result = tokio::task::spawn_blocking(move || save(&p, &id, &kvs, at)).await;
            gap = (begun.elapsed() * GAP_PER_WRITE).clamp(MIN_GAP, MAX_GAP);
            last_end = Some(tokio::time::Instant::now());
            match result {
                Ok(Ok(())) => {
                    failing = false;
                    written = Some((weak, at));
                    tracing::debug!(file = %path.display(), keys, "saved the snapshot");
                }
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot save the backend's snapshot; a restart while it is down will render nothing");
                }
                Ok(Err(_)) => {}
                Err(e) => tracing::warn!(error = %e, "the snapshot writer failed"),
            }
        }
        if !open {
            return;
        }
    }
}

/// Waits until the snapshot has not changed for [`QUIET`] or `cap` has come, and in
/// either case `earliest` has; false at once when the daemon drops the senders (the
/// final state is then written without waiting).
async fn quiet(
    snaps: &mut watch::Receiver<Option<Arc<KvMap>>>,
    synced: &mut watch::Receiver<Option<SystemTime>>,
    cap: tokio::time::Instant,
    earliest: tokio::time::Instant,
) -> bool {
    let mut last = tokio::time::Instant::now();
    loop {
        let wake = (last + QUIET).min(cap).max(earliest);
        let open = tokio::select! {
            r = snaps.changed() => r.is_ok(),
            r = synced.changed() => r.is_ok(),
            _ = tokio::time::sleep_until(wake) => return true,
        };
        if !open {
            return false;
        }
        last = tokio::time::Instant::now();
    }
}

#[cfg(test)]
mod tests;
