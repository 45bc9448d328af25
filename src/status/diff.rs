//! The diff the status page shows of a resource's last change: unified, written into a
//! buffer that stops at [`MAX_DIFF`], and computed with a time budget so a huge file
//! cannot hold a worker.

use std::fmt::Write;
use std::time::Duration;

/// Most bytes of diff kept per resource.
pub const MAX_DIFF: usize = 64 * 1024;
/// Past this the diff algorithm settles for a coarser (still correct) diff.
const DIFF_BUDGET: Duration = Duration::from_millis(500);

/// Lines of context around each change (as `diff -u`).
const CONTEXT: usize = 3;

/// The unified diff from `old` to `new` for `dest`, at most `cap` bytes, and whether
/// it was cut there (at a line end when one is near).
///
/// The lines both versions share at their start and end, past the context a hunk shows,
/// are cut off first (a byte comparison) and the hunks' line numbers shifted back: one
/// changed line of a 100,000-line file is then a diff of seven lines, not of 200,000.
pub fn capped(old: &[u8], new: &[u8], dest: &str, cap: usize) -> (String, bool) {
    let t = trim(old, new);
    let trimmed = (
        String::from_utf8_lossy(t.old),
        String::from_utf8_lossy(t.new),
    );
    let mut diff = similar::TextDiff::configure()
        .timeout(DIFF_BUDGET)
        .diff_lines(trimmed.0.as_ref(), trimmed.1.as_ref());
    // Repeated lines let the diff place a change inside what both ends share, nearer a
    // cut than its context reaches: then the whole versions are diffed.
    let whole;
    let mut skipped = t.skipped;
    if !t.context_kept(&diff) {
        whole = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
        diff = similar::TextDiff::configure()
            .timeout(DIFF_BUDGET)
            .diff_lines(whole.0.as_ref(), whole.1.as_ref());
        skipped = 0;
    }
    let mut out = Capped {
        text: String::new(),
        cap,
        full: false,
    };
    // The only error is the cap being reached, which ends the writing early.
    let _ = write_unified(&mut out, &diff, dest, skipped);
    let Capped { mut text, full, .. } = out;
    if full && let Some(end) = text.rfind('\n').filter(|&i| i + 1 >= text.len() / 2) {
        text.truncate(end + 1);
    }
    (text, full)
}

/// `diff`'s hunks with their line numbers `skipped` lines further down.
fn write_unified(
    out: &mut Capped,
    diff: &similar::TextDiff<'_, '_, str>,
    dest: &str,
    skipped: usize,
) -> std::fmt::Result {
    let mut unified = diff.unified_diff();
    unified.context_radius(CONTEXT);
    for (i, hunk) in unified.iter_hunks().enumerate() {
        if i == 0 {
            write!(out, "--- {dest}\n+++ {dest}\n")?;
        }
        let ops: Vec<similar::DiffOp> = hunk.ops().iter().map(|op| shift(*op, skipped)).collect();
        writeln!(out, "{}", similar::udiff::UnifiedHunkHeader::new(&ops))?;
        // The hunk as similar writes it, but for its header line.
        let mut body = SkipLine {
            out: &mut *out,
            skipping: true,
        };
        write!(body, "{hunk}")?;
    }
    Ok(())
}

/// `op` with both its ranges `by` lines further down.
fn shift(op: similar::DiffOp, by: usize) -> similar::DiffOp {
    use similar::DiffOp::*;
    match op {
        Equal {
            old_index,
            new_index,
            len,
        } => Equal {
            old_index: old_index + by,
            new_index: new_index + by,
            len,
        },
        Delete {
            old_index,
            old_len,
            new_index,
        } => Delete {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
        },
        Insert {
            old_index,
            new_index,
            new_len,
        } => Insert {
            old_index: old_index + by,
            new_index: new_index + by,
            new_len,
        },
        Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } => Replace {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
            new_len,
        },
    }
}

/// The two versions without the whole lines they share at both ends beyond
/// [`CONTEXT`], and how many lines were cut from the start.
struct Trimmed<'a> {
    old: &'a [u8],
    new: &'a [u8],
    skipped: usize,
    /// Lines were cut from the end.
    dropped: bool,
}

impl Trimmed<'_> {
    /// Whether every change of `diff` (of these trimmed versions) has its full context
    /// inside them where something was cut, as it would in the whole versions.
    fn context_kept(&self, diff: &similar::TextDiff<'_, '_, str>) -> bool {
        let changes: Vec<_> = diff
            .ops()
            .iter()
            .filter(|op| !matches!(op, similar::DiffOp::Equal { .. }))
            .collect();
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            return true;
        };
        // The ops cover both versions whole.
        let end = diff
            .ops()
            .last()
            .map_or((0, 0), |op| (op.old_range().end, op.new_range().end));
        let (old_lines, new_lines) = end;
        let head = first.old_range().start.min(first.new_range().start) >= CONTEXT;
        let tail = old_lines - last.old_range().end >= CONTEXT
            && new_lines - last.new_range().end >= CONTEXT;
        (self.skipped == 0 || head) && (!self.dropped || tail)
    }
}

/// Bytes compared at once while looking for where two versions part (whole blocks
/// compare as slices, memcmp-fast; only the block where they differ goes byte by byte).
const BLOCK: usize = 4096;

/// How many bytes `a` and `b` share at their start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    while i + BLOCK <= n && a[n - i - BLOCK..n - i] == b[n - i - BLOCK..n - i] {
        i += BLOCK;
    }
    i + a[..n - i]
        .iter()
        .rev()
        .zip(b[..n - i].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

fn trim<'a>(old: &'a [u8], new: &'a [u8]) -> Trimmed<'a> {
    let same = common_prefix(old, new);
    // Back to the start of the line the first difference is on, then CONTEXT lines up.
    let mut start = line_start(old, same);
    for _ in 0..CONTEXT {
        if start == 0 {
            break;
        }
        start = line_start(old, start - 1);
    }
    let skipped = memchr::memchr_iter(b'\n', &old[..start]).count();
    let (old, new) = (&old[start..], &new[start..]);
    // A file without a last newline is diffed whole at its end (similar marks it).
    if !(old.ends_with(b"\n") && new.ends_with(b"\n")) {
        return Trimmed {
            old,
            new,
            skipped,
            dropped: false,
        };
    }
    // Only after what the start shares: the two may not overlap (a line inserted next
    // to one like it is shared by both ends otherwise, and similar takes the start first).
    let ahead = same - start;
    let tail = common_suffix(&old[ahead..], &new[ahead..]);
    // The shared tail from just after its first newline (a line start in both), less
    // CONTEXT lines.
    let shared = &old[old.len() - tail..];
    let mut cut = match memchr::memchr(b'\n', shared) {
        Some(i) => i + 1,
        None => shared.len(),
    };
    for _ in 0..CONTEXT {
        match memchr::memchr(b'\n', &shared[cut..]) {
            Some(i) => cut += i + 1,
            None => {
                cut = shared.len();
                break;
            }
        }
    }
    let drop = shared.len() - cut;
    Trimmed {
        old: &old[..old.len() - drop],
        new: &new[..new.len() - drop],
        skipped,
        dropped: drop > 0,
    }
}

/// Where the line holding byte `at` of `text` starts.
fn line_start(text: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &text[..at.min(text.len())]).map_or(0, |i| i + 1)
}

/// Passes everything after the first line on to `out`.
struct SkipLine<'o> {
    out: &'o mut Capped,
    skipping: bool,
}

impl Write for SkipLine<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if !self.skipping {
            return self.out.write_str(s);
        }
        match s.find('\n') {
            Some(i) => {
                self.skipping = false;
                self.out.write_str(&s[i + 1..])
            }
            None => Ok(()),
        }
    }
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

    /// The diff without trimming, as similar writes it.
    fn whole(old: &str, new: &str) -> String {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(CONTEXT)
            .header("/x", "/x")
            .to_string()
    }

    #[test]
    fn trimming_the_shared_ends_changes_nothing_in_the_diff() {
        let lines: Vec<String> = (0..200)
            .map(|i| format!("server s{i} 10.0.0.{i}:80\n"))
            .collect();
        let base: String = lines.concat();
        type Edit = Box<dyn Fn(&mut Vec<String>)>;
        let edits: Vec<Edit> = vec![
            Box::new(|l| l[100] = "changed\n".into()),
            Box::new(|l| l[0] = "first\n".into()),
            Box::new(|l| l[199] = "last\n".into()),
            Box::new(|l| l[2] = "near the start\n".into()),
            Box::new(|l| l[197] = "near the end\n".into()),
            Box::new(|l| {
                l.remove(50);
            }),
            Box::new(|l| l.insert(120, "new\n".into())),
            Box::new(|l| {
                l[10] = "a\n".into();
                l[15] = "b\n".into();
                l[150] = "c\n".into();
            }),
            Box::new(|l| l.truncate(190)),
            Box::new(|l| l.push("no newline".into())),
            Box::new(|l| l[199] = "server s199 10.0.0.199:80".into()),
            Box::new(|l| l.clear()),
            // Next to a line like it: both shared ends would take it.
            Box::new(|l| l.insert(101, l[100].clone())),
            Box::new(|l| {
                l.insert(30, "\n".into());
                l.insert(30, "\n".into());
            }),
            Box::new(|l| l.insert(0, l[0].clone())),
            Box::new(|l| l.push(l[199].clone())),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut l = lines.clone();
            edit(&mut l);
            let new = l.concat();
            for (a, b) in [(&base, &new), (&new, &base)] {
                let (d, cut) = capped(a.as_bytes(), b.as_bytes(), "/x", MAX_DIFF);
                assert!(!cut);
                assert_eq!(d, whole(a, b), "edit {i}");
            }
        }
    }

    proptest::proptest! {
        /// Files of few distinct lines, so that shared ends run into each other.
        #[test]
        fn trimmed_diffs_equal_whole_ones(
            old in proptest::collection::vec(0..4usize, 0..40),
            new in proptest::collection::vec(0..4usize, 0..40),
            newline_at_end in proptest::bool::ANY,
        ) {
            let text = |v: &[usize]| {
                let mut t: String = v.iter().map(|i| ["a\n", "b\n", "\n", "a b\n"][*i]).collect();
                if !newline_at_end && t.ends_with('\n') {
                    t.pop();
                }
                t
            };
            let (a, b) = (text(&old), text(&new));
            let (d, cut) = capped(a.as_bytes(), b.as_bytes(), "/x", MAX_DIFF);
            proptest::prop_assert!(!cut);
            proptest::prop_assert_eq!(d, whole(&a, &b));
        }
    }

    #[test]
    fn shared_ends_are_found_across_blocks() {
        let a = vec![b'x'; 3 * BLOCK + 17];
        let mut b = a.clone();
        assert_eq!(common_prefix(&a, &b), a.len());
        b[2 * BLOCK + 5] = b'y';
        assert_eq!(common_prefix(&a, &b), 2 * BLOCK + 5);
        assert_eq!(common_suffix(&a, &b), a.len() - 2 * BLOCK - 6);
        assert_eq!(common_suffix(b"abc", b"xbc"), 2);
        assert_eq!(common_prefix(b"ab", b"abc"), 2);
        assert_eq!(common_suffix(b"bc", b"abc"), 2);
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_fail() {
        let (d, _) = capped(b"\xff\xfe\n", b"ok\n", "/x", MAX_DIFF);
        assert!(d.contains("+ok"), "{d}");
    }
}
