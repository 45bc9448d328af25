//! text/template's `html`, `js` and `urlquery` (placeholder until the full version lands).

use super::value::Value;

fn joined(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let mut s = String::new();
    super::fmt::sprint(&mut s, args);
    s
}

/// `html`
pub fn html(args: &[Value]) -> String {
    joined(args)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// `js`
pub fn js(args: &[Value]) -> String {
    joined(args)
}

/// `urlquery`
pub fn urlquery(args: &[Value]) -> String {
    joined(args)
}
