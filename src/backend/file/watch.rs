//! The file backend's watch: inotify events (through `notify`) are hints to list again,
//! and say when a file is complete. A file closed after writing, or renamed into place,
//! is complete as it is ([`Complete::mark`]); a write in place makes it incomplete again
//! until it is closed or settles. A listing that keeps a file at its last good data
//! because it is not stable yet says when to look again, and the watch does, even if no
//! event comes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::settle::{Complete, Patience};
use super::{FileBackend, Snapshot, Update};
use crate::backend::{BackendError, Backoff};

/// How long after an event the watch lists, so one save's burst of events is one listing.
const COALESCE: Duration = Duration::from_millis(30);

/// Sends updates for `prefixes` until `shutdown` is cancelled.
pub(super) async fn run(
    backend: &FileBackend,
    prefixes: Vec<String>,
    from: Arc<Snapshot>,
    tx: mpsc::Sender<Update>,
    shutdown: CancellationToken,
) -> Result<(), BackendError> {
    use notify::Watcher;
    // One stored permit however many events come: bursts coalesce by themselves.
    let wake = Arc::new(Notify::new());
    let mut watcher = notify::recommended_watcher({
        let wake = wake.clone();
        let complete = backend.complete.clone();
        move |res: notify::Result<notify::Event>| {
            // An error (such as a queue overflow) may hide events: list again.
            if res.map(|e| note(&complete, &e)).unwrap_or(true) {
                wake.notify_one();
            }
        }
    })
    .map_err(|e| BackendError::fatal("file", backend.endpoint(), e))?;
    // Watch parent directories too: editors and `mv` replace files by renaming.
    for p in &backend.paths {
        let dir = watched_dir(p);
        watcher
            .watch(&dir, notify::RecursiveMode::Recursive)
            .map_err(|e| BackendError::fatal("file", dir.display().to_string(), e))?;
    }
    // The caller's copy, taken rather than copied again.
    let mut last = Arc::unwrap_or_clone(from);
    let mut down = false;
    let mut backoff = Backoff::default();
    let mut retry: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(retry.unwrap_or_else(Instant::now)), if retry.is_some() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(COALESCE) => {}
        }
        match backend.load_listed(&prefixes, Patience::Now).await {
            Ok((snap, retry_at)) => {
                backoff.reset();
                retry = retry_at.map(Instant::from_std);
                if down {
                    down = false;
                    let _ = tx.send(Update::Up).await;
                }
                if snap != last {
                    last = snap.clone();
                    if tx.send(Update::Resync(snap)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Err(e) => {
                // Look again even if no event comes (a directory made readable again).
                retry = Some(Instant::now() + backoff.next_delay());
                if !down {
                    down = true;
                    let _ = tx.send(Update::Down(e.to_string())).await;
                }
            }
        }
    }
}

/// What `event` says about files, noted in `complete`; true when it calls for a listing
/// (everything but reads, such as the listing's own).
fn note(complete: &Complete, event: &notify::Event) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            event.paths.iter().for_each(|p| complete.mark(p));
            true
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            event.paths.iter().for_each(|p| complete.mark(p));
            true
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            if let Some(to) = event.paths.get(1) {
                complete.mark(to);
            }
            true
        }
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Other) => {
            event.paths.iter().for_each(|p| complete.unmark(p));
            true
        }
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The directory to watch for `p`: itself, or the file's parent (`.` for a bare name).
fn watched_dir(p: &Path) -> PathBuf {
    let dir = if p.is_dir() {
        p.to_path_buf()
    } else {
        p.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}
