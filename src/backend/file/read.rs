//! One data file read whole, or refused. The file's type is checked through the link
//! before it is opened (a FIFO would block the open, a device such as `/dev/zero` would
//! never end); it is opened with `O_NONBLOCK` in case it was swapped for one in between;
//! at most [`MAX_FILE_BYTES`] are read, through `take`, so a file that grows while it is
//! read cannot get past the cap either. The file's [`Stamp`] before and after the read
//! says whether the bytes may be a mix of two versions.

use std::fs::Metadata;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The most bytes read from one data file (64 MiB: a million servers' worth of YAML). A
/// larger file is an error naming the file and the cap, and its last good data stays.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// What identifies one version of a file: its inode, size and change times. A file that
/// was written to, truncated, replaced or touched has another stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification and status-change times, in nanoseconds since the epoch.
    pub mtime: i128,
    pub ctime: i128,
}

impl Stamp {
    pub(super) fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The file's identity, whatever its contents.
    pub(super) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// How long ago the file last changed (contents or status, whichever is later: a
    /// writer may set an old mtime, but the ctime is always the kernel's clock); `None`
    /// when that lies in the future (a clock set back, a network file system's clock).
    pub(super) fn age(&self, now: SystemTime) -> Option<Duration> {
        let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos();
        let changed = self.mtime.max(self.ctime);
        let age = i128::try_from(now).ok()? - changed;
        u64::try_from(age).ok().map(Duration::from_nanos)
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// A FIFO, socket or device: opening or reading it could block or never end.
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    #[error("larger than the {} cap on a data file", bytes(*.cap))]
    TooBig { cap: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A file's bytes and the stamp they were read at.
#[derive(Debug)]
pub(super) struct Contents {
    pub bytes: Vec<u8>,
    pub stamp: Stamp,
    /// The file changed or was replaced while it was read: the bytes may mix versions.
    pub changed: bool,
}

/// What a file type is, when it is not a regular file or a directory.
pub(super) fn special_kind(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() || t.is_dir() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("not a file")
    }
}

/// Reads `path` (following links) whole, refusing special files and anything over `cap`.
pub(super) fn read_file(path: &Path, cap: u64) -> Result<Contents, ReadError> {
    let meta = std::fs::metadata(path)?;
    check_regular(&meta)?;
    if meta.len() > cap {
        return Err(ReadError::TooBig { cap });
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // The file opened may not be the one checked: check again, on the open file.
    let before = file.metadata()?;
    check_regular(&before)?;
    let bytes = read_limited(&mut file, cap, before.len())?;
    let after = file.metadata()?;
    let stamp = Stamp::of(&before);
    // Renamed over while it was read: the path now names a newer file.
    let replaced = std::fs::metadata(path).map_or(true, |m| Stamp::of(&m).id() != stamp.id());
    Ok(Contents {
        changed: replaced || Stamp::of(&after) != stamp || bytes.len() as u64 != stamp.size,
        bytes,
        stamp,
    })
}

fn check_regular(meta: &Metadata) -> Result<(), ReadError> {
    match special_kind(meta) {
        Some(kind) => Err(ReadError::NotRegular(kind)),
        None if meta.is_dir() => Err(ReadError::NotRegular("a directory")),
        None => Ok(()),
    }
}

/// Reads `r` to its end, or fails once it gives more than `cap` bytes.
pub(super) fn read_limited(
    r: impl std::io::Read,
    cap: u64,
    hint: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(hint.min(cap)).unwrap_or(0));
    r.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooBig { cap });
    }
    Ok(bytes)
}

/// `n` bytes for a message: in MiB when it is a whole number of them.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} byte")
    }
}
