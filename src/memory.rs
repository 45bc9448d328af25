//! Memory given back to the system after large frees.
//!
//! glibc's allocator keeps what a program frees for later allocations, in every thread's
//! arena: after a 100,000-key listing is replaced, a large render's buffers go, or every
//! key is deleted, the daemon's resident size stays at its peak for months. Whoever frees
//! a lot calls [`freed`]; a task started with the daemon ([`run`]) then asks the
//! allocator (`malloc_trim`) to return its free pages on a blocking thread, once the
//! hints stop for a moment (a trim holds the allocator's lock), so the work that freed
//! the memory never waits for it, and once more a little later for what the work let go
//! of after its hint. On a libc without `malloc_trim` (musl) nothing happens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Something large was freed since the last trim.
static OWED: AtomicBool = AtomicBool::new(false);

/// How often the task looks whether a trim is due.
const EVERY: Duration = Duration::from_millis(250);
/// A trim waits until no hint has come for this long...
const QUIET: Duration = Duration::from_millis(500);
/// ...or this long after the first hint it serves.
const LATEST: Duration = Duration::from_secs(5);
/// A trim is followed by another this much later (a trim at [`LATEST`] in a stream of
/// changes comes while the last one's buffers are still in use).
const FOLLOW_UP: Duration = Duration::from_secs(1);

/// Notes that a large amount of memory was freed (a listing replaced, a large render
/// done, many keys deleted).
pub fn freed() {
    OWED.store(true, Ordering::Relaxed);
}

/// Trims after large frees until `stop`: once no hint has come for [`QUIET`] (a trim
/// holds the allocator's lock, so not in the middle of a burst of renders), at the
/// latest [`LATEST`] after the first unserved hint, and once more [`FOLLOW_UP`] later.
pub async fn run(stop: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Since when a trim is owed, and when the last hint came.
    let mut owed: Option<(Instant, Instant)> = None;
    let mut follow_up: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if OWED.swap(false, Ordering::Relaxed) {
            owed = Some((owed.map_or(now, |(first, _)| first), now));
        }
        let due = match owed {
            Some((first, last)) => now - last >= QUIET || now - first >= LATEST,
            None => follow_up.is_some_and(|at| now >= at),
        };
        if !due {
            continue;
        }
        follow_up = owed.take().map(|_| now + FOLLOW_UP);
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Returns the allocator's free pages to the system now; at debug level logs the
/// resident size before and after, and what the allocator holds in use and free.
pub fn trim() {
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    let before = if debug { resident_kb() } else { None };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
    if debug {
        let (in_use_kb, free_kb, mapped_kb) = heap_kb();
        tracing::debug!(
            rss_before_kb = before,
            rss_kb = resident_kb(),
            in_use_kb,
            free_kb,
            mapped_kb,
            "memory trimmed"
        );
    }
}

/// This process's resident size (VmRSS), in kB.
pub fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the allocator holds, in kB: in use in its arenas, free in them, and in use in
/// blocks mapped on their own (zeros where that is not known).
fn heap_kb() -> (u64, u64, u64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 reads the allocator's counters under its locks.
        let m = unsafe { libc::mallinfo2() };
        (
            m.uordblks as u64 / 1024,
            m.fordblks as u64 / 1024,
            m.hblkhd as u64 / 1024,
        )
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    (0, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kb() -> u64 {
        resident_kb().unwrap()
    }

    #[test]
    fn a_trim_returns_freed_small_allocations() {
        // Many small blocks (as keys and values are), freed all but every 1024th:
        // without a trim the pages they sat on stay resident.
        let mut blocks: Vec<Box<[u8; 48]>> = (0..400_000).map(|_| Box::new([1u8; 48])).collect();
        let before = rss_kb();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 1024 == 0
        });
        blocks.shrink_to_fit();
        trim();
        let after = rss_kb();
        assert!(
            after + 8_000 < before,
            "RSS {before} kB before the frees and the trim, {after} kB after"
        );
        drop(blocks);
    }
}
