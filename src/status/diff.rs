//! The diff the status page shows of a resource's last change: unified, written into a
//! buffer that stops at [`MAX_DIFF`], and computed with a time budget so a huge file
//! cannot hold a worker.

use std::fmt::Write;
use std::time::Duration;

/// Most bytes of diff kept per resource.
pub const MAX_DIFF: usize = 64 * 1024;
/// Past this the diff algorithm settles for a coarser (still correct) diff.
const DIFF_BUDGET: Duration = Duration::from_millis(500);

/// The unified diff from `old` to `new` for `dest`, at most `cap` bytes, and whether
/// it was cut there (at a line end when one is near).
pub fn capped(old: &[u8], new: &[u8], dest: &str, cap: usize) -> (String, bool) {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    let diff = similar::TextDiff::configure()
        .timeout(DIFF_BUDGET)
        .diff_lines(old.as_ref(), new.as_ref());
    let mut unified = diff.unified_diff();
    unified.context_radius(3).header(dest, dest);
    let mut out = Capped {
        text: String::new(),
        cap,
        full: false,
    };
    // The only error is the cap being reached, which ends the writing early.
    let _ = write!(out, "{unified}");
    let Capped { mut text, full, .. } = out;
    if full && let Some(end) = text.rfind('\n').filter(|&i| i + 1 >= text.len() / 2) {
        text.truncate(end + 1);
    }
    (text, full)
}

/// A `fmt::Write` that keeps the first `cap` bytes (on a char boundary) and then fails.
struct Capped {
    text: String,
    cap: usize,
    full: bool,
}

impl Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.cap.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        self.full = true;
        Err(std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_change_is_a_whole_unified_diff() {
        let (d, cut) = capped(b"a\nb\nc\n", b"a\nB\nc\n", "/x", MAX_DIFF);
        assert!(!cut);
        assert!(d.starts_with("--- /x\n+++ /x\n@@"), "{d}");
        assert!(d.contains("\n-b\n+B\n"), "{d}");
    }

    #[test]
    fn a_huge_change_is_cut_at_a_line_end_under_the_cap() {
        let new: String = (0..100_000).map(|i| format!("line é {i}\n")).collect();
        let (d, cut) = capped(b"", new.as_bytes(), "/x", 1000);
        assert!(cut);
        assert!(d.len() <= 1000 && d.len() > 500, "{}", d.len());
        assert!(d.ends_with('\n'));
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_fail() {
        let (d, _) = capped(b"\xff\xfe\n", b"ok\n", "/x", MAX_DIFF);
        assert!(d.contains("+ok"), "{d}");
    }
}
