//! Incremental rendering: the output of each iteration of a loop over the store, kept
//! from one render of a resource to the next, so a change of one key under a prefix of
//! 100,000 renders one loop body instead of 100,000.
//!
//! An engine uses this only for a loop whose body's output is a pure function of the
//! element it iterates over (it reads nothing else: no other variable, no store
//! function, no environment, no clock) — each engine decides that from the template's
//! syntax before it asks. Such a body renders the same bytes for the same element, so a
//! fragment can be reused wherever the element is the same; an element is known by a
//! 128-bit SipHash of its parts under a key drawn at random per process (elements are
//! written by the instances, so the hash is keyed: nobody can make two elements collide
//! on purpose).
//!
//! Per loop the cache keeps one buffer with the fragments of the last render end to end
//! (exactly the loop's output) and, per element, its hash and where its fragment ends:
//! 24 bytes per element beside the output itself. A render walks its elements in order
//! against the previous render's: an unchanged element is found at the cursor and its
//! fragment copied; one missing from the cursor's neighbourhood is looked up in an index
//! built on the second such miss in a row (keys deleted in bulk, an order that changed); anything
//! else is rendered and recorded.
//!
//! A loop over keys in key order (`gets`) also keeps its elements' keys (end to end, with
//! a 4-byte end each). Told which keys changed since its last run (`template::basis`), it
//! need not walk the others: for each changed key in order, a binary search finds where
//! its element was or goes, the elements before it are copied as one run (their ends
//! shifted), its old element is passed over and its body rendered if it is still an
//! element ([`LoopRun::copy_until`], [`LoopRun::copy_rest`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{LazyLock, Mutex, PoisonError};

use siphasher::sip128::{Hasher128, SipHasher13};

/// Which loop: the template it is written in and where (the engine's own offset).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoopKey {
    /// The template's name.
    pub template: String,
    /// Where the loop starts in it.
    pub at: usize,
}

impl LoopKey {
    /// What a template is known by for its loops: its `name` and a digest of `source`
    /// (the template's, or the loop's own text), so that an edited template never reuses
    /// what the old one rendered.
    pub fn template_id(name: &str, source: &str) -> String {
        format!(
            "{name}#{:016x}",
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(source)
        )
    }
}

/// An element of a loop, as the keyed hash of its parts: 128 bits as two `u64`s, so
/// that an element's `(Ident, end)` takes 24 bytes (a `u128` is 16-byte aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ident([u64; 2]);

/// The process's SipHash key.
static KEY: LazyLock<(u64, u64)> = LazyLock::new(|| {
    let s = std::hash::RandomState::new();
    (s.hash_one(0x5eed_u64), s.hash_one(0xfeed_u64))
});

impl Ident {
    /// The ident of an element made of `parts` (each length-prefixed, so `("ab", "c")`
    /// and `("a", "bc")` differ).
    pub fn of(parts: &[&[u8]]) -> Ident {
        let (k0, k1) = *KEY;
        let mut h = SipHasher13::new_with_keys(k0, k1);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        let h = h.finish128();
        Ident([h.h1, h.h2])
    }
}

/// One loop's fragments from one render.
#[derive(Debug, Default)]
struct Fragments {
    /// The fragments end to end.
    out: Vec<u8>,
    /// Per element in render order: its ident and where its fragment ends in `out`.
    items: Vec<(Ident, usize)>,
    /// For a loop over keys in key order (`gets`): each element's key, so that a render
    /// told which keys changed finds their elements without walking the others.
    keys: Option<Keys>,
    /// The epoch of the render that made them (`template::basis`), if it said.
    from: Option<u64>,
}

/// Keys end to end, in order.
#[derive(Debug, Default)]
struct Keys {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<u32>,
}

impl Keys {
    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// Appends `key`; false when the arena would pass 4 GiB (then it is dropped).
    fn push(&mut self, key: &[u8]) -> bool {
        let Ok(end) = u32::try_from(self.bytes.len() + key.len()) else {
            return false;
        };
        self.bytes.extend_from_slice(key);
        self.ends.push(end);
        true
    }

    /// Where `key` is in the sorted keys from `from` on: `Ok` at it, `Err` where it
    /// would go.
    fn search(&self, from: usize, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (from, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }
}

impl Fragments {
    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.items[i - 1].1 }
    }

    fn fragment(&self, i: usize) -> &[u8] {
        &self.out[self.start(i)..self.items[i].1]
    }
}

/// Gives back a vector's spare room past an eighth of its length.
fn shrink<T>(v: &mut Vec<T>) {
    let keep = v.len() + v.len() / 8;
    if v.capacity() > keep {
        v.shrink_to(keep);
    }
}

/// How far past the cursor an element is looked for before the index is built.
const NEAR: usize = 4;

/// One loop being rendered: the previous render's fragments and the ones of this render.
#[derive(Debug)]
pub struct LoopRun {
    key: LoopKey,
    prev: Fragments,
    next: Fragments,
    cursor: usize,
    /// Ident -> position in `prev`, built on the first miss near the cursor.
    index: Option<HashMap<Ident, usize>>,
    /// Elements in a row not found near the cursor.
    misses: usize,
    /// Bytes of fragments this run has had so far.
    written: usize,
    /// Fragments reused and rendered so far.
    reused: usize,
    rendered: usize,
}

/// How a loop's elements are known when its keys are kept ([`LoopRun::keyed`]).
pub enum Keyed {
    /// Every element's key is noted ([`LoopRun::note_key`]) as the loop walks them all.
    Walk,
    /// The previous run's keys are there: only the elements of changed keys are
    /// looked at ([`LoopRun::copy_until`], [`LoopRun::copy_rest`]).
    Splice,
}

impl LoopRun {
    fn find(&mut self, ident: Ident) -> Option<usize> {
        let end = (self.cursor + NEAR).min(self.prev.items.len());
        if let Some(i) = (self.cursor..end).find(|&i| self.prev.items[i].0 == ident) {
            self.cursor = i + 1;
            self.misses = 0;
            return Some(i);
        }
        // One miss is a new element (the cursor stays for the next one); two in a row
        // mean the cursor lost its place (keys deleted in bulk, a new order).
        self.misses += 1;
        if self.index.is_none() && self.misses < 2 {
            return None;
        }
        let prev = &self.prev;
        let index = self.index.get_or_insert_with(|| {
            prev.items
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (*id, i))
                .collect()
        });
        let i = *index.get(&ident)?;
        if i >= self.cursor {
            self.cursor = i + 1;
        }
        self.misses = 0;
        Some(i)
    }

    /// Appends the fragment the last render made for `ident` to `out` and returns true,
    /// or returns false when there is none (render the body, then [`LoopRun::record`]).
    pub fn reuse(&mut self, ident: Ident, out: &mut Vec<u8>) -> bool {
        let Some(i) = self.find(ident) else {
            return false;
        };
        let fragment = self.prev.fragment(i);
        out.extend_from_slice(fragment);
        self.push(ident, fragment.len());
        self.reused += 1;
        true
    }

    /// Notes `fragment`, just rendered for `ident` (its bytes are taken from the loop's
    /// whole output at [`FragmentCache::finish`]).
    pub fn record(&mut self, ident: Ident, fragment: &[u8]) {
        self.push(ident, fragment.len());
        self.rendered += 1;
    }

    fn push(&mut self, ident: Ident, len: usize) {
        self.written += len;
        self.next.items.push((ident, self.written));
    }

    /// Fragments reused so far in this run.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Bodies rendered so far in this run.
    pub fn rendered(&self) -> usize {
        self.rendered
    }

    /// Keeps the elements' keys, for a loop over keys in key order (`gets`): how this
    /// run goes (see [`Keyed`]) given whether the caller knows every key changed since
    /// the previous run (`changes_known`).
    pub fn keyed(&mut self, changes_known: bool) -> Keyed {
        let spliced = changes_known && self.prev.keys.is_some();
        let bytes = self.prev.keys.as_ref().map_or(0, |k| k.bytes.len());
        self.next.keys = Some(Keys {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(self.prev.items.len()),
        });
        if spliced { Keyed::Splice } else { Keyed::Walk }
    }

    /// Notes the key of the element just reused or recorded (in a keyed run).
    pub fn note_key(&mut self, key: &str) {
        if let Some(k) = &mut self.next.keys
            && !k.push(key.as_bytes())
        {
            self.next.keys = None;
        }
    }

    /// In a spliced run: copies the previous run's elements from the cursor up to
    /// `key` (which must come after every key given before) and passes over `key`'s
    /// own element if it had one (render it again if it is still an element).
    pub fn copy_until(&mut self, key: &str, out: &mut Vec<u8>) {
        let Some(keys) = &self.prev.keys else {
            return;
        };
        let (end, skip) = match keys.search(self.cursor, key.as_bytes()) {
            Ok(i) => (i, 1),
            Err(i) => (i, 0),
        };
        self.copy_to(end, out);
        self.cursor = end + skip;
    }

    /// In a spliced run: copies the previous run's elements from the cursor to the end.
    pub fn copy_rest(&mut self, out: &mut Vec<u8>) {
        self.copy_to(self.prev.items.len(), out);
    }

    /// Copies elements `cursor..end` of the previous run, as one run of bytes.
    fn copy_to(&mut self, end: usize, out: &mut Vec<u8>) {
        let start = self.cursor;
        if end <= start {
            return;
        }
        let (from, to) = (self.prev.start(start), self.prev.items[end - 1].1);
        out.extend_from_slice(&self.prev.out[from..to]);
        let shift = self.written as isize - from as isize;
        self.next.items.extend(
            self.prev.items[start..end]
                .iter()
                .map(|&(id, e)| (id, (e as isize + shift) as usize)),
        );
        self.written += to - from;
        self.reused += end - start;
        if let (Some(prev), Some(next)) = (&self.prev.keys, &mut self.next.keys) {
            let (kf, kt) = (
                if start == 0 { 0 } else { prev.ends[start - 1] },
                prev.ends[end - 1],
            );
            match u32::try_from(next.bytes.len() + (kt - kf) as usize) {
                Ok(_) => {
                    let kshift = next.bytes.len() as i64 - i64::from(kf);
                    next.bytes
                        .extend_from_slice(&prev.bytes[kf as usize..kt as usize]);
                    next.ends.extend(
                        prev.ends[start..end]
                            .iter()
                            .map(|&e| (i64::from(e) + kshift) as u32),
                    );
                }
                Err(_) => self.next.keys = None,
            }
        }
        self.cursor = end;
    }

    /// The epoch of the render that made the previous run's fragments, if it said.
    pub fn prev_from(&self) -> Option<u64> {
        self.prev.from
    }

    /// Elements of this run so far.
    pub fn elements(&self) -> usize {
        self.next.items.len()
    }
}

/// The fragments of every cacheable loop of one resource's templates.
#[derive(Debug, Default)]
pub struct FragmentCache {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Loop -> (the render that last ran it, its fragments).
    loops: HashMap<LoopKey, (u64, Fragments)>,
    /// Loops begun in the current render (a loop run twice in one render, from a
    /// template called twice, is rendered plainly the second time).
    begun: Vec<LoopKey>,
    render: u64,
}

impl FragmentCache {
    /// Starts loop `key` of this render, with what its previous run left; `None` when it
    /// already ran in this render (render it plainly).
    pub fn begin(&self, key: LoopKey) -> Option<LoopRun> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.begun.contains(&key) {
            return None;
        }
        s.begun.push(key.clone());
        let prev = s.loops.remove(&key).map(|(_, f)| f).unwrap_or_default();
        let items = prev.items.len();
        Some(LoopRun {
            key,
            prev,
            next: Fragments {
                out: Vec::new(),
                items: Vec::with_capacity(items),
                keys: None,
                from: None,
            },
            cursor: 0,
            index: None,
            misses: 0,
            written: 0,
            reused: 0,
            rendered: 0,
        })
    }

    /// Keeps a loop's run that ended without an error for the next render, with the
    /// loop's whole `output` (its fragments end to end, as the engine wrote them: one
    /// copy into the buffer the previous run's fragments had, instead of one per
    /// element into a new one). A run that is not finished (the render failed or was
    /// cancelled) is simply dropped: that loop renders in full next time, as is one whose
    /// render was `abandoned` meanwhile (asked under the cache's lock: a render abandoned
    /// at its timeout that still ends never puts back fragments older than those of the
    /// render that followed it).
    /// `from` is the epoch of the render (see [`LoopRun::prev_from`]).
    pub fn finish(
        &self,
        run: LoopRun,
        output: &[u8],
        from: Option<u64>,
        abandoned: impl FnOnce() -> bool,
    ) {
        let LoopRun {
            key,
            prev,
            mut next,
            written,
            ..
        } = run;
        if written != output.len() {
            // Not only fragments (an element without an ident was rendered too): keep
            // nothing rather than fragments out of place.
            return;
        }
        next.from = from;
        next.out = prev.out;
        next.out.clear();
        next.out.extend_from_slice(output);
        if next
            .keys
            .as_ref()
            .is_some_and(|k| k.ends.len() != next.items.len())
        {
            // An element's key was not noted: the keys cannot say where elements are.
            next.keys = None;
        }
        // Kept for the resource's life: at most an eighth over what the loop holds.
        shrink(&mut next.out);
        shrink(&mut next.items);
        if let Some(k) = &mut next.keys {
            shrink(&mut k.bytes);
            shrink(&mut k.ends);
        }
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if abandoned() {
            return;
        }
        let render = s.render;
        s.loops.insert(key, (render, next));
    }

    /// Ends a render: loops it did not run are dropped.
    pub fn finish_render(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let render = s.render;
        s.loops.retain(|_, (used, _)| *used == render);
        s.begun.clear();
        s.render += 1;
    }

    /// Elements kept over all loops.
    pub fn len(&self) -> usize {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.loops.values().map(|(_, f)| f.items.len()).sum()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LoopKey {
        LoopKey {
            template: "t".into(),
            at: 7,
        }
    }

    /// Renders `elems` through the cache as a loop whose body is `<e>;`, returning the
    /// output and how many bodies were rendered.
    fn run(c: &FragmentCache, elems: &[&str]) -> (String, usize) {
        let mut out = b"head|".to_vec();
        let loop_start = out.len();
        let mut r = c
            .begin(key())
            .expect("first run of the loop in this render");
        for e in elems {
            let id = Ident::of(&[e.as_bytes()]);
            if !r.reuse(id, &mut out) {
                let start = out.len();
                out.extend_from_slice(format!("<{e}>;").as_bytes());
                let frag = out[start..].to_vec();
                r.record(id, &frag);
            }
        }
        let rendered = r.rendered();
        c.finish(r, &out[loop_start..], None, || false);
        c.finish_render();
        (String::from_utf8(out).unwrap(), rendered)
    }

    fn plain(elems: &[&str]) -> String {
        let mut s = "head|".to_string();
        for e in elems {
            s.push_str(&format!("<{e}>;"));
        }
        s
    }

    #[test]
    fn an_element_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<(Ident, usize)>(), 24);
    }

    #[test]
    fn idents_separate_their_parts() {
        assert_ne!(Ident::of(&[b"ab", b"c"]), Ident::of(&[b"a", b"bc"]));
        assert_eq!(Ident::of(&[b"a", b"b"]), Ident::of(&[b"a", b"b"]));
    }

    #[test]
    fn unchanged_elements_are_reused_and_changes_rendered() {
        let c = FragmentCache::default();
        let all: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
        let mut elems: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(run(&c, &elems), (plain(&elems), 100));
        assert_eq!(run(&c, &elems), (plain(&elems), 0));
        elems[50] = "changed";
        assert_eq!(run(&c, &elems), (plain(&elems), 1));
        // Past a bulk delete the first element is rendered again, the second finds the
        // cursor's new place through the index.
        elems.drain(10..40);
        assert_eq!(run(&c, &elems), (plain(&elems), 1), "bulk delete");
        elems.insert(0, "new");
        elems.reverse();
        let (out, rendered) = run(&c, &elems);
        assert_eq!(out, plain(&elems), "order changed");
        assert!(rendered <= 2, "{rendered} bodies rendered after a reversal");
        assert_eq!(c.len(), elems.len());
    }

    #[test]
    fn a_loop_runs_cached_once_per_render_and_unused_loops_go() {
        let c = FragmentCache::default();
        let r = c.begin(key()).unwrap();
        assert!(c.begin(key()).is_none());
        c.finish(r, b"", None, || false);
        c.finish_render();
        assert!(c.begin(key()).is_some());
        c.finish_render();
        c.finish_render();
        assert!(c.is_empty());
        let mut r = c.begin(key()).unwrap();
        r.record(Ident::of(&[b"x"]), b"x");
        drop(r);
        c.finish_render();
        assert!(c.is_empty(), "an unfinished run keeps nothing");
        let r = c.begin(key()).unwrap();
        c.finish(r, b"", None, || true);
        c.finish_render();
        assert!(c.is_empty(), "nor does the run of an abandoned render");
    }
}
