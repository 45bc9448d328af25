//! The fast path for the shape almost every data file has: nested block mappings of
//! `key: value` lines, `- item` lists of scalars, plain or single-line quoted scalars,
//! comments and blank lines. It feeds the same [`Walker`] the full parser feeds, so only
//! the reading of lines lives here. At the first line it does not fully understand
//! (flow collections, anchors, tags, block or multi-line scalars, escapes, tabs, merge
//! keys, keys that are not strings, ...) it gives up, and the whole file is read again
//! by the full parser: it never has to be complete, only never wrong (a property test
//! holds it to the full parser's entries).

use std::borrow::Cow;

use super::Entries;
use super::resolve::{self, Tag};
use super::walk::Walker;
use super::yaml::budget;

/// Reads `text` onto `out` if every line is of the simple shape; `false` means give up
/// (`out` may then hold part of the file: the caller truncates it).
pub(super) fn read(text: &str, out: &mut Entries) -> bool {
    // At most one leaf a line: one allocation for the list, not a doubling series.
    out.reserve(memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1);
    let mut w = Walker::new(out, budget(text));
    lines(text, &mut w).is_some() && w.finish().is_ok()
}

/// An open block collection: the column of its keys (or dashes), and whether it is a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    indent: usize,
    seq: bool,
}

/// `None`: a line the fast path does not read.
fn lines(text: &str, w: &mut Walker) -> Option<()> {
    let b = text.as_bytes();
    let mut stack: Vec<Block> = Vec::new();
    // A `key:` line at this indent whose value is on the lines below (or null).
    let mut pending: Option<(usize, usize)> = None;
    let mut started = false;
    let mut content = false;
    let mut pos = 0;
    let mut line_no = 0;
    while pos < b.len() {
        let nl = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i);
        let (start, mut stop) = (pos, nl);
        pos = nl + 1;
        line_no += 1;
        if stop > start && b[stop - 1] == b'\r' {
            stop -= 1;
        }
        let line = &text[start..stop];
        if !clean(line.as_bytes()) {
            return None;
        }
        let indent = line.bytes().take_while(|&c| c == b' ').count();
        let rest = &line[indent..];
        let rb = rest.as_bytes();
        if rb.is_empty() || rb[0] == b'#' {
            continue;
        }
        if indent == 0 && (rb.starts_with(b"---") || rb.starts_with(b"...") || rb[0] == b'%') {
            // Only a `---` before any content: the start of the one document.
            if content || !rb.starts_with(b"---") || !blank_or_comment(&rest[3..]) {
                return None;
            }
            content = true;
            continue;
        }
        content = true;
        let entry = rb[0] == b'-' && (rb.len() == 1 || rb[1] == b' ');
        if let Some((p, p_line)) = pending.take() {
            if entry && indent >= p {
                w.start(true, line_no).ok()?;
                stack.push(Block { indent, seq: true });
            } else if !entry && indent > p {
                w.start(false, line_no).ok()?;
                stack.push(Block { indent, seq: false });
            } else {
                w.scalar(Cow::Borrowed(""), true, Tag::None, p_line).ok()?;
            }
        }
        while stack.last().is_some_and(|top| top.indent > indent) {
            stack.pop();
            w.end();
        }
        if entry {
            if stack.last() != Some(&Block { indent, seq: true }) {
                return None;
            }
            let v = rest[1..].trim_start_matches(' ');
            if v.is_empty() || v.starts_with('#') {
                return None;
            }
            let (text, plain) = value(v)?;
            w.scalar(text, plain, Tag::None, line_no).ok()?;
            continue;
        }
        if stack.last() == Some(&Block { indent, seq: true }) {
            // A list at its key's own column ends at the next key.
            stack.pop();
            w.end();
        }
        match stack.last() {
            Some(&top) if top == (Block { indent, seq: false }) => {}
            None if !started => {
                started = true;
                w.start(false, line_no).ok()?;
                stack.push(Block { indent, seq: false });
            }
            _ => return None,
        }
        let (k, plain, after) = key(rest)?;
        w.scalar(k, plain, Tag::None, line_no).ok()?;
        let v = rest[after..].trim_start_matches(' ');
        if v.is_empty() || v.starts_with('#') {
            pending = Some((indent, line_no));
        } else {
            let (text, plain) = value(v)?;
            w.scalar(text, plain, Tag::None, line_no).ok()?;
        }
    }
    if let Some((_, p_line)) = pending {
        w.scalar(Cow::Borrowed(""), true, Tag::None, p_line).ok()?;
    }
    while stack.pop().is_some() {
        w.end();
    }
    Some(())
}

/// No tab, control character, byte order mark or YAML 1.1 line break (U+0085, U+2028,
/// U+2029) in the line.
fn clean(line: &[u8]) -> bool {
    // Printable ASCII is the rule; the loop without an early exit runs many bytes a step.
    let mut odd = 0u8;
    for &c in line {
        odd |= u8::from(!(0x20..0x7f).contains(&c));
    }
    if odd == 0 {
        return true;
    }
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c < 0x20 || c == 0x7f {
            return false;
        }
        if c >= 0x80 {
            let next = |k: usize| line.get(i + k).copied().unwrap_or(0);
            match (c, next(1), next(2)) {
                (0xc2, 0x80..=0x9f, _) => return false,
                (0xe2, 0x80, 0xa8 | 0xa9) => return false,
                (0xef, 0xbb, 0xbf) | (0xef, 0xbf, 0xbe | 0xbf) => return false,
                _ => {}
            }
        }
        i += 1;
    }
    true
}

fn blank_or_comment(s: &str) -> bool {
    let t = s.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < s.len())
}

/// Characters that cannot start a plain scalar (or start something else).
fn indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    )
}

/// The key of a `key: ...` line: its text, whether it is plain, and where the `:` ends.
fn key(rest: &str) -> Option<(Cow<'_, str>, bool, usize)> {
    let b = rest.as_bytes();
    if b[0] == b'"' || b[0] == b'\'' {
        let (text, end) = quoted(rest)?;
        if b.get(end) != Some(&b':') || b.get(end + 1).is_some_and(|&c| c != b' ') {
            return None;
        }
        return Some((text, false, end + 1));
    }
    if indicator(b[0]) {
        return None;
    }
    let mut i = 1;
    loop {
        i += find2(&b[i..], b':', b'#')?;
        match b[i] {
            b':' if b.get(i + 1).is_none_or(|&c| c == b' ') => break,
            b'#' if b[i - 1] == b' ' => return None,
            _ => i += 1,
        }
    }
    let k = &rest[..i];
    // A simple key is at most 1024 characters; `<<` is a merge.
    if k.ends_with(' ') || k.len() > 1024 || k == "<<" {
        return None;
    }
    let v = resolve::resolve(k, true, Tag::None).ok()?;
    if resolve::kind_name(v).is_some() {
        return None;
    }
    // Known to be a string: passed on as if quoted, so it is not resolved twice.
    Some((Cow::Borrowed(k), false, i + 1))
}

/// A value (not empty, not a comment) and the comment after it.
fn value(v: &str) -> Option<(Cow<'_, str>, bool)> {
    let b = v.as_bytes();
    if b[0] == b'"' || b[0] == b'\'' {
        let (text, end) = quoted(v)?;
        if !blank_or_comment(&v[end..]) {
            return None;
        }
        return Some((text, false));
    }
    if indicator(b[0])
        && !(b[0] == b'-'
            && b.get(1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.'))
    {
        return None;
    }
    let mut end = b.len();
    let mut i = 1;
    while let Some(j) = find2(&b[i.min(b.len())..], b':', b'#') {
        i += j;
        match b[i] {
            b':' if b.get(i + 1).is_none_or(|&c| c == b' ') => return None,
            b'#' if b[i - 1] == b' ' => {
                end = i;
                break;
            }
            _ => i += 1,
        }
    }
    Some((Cow::Borrowed(v[..end].trim_end_matches(' ')), true))
}

/// The first `x` or `y` in `b`, eight bytes a step (keys and values are short: a
/// vectorized search costs more to set up than it saves).
fn find2(b: &[u8], x: u8, y: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (mx, my) = (LO * u64::from(x), LO * u64::from(y));
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let (a, c) = (w ^ mx, w ^ my);
        // A zero byte of `a` or `c` is a match; the lowest flagged byte is always one.
        let z = ((a.wrapping_sub(LO) & !a) | (c.wrapping_sub(LO) & !c)) & HI;
        if z != 0 {
            return Some(at + (z.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == x || c == y)
        .map(|p| at + p)
}

/// A quoted scalar closed on the same line, without escapes in double quotes: its text
/// and the index after the closing quote.
fn quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let b = s.as_bytes();
    if b[0] == b'"' {
        for (i, &c) in b.iter().enumerate().skip(1) {
            match c {
                b'"' => return Some((Cow::Borrowed(&s[1..i]), i + 1)),
                b'\\' => return None,
                _ => {}
            }
        }
        return None;
    }
    let mut owned: Option<String> = None;
    let mut seg = 1;
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                owned.get_or_insert_with(String::new).push_str(&s[seg..=i]);
                i += 2;
                seg = i;
                continue;
            }
            let text = match owned {
                Some(mut o) => {
                    o.push_str(&s[seg..i]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&s[1..i]),
            };
            return Some((text, i + 1));
        }
        i += 1;
    }
    None
}
