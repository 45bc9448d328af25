//! From YAML nodes to confd's keys, as confd's file backend makes them: yaml.v2 decodes
//! into `map[interface{}]interface{}` and `nodeWalk` joins the map keys with `path.Join`
//! (`/a/b`, and list items `/a/0`) down to the leaves.
//!
//! The [`Walker`] takes the nodes as events (from the full parser or the fast path) and
//! writes leaves straight into the entries list, with no tree in between. What a Go map
//! does is kept: a key given twice in one mapping replaces the whole earlier value (so its
//! entries are marked dead), a null value replaces and adds nothing, and `<<` merges
//! set keys at the point they appear, later ones winning. A key that is not a string in
//! YAML 1.1 is an error unless its whole mapping was replaced (confd crashes on it).

use std::borrow::Cow;

use super::Entries;
use super::keys::Keys;
use super::path::{KeyPath, Restore};
use super::resolve::{self, Tag, Value};

/// A YAML document that confd could not read, or that confsync refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub(super) struct YamlError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl YamlError {
    pub(super) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Deepest nesting read, as yaml.v2's scanner allows.
const MAX_DEPTH: usize = 10_000;

/// The key of a placeholder entry for a map key that is not a string (real keys start
/// with `/`, dead entries are empty).
const NON_STRING: &str = "\0";

#[derive(Debug)]
enum MapState {
    Key,
    /// The value of `keys[rec]` (`None` for a key that is not a string).
    Value {
        rec: Option<usize>,
        restore: Restore,
    },
    /// The value of `<<`: a mapping or an alias of one (`in_list`: an item of a list of them).
    MergeValue {
        in_list: bool,
    },
    /// Inside the list value of `<<`, which the driver plays back item by item.
    MergeList,
}

#[derive(Debug)]
enum Frame {
    /// The document: `done` once its one node was read.
    Root {
        done: bool,
    },
    /// A mapping, and what its next node is.
    Map(MapState),
    Seq {
        path_len: usize,
        next: usize,
    },
    /// A mapping merged with `<<` into the mapping `frames[map]`.
    Merged {
        map: usize,
        in_list: bool,
    },
}

/// Where the next node goes.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Root {
        done: bool,
    },
    Key,
    Value,
    Merge {
        in_list: bool,
    },
    MergeList,
    /// The next item of a list, with its index.
    Item(usize),
}

/// Writes one YAML document's keys into an entries list.
pub(super) struct Walker<'o> {
    out: &'o mut Entries,
    /// `out.len()` before this document.
    base: usize,
    /// The path of the node being read, cleaned as `path.Join` cleans (`/` at the top).
    path: KeyPath,
    frames: Vec<Frame>,
    keys: Keys,
    /// Entries replaced by a later duplicate key (their key is emptied).
    dead: usize,
    /// Placeholders for keys that are not strings: `out` index and the error to report if
    /// the placeholder is still alive at the end.
    non_string: Vec<(usize, YamlError)>,
    /// yaml.v2's guard against alias bombs: nodes decoded, and how many of them through
    /// an alias.
    decoded: u64,
    aliased: u64,
    alias_depth: usize,
    /// The next node is an alias's anchor (so a `<<` there is a plain key, as in yaml.v2,
    /// whose merge keys are scalar nodes, never aliases).
    aliased_node: bool,
    /// Bytes of keys, values and paths written so far, and the most allowed.
    work: usize,
    budget: usize,
}

impl<'o> Walker<'o> {
    /// A walker appending to `out`; `budget` caps the bytes it may write (and copy).
    pub(super) fn new(out: &'o mut Entries, budget: usize) -> Self {
        let base = out.len();
        Self {
            out,
            base,
            path: KeyPath::new(),
            frames: vec![Frame::Root { done: false }],
            keys: Keys::default(),
            dead: 0,
            non_string: Vec::new(),
            // The document node itself counts, as in yaml.v2.
            decoded: 1,
            aliased: 0,
            alias_depth: 0,
            aliased_node: false,
            work: 0,
            budget,
        }
    }

    /// The frame the next node belongs to (a merged mapping's keys go to its target).
    fn target(&self) -> usize {
        let top = self.frames.len() - 1;
        match self.frames[top] {
            Frame::Merged { map, .. } => map,
            _ => top,
        }
    }

    fn map_state(&mut self, i: usize) -> &mut MapState {
        match &mut self.frames[i] {
            Frame::Map(state) => state,
            _ => unreachable!("frame {i} is a mapping"),
        }
    }

    /// yaml.v2's `decoder.unmarshal` count: too many nodes through aliases is an error.
    fn count(&mut self, line: usize) -> Result<(), YamlError> {
        self.decoded += 1;
        if self.alias_depth > 0 {
            self.aliased += 1;
        }
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err(YamlError::new(
                line,
                "document contains excessive aliasing (yaml.v2's limit against alias bombs)",
            ));
        }
        Ok(())
    }

    fn spend(&mut self, bytes: usize, line: usize) -> Result<(), YamlError> {
        self.work += bytes;
        if self.work > self.budget {
            return Err(YamlError::new(
                line,
                format!(
                    "the keys and values would take more than {} MiB (too many aliases, or too deep)",
                    self.budget >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Whether the next node is the value of `<<` (the driver then plays a list back item
    /// by item, last first, as yaml.v2 merges them).
    pub(super) fn wants_merge_list(&self) -> bool {
        let t = self.target();
        matches!(
            self.frames[t],
            Frame::Map(MapState::MergeValue { in_list: false })
        )
    }

    pub(super) fn merge_list_begin(&mut self) {
        let t = self.target();
        *self.map_state(t) = MapState::MergeList;
    }

    pub(super) fn merge_item(&mut self) {
        let t = self.target();
        *self.map_state(t) = MapState::MergeValue { in_list: true };
    }

    pub(super) fn merge_list_end(&mut self) {
        let t = self.target();
        *self.map_state(t) = MapState::Key;
    }

    /// An alias node; its anchor's events follow, then [`Walker::alias_exit`].
    pub(super) fn alias_enter(
        &mut self,
        target_is_map: bool,
        line: usize,
    ) -> Result<(), YamlError> {
        let t = self.target();
        if let Frame::Map(MapState::MergeValue { .. }) = self.frames[t]
            && !target_is_map
        {
            return Err(merge_error(line));
        }
        self.count(line)?;
        self.alias_depth += 1;
        self.aliased_node = true;
        Ok(())
    }

    pub(super) fn alias_exit(&mut self) {
        self.alias_depth -= 1;
    }

    /// Where the next node goes, in frame `t`.
    fn slot(&self, t: usize) -> Slot {
        match &self.frames[t] {
            Frame::Root { done } => Slot::Root { done: *done },
            Frame::Map(state) => match state {
                MapState::Key => Slot::Key,
                MapState::Value { .. } => Slot::Value,
                MapState::MergeValue { in_list } => Slot::Merge { in_list: *in_list },
                MapState::MergeList => Slot::MergeList,
            },
            Frame::Seq { next, .. } => Slot::Item(*next),
            Frame::Merged { .. } => unreachable!("target() skips merged frames"),
        }
    }

    /// A scalar node.
    pub(super) fn scalar(
        &mut self,
        text: Cow<'_, str>,
        plain: bool,
        tag: Tag,
        line: usize,
    ) -> Result<(), YamlError> {
        let t = self.target();
        let aliased = std::mem::take(&mut self.aliased_node);
        match self.slot(t) {
            Slot::Root { done: true } => Ok(()),
            Slot::Root { done: false } => {
                self.frames[t] = Frame::Root { done: true };
                self.count(line)?;
                match resolve::resolve(&text, plain, tag).map_err(|e| YamlError::new(line, e))? {
                    Value::Null => Ok(()),
                    _ => Err(YamlError::new(
                        line,
                        format!(
                            "the document is the text `{}`, but confd needs a map of keys (yaml: unmarshal errors)",
                            short(&text)
                        ),
                    )),
                }
            }
            Slot::Key => {
                if !aliased && resolve::is_merge(&text, plain, tag) {
                    *self.map_state(t) = MapState::MergeValue { in_list: false };
                    return Ok(());
                }
                self.count(line)?;
                self.key(t, text, plain, tag, line)
            }
            Slot::Value => {
                self.count(line)?;
                self.leaf(text, plain, tag, line)?;
                self.value_done(t);
                Ok(())
            }
            Slot::Merge { .. } | Slot::MergeList => Err(merge_error(line)),
            Slot::Item(i) => {
                self.count(line)?;
                let restore = self.push_index(i, line)?;
                self.leaf(text, plain, tag, line)?;
                self.path.restore(restore);
                if let Frame::Seq { next, .. } = &mut self.frames[t] {
                    *next += 1;
                }
                Ok(())
            }
        }
    }

    /// The start of a mapping (`seq` false) or a list.
    pub(super) fn start(&mut self, seq: bool, line: usize) -> Result<(), YamlError> {
        if self.frames.len() > MAX_DEPTH {
            return Err(YamlError::new(
                line,
                format!("exceeded max depth of {MAX_DEPTH}"),
            ));
        }
        self.aliased_node = false;
        let t = self.target();
        match self.slot(t) {
            Slot::Root { done: true } => {
                return Err(YamlError::new(line, "a second node in one document"));
            }
            Slot::Root { done: false } => {
                if seq {
                    return Err(YamlError::new(
                        line,
                        "the document is a list, but confd needs a map of keys (yaml: unmarshal errors)",
                    ));
                }
                self.count(line)?;
            }
            Slot::Key => {
                return Err(YamlError::new(
                    line,
                    format!(
                        "a {} cannot be a map key (yaml: invalid map key)",
                        if seq { "list" } else { "map" }
                    ),
                ));
            }
            Slot::Value => self.count(line)?,
            Slot::Merge { in_list } => {
                if seq {
                    return Err(merge_error(line));
                }
                self.count(line)?;
                // The merged mapping's keys are read as the target's own.
                *self.map_state(t) = MapState::Key;
                self.frames.push(Frame::Merged { map: t, in_list });
                return Ok(());
            }
            Slot::MergeList => return Err(merge_error(line)),
            Slot::Item(i) => {
                self.count(line)?;
                // The item's path stays until the item ends (`value_done` truncates it).
                self.push_index(i, line)?;
            }
        }
        self.frames.push(if seq {
            Frame::Seq {
                path_len: self.path.len(),
                next: 0,
            }
        } else {
            self.keys.open();
            Frame::Map(MapState::Key)
        });
        Ok(())
    }

    /// The end of the innermost mapping or list.
    pub(super) fn end(&mut self) {
        match self.frames.pop() {
            Some(Frame::Map(_)) => {
                self.keys.close();
                let t = self.target();
                self.value_done(t);
            }
            Some(Frame::Seq { .. }) => {
                let t = self.target();
                self.value_done(t);
            }
            Some(Frame::Merged { map, in_list }) => {
                *self.map_state(map) = if in_list {
                    MapState::MergeList
                } else {
                    MapState::Key
                };
            }
            Some(root @ Frame::Root { .. }) => self.frames.push(root),
            None => {}
        }
    }

    /// Checks the placeholders and drops dead entries; the document is done.
    pub(super) fn finish(self) -> Result<(), YamlError> {
        for (i, e) in &self.non_string {
            if self.out[*i].0 == NON_STRING {
                return Err(e.clone());
            }
        }
        if self.dead > 0 || !self.non_string.is_empty() {
            let mut keep = self.base;
            for i in self.base..self.out.len() {
                if self.out[i].0.starts_with('/') {
                    self.out.swap(keep, i);
                    keep += 1;
                }
            }
            self.out.truncate(keep);
        }
        Ok(())
    }

    /// A mapping key; the path then points at its value.
    fn key(
        &mut self,
        t: usize,
        text: Cow<'_, str>,
        plain: bool,
        tag: Tag,
        line: usize,
    ) -> Result<(), YamlError> {
        let value = resolve::resolve(&text, plain, tag).map_err(|e| YamlError::new(line, e))?;
        if let Some(kind) = resolve::kind_name(value) {
            // confd panics on it, unless its whole mapping is replaced: keep a placeholder
            // that a replacement kills, and read the value under a path nobody sees.
            let shown = short(&text);
            let message = if text.is_empty() {
                "an empty map key is null in YAML, and confd needs string keys: quote it (\"\")"
                    .to_string()
            } else {
                format!(
                    "the map key `{shown}` is {kind} in YAML 1.1, as confd reads it, and keys must be strings: quote it (\"{shown}\")"
                )
            };
            self.non_string
                .push((self.out.len(), YamlError::new(line, message)));
            self.out.push((NON_STRING.to_string(), String::new()));
            let restore = self.push_key(&text, line)?;
            *self.map_state(t) = MapState::Value { rec: None, restore };
            return Ok(());
        }
        let key = match value {
            Value::Binary => Cow::Owned(
                resolve::leaf_text(&text, value)
                    .map_err(|e| YamlError::new(line, e))?
                    .unwrap_or_default(),
            ),
            _ => text,
        };
        let rec = self.find_or_add(&key, line)?;
        let restore = self.push_key(&key, line)?;
        *self.map_state(t) = MapState::Value {
            rec: Some(rec),
            restore,
        };
        Ok(())
    }

    /// The record of `key` in the innermost mapping: a key given before has the entries
    /// of its old value killed.
    fn find_or_add(&mut self, key: &str, line: usize) -> Result<usize, YamlError> {
        self.spend(key.len(), line)?;
        let (i, old) = self.keys.find_or_add(key, self.out.len());
        for e in &mut self.out[old] {
            if !e.0.is_empty() {
                e.0 = String::new();
                e.1 = String::new();
                self.dead += 1;
            }
        }
        Ok(i)
    }

    /// The value in mapping or list `t` is done: record its entries, restore the path.
    fn value_done(&mut self, t: usize) {
        let len = self.out.len();
        match &mut self.frames[t] {
            Frame::Root { done } => *done = true,
            Frame::Map(state) => {
                let state = std::mem::replace(state, MapState::Key);
                if let MapState::Value { rec, restore } = state {
                    if let Some(r) = rec {
                        self.keys.set_end(r, len);
                    }
                    self.path.restore(restore);
                }
            }
            Frame::Seq { path_len, next } => {
                *next += 1;
                let n = *path_len;
                self.path.truncate(n);
            }
            Frame::Merged { .. } => unreachable!("target() skips merged frames"),
        }
    }

    /// A leaf at the current path, as confd prints it (nulls and uint64s add nothing).
    fn leaf(
        &mut self,
        text: Cow<'_, str>,
        plain: bool,
        tag: Tag,
        line: usize,
    ) -> Result<(), YamlError> {
        let value = resolve::resolve(&text, plain, tag).map_err(|e| YamlError::new(line, e))?;
        let s = match value {
            Value::Str | Value::Timestamp => text.into_owned(),
            _ => match resolve::leaf_text(&text, value).map_err(|e| YamlError::new(line, e))? {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        self.spend(self.path.len() + s.len(), line)?;
        self.out.push((self.path.as_str().to_string(), s));
        Ok(())
    }

    /// `path = path.Join(path, key)`.
    fn push_key(&mut self, key: &str, line: usize) -> Result<Restore, YamlError> {
        let mut work = 0;
        let r = self.path.push(key, &mut work);
        self.spend(work, line)?;
        Ok(r)
    }

    fn push_index(&mut self, i: usize, line: usize) -> Result<Restore, YamlError> {
        let mut work = 0;
        let r = self.path.push_index(i, &mut work);
        self.spend(work, line)?;
        Ok(r)
    }
}

fn merge_error(line: usize) -> YamlError {
    YamlError::new(
        line,
        "map merge requires map or sequence of maps as the value",
    )
}

/// yaml.v2's `allowedAliasRatio`.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// A scalar for an error message: at most 40 characters.
fn short(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(40) {
        Some((i, _)) => Cow::Owned(format!("{}...", &text[..i])),
        None => Cow::Borrowed(text),
    }
}
