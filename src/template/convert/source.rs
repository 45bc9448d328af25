//! The Go template's source cut into text, actions and comments, with their trim
//! markers (the parsed tree keeps only the trimmed text), and text written back out as
//! Tera content whose trimming gives what Go's trimming gave.

use crate::template::go::lex::{Kind, lex};

/// One piece of the source, by byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Text outside actions, untrimmed.
    Text { start: usize, end: usize },
    /// `{{ ... }}`; `ltrim` is `{{- `, `rtrim` is ` -}}`.
    Action {
        start: usize,
        end: usize,
        ltrim: bool,
        rtrim: bool,
    },
    /// `{{/* body */}}`
    Comment {
        start: usize,
        end: usize,
        ltrim: bool,
        rtrim: bool,
        body: (usize, usize),
    },
}

impl Seg {
    /// Where it starts.
    pub fn start(&self) -> usize {
        match *self {
            Seg::Text { start, .. } | Seg::Action { start, .. } | Seg::Comment { start, .. } => {
                start
            }
        }
    }

    /// The trim markers on its delimiters (none for text).
    pub fn trims(&self) -> (bool, bool) {
        match *self {
            Seg::Text { .. } => (false, false),
            Seg::Action { ltrim, rtrim, .. } | Seg::Comment { ltrim, rtrim, .. } => (ltrim, rtrim),
        }
    }
}

/// Go's white space for trimming: space, tab, CR, LF.
pub fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn space_at(b: &[u8], i: usize) -> bool {
    b.get(i)
        .is_some_and(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Cuts `src` (a template that parsed) into its pieces, in order.
pub fn segments(src: &str) -> Result<Vec<Seg>, String> {
    let b = src.as_bytes();
    let tokens = lex(src);
    let mut out = Vec::new();
    let mut at = 0;
    let mut open: Option<usize> = None;
    for t in &tokens {
        match t.kind {
            Kind::LeftDelim => open = Some(t.pos),
            Kind::RightDelim => {
                let Some(start) = open.take() else {
                    return Err(format!(
                        "a closing }}}} at byte {} without an opening",
                        t.pos
                    ));
                };
                gap(src, at, start, &mut out)?;
                let ltrim = b.get(start + 2) == Some(&b'-') && space_at(b, start + 3);
                let rtrim = t.pos >= start + 4 && b[t.pos - 1] == b'-' && space_at(b, t.pos - 2);
                out.push(Seg::Action {
                    start,
                    end: t.pos + 2,
                    ltrim,
                    rtrim,
                });
                at = t.pos + 2;
            }
            Kind::Error => return Err(t.text.clone()),
            _ => {}
        }
    }
    gap(src, at, src.len(), &mut out)?;
    Ok(out)
}

/// The text and comments between two actions.
fn gap(src: &str, from: usize, to: usize, out: &mut Vec<Seg>) -> Result<(), String> {
    let b = src.as_bytes();
    let within = |a: usize| src.get(a.min(to)..to).unwrap_or("");
    let mut at = from;
    while at < to {
        let Some(i) = within(at).find("{{").map(|i| i + at) else {
            out.push(Seg::Text { start: at, end: to });
            return Ok(());
        };
        if i > at {
            out.push(Seg::Text { start: at, end: i });
        }
        let ltrim = b.get(i + 2) == Some(&b'-') && space_at(b, i + 3);
        let open = i + 2 + if ltrim { 2 } else { 0 };
        if !within(open).starts_with("/*") {
            return Err(format!("unexpected {{{{ at byte {i}"));
        }
        let Some(close) = within(open + 2).find("*/").map(|j| j + open + 2) else {
            return Err(format!("unclosed comment at byte {i}"));
        };
        let after = close + 2;
        let rtrim = space_at(b, after) && within(after + 1).starts_with("-}}");
        let end = if rtrim {
            after + 4
        } else if within(after).starts_with("}}") {
            after + 2
        } else {
            return Err(format!("comment at byte {i} ends before }}}}"));
        };
        out.push(Seg::Comment {
            start: i,
            end,
            ltrim,
            rtrim,
            body: (open + 2, close),
        });
        at = end;
    }
    Ok(())
}

/// `raw` with Go's trimming: leading white space when `left`, trailing when `right`.
pub fn go_trim(raw: &str, left: bool, right: bool) -> &str {
    let mut s = raw;
    if left {
        s = s.trim_start_matches(is_go_space);
    }
    if right {
        s = s.trim_end_matches(is_go_space);
    }
    s
}

/// How a text is written in Tera: the content and the trim markers on the tags on
/// either side of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The text, before escaping.
    pub text: String,
    /// `-%}` / `-}}` on the tag before it.
    pub left: bool,
    /// `{%-` / `{{-` on the tag after it.
    pub right: bool,
}

/// Chooses how to write `raw`, which Go trims on the `left`/`right` as its neighbours'
/// markers say, so that Tera's trimming (all Unicode white space) gives Go's result
/// (space, tab, CR and LF only): Go's markers where they trim the same, the text
/// already trimmed where they would not.
pub fn content(raw: &str, left: bool, right: bool) -> Content {
    let want = go_trim(raw, left, right);
    if raw.is_empty() {
        // A marker next to nothing does nothing in Go; in Tera a marker before a comment
        // would reach past it, so none is written.
        return Content {
            text: String::new(),
            left: false,
            right: false,
        };
    }
    let tera = |text: &str, l: bool, r: bool| {
        let mut s = text;
        if l {
            s = s.trim_start();
        }
        if r {
            s = s.trim_end();
        }
        s == want
    };
    let candidates = [
        (raw, left, right),
        (go_trim(raw, left, false), false, right),
        (go_trim(raw, false, right), left, false),
        (want, false, false),
    ];
    for (text, l, r) in candidates {
        if tera(text, l, r) {
            return Content {
                text: text.to_string(),
                left: l,
                right: r,
            };
        }
    }
    Content {
        text: want.to_string(),
        left: false,
        right: false,
    }
}

/// `text` as Tera content: `{%` and `{#` would open a tag, and a `{` right before a tag
/// would join it, so those are printed from string literals.
pub fn escape(text: &str, before_tag: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['{']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{%") || tail.starts_with("{#") {
            out.push_str(&format!("{{{{ \"{}\" }}}}", &tail[..2]));
            rest = &tail[2..];
        } else if tail.len() == 1 && before_tag {
            out.push_str("{{ \"{\" }}");
            rest = "";
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_actions_comments_and_text() {
        let src = "a {{- .X -}} b{{/* c */}}\n{{- /* d */ -}} e {{ end }}";
        let segs = segments(src).unwrap();
        let kinds: Vec<String> = segs
            .iter()
            .map(|s| match *s {
                Seg::Text { start, end } => format!("T{:?}", &src[start..end]),
                Seg::Action {
                    start,
                    end,
                    ltrim,
                    rtrim,
                } => format!("A{:?}{ltrim}{rtrim}", &src[start..end]),
                Seg::Comment {
                    ltrim, rtrim, body, ..
                } => format!("C{:?}{ltrim}{rtrim}", &src[body.0..body.1]),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "T\"a \"",
                "A\"{{- .X -}}\"truetrue",
                "T\" b\"",
                "C\" c \"falsefalse",
                "T\"\\n\"",
                "C\" d \"truetrue",
                "T\" e \"",
                "A\"{{ end }}\"falsefalse",
            ]
        );
    }

    #[test]
    fn trims_as_go_does() {
        let c = content("\n  x\n", true, true);
        assert_eq!((c.text.as_str(), c.left, c.right), ("\n  x\n", true, true));
        // A form feed is white space to Tera but not to Go.
        let c = content("\x0c x \x0c", true, true);
        assert_eq!(c.text, "\x0c x \x0c");
        assert!(!c.left && !c.right);
        let c = content(" \x0c", true, false);
        assert_eq!((c.text.as_str(), c.left), ("\x0c", false));
        assert_eq!(
            escape("a {% b {# c {", true),
            "a {{ \"{%\" }} b {{ \"{#\" }} c {{ \"{\" }}"
        );
        assert_eq!(escape("a { b {", false), "a { b {");
    }
}
