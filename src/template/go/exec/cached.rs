//! A cacheable `range` (see `go::incr`) rendered incrementally: each element whose
//! fragment the previous render kept is copied, only new or changed ones run the body.
//!
//! The body's output depends on its element alone, so an element is known by exactly
//! what the body can see of it: the key and value of a `gets` entry, the string of a
//! `getvs`, `ls` or `lsdir` element. `gets` is walked straight off the store, so an
//! unchanged element costs a hash and a copy, not a `memkv.KVPair` in a list of all of
//! them. The output limit and the cancel flag hold as in a plain render; a loop that
//! fails keeps nothing (its next render runs every body again). A copied element takes
//! none of the render's step budget (`MAX_STEPS`, against runaway templates): its steps
//! were counted when it was rendered, so a template at the edge of the budget may pass
//! in the daemon where a fresh render runs out.

use super::super::ast::Control;
use super::super::funcs::Func;
use super::super::incr::store_call;
use super::super::value::{List, ListKind, Str, Value};
use super::{Exec, Flow, R};
use crate::template::RenderLimits;
use crate::template::fragments::{FragmentCache, Ident, Keyed, LoopKey, LoopRun};
use crate::template::glob;

/// What a render needs to reuse the previous render's fragments.
#[derive(Debug, Clone, Copy)]
pub struct Incremental<'a> {
    /// The resource's fragments.
    pub cache: &'a FragmentCache,
    /// The template's name and a digest of its source: a loop is known by this and
    /// where it starts, so an edited template never reuses the old one's fragments.
    pub template: &'a str,
}

/// How many fragments in a row are copied between looks at the cancel flag.
const CANCEL_EVERY: usize = 256;

/// The ident of an element, from all the body can see of it.
fn ident(elem: &Value) -> Option<Ident> {
    match elem {
        Value::Kv(kv) => Some(Ident::of(&[kv.key.as_bytes(), kv.value.as_bytes()])),
        Value::Str(s) => Some(Ident::of(&[s.as_bytes()])),
        _ => None,
    }
}

#[cfg(test)]
thread_local! {
    /// (reused, rendered) of the last cached loop this thread finished.
    static LAST_RUN: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    /// Whether the last `gets` loop this thread began was spliced.
    static SPLICED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the last `gets` loop this thread began was spliced (not walked).
#[cfg(test)]
pub fn last_spliced() -> bool {
    SPLICED.with(std::cell::Cell::get)
}

/// (fragments reused, bodies rendered) of the last cached loop this thread finished.
#[cfg(test)]
pub fn last_run() -> (usize, usize) {
    LAST_RUN.with(std::cell::Cell::get)
}

impl<'a> Exec<'a> {
    /// Renders the cacheable range `c` through the fragment cache; `None` when it is
    /// to be rendered plainly (no cache, or the loop already ran in this render).
    pub(super) fn walk_cached_range(&mut self, dot: &Value<'a>, c: &'a Control) -> R<Option<Flow>> {
        let Some(incr) = self.incr else {
            return Ok(None);
        };
        let Some((func, arg)) = store_call(&c.pipe) else {
            return Ok(None);
        };
        let store = self.store;
        // A bad pattern fails as it does in a plain render.
        let entries = match func {
            Func::Gets => match store.gets_iter(arg) {
                Ok(it) => Some(it),
                Err(_) => return Ok(None),
            },
            _ => None,
        };
        let key = LoopKey {
            template: incr.template.to_string(),
            at: c.span.start,
        };
        let Some(mut run) = incr.cache.begin(key) else {
            return Ok(None);
        };
        let outer = self.vars.len();
        // Everything the loop writes from here is its fragments, end to end.
        let loop_start = self.out.len();
        let done = match entries {
            Some(it) => {
                // The variables hold what the pipeline gave until the first element
                // (an empty loop's `else` sees the empty list).
                let empty = Value::List(List::new(ListKind::KvPairs, Vec::new()));
                for v in &c.pipe.decl {
                    self.vars.push((*v, empty.clone()));
                }
                // Told which keys changed since the loop's last run, only their elements
                // are looked at; else every one is walked and its key kept for next time.
                // (Keys are kept only while every key has its own name: elements are
                // found by those.)
                // The fragments must be those of the render the changes are counted from.
                let from_basis = store
                    .epochs()
                    .is_some_and(|(_, basis)| basis.is_some() && run.prev_from() == basis);
                let changes = store.changes().filter(|_| from_basis);
                let keyed = store.own_names().then(|| run.keyed(changes.is_some()));
                #[cfg(test)]
                SPLICED.with(|s| s.set(matches!(keyed, Some(Keyed::Splice))));
                match keyed {
                    Some(Keyed::Splice) => {
                        drop(it);
                        let changes = changes
                            .into_iter()
                            .flat_map(|c| c.keys())
                            .map(String::as_str);
                        self.spliced_elements(&mut run, c, arg, changes)
                    }
                    _ => {
                        let elems = it.map(|(k, v)| Value::kv(Str::Ref(k), Str::Ref(v)));
                        self.cached_elements(&mut run, c, elems)
                    }
                }
            }
            None => match self.eval_pipeline(dot, &c.pipe)? {
                Value::List(l) => {
                    let elems = (0..l.len()).map_while(|i| l.get(i));
                    self.cached_elements(&mut run, c, elems)
                }
                _ => {
                    self.vars.truncate(outer);
                    return Ok(None);
                }
            },
        };
        let ran = match done {
            Ok(ran) => ran,
            Err(e) => {
                self.vars.truncate(outer);
                return Err(e);
            }
        };
        #[cfg(test)]
        LAST_RUN.with(|l| l.set((run.reused(), run.rendered())));
        let limits = self.limits;
        let from = store.epochs().map(|(epoch, _)| epoch);
        incr.cache
            .finish(run, &self.out[loop_start..], from, || limits.cancelled());
        let mut flow = Flow::Next;
        if !ran && let Some(e) = &c.else_list {
            flow = self.walk(dot, e)?;
        }
        self.vars.truncate(outer);
        Ok(Some(flow))
    }

    /// Each element: its fragment copied, or the body rendered and kept. True when
    /// there was an element. (A cacheable body calls no store function, so no cacheable
    /// loop runs inside one.)
    fn cached_elements(
        &mut self,
        run: &mut LoopRun,
        c: &'a Control,
        elems: impl Iterator<Item = Value<'a>>,
    ) -> R<bool> {
        let mark = self.vars.len();
        let decls = c.pipe.decl.len();
        let mut ran = false;
        let mut copied = 0usize;
        for (i, elem) in elems.enumerate() {
            ran = true;
            let id = ident(&elem);
            if let Value::Kv(kv) = &elem {
                run.note_key(&kv.key);
            }
            if let Some(id) = id
                && run.reuse(id, &mut self.out)
            {
                copied += 1;
                self.at(c.span);
                if copied.is_multiple_of(CANCEL_EVERY) && self.limits.cancelled() {
                    return self.fail(RenderLimits::cancelled_message());
                }
                self.check_output()?;
                continue;
            }
            if decls > 0 {
                self.vars[mark - 1].1 = elem.clone();
            }
            if decls > 1 {
                self.vars[mark - 2].1 = Value::Int(i as i64);
            }
            let start = self.out.len();
            // The body has no `break` or `continue` of its own (else it is not cacheable).
            self.walk(&elem, &c.list)?;
            self.vars.truncate(mark);
            if let Some(id) = id {
                run.record(id, &self.out[start..]);
            }
        }
        Ok(ran)
    }

    /// A `gets` loop told every full key `changed` since its last run (and that no key
    /// is renamed): the last run's elements between changed keys are copied as they
    /// stand, and each changed key that is an element now is rendered. The result is
    /// the walk's, element for element: the elements are the keys matching `pattern`
    /// in key order, and only changed keys can have come, gone or changed. True when
    /// there is an element.
    fn spliced_elements<'c>(
        &mut self,
        run: &mut LoopRun,
        c: &'a Control,
        pattern: &str,
        changed: impl Iterator<Item = &'c str>,
    ) -> R<bool> {
        let Ok(compiled) = glob::Pattern::new(pattern) else {
            // A bad pattern with no key to match it against: no element (as in the
            // walk), and none last time either, or that run would have failed.
            return Ok(false);
        };
        let literal = glob::literal_prefix(pattern);
        let store = self.store;
        let mut names: Vec<&str> = changed
            .map(|full| store.template_key(full))
            .filter(|name| name.starts_with(literal) && compiled.matches(name))
            .collect();
        names.sort_unstable();
        names.dedup();
        let mark = self.vars.len();
        let decls = c.pipe.decl.len();
        self.at(c.span);
        for (n, name) in names.into_iter().enumerate() {
            run.copy_until(name, &mut self.out);
            if n.is_multiple_of(CANCEL_EVERY) && self.limits.cancelled() {
                return self.fail(RenderLimits::cancelled_message());
            }
            self.check_output()?;
            let Some((k, v)) = store.get(name) else {
                continue;
            };
            let elem = Value::kv(Str::Ref(k), Str::Ref(v));
            let id = ident(&elem);
            if decls > 0 {
                self.vars[mark - 1].1 = elem.clone();
            }
            if decls > 1 {
                self.vars[mark - 2].1 = Value::Int(run.elements() as i64);
            }
            let start = self.out.len();
            self.walk(&elem, &c.list)?;
            self.vars.truncate(mark);
            if let Some(id) = id {
                run.record(id, &self.out[start..]);
            }
            run.note_key(k);
        }
        run.copy_rest(&mut self.out);
        self.check_output()?;
        Ok(run.elements() > 0)
    }
}
