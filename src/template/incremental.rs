//! Incremental rendering of Tera templates: each cacheable loop ([`super::loops`]) is
//! replaced, in a second copy of the template, by a call of `__confsync_loop(id=N)`,
//! which renders the loop at the point it stood through the resource's
//! [`FragmentCache`]: an element whose fragment the last render made is copied, only
//! the others render the body (compiled once as a template of its own).
//!
//! The copy is used only for a render with an [`super::EntryCache`] (the daemon's); a
//! render without one (one-shot, `check`, tests) uses the template as written, so its
//! output cannot change. The body's output depends on its element alone (checked at
//! load), so rendering it apart from the rest of the template writes the same bytes.

use std::cell::RefCell;
use std::sync::Arc;

use tera::{Context, Error, Kwargs, State, Tera, TeraResult, Value};

use super::entries::entry;
use super::fragments::{Ident, LoopKey, LoopRun};
use super::limits::{RenderLimits, check_cancelled};
use super::loops::{self, Candidate, Source};
use super::view::View;

/// The function that stands for a loop in the rewritten templates.
const CALL: &str = "__confsync_loop";

/// One cacheable loop.
#[derive(Debug, Clone)]
struct LoopDef {
    /// Its template and place, with a hash of its text (a cache outlives a reload that
    /// may change the loop).
    key: LoopKey,
    var: String,
    source: Source,
    pattern: String,
    /// The body's name in [`Loops::bodies`].
    body: String,
}

/// The loops and their bodies, shared with the function through [`ACTIVE`].
#[derive(Clone)]
struct Loops {
    /// Every body, in an instance with confsync's functions and filters and no other
    /// template (so a body that includes one fails to load and is not cached).
    bodies: Tera,
    defs: Vec<LoopDef>,
}

/// The templates with their cacheable loops replaced by calls.
pub struct Incremental {
    /// Every template, the ones with cacheable loops rewritten; made at the first such
    /// loop (until then the engine's own templates serve every render).
    rewritten: Option<Tera>,
    loops: Arc<Loops>,
    /// Set when a template could not be added to `rewritten` (it is then not used).
    broken: bool,
}

/// What the function needs during one render.
struct Active {
    loops: Arc<Loops>,
    max_size: usize,
    /// Why a loop stopped the render (its size, a cancel), as the plain path says it.
    stopped: Option<String>,
}

thread_local! {
    /// The loops of the render running on this thread (Tera functions are shared
    /// `'static` closures; this is set only for one synchronous render).
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

#[cfg(test)]
thread_local! {
    /// Fragments (reused, rendered) by the cached loops of this thread's renders.
    static COUNTS: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Takes the (reused, rendered) counts of this thread's cached loops since the last call.
#[cfg(test)]
pub fn take_counts() -> (usize, usize) {
    COUNTS.with(|c| c.take())
}

impl Incremental {
    /// Empty, from `base`: a Tera instance with confsync's functions and filters.
    pub fn new(base: &Tera) -> Self {
        Self {
            rewritten: None,
            loops: Arc::new(Loops {
                bodies: base.clone(),
                defs: Vec::new(),
            }),
            broken: false,
        }
    }

    /// Adds template `name` (already loaded as written into `all`, the engine's
    /// templates) with its cacheable loops replaced. A loop that is not cacheable stays
    /// as it is.
    pub fn add(&mut self, name: &str, text: &str, all: &Tera) {
        let loops = Arc::make_mut(&mut self.loops);
        let mut kept: Vec<(Candidate, usize)> = Vec::new();
        for c in loops::candidates(text) {
            if !loops::body_is_pure(&c.body) {
                continue;
            }
            let key = LoopKey {
                template: LoopKey::template_id(name, &text[c.span.clone()]),
                at: c.span.start,
            };
            // Unique per template: no two loops start at one line and column.
            let body = format!("{name}:{}:{} (loop body)", c.line, c.column);
            if loops
                .bodies
                .add_raw_template(&body, &loops::body_source(&c))
                .is_err()
            {
                continue;
            }
            // It reads no variable but its element (`loop`, outer `set`s are others).
            let reads_only_var = loops
                .bodies
                .get_template_variables(&body)
                .is_ok_and(|vars| vars.iter().all(|v| *v == c.var));
            if !reads_only_var {
                continue;
            }
            kept.push((c.clone(), loops.defs.len()));
            loops.defs.push(LoopDef {
                key,
                var: c.var,
                source: c.source,
                pattern: c.key,
                body,
            });
        }
        if kept.is_empty() && self.rewritten.is_none() {
            return;
        }
        let rewritten = self.rewritten.get_or_insert_with(|| {
            // Every template so far, this one as written (replaced just below).
            let mut t = all.clone();
            t.register_function(CALL, call);
            t
        });
        let refs: Vec<(&Candidate, usize)> = kept.iter().map(|(c, id)| (c, *id)).collect();
        let source = loops::rewrite(text, &refs, |id| format!("{CALL}(id={id})"));
        if rewritten.add_raw_template(name, &source).is_err()
            && rewritten.add_raw_template(name, text).is_err()
        {
            self.broken = true;
        }
    }

    /// True when renders with a cache should use the rewritten templates.
    pub fn in_use(&self) -> bool {
        self.tera().is_some()
    }

    /// The rewritten templates, when renders with a cache should use them.
    pub fn tera(&self) -> Option<&Tera> {
        self.rewritten
            .as_ref()
            .filter(|_| !self.broken && !self.loops.defs.is_empty())
    }

    /// Runs `render` with the loops available to `__confsync_loop` and `limits`' size;
    /// returns its result and why a loop stopped it, if one did.
    pub fn with_loops<T>(
        &self,
        limits: &RenderLimits,
        render: impl FnOnce() -> T,
    ) -> (T, Option<String>) {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                ACTIVE.with(|a| a.borrow_mut().take());
            }
        }
        ACTIVE.with(|a| {
            *a.borrow_mut() = Some(Active {
                loops: self.loops.clone(),
                max_size: limits.max_size,
                stopped: None,
            })
        });
        let _reset = Reset;
        let out = render();
        let stopped = ACTIVE.with(|a| a.borrow_mut().as_mut().and_then(|a| a.stopped.take()));
        (out, stopped)
    }
}

/// Why a loop stopped.
enum Stop {
    /// It reached the size limit or the render was abandoned: the message.
    Limit(String),
    /// The body failed.
    Failed(Error),
}

/// `__confsync_loop(id=N)`: loop N's output with the current view.
fn call(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let id = kwargs.must_get::<usize>("id")?;
    let (loops, max_size) = ACTIVE.with(|a| {
        a.borrow()
            .as_ref()
            .map(|a| (a.loops.clone(), a.max_size))
            .ok_or_else(|| Error::message("cached loops are only available while rendering"))
    })?;
    let def = loops
        .defs
        .get(id)
        .ok_or_else(|| Error::message(format!("no cached loop {id}")))?;
    let done = super::funcs::view(|view| Ok(render_loop(&loops.bodies, def, view, max_size)))?;
    match done {
        Ok(out) => Ok(Value::from(out)),
        Err(Stop::Limit(why)) => {
            ACTIVE.with(|a| {
                if let Some(a) = a.borrow_mut().as_mut() {
                    a.stopped = Some(why.clone());
                }
            });
            Err(Error::message(why))
        }
        Err(Stop::Failed(e)) => Err(Error::message(super::error_text(&e))),
    }
}

/// One run of a loop: its output so far and its fragments.
struct Run<'a> {
    bodies: &'a Tera,
    def: &'a LoopDef,
    out: Vec<u8>,
    cached: Option<LoopRun>,
    ctx: Context,
    max_size: usize,
}

impl Run<'_> {
    /// Appends the element made of `parts`: its last fragment, or `value()` rendered.
    fn element(&mut self, parts: &[&[u8]], value: impl FnOnce() -> Value) -> Result<(), Stop> {
        check_cancelled().map_err(|_| Stop::Limit(RenderLimits::cancelled_message()))?;
        let ident = self.cached.as_ref().map(|_| Ident::of(parts));
        let reused = match (&mut self.cached, ident) {
            (Some(run), Some(id)) => run.reuse(id, &mut self.out),
            _ => false,
        };
        if !reused {
            let start = self.out.len();
            self.ctx.insert_value(self.def.var.clone(), value());
            self.bodies
                .render_to(&self.def.body, &self.ctx, &mut self.out)
                .map_err(Stop::Failed)?;
            if let (Some(run), Some(id)) = (&mut self.cached, ident) {
                run.record(id, &self.out[start..]);
            }
        }
        if self.out.len() >= self.max_size {
            return Err(Stop::Limit(RenderLimits::sized(self.max_size).too_large()));
        }
        Ok(())
    }
}

/// Loop `def` over `view`'s elements, through its cache when the view has one.
fn render_loop(bodies: &Tera, def: &LoopDef, view: &View, max_size: usize) -> Result<String, Stop> {
    let cache = view.cache();
    let mut run = Run {
        bodies,
        def,
        out: Vec::new(),
        cached: cache.and_then(|c| c.fragments().begin(def.key.clone())),
        ctx: Context::new(),
        max_size,
    };
    let bad = |e: super::glob::BadPattern| Stop::Failed(Error::message(e.to_string()));
    match def.source {
        Source::Gets => {
            for (k, v) in view.gets(&def.pattern).map_err(bad)? {
                run.element(&[k.as_bytes(), v.as_bytes()], || entry(k, v))?;
            }
        }
        Source::Getvs => {
            for v in view.getvs(&def.pattern).map_err(bad)? {
                run.element(&[v.as_bytes()], || Value::from(v))?;
            }
        }
        Source::Ls | Source::Lsdir => {
            let names = if def.source == Source::Ls {
                view.ls(&def.pattern)
            } else {
                view.lsdir(&def.pattern)
            };
            for n in names {
                run.element(&[n.as_bytes()], || Value::from(n.as_str()))?;
            }
        }
    }
    if let (Some(c), Some(r)) = (cache, run.cached.take()) {
        #[cfg(test)]
        COUNTS.with(|n| {
            let (a, b) = n.get();
            n.set((a + r.reused(), b + r.rendered()));
        });
        c.fragments()
            .finish(r, &run.out, None, || check_cancelled().is_err());
    }
    String::from_utf8(run.out)
        .map_err(|_| Stop::Failed(Error::message("a loop wrote bytes that are not UTF-8")))
}
