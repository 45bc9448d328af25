//! Names for Tera variables that Go leaves unnamed: a loop variable named after what the
//! range walks over (`server` for `gets "/app/servers/*"`), a `with` value after the
//! function that made it.

use crate::template::go::ast::{Pipe, Term};
use crate::template::go::funcs::Func;

use super::Converter;
use super::texpr::is_ident;
use super::types::Ty;

impl Converter<'_> {
    /// A loop variable's name, from what the range walks over.
    pub(super) fn loop_name(&self, pipe: &Pipe, elem: Ty) -> String {
        let lists_names = pipe
            .cmds
            .last()
            .and_then(|c| c.args.first())
            .is_some_and(|op| matches!(op.term, Term::Func(Func::Ls | Func::Lsdir)));
        let fallback = match elem {
            Ty::Kv => "kv",
            Ty::Str if lists_names => "name",
            Ty::Str => "value",
            Ty::Int => "n",
            _ => "item",
        };
        source_name(self, pipe)
            .and_then(|n| singular(&n))
            .unwrap_or_else(|| fallback.to_string())
    }
}

/// The plural noun a range's collection is named by: the key pattern's last element,
/// a variable's or field's name.
pub(super) fn source_name(c: &Converter<'_>, pipe: &Pipe) -> Option<String> {
    let cmd = pipe.cmds.last()?;
    let first = cmd.args.first()?;
    match &first.term {
        Term::Func(f) => match f {
            Func::Gets | Func::Getvs | Func::Ls | Func::Lsdir => {
                let arg = cmd.args.get(1)?;
                match &arg.term {
                    Term::Str(s) => last_plain_element(s),
                    Term::Variable(v, fields) if fields.is_empty() => Some(c.var_name(*v)),
                    _ => None,
                }
            }
            Func::Reverse | Func::SortByLength | Func::SortKvByLength => {
                let arg = cmd.args.get(1)?;
                match &arg.term {
                    Term::Pipe(p) => source_name(c, p),
                    Term::Variable(v, fields) if fields.is_empty() => Some(c.var_name(*v)),
                    _ => None,
                }
            }
            Func::Split => Some("parts".into()),
            Func::LookupIp | Func::LookupIpv4 | Func::LookupIpv6 => Some("ips".into()),
            Func::JsonArray => Some("items".into()),
            _ => None,
        },
        Term::Variable(v, fields) => match fields.last() {
            Some(f) => Some(f.to_ascii_lowercase()),
            None => Some(c.var_name(*v)),
        },
        Term::Field(fields) => fields.last().map(|f| f.to_ascii_lowercase()),
        Term::Pipe(p) => source_name(c, p),
        _ => None,
    }
    .filter(|n| is_ident(n))
}

/// A name for the value of a `with`.
pub(super) fn with_name(pipe: &Pipe) -> String {
    let name = pipe
        .cmds
        .last()
        .and_then(|cmd| cmd.args.first())
        .and_then(|op| match &op.term {
            Term::Func(f) => Some(match f {
                Func::Get => "kv",
                Func::Gets => "kvs",
                Func::Getvs | Func::Ls | Func::Lsdir => "names",
                Func::Json => "data",
                Func::JsonArray => "items",
                Func::Split => "parts",
                Func::Dir => "dir",
                Func::Base => "name",
                _ => "value",
            }),
            _ => None,
        });
    name.unwrap_or("value").to_string()
}

/// The singular of a plural English word, for a loop variable named after what it
/// walks over (`servers` gives `server`, `addresses` `address`); `None` when the
/// word does not look plural.
pub fn singular(word: &str) -> Option<String> {
    let w = word.to_ascii_lowercase();
    if w.len() < 3 || !w.is_ascii() {
        return None;
    }
    for (plural, one) in [("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch")] {
        if let Some(stem) = w.strip_suffix(plural)
            && stem.len() >= 2
        {
            return Some(format!("{stem}{one}"));
        }
    }
    if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return Some(w[..w.len() - 1].to_string());
    }
    None
}

/// The last plain path element of a key pattern before its trailing glob elements
/// (`servers` in `/app/servers/*`), lower-cased with `-` as `_`; `None` when that
/// element is computed (a printf verb).
pub fn last_plain_element(pattern: &str) -> Option<String> {
    let is_glob = |s: &str| s.contains(['*', '?', '[', '\\']);
    let elem = pattern
        .split('/')
        .rev()
        .find(|s| !s.is_empty() && !is_glob(s))?;
    if elem.contains(['%', '{']) {
        return None;
    }
    Some(elem.to_ascii_lowercase().replace(['-', '.'], "_")).filter(|s| super::texpr::is_ident(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(singular("servers").as_deref(), Some("server"));
        assert_eq!(singular("addresses").as_deref(), Some("address"));
        assert_eq!(singular("proxies").as_deref(), Some("proxy"));
        assert_eq!(singular("ips").as_deref(), Some("ip"));
        assert_eq!(singular("status"), None);
        assert_eq!(singular("upstream"), None);
        assert_eq!(
            last_plain_element("/app/servers/*").as_deref(),
            Some("servers")
        );
        assert_eq!(last_plain_element("/services/%s/*"), None);
        assert_eq!(
            last_plain_element("/services/*/instances/*").as_deref(),
            Some("instances")
        );
    }
}
