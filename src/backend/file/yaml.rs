//! A YAML data file as confd reads it: the first document only, YAML 1.1 scalars
//! ([`super::resolve`]), keys as `nodeWalk` makes them ([`super::walk`]).
//!
//! Most data files are plain nested `key: value` lines, which [`super::fast`] reads in
//! one pass; at the first line it does not fully understand, the file is read again by
//! the full parser (saphyr-parser), whose events go through the same [`Walker`]. Anchored
//! nodes are recorded as they stream by, so that an alias plays its anchor's events
//! again, and a `<<` list can be merged last item first.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::Entries;
use super::resolve::Tag;
use super::walk::{Walker, YamlError};

/// Reads one YAML text onto `out`.
pub(super) fn read(text: &str, out: &mut Entries) -> Result<(), YamlError> {
    // yaml.v2 skips a byte order mark at the start.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let base = out.len();
    if super::fast::read(text, out) {
        return Ok(());
    }
    out.truncate(base);
    read_full(text, out)
}

/// The bytes of keys, values and paths one file may write: plenty for any real file
/// (even a short one merging defaults into many services), not an alias bomb's worth.
pub(super) fn budget(text: &str) -> usize {
    (64 << 20) + 16 * text.len()
}

/// Reads `text` with the full parser.
pub(super) fn read_full(text: &str, out: &mut Entries) -> Result<(), YamlError> {
    check_chars(text)?;
    let mut doc = Doc {
        walker: Walker::new(out, budget(text)),
        rec: Recorder::default(),
        collecting: None,
        stack: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, span) = match parser.next_event() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(YamlError::new(e.marker().line(), e.info())),
        };
        match ev {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
            // yaml.v2 reads the first document and ignores the rest.
            Event::DocumentEnd | Event::StreamEnd => break,
            ev => doc.event(ev, span.start.line())?,
        }
    }
    doc.walker.finish()
}

/// yaml.v2's reader refuses control characters (and U+FFFE, U+FFFF) anywhere. U+0085,
/// U+2028 and U+2029 are line breaks in YAML 1.1 but not in the parser's YAML 1.2, so a
/// file holding one would be read differently from confd: refused too.
fn check_chars(text: &str) -> Result<(), YamlError> {
    let b = text.as_bytes();
    let bad = b.iter().enumerate().find_map(|(i, &c)| {
        match c {
            b'\t' | b'\n' | b'\r' => None,
            0..0x20 | 0x7f => Some("control characters are not allowed"),
            0xc2 if b.get(i + 1) == Some(&0x85) => Some(LINE_BREAK),
            0xc2 if matches!(b.get(i + 1), Some(0x80..=0x9f)) => {
                Some("control characters are not allowed")
            }
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => {
                Some(LINE_BREAK)
            }
            0xef if b.get(i + 1) == Some(&0xbf) && matches!(b.get(i + 2), Some(0xbe | 0xbf)) => {
                Some("control characters are not allowed")
            }
            _ => None,
        }
        .map(|m| (i, m))
    });
    match bad {
        None => Ok(()),
        Some((i, message)) => Err(YamlError::new(
            1 + b[..i].iter().filter(|&&c| c == b'\n').count(),
            message,
        )),
    }
}

const LINE_BREAK: &str = "U+0085, U+2028 and U+2029 are line breaks in YAML 1.1 (as confd reads it) but not in YAML 1.2: write a plain line break, or \\N, \\L, \\P in double quotes";

/// A recorded event of an anchored node (or of a `<<` list).
#[derive(Debug, Clone, Copy)]
enum Rec {
    Scalar {
        off: usize,
        len: usize,
        plain: bool,
        tag: Tag,
        line: usize,
    },
    Start {
        seq: bool,
        line: usize,
        /// The index after the matching `End`.
        end: usize,
        anchor: usize,
    },
    End,
    Alias {
        id: usize,
        line: usize,
    },
}

/// Where an anchor's events are, by saphyr's anchor id.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    start: usize,
    /// `None` while the node is still being read (an alias inside it is an error).
    end: Option<usize>,
}

/// The events of every anchored node, kept for the aliases that follow.
#[derive(Debug, Default)]
struct Recorder {
    events: Vec<Rec>,
    text: String,
    /// `Start` events whose `End` has not come yet.
    open: Vec<usize>,
    anchors: Vec<Option<Anchor>>,
}

impl Recorder {
    fn recording(&self) -> bool {
        !self.open.is_empty()
    }

    fn set_anchor(&mut self, id: usize, a: Anchor) {
        if self.anchors.len() <= id {
            self.anchors.resize(id + 1, None);
        }
        self.anchors[id] = Some(a);
    }

    fn scalar(&mut self, text: &str, plain: bool, tag: Tag, line: usize, anchor: usize) {
        if anchor == 0 && !self.recording() {
            return;
        }
        let i = self.events.len();
        self.events.push(Rec::Scalar {
            off: self.text.len(),
            len: text.len(),
            plain,
            tag,
            line,
        });
        self.text.push_str(text);
        if anchor > 0 {
            self.set_anchor(
                anchor,
                Anchor {
                    start: i,
                    end: Some(i + 1),
                },
            );
        }
    }

    /// Records a start if anything is recorded; `force` starts a recording.
    fn start(&mut self, seq: bool, line: usize, anchor: usize, force: bool) -> Option<usize> {
        if anchor == 0 && !force && !self.recording() {
            return None;
        }
        let i = self.events.len();
        self.events.push(Rec::Start {
            seq,
            line,
            end: 0,
            anchor,
        });
        self.open.push(i);
        if anchor > 0 {
            self.set_anchor(
                anchor,
                Anchor {
                    start: i,
                    end: None,
                },
            );
        }
        Some(i)
    }

    /// Records an end if its start was recorded; returns that start's index.
    fn end(&mut self) -> Option<usize> {
        let i = self.open.pop()?;
        self.events.push(Rec::End);
        let after = self.events.len();
        if let Rec::Start { end, anchor, .. } = &mut self.events[i] {
            *end = after;
            if *anchor > 0 {
                let a = *anchor;
                self.set_anchor(
                    a,
                    Anchor {
                        start: i,
                        end: Some(after),
                    },
                );
            }
        }
        Some(i)
    }

    fn alias(&mut self, id: usize, line: usize) {
        if self.recording() {
            self.events.push(Rec::Alias { id, line });
        }
    }

    /// The anchor's events, and whether its node is a mapping.
    fn anchor(&self, id: usize, line: usize) -> Result<(usize, usize, bool), YamlError> {
        match self.anchors.get(id).copied().flatten() {
            Some(Anchor {
                start,
                end: Some(end),
            }) => Ok((
                start,
                end,
                matches!(self.events[start], Rec::Start { seq: false, .. }),
            )),
            Some(_) => Err(YamlError::new(
                line,
                "an alias inside the node its anchor names (yaml: anchor value contains itself)",
            )),
            None => Err(YamlError::new(line, "unknown anchor referenced")),
        }
    }

    /// The item ranges of the list whose `Start` is at `start`.
    fn items(&self, start: usize) -> Vec<(usize, usize)> {
        let Rec::Start { end, .. } = self.events[start] else {
            return Vec::new();
        };
        let mut items = Vec::new();
        let mut j = start + 1;
        while j + 1 < end {
            let next = match self.events[j] {
                Rec::Start { end, .. } => end,
                _ => j + 1,
            };
            items.push((j, next));
            j = next;
        }
        items
    }
}

/// What a play-back is at.
#[derive(Debug)]
enum Cursor {
    Events {
        pos: usize,
        end: usize,
        alias: bool,
    },
    /// A `<<` list's items, merged last first (earlier ones win, as in yaml.v2).
    MergeItems {
        items: Vec<(usize, usize)>,
        left: usize,
    },
}

struct Doc<'o> {
    walker: Walker<'o>,
    rec: Recorder,
    /// The `Start` of a `<<` list being recorded, to be played back when it ends.
    collecting: Option<usize>,
    /// Play-backs in progress (an explicit stack: aliases of aliases go deep).
    stack: Vec<Cursor>,
}

impl Doc<'_> {
    fn event(&mut self, ev: Event<'_>, line: usize) -> Result<(), YamlError> {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map_or(Tag::None, |t| Tag::from_uri(&t.handle, &t.suffix));
                let plain = style == ScalarStyle::Plain;
                self.rec.scalar(&text, plain, tag, line, anchor);
                if self.collecting.is_none() {
                    self.walker.scalar(text, plain, tag, line)?;
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let seq = matches!(ev, Event::SequenceStart(..));
                if self.collecting.is_some() {
                    self.rec.start(seq, line, anchor, false);
                } else if seq && self.walker.wants_merge_list() {
                    self.collecting = self.rec.start(seq, line, anchor, true);
                    self.walker.merge_list_begin();
                } else {
                    self.rec.start(seq, line, anchor, false);
                    self.walker.start(seq, line)?;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let closed = self.rec.end();
                match self.collecting {
                    Some(c) if closed == Some(c) => {
                        self.collecting = None;
                        let items = self.rec.items(c);
                        let left = items.len();
                        self.play(Cursor::MergeItems { items, left })?;
                    }
                    Some(_) => {}
                    None => self.walker.end(),
                }
            }
            Event::Alias(id) => {
                self.rec.alias(id, line);
                if self.collecting.is_none() {
                    self.alias(id, line)?;
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
            Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, line: usize) -> Result<(), YamlError> {
        let (start, end, is_map) = self.rec.anchor(id, line)?;
        self.walker.alias_enter(is_map, line)?;
        self.play(Cursor::Events {
            pos: start,
            end,
            alias: true,
        })
    }

    /// Plays recorded events into the walker until `first` is done.
    fn play(&mut self, first: Cursor) -> Result<(), YamlError> {
        let base = self.stack.len();
        self.stack.push(first);
        while self.stack.len() > base {
            let top = self.stack.len() - 1;
            let (pos, end) = match &mut self.stack[top] {
                Cursor::Events { pos, end, alias } => {
                    if *pos >= *end {
                        let alias = *alias;
                        self.stack.pop();
                        if alias {
                            self.walker.alias_exit();
                        }
                        continue;
                    }
                    let p = *pos;
                    *pos += 1;
                    (p, *end)
                }
                Cursor::MergeItems { items, left } => {
                    if *left == 0 {
                        self.stack.pop();
                        self.walker.merge_list_end();
                        continue;
                    }
                    *left -= 1;
                    let (s, e) = items[*left];
                    self.walker.merge_item();
                    self.stack.push(Cursor::Events {
                        pos: s,
                        end: e,
                        alias: false,
                    });
                    continue;
                }
            };
            debug_assert!(pos < end);
            match self.rec.events[pos] {
                Rec::Scalar {
                    off,
                    len,
                    plain,
                    tag,
                    line,
                } => {
                    let text = Cow::Borrowed(&self.rec.text[off..off + len]);
                    self.walker.scalar(text, plain, tag, line)?;
                }
                Rec::Start {
                    seq,
                    line,
                    end: close,
                    ..
                } => {
                    if seq && self.walker.wants_merge_list() {
                        if let Cursor::Events { pos, .. } = &mut self.stack[top] {
                            *pos = close;
                        }
                        self.walker.merge_list_begin();
                        let items = self.rec.items(pos);
                        let left = items.len();
                        self.stack.push(Cursor::MergeItems { items, left });
                    } else {
                        self.walker.start(seq, line)?;
                    }
                }
                Rec::End => self.walker.end(),
                Rec::Alias { id, line } => {
                    let (start, end, is_map) = self.rec.anchor(id, line)?;
                    self.walker.alias_enter(is_map, line)?;
                    self.stack.push(Cursor::Events {
                        pos: start,
                        end,
                        alias: true,
                    });
                }
            }
        }
        Ok(())
    }
}
