//! Tera filters with the semantics of confd's Go templates, for templates converted from
//! Go (`confsync convert`) and for anyone who wants Go's printing in Tera:
//!
//! - `x | go_print`: `x` printed as a Go template prints it: `<no value>` for an undefined
//!   value, `[a b]` for a list, `map[k:v]` for a map (sorted keys), `{/k v}` for a
//!   `{key, value}` entry of `get`/`gets`, floats as Go's `%v` (`1e+06`). With
//!   `json=true` every number is a JSON number, which Go reads as a float64 (`8080`,
//!   `1e+06`), and every map is a map.
//! - `fmt | format(args=[...])`: Go's `fmt.Sprintf(fmt, args...)`, verbs, flags, widths
//!   and its in-band errors (`%!d(string=x)`); `json=true` as for `go_print`.
//! - `s | atoi`: Go's `strconv.Atoi` (no spaces, no `+`-less floats, 64-bit range).
//! - `s | to_upper`, `s | to_lower`: Go's `strings.ToUpper`/`ToLower` (one rune to one
//!   rune: `ß` stays `ß`, `İ` becomes `i`), where Tera's `upper`/`lower` use Unicode's
//!   full mappings.
//! - `entries | sort_kv_by_length`: confd's `sortKVByLength`, `{key, value}` entries by
//!   the length of their key, with Go's unstable `sort.Sort` (entries of one length keep
//!   their order up to 12 entries).
//! - `s | html`, `s | js`, `s | urlquery`: Go's `html`, `js` and `urlquery` escapers
//!   (Tera's own `escape` escapes differently).
//! - `lookup_iface_ipv4(name=)`, `lookup_iface_ipv6(name=)`: the maintained fork's
//!   `lookupIfaceIPV4`/`lookupIfaceIPV6`, an interface's first address or `""`.
//!
//! The Go side is the Go engine's own: values are converted to [`GoValue`] and
//! printed by its `fmt`, so both engines print alike.

use std::rc::Rc;

use tera::{Error, Kwargs, State, Tera, TeraResult, Value};

use super::go::fmt::{print_value, sprintf};
use super::go::value::{List, ListKind, Map, Str, Value as GoValue};

/// How a Tera value is read as a Go value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Values of confd's own functions: integers are Go ints, `{key, value}` maps are
    /// KVPairs.
    Confd,
    /// Values of `json`/`jsonArray`: numbers are float64, maps are maps.
    Json,
}

fn reading(kwargs: &Kwargs) -> TeraResult<Reading> {
    Ok(if kwargs.get::<bool>("json")?.unwrap_or(false) {
        Reading::Json
    } else {
        Reading::Confd
    })
}

/// A `{key, value}` entry as `get` and `gets` build it.
fn as_entry(v: &Value) -> Option<(&str, &str)> {
    let m = v.as_map()?;
    if m.len() != 2 {
        return None;
    }
    let mut it = m.iter();
    let (k1, v1) = it.next()?;
    let (k2, v2) = it.next()?;
    if k1.as_str()? != "key" || k2.as_str()? != "value" {
        return None;
    }
    Some((v1.as_str()?, v2.as_str()?))
}

/// `v` as the Go value it stands for; `undefined` is Go's "no value".
fn to_go(v: &Value, how: Reading) -> GoValue<'_> {
    if v.is_undefined() {
        return GoValue::Missing;
    }
    if v.is_none() {
        return GoValue::Nil;
    }
    if let Some(b) = v.as_bool() {
        return GoValue::Bool(b);
    }
    if let Some(s) = v.as_str() {
        return GoValue::Str(Str::Ref(s));
    }
    if v.is_number() {
        if how == Reading::Confd
            && !v.is_f64()
            && let Some(i) = v.as_i64()
        {
            return GoValue::Int(i);
        }
        let f = v
            .as_f64()
            .or_else(|| v.as_i128().map(|i| i as f64))
            .or_else(|| v.as_u128().map(|u| u as f64))
            .unwrap_or(f64::NAN);
        return GoValue::Float(f);
    }
    if let Some(items) = v.as_array() {
        let items: Vec<GoValue<'_>> = items.iter().map(|e| to_go(e, how)).collect();
        let kind = match how {
            Reading::Json => ListKind::Any,
            Reading::Confd if items.iter().all(|e| matches!(e, GoValue::Str(_))) => {
                ListKind::Strings
            }
            Reading::Confd if items.iter().all(|e| matches!(e, GoValue::Kv(_))) => {
                ListKind::KvPairs
            }
            Reading::Confd if items.iter().all(|e| matches!(e, GoValue::Int(_))) => ListKind::Ints,
            Reading::Confd => ListKind::Any,
        };
        return GoValue::List(List::new(kind, items));
    }
    if how == Reading::Confd
        && let Some((key, value)) = as_entry(v)
    {
        return GoValue::kv(Str::Ref(key), Str::Ref(value));
    }
    if let Some(m) = v.as_map() {
        let map: Map<'_> = m
            .iter()
            .map(|(k, e)| {
                let key = k.as_str().map_or_else(|| k.to_string(), str::to_string);
                (key, to_go(e, how))
            })
            .collect();
        return GoValue::Map(Rc::new(map));
    }
    if let Some(b) = v.as_bytes() {
        return GoValue::string(String::from_utf8_lossy(b).into_owned());
    }
    GoValue::Missing
}

/// `x | go_print`
fn go_print(v: Value, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let how = reading(&kwargs)?;
    let mut out = String::new();
    print_value(&mut out, &to_go(&v, how));
    Ok(out)
}

/// `fmt | format(args=[...])`
fn format(fmt: &str, kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let how = reading(&kwargs)?;
    let args = kwargs
        .get::<Value>("args")?
        .unwrap_or_else(|| Value::from(Vec::<Value>::new()));
    let Some(args) = args.as_array() else {
        return Err(Error::message(format!(
            "format: `args` must be a list, got {}",
            args.name()
        )));
    };
    // A printf operand is an `interface {}`: no value arrives as nil.
    let args: Vec<GoValue<'_>> = args
        .iter()
        .map(|a| match to_go(a, how) {
            GoValue::Missing => GoValue::Nil,
            v => v,
        })
        .collect();
    let mut out = String::new();
    sprintf(&mut out, fmt, &args);
    Ok(out)
}

/// `s | atoi`
fn atoi(s: &str, _: Kwargs, _: &State) -> TeraResult<i64> {
    super::go::confd::atoi(s).map_err(|e| Error::message(format!("atoi: {e}")))
}

fn change_case(s: &str, upper: bool) -> String {
    let arg = [GoValue::str(s)];
    match super::go::confd::change_case(&arg, upper) {
        GoValue::Str(out) => out.to_string(),
        _ => s.to_string(),
    }
}

/// `s | to_upper`
fn to_upper(s: &str, _: Kwargs, _: &State) -> String {
    change_case(s, true)
}

/// `s | to_lower`
fn to_lower(s: &str, _: Kwargs, _: &State) -> String {
    change_case(s, false)
}

/// `entries | sort_kv_by_length`, with Go's (unstable) `sort.Sort` as confd sorts.
fn sort_kv_by_length(v: Vec<Value>, _: Kwargs, _: &State) -> Vec<Value> {
    let mut v = v;
    let len = |e: &Value| as_entry(e).map_or(0, |(k, _)| k.len());
    super::go::sort::sort(&mut v, |a, b| len(a) < len(b));
    v
}

/// One of Go's escapers over a Tera value, printed as Go prints it first.
fn escaper(v: &Value, escape: fn(&[GoValue]) -> String) -> String {
    escape(&[to_go(v, Reading::Confd)])
}

fn lookup_iface(kwargs: &Kwargs, v6: bool) -> TeraResult<String> {
    let name = kwargs.must_get::<String>("name")?;
    Ok(super::go::confd::lookup_iface(&name, v6)
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Registers the filters and functions on `tera`.
pub fn register(tera: &mut Tera) {
    use super::go::escape;
    tera.register_filter("html", |v: Value, _: Kwargs, _: &State| {
        escaper(&v, escape::html)
    });
    tera.register_filter("js", |v: Value, _: Kwargs, _: &State| {
        escaper(&v, escape::js)
    });
    tera.register_filter("urlquery", |v: Value, _: Kwargs, _: &State| {
        escaper(&v, escape::urlquery)
    });
    tera.register_function("lookup_iface_ipv4", |k: Kwargs, _: &State| {
        lookup_iface(&k, false)
    });
    tera.register_function("lookup_iface_ipv6", |k: Kwargs, _: &State| {
        lookup_iface(&k, true)
    });
    tera.register_filter("go_print", go_print);
    tera.register_filter("format", format);
    tera.register_filter("atoi", atoi);
    tera.register_filter("to_upper", to_upper);
    tera.register_filter("to_lower", to_lower);
    tera.register_filter("sort_kv_by_length", sort_kv_by_length);
}

#[cfg(test)]
mod tests {
    use crate::template::{Engine, View};
    use std::sync::Arc;

    fn render(tpl: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        let mut e = Engine::new();
        e.add_raw("t", tpl).map_err(|e| e.to_string())?;
        let kvs = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let view = View::new(Arc::new(kvs), "", &["/".to_string()]);
        e.render("t", view)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn go_print_prints_as_go() {
        let data = [("/a", "1"), ("/b", "2")];
        assert_eq!(
            render("{{ getvs(key=\"/*\") | go_print }}", &data).unwrap(),
            "[1 2]"
        );
        assert_eq!(
            render("{{ gets(key=\"/*\") | go_print }}", &data).unwrap(),
            "[{/a 1} {/b 2}]"
        );
        assert_eq!(
            render("{{ get(key=\"/a\") | go_print }}", &data).unwrap(),
            "{/a 1}"
        );
        assert_eq!(
            render("{{ nosuch | go_print }}", &[]).unwrap(),
            "<no value>"
        );
        assert_eq!(
            render("{% set j = '{\"p\": 1000000, \"f\": 1.5}' | json %}{{ j.p | go_print(json=true) }} {{ j.f | go_print(json=true) }} {{ j.p | go_print }} {{ j | go_print(json=true) }}", &[]).unwrap(),
            "1e+06 1.5 1000000 map[f:1.5 p:1e+06]"
        );
    }

    #[test]
    fn format_is_sprintf() {
        assert_eq!(
            render(
                "{{ \"%s:%05d|%v|%q\" | format(args=[\"h\", 42, [1, 2], \"a\"]) }}",
                &[]
            )
            .unwrap(),
            "h:00042|[1 2]|\"a\""
        );
        assert_eq!(
            render("{{ \"%d %s\" | format(args=[\"x\"]) }}", &[]).unwrap(),
            "%!d(string=x) %!s(MISSING)"
        );
    }

    #[test]
    fn atoi_and_case_as_go() {
        assert_eq!(render("{{ \"-7\" | atoi + 1 }}", &[]).unwrap(), "-6");
        assert!(
            render("{{ \" 8\" | atoi }}", &[])
                .unwrap_err()
                .contains("invalid syntax")
        );
        assert_eq!(
            render("{{ \"straße\" | to_upper }} {{ \"İx\" | to_lower }}", &[]).unwrap(),
            "STRAßE ix"
        );
        let data = [
            ("/k/ccc", "1"),
            ("/k/a", "2"),
            ("/k/bb", "3"),
            ("/k/d", "4"),
        ];
        assert_eq!(
            render(
                "{{ gets(key=\"/k/*\") | sort_kv_by_length | go_print }}",
                &data
            )
            .unwrap(),
            "[{/k/a 2} {/k/d 4} {/k/bb 3} {/k/ccc 1}]"
        );
    }
}
