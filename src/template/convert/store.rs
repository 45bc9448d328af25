//! memkv's store functions (`getv`, `gets`, `ls`, ...) and the value helpers whose
//! confsync filters read their input differently from Go (`dir`, `json`, `replace`,
//! `base64Decode`): literal arguments are checked where the two would disagree.

use crate::template::go::ast::Span;
use crate::template::go::funcs::Func;

use super::texpr::TExpr;
use super::types::{Ty, Typed, is_rooted};
use super::{Converter, R, fail};

/// What changes for JSON values, said once per template.
pub(super) const JSON_NOTE: &str = "json/jsonArray became the json filter, which reads any JSON value where confd failed on one that is not an object (an array); a field of a JSON value that is not an object is no value in Tera, where confd failed";

impl Converter<'_> {
    /// memkv's store functions.
    pub(super) fn store(&mut self, f: Func, a: Vec<Typed>, span: Span) -> R<Typed> {
        use Func::*;
        let key = a[0].clone();
        let name = f.name();
        // confd's store holds only keys that start with one `/`.
        let never = key.literal.as_deref().is_some_and(|k| !is_rooted(k));
        if never {
            let k = key.literal.clone().unwrap_or_default();
            match f {
                Exists => {
                    self.note(span, format!("exists {k:?} is always false in confd (its keys start with one /): written as false"));
                    return Ok(Typed::new(TExpr::Bool(false), Ty::Bool));
                }
                Getv if a.len() > 1 => {
                    self.note(span, format!("getv {k:?} always gives its default in confd (its keys start with one /): written as the default"));
                    return Ok(a[1].clone());
                }
                Getv | Get => {
                    return fail(
                        span,
                        format!(
                            "{name} {k:?}: confd's keys start with one /, so this key never exists: confd fails here"
                        ),
                    );
                }
                Gets | Getvs => {
                    return fail(
                        span,
                        format!(
                            "{name} of a pattern that does not start with one /: confd matches it against its keys' names, Tera against /{k}"
                        ),
                    );
                }
                _ => {}
            }
        } else if key.literal.is_none() && !key.rooted && !matches!(f, Ls | Lsdir) {
            self.note_once(
                "unrooted-key",
                span,
                format!(
                    "{} is a key that may not start with /: confd's store finds no such key, confsync's Tera functions read it as /KEY",
                    self.shown(span)
                ),
            );
        }
        let k = ("key", key.expr.clone());
        Ok(match f {
            Exists => Typed::new(TExpr::call("exists", vec![k]), Ty::Bool),
            Get => Typed::new(TExpr::call("get", vec![k]), Ty::Kv),
            Gets => Typed::new(TExpr::call("gets", vec![k]), Ty::Kvs),
            Getvs => Typed::new(TExpr::call("getvs", vec![k]), Ty::Strs),
            Getv => {
                let mut kw = vec![k];
                if let Some(d) = a.get(1) {
                    kw.push(("default", d.expr.clone()));
                }
                Typed::new(TExpr::call("getv", kw), Ty::Str)
            }
            Ls => Typed::new(
                TExpr::call("ls", vec![k, ("confd", TExpr::Bool(true))]),
                Ty::Strs,
            ),
            _ => {
                let slash = key
                    .literal
                    .as_deref()
                    .is_some_and(|l| l.trim_matches('/').is_empty());
                let mut kw = vec![k];
                if slash || (key.literal.is_none() && !key.rooted) || never {
                    kw.push(("confd", TExpr::Bool(true)));
                }
                Typed::new(TExpr::call("lsdir", kw), Ty::Strs)
            }
        })
    }

    pub(super) fn dir(&mut self, v: Typed, span: Span) -> R<Typed> {
        if let Some(l) = &v.literal {
            let go = crate::gopath::dir(l);
            if crate::template::funcs::dir_of(l) != go {
                return fail(
                    span,
                    format!(
                        "dir {l:?}: Go's path.Dir cleans the path ({go:?}), confsync's dir filter does not"
                    ),
                );
            }
        } else if !matches!(&v.expr, TExpr::Attr(_, k, _) if k == "key") {
            self.note_once(
                "dir",
                span,
                "dir: for a path with // or . or .. elements, Go cleaned the result and Tera's dir does not",
            );
        }
        Ok(Typed::new(v.expr.filter("dir", vec![]), Ty::Str).rooted(v.rooted))
    }

    pub(super) fn json(&mut self, f: Func, v: Typed, span: Span) -> R<Typed> {
        let array = f == Func::JsonArray;
        if let Some(l) = &v.literal {
            if matches!(serde_json::from_str(l), Ok(serde_json::Value::Null)) {
                self.note(
                    span,
                    format!(
                        "{} of null is empty in confd: written as {}",
                        f.name(),
                        if array { "[]" } else { "{}" }
                    ),
                );
                return Ok(if array {
                    Typed::new(TExpr::List(vec![]), Ty::JsonList)
                } else {
                    Typed::new(TExpr::Map(vec![]), Ty::JsonMap)
                });
            }
            let ok = match serde_json::from_str::<serde_json::Value>(l) {
                Ok(serde_json::Value::Object(_)) => !array,
                Ok(serde_json::Value::Array(_)) => array,
                Ok(_) => false,
                Err(_) => true, // both fail
            };
            if !ok {
                return fail(
                    span,
                    if array {
                        "jsonArray of a value that is not a JSON array: confd fails here (or gives an empty list for null)"
                    } else {
                        "json of a value that is not a JSON object: confd fails here (or gives an empty map for null)"
                    },
                );
            }
        } else {
            self.note_once("json", span, JSON_NOTE);
        }
        let ty = if array { Ty::JsonList } else { Ty::JsonMap };
        let mut t = Typed::new(v.expr.filter("json", vec![]), ty);
        t.json = v
            .literal
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .map(std::rc::Rc::new);
        Ok(t)
    }

    pub(super) fn replace(&mut self, a: Vec<Typed>, span: Span) -> R<Typed> {
        let n = match a[3].expr {
            TExpr::Int(n) => n,
            _ => {
                return fail(
                    span,
                    "replace with a computed count: Tera's replace replaces every match",
                );
            }
        };
        if n == 0 {
            self.note(
                span,
                "replace with a count of 0 changes nothing: written as the string itself",
            );
            return Ok(a[0].clone());
        }
        if n > 0 {
            return fail(
                span,
                format!("replace of the first {n} matches: Tera's replace replaces every match"),
            );
        }
        Ok(Typed::new(
            a[0].expr.clone().filter(
                "replace",
                vec![("from", a[1].expr.clone()), ("to", a[2].expr.clone())],
            ),
            Ty::Str,
        ))
    }

    pub(super) fn base64_decode(&mut self, v: Typed, span: Span) -> R<Typed> {
        if let Some(l) = &v.literal {
            let go = crate::template::go::base64::decode(l).ok();
            let tera = crate::template::funcs::base64_decode_strict(l)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if go != tera {
                return fail(
                    span,
                    "base64Decode of this text: Go's decoder and confsync's base64_decode disagree (bits set past the last byte, bytes that are not UTF-8)",
                );
            }
        } else {
            self.note_once(
                "base64",
                span,
                "base64Decode became base64_decode, which fails on bits set past the last byte (Go ignores them) and on bytes that are not UTF-8 (Go replaces them)",
            );
        }
        Ok(Typed::new(v.expr.filter("base64_decode", vec![]), Ty::Str))
    }
}
