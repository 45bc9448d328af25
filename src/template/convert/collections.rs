//! Lists, maps and strings: `len`, `index`, `slice`, `map`, `split`, `reverse`,
//! `sortByLength` and `seq`, with the Go semantics Tera's forms keep and notes where
//! they keep them only in the common case.

use crate::template::go::ast::Span;

use super::expr::int_literal;
use super::texpr::{BinOp, TExpr};
use super::types::{Ty, Typed};
use super::{Converter, R, fail};

impl Converter<'_> {
    pub(super) fn len(&mut self, v: Typed, span: Span) -> R<Typed> {
        match v.ty {
            Ty::Str => {
                if let Some(l) = v.literal.as_deref().filter(|l| !l.is_ascii()) {
                    self.note(
                        span,
                        format!(
                            "len {l:?} is the string's byte count in confd: written as {}",
                            l.len()
                        ),
                    );
                    return Ok(int_literal(l.len() as i64));
                }
                if v.literal.is_none() {
                    self.note_once(
                        "len-str",
                        span,
                        "len of a string became the length filter, which counts characters where confd counted bytes (the same for ASCII)",
                    );
                }
            }
            Ty::Json | Ty::Any => {}
            t if t.is_list() || t.is_map() => {}
            t => {
                return fail(
                    span,
                    format!("len of type {}: confd fails here", t.go_name()),
                );
            }
        }
        Ok(Typed::new(v.expr.filter("length", vec![]), Ty::Int).nonneg())
    }

    pub(super) fn index(&mut self, a: Vec<Typed>, span: Span) -> R<Typed> {
        let mut it = a.into_iter();
        let Some(mut v) = it.next() else {
            return fail(span, "index without an item");
        };
        if matches!(v.ty, Ty::Missing | Ty::Nil) {
            return fail(span, "index of untyped nil: confd fails here");
        }
        for i in it {
            v = match v.ty {
                t if t.is_list() || t == Ty::Json || t == Ty::Any => {
                    match (&i.ty, &i.expr) {
                        (Ty::Int, TExpr::Int(n)) if *n < 0 => {
                            return fail(
                                span,
                                format!("index out of range: {n}: confd fails here"),
                            );
                        }
                        (Ty::Int, _) if !i.nonneg && !matches!(i.expr, TExpr::Int(_)) => self
                            .note_once(
                                "index-neg",
                                span,
                                "index: a negative index counts from the end in Tera; confd failed",
                            ),
                        (Ty::Int, _) => {}
                        (Ty::Str, _) if t == Ty::Json || t == Ty::Any => {}
                        _ => {
                            return fail(
                                span,
                                format!(
                                    "cannot index slice/array with type {}: confd fails here",
                                    i.ty.go_name()
                                ),
                            );
                        }
                    }
                    let elem = if t == Ty::Any { Ty::Any } else { t.elem() };
                    if let (Some(j), TExpr::Int(n)) = (&v.json, &i.expr) {
                        let e = TExpr::Index(Box::new(v.expr.clone()), Box::new(i.expr.clone()));
                        v = match j.as_array().and_then(|a| a.get(*n as usize)) {
                            Some(child) => {
                                let mut t = Typed::new(e, Ty::Json);
                                t.json = Some(std::rc::Rc::new(child.clone()));
                                t
                            }
                            None => {
                                return fail(
                                    span,
                                    format!("index out of range: {n}: confd fails here"),
                                );
                            }
                        };
                        continue;
                    }
                    if !matches!(elem, Ty::Str | Ty::Int) {
                        self.note_once(
                            "index-range",
                            span,
                            "index past the end of a list: confd failed there; in Tera the element is undefined (no value)",
                        );
                    }
                    let mut r = Typed::new(TExpr::Index(Box::new(v.expr), Box::new(i.expr)), elem);
                    r.rooted = elem == Ty::Kv;
                    r
                }
                Ty::JsonMap | Ty::Map => {
                    if i.ty != Ty::Str && i.ty != Ty::Any && i.ty != Ty::Json {
                        return fail(
                            span,
                            format!(
                                "value has type {}; should be string: confd fails here",
                                i.ty.go_name()
                            ),
                        );
                    }
                    let ty = if v.ty == Ty::Map { Ty::Any } else { Ty::Json };
                    match i.literal {
                        Some(k) if v.json.is_some() => {
                            let e = v.expr.clone().attr(&k, false);
                            match v.json.as_deref() {
                                Some(serde_json::Value::Object(m)) if !m.contains_key(&k) => {
                                    Typed::new(e, Ty::Missing)
                                }
                                j => super::expr::json_field(j, &k, e, span)?,
                            }
                        }
                        Some(k) => {
                            let e = v.expr.clone().attr(&k, false);
                            match v.field_of(&k, e.clone()) {
                                Some(t) => t,
                                None => Typed::new(e, ty),
                            }
                        }
                        None => Typed::new(TExpr::Index(Box::new(v.expr), Box::new(i.expr)), ty),
                    }
                }
                Ty::Str => {
                    return fail(
                        span,
                        "index of a string gives a byte in confd; Tera indexes strings by character",
                    );
                }
                t => {
                    return fail(
                        span,
                        format!("can't index item of type {}: confd fails here", t.go_name()),
                    );
                }
            };
        }
        Ok(v)
    }

    pub(super) fn slice(&mut self, a: Vec<Typed>, span: Span) -> R<Typed> {
        let mut it = a.into_iter();
        let Some(v) = it.next() else {
            return fail(span, "slice without an item");
        };
        let idx: Vec<Typed> = it.collect();
        if idx.len() > 2 && v.ty == Ty::Str {
            return fail(span, "cannot 3-index slice a string: confd fails here");
        }
        if idx.len() > 2 {
            return fail(span, "slice with 3 indexes: Tera's slices have no capacity");
        }
        if !(v.ty.is_list() || v.ty == Ty::Str) {
            return fail(
                span,
                format!(
                    "can't slice item of type {}: confd fails here",
                    v.ty.go_name()
                ),
            );
        }
        for i in &idx {
            if i.ty != Ty::Int {
                return fail(
                    span,
                    format!(
                        "cannot index slice/array with type {}: confd fails here",
                        i.ty.go_name()
                    ),
                );
            }
            match i.expr {
                TExpr::Int(n) if n < 0 => {
                    return fail(span, format!("index out of range: {n}: confd fails here"));
                }
                TExpr::Int(_) => {}
                _ if !i.nonneg => self.note_once(
                    "slice-neg",
                    span,
                    "slice: a negative index counts from the end in Tera; confd failed",
                ),
                _ => {}
            }
        }
        if let [
            Typed {
                expr: TExpr::Int(x),
                ..
            },
            Typed {
                expr: TExpr::Int(y),
                ..
            },
        ] = idx.as_slice()
            && x > y
        {
            return fail(
                span,
                format!("invalid slice index: {x} > {y}: confd fails here"),
            );
        }
        self.note_once(
            "slice",
            span,
            "slice: indexes past the end are cut short in Tera where confd failed; a string is sliced by characters, confd sliced bytes",
        );
        let mut idx = idx.into_iter().map(|t| Box::new(t.expr));
        let from = idx.next();
        let to = idx.next();
        Ok(Typed::new(TExpr::Slice(Box::new(v.expr), from, to), v.ty))
    }

    pub(super) fn map(&mut self, a: Vec<Typed>, span: Span) -> R<Typed> {
        if !a.len().is_multiple_of(2) {
            return fail(span, "invalid map call: confd fails here");
        }
        let mut entries: std::collections::BTreeMap<String, Typed> = Default::default();
        for pair in a.chunks(2) {
            let key = match (&pair[0].literal, pair[0].ty) {
                (Some(k), _) => k.clone(),
                (None, Ty::Str) => {
                    return fail(
                        span,
                        "map with a computed key: Tera's map literals have constant keys",
                    );
                }
                _ => return fail(span, "map keys must be strings: confd fails here"),
            };
            if pair[1].ty == Ty::Time {
                return fail(span, "a time in a map: Tera's datetime() is a string");
            }
            entries.insert(key, pair[1].clone());
        }
        // Go ranges over and prints a map in key order; Tera in the order written.
        let literal = entries
            .iter()
            .map(|(k, v)| (k.clone(), v.expr.clone()))
            .collect();
        let mut t = Typed::new(TExpr::Map(literal), Ty::Map);
        t.fields = Some(std::rc::Rc::new(entries));
        Ok(t)
    }

    pub(super) fn reverse(&mut self, v: Typed, span: Span) -> R<Typed> {
        match v.ty {
            Ty::Strs | Ty::KvSlice => self.in_place(v, "reverse", span),
            t => {
                self.note(
                    span,
                    format!(
                        "{}: confd's reverse leaves a {} as it is, so it was left out",
                        self.shown(span),
                        t.go_name()
                    ),
                );
                Ok(v)
            }
        }
    }

    /// A filter that confd applied to its argument in place: on a variable, the
    /// variable is set to the result, so later uses see it as confd's did.
    fn in_place(&mut self, v: Typed, filter: &str, span: Span) -> R<Typed> {
        let ty = if filter == "sort_kv_by_length" {
            Ty::KvSlice
        } else {
            v.ty
        };
        // sort_by_length orders ties by value unless asked to sort as confd does.
        let args = if filter == "sort_by_length" {
            vec![("confd", TExpr::Bool(true))]
        } else {
            vec![]
        };
        let changed = Typed::new(v.expr.clone().filter(filter, args), ty);
        let Some(var) = v.var else {
            return Ok(changed);
        };
        if self.lazy > 0 {
            self.note(
                span,
                format!("{}: confd changed the variable's list in place, which this form does not do where and/or may skip it", self.shown(span)),
            );
            return Ok(changed);
        }
        let set = self.assign(var, changed, span)?;
        self.pre.push(super::Piece::stmt(set));
        Ok(Typed { ty, ..v })
    }

    pub(super) fn sort_by_length(&mut self, v: Typed, span: Span) -> R<Typed> {
        self.in_place(v, "sort_by_length", span)
    }

    pub(super) fn sort_kv_by_length(&mut self, v: Typed, span: Span) -> R<Typed> {
        self.in_place(v, "sort_kv_by_length", span)
    }

    pub(super) fn seq(&mut self, first: Typed, last: Typed, span: Span) -> R<Typed> {
        if let (TExpr::Int(a), TExpr::Int(b)) = (&first.expr, &last.expr) {
            if a > b {
                return Ok(Typed::new(TExpr::List(vec![]), Ty::Ints));
            }
            let Some(end) = b.checked_add(1) else {
                return fail(
                    span,
                    "seq to the largest int: Tera's range cannot end past it",
                );
            };
            if end - a > 100_000 {
                return fail(
                    span,
                    "seq of more than 100,000 numbers: Tera's range stops at 100,000",
                );
            }
            let mut kw = Vec::new();
            if *a != 0 {
                kw.push(("start", first.expr.clone()));
            }
            kw.push(("end", int_literal(end).expr));
            return Ok(Typed::new(TExpr::call("range", kw), Ty::Ints));
        }
        self.note_once(
            "seq",
            span,
            "seq became range(start=, end=last + 1), which fails when last is below first - 1 (confd gave an empty list) or for more than 100,000 numbers",
        );
        let end = match last.expr {
            TExpr::Int(b) => TExpr::Int(b.saturating_add(1)),
            e => e.bin(BinOp::Add, TExpr::Int(1)),
        };
        let mut kw = Vec::new();
        if first.expr != TExpr::Int(0) {
            kw.push(("start", first.expr));
        }
        kw.push(("end", end));
        Ok(Typed::new(TExpr::call("range", kw), Ty::Ints))
    }

    pub(super) fn split(&mut self, v: Typed, sep: Typed, span: Span) -> Typed {
        match sep.literal.as_deref() {
            Some("") => {
                let e = TExpr::Comprehension {
                    expr: Box::new(TExpr::Var("c".into())),
                    var: "c".into(),
                    target: Box::new(v.expr),
                    cond: None,
                };
                Typed::new(e, Ty::Strs)
            }
            Some(_) => Typed::new(v.expr.filter("split", vec![("pat", sep.expr)]), Ty::Strs),
            None => {
                self.note_once(
                    "split",
                    span,
                    "split with a computed separator: an empty one splits into characters in confd and adds empty ends in Tera",
                );
                Typed::new(v.expr.filter("split", vec![("pat", sep.expr)]), Ty::Strs)
            }
        }
    }
}
