//! text/template's `html`, `js` and `urlquery` builtins, as Go 1.19 escapes: one string
//! argument is escaped as it is; anything else is first joined as `fmt.Sprint` would,
//! with no value (or nil) printed `<no value>` and a `*net.SRV` as what it points to.

use std::borrow::Cow;

use super::fmt::sprint_printable;
use super::isprint::is_print;
use super::value::Value;

/// The text the builtins escape (text/template's `evalArgs`).
fn eval_args<'v>(args: &'v [Value<'_>]) -> Cow<'v, str> {
    if let [Value::Str(s)] = args {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    sprint_printable(&mut out, args);
    Cow::Owned(out)
}

/// `html`: Go's `template.HTMLEscapeString` of the arguments: `"` `'` `&` `<` `>` as
/// `&#34;` `&#39;` `&amp;` `&lt;` `&gt;`, NUL as U+FFFD.
pub fn html(args: &[Value<'_>]) -> String {
    let s = eval_args(args);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `js`: Go's `template.JSEscapeString` of the arguments: `\` `'` `"` backslashed,
/// `<` `>` `&` `=` and control characters as `\u00XX`, non-printable non-ASCII runes
/// as `\uXXXX` (upper-case hex, more digits when needed).
pub fn js(args: &[Value<'_>]) -> String {
    let s = eval_args(args);
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c if c < ' ' => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c if c.is_ascii() || is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", u32::from(c))),
        }
    }
    out
}

/// `urlquery`: Go's `url.QueryEscape` of the arguments: letters, digits and `-_.~` as
/// they are, space as `+`, every other byte as `%XX`.
pub fn urlquery(args: &[Value<'_>]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let s = eval_args(args);
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::value::Srv;
    use super::*;

    #[test]
    fn one_string_is_escaped_as_it_is() {
        assert_eq!(
            html(&[Value::str("<a href=\"x\">it's\0</a>")]),
            "&lt;a href=&#34;x&#34;&gt;it&#39;s\u{fffd}&lt;/a&gt;"
        );
        assert_eq!(
            js(&[Value::str("a='<b>' \\ \"\u{2028}é\u{7}")]),
            r#"a\u003D\'\u003Cb\u003E\' \\ \"\u2028é\u0007"#
        );
        assert_eq!(
            urlquery(&[Value::str("a b&c=d/é~")]),
            "a+b%26c%3Dd%2F%C3%A9~"
        );
    }

    #[test]
    fn other_arguments_are_joined_as_sprint_joins_them() {
        // No value is the string "<no value>": no space next to it.
        assert_eq!(
            html(&[Value::Int(1), Value::Missing, Value::Int(2)]),
            "1&lt;no value&gt;2"
        );
        assert_eq!(js(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(urlquery(&[Value::str("a"), Value::Nil]), "a%3Cno+value%3E");
        let srv = Srv {
            target: "t.".into(),
            port: 80,
            priority: 1,
            weight: 2,
        };
        assert_eq!(html(&[Value::Srv(srv.into())]), "{t. 80 1 2}");
        assert_eq!(urlquery(&[]), "");
    }
}
