//! When a data file may be used, and what stands in for it until then.
//!
//! A file is taken only once it is stable, because a file rewritten in place is read
//! half-written otherwise (and a partial YAML file usually still parses):
//!
//! - the watch saw it closed after writing, or renamed into place ([`Complete`]), and it
//!   has not changed since; or
//! - it last changed (mtime or ctime) at least [`SETTLE`] ago; or it has kept one
//!   [`Stamp`] for [`SETTLE`] (a change time in the future);
//! - and it did not change while it was read.
//!
//! It must then parse. Until a file is taken again, its last good entries stand in for
//! it ([`Files`] keeps them per file), and the listing says when to look again. A file
//! never read before has nothing to stand in: a first listing waits for it (up to
//! [`MAX_WAIT`]), a later one leaves it out until it is stable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use super::read::{self, MAX_FILE_BYTES, ReadError, Stamp};
use super::{Entries, flatten_str, tree};

/// How long a file must stay unchanged before it is read as complete, when nothing said
/// it was closed or renamed into place. 200 ms: long beyond the gaps of a writer that
/// writes a file in one go (microseconds between chunks, milliseconds on a busy machine),
/// short enough that a save shows up at once, and ten times the coarsest mtime tick.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The longest a listing waits for files to settle (a first listing, or a poll) before
/// it answers with last good data, or fails for a file it has none for.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// Files the watch saw closed after writing or renamed into place, by (device, inode),
/// with the stamp they had then: as long as a file keeps that stamp, it is complete.
#[derive(Debug, Default)]
pub(super) struct Complete {
    by_id: Mutex<HashMap<(u64, u64), (Stamp, Instant)>>,
}

impl Complete {
    /// `path` is complete as it is now.
    pub(super) fn mark(&self, path: &Path) {
        if let Ok(m) = std::fs::metadata(path) {
            let stamp = Stamp::of(&m);
            let mut by_id = lock(&self.by_id);
            // Only recent word matters: an older file has settled by its change time.
            by_id.retain(|_, (_, at)| at.elapsed() < SETTLE * 10);
            by_id.insert(stamp.id(), (stamp, Instant::now()));
        }
    }

    /// `path` is being written to in place: whatever was said of it no longer holds.
    pub(super) fn unmark(&self, path: &Path) {
        if let Ok(m) = std::fs::metadata(path) {
            lock(&self.by_id).remove(&Stamp::of(&m).id());
        }
    }

    fn vouches(&self, stamp: &Stamp) -> bool {
        lock(&self.by_id)
            .get(&stamp.id())
            .is_some_and(|(s, _)| s == stamp)
    }
}

/// How long a listing may wait for files that are still changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Patience {
    /// Up to [`MAX_WAIT`]: `list` answers with settled contents where it can.
    Wait,
    /// Not at all (the watch: it looks again at [`Listed::retry_at`]); files never read
    /// before are still waited for until a first listing has succeeded.
    Now,
}

/// A listing's entries, and when a file that is not stable yet is worth another look.
#[derive(Debug, Default)]
pub(super) struct Listed {
    pub entries: Entries,
    pub retry_at: Option<Instant>,
}

/// What a file backend remembers between listings.
#[derive(Debug, Default)]
pub(super) struct Files {
    /// The entries each data file gave when it was last taken.
    good: HashMap<PathBuf, Entries>,
    /// The stamp each file had when last read, and since when.
    seen: HashMap<PathBuf, (Stamp, Instant)>,
    /// The warning last logged for a path, so a poll does not repeat it.
    warned: HashMap<PathBuf, String>,
    /// A listing has succeeded: a new file that is not stable yet can be left out.
    listed: bool,
}

enum Outcome {
    Taken(Entries),
    NotYet {
        retry_at: Instant,
        why: &'static str,
    },
    Failed(String),
    /// Removed since the tree was listed.
    Gone,
}

impl Files {
    /// Lists and reads the data files `paths` stand for, with the rules above.
    pub(super) fn load(
        &mut self,
        paths: &[PathBuf],
        complete: &Complete,
        patience: Patience,
    ) -> Result<Listed, String> {
        let tree = tree::data_files(paths)?;
        for (p, why) in &tree.skipped {
            self.warn(p, why);
        }
        let deadline = Instant::now() + MAX_WAIT;
        let mut listed = Listed::default();
        for f in &tree.files {
            // Bounded: each pass sleeps until a retry time, and those end at `deadline`.
            loop {
                let now = Instant::now();
                match self.try_file(f, complete, now) {
                    Outcome::Taken(entries) => {
                        self.recovered(f);
                        listed.entries.extend_from_slice(&entries);
                        self.good.insert(f.clone(), entries);
                    }
                    // Listed a moment ago: until a listing no longer lists it, its
                    // last good data stays (an explicit path gone is the next
                    // listing's error).
                    Outcome::Gone => {
                        if let Some(good) = self.good.get(f) {
                            listed.entries.extend_from_slice(good);
                        }
                    }
                    Outcome::Failed(msg) => match self.good.get(f) {
                        Some(good) => {
                            listed.entries.extend_from_slice(good);
                            let msg = format!("{msg}; keeping its last good data");
                            self.warn(f, &msg);
                        }
                        None if !self.listed => return Err(msg),
                        None => self.warn(f, &format!("{msg}; not used until it reads")),
                    },
                    Outcome::NotYet { retry_at, why } => {
                        let known = self.good.contains_key(f);
                        let may_wait = patience == Patience::Wait || !(known || self.listed);
                        if may_wait && retry_at <= deadline {
                            std::thread::sleep(retry_at.saturating_duration_since(now));
                            continue;
                        }
                        if let Some(good) = self.good.get(f) {
                            debug!(file = %f.display(), "{why}; using its last good data for now");
                            listed.entries.extend_from_slice(good);
                        } else if !self.listed {
                            return Err(format!(
                                "{}: {why}, still after {MAX_WAIT:?}; not read yet",
                                f.display()
                            ));
                        } else {
                            debug!(file = %f.display(), "{why}; not used yet");
                        }
                        listed.retry_at =
                            Some(listed.retry_at.map_or(retry_at, |r| r.min(retry_at)));
                    }
                }
                break;
            }
        }
        self.forget_others(&tree);
        self.listed = true;
        Ok(listed)
    }

    fn try_file(&mut self, path: &Path, complete: &Complete, now: Instant) -> Outcome {
        let got = match read::read_file(path, MAX_FILE_BYTES) {
            Ok(got) => got,
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::Gone;
            }
            Err(e) => return Outcome::Failed(format!("{}: {e}", path.display())),
        };
        if got.changed {
            self.seen.remove(path);
            return Outcome::NotYet {
                retry_at: now + SETTLE / 4,
                why: "changed while it was read",
            };
        }
        if let Err(retry_at) = self.settled(path, &got.stamp, complete, now) {
            return Outcome::NotYet {
                retry_at,
                why: "changed less than the settle period ago",
            };
        }
        let text = match String::from_utf8(got.bytes) {
            Ok(t) => t,
            Err(e) => {
                return Outcome::Failed(format!(
                    "{}: not UTF-8 text (byte {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ));
            }
        };
        let mut entries = Entries::new();
        match flatten_str(path, &text, &mut entries) {
            Ok(()) => Outcome::Taken(entries),
            Err(e) => Outcome::Failed(format!("{}: {e}", path.display())),
        }
    }

    /// `Ok` when the file is stable; otherwise when it may be.
    fn settled(
        &mut self,
        path: &Path,
        stamp: &Stamp,
        complete: &Complete,
        now: Instant,
    ) -> Result<(), Instant> {
        if complete.vouches(stamp) {
            return Ok(());
        }
        let by_age = match stamp.age(SystemTime::now()) {
            Some(age) if age >= SETTLE => return Ok(()),
            Some(age) => Some(now + (SETTLE - age)),
            None => None,
        };
        let since = match self.seen.get(path) {
            Some((s, since)) if s == stamp => *since,
            _ => {
                self.seen.insert(path.to_path_buf(), (*stamp, now));
                now
            }
        };
        if now.duration_since(since) >= SETTLE {
            return Ok(());
        }
        let by_seen = since + SETTLE;
        Err(by_age.map_or(by_seen, |a| a.min(by_seen)))
    }

    /// Logs `why` for `path` unless it was the last thing logged for it.
    fn warn(&mut self, path: &Path, why: &str) {
        let msg = if why.starts_with(&*path.to_string_lossy()) {
            why.to_string()
        } else {
            format!("{}: {why}", path.display())
        };
        if self.warned.get(path) != Some(&msg) {
            warn!("file backend: {msg}");
            self.warned.insert(path.to_path_buf(), msg);
        }
    }

    fn recovered(&mut self, path: &Path) {
        if self.warned.remove(path).is_some() {
            info!(file = %path.display(), "file backend: the file reads again");
        }
    }

    /// Drops what is kept for paths this listing did not meet (so they start afresh if
    /// they come back).
    fn forget_others(&mut self, tree: &tree::Tree) {
        let files: std::collections::HashSet<&Path> =
            tree.files.iter().map(PathBuf::as_path).collect();
        self.good.retain(|p, _| files.contains(p.as_path()));
        self.seen.retain(|p, _| files.contains(p.as_path()));
        let skipped: std::collections::HashSet<&Path> =
            tree.skipped.iter().map(|(p, _)| p.as_path()).collect();
        self.warned
            .retain(|p, _| files.contains(p.as_path()) || skipped.contains(p.as_path()));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
