//! Go's `fmt` printing (placeholder until the full implementation lands).

use super::value::Value;

/// What `{{ pipeline }}` prints.
pub fn print_value(out: &mut String, v: &Value) {
    match v {
        Value::Missing => out.push_str("<no value>"),
        other => fmt_v(out, other, true),
    }
}

fn fmt_v(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::Missing | Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::U16(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&f.to_string()),
        Value::Str(s) => out.push_str(s),
        Value::Kv(kv) => {
            out.push('{');
            out.push_str(&kv.key);
            out.push(' ');
            out.push_str(&kv.value);
            out.push('}');
        }
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.items.borrow().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_v(out, e, false);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                fmt_v(out, e, false);
            }
            out.push(']');
        }
        Value::Time(t) => out.push_str(&t.string()),
        Value::Srv(s) => {
            if top {
                out.push('&');
            }
            out.push_str(&format!(
                "{{{} {} {} {}}}",
                s.target, s.port, s.priority, s.weight
            ));
        }
    }
}

/// `fmt.Sprint`.
pub fn sprint(out: &mut String, args: &[Value]) {
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        fmt_v(out, a, true);
    }
}

/// `fmt.Sprintln`.
pub fn sprintln(out: &mut String, args: &[Value]) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_v(out, a, true);
    }
    out.push('\n');
}

/// `fmt.Sprintf` (placeholder: %s, %d and %v only).
pub fn sprintf(out: &mut String, format: &str, args: &[Value]) {
    let mut it = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(_) => match it.next() {
                Some(a) => fmt_v(out, a, true),
                None => out.push_str("%!v(MISSING)"),
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
}
