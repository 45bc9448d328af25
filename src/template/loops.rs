//! Finding the loops of a Tera template that can render incrementally, from its source.
//!
//! Tera 2 keeps its syntax tree private, so this reads the tags itself (enough of Tera's
//! lexer to find where each `{{ }}`, `{% %}` and `{# #}` starts and ends) and leaves the
//! rest to Tera: a loop body is compiled as a template of its own, in an instance that
//! knows no other template, and [`tera::Tera::get_template_variables`] says which
//! variables it reads from outside. What Tera does not tell (which functions a body
//! calls, `set_global`) is read from the body's tags here, conservatively: anything this
//! cannot vouch for keeps the loop out.

use std::ops::Range;
use std::sync::OnceLock;

/// Which store function a loop iterates over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Gets,
    Getvs,
    Ls,
    Lsdir,
}

/// One loop of the form `{% for X in gets(key="LITERAL") %}BODY{% endfor %}` outside any
/// other loop, with what rendering it separately needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The loop from its `{%` to the end of its `{% endfor %}`.
    pub span: Range<usize>,
    /// The loop variable.
    pub var: String,
    pub source: Source,
    /// The literal `key` argument.
    pub key: String,
    /// The body with the whitespace its tags' `-` trims already removed.
    pub body: String,
    /// Line (from 1) and column (from 1) of the body's first byte in the template.
    pub line: usize,
    pub column: usize,
    /// The `-` of `{%- for` and of `endfor -%}`: the call that stands for the loop
    /// trims the text around it the same way.
    pub trim_before: bool,
    pub trim_after: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Expr,
    Stmt,
    Comment,
    /// `{% raw %}...{% endraw %}`, as one tag.
    Raw,
}

/// One tag: where it is, where its code is (inside the delimiters and `-`s) and its `-`s.
#[derive(Debug, Clone)]
struct Tag {
    kind: Kind,
    span: Range<usize>,
    code: Range<usize>,
    dash_left: bool,
    dash_right: bool,
}

/// The end of the tag whose code starts at `from`, closed by `close` (`}}` or `%}`),
/// skipping string literals; `None` when it is not closed.
fn tag_end(src: &[u8], mut i: usize, close: &[u8; 2]) -> Option<usize> {
    while i + 1 < src.len() {
        match src[i] {
            b'"' | b'\'' | b'`' => i = string_end(src, i)?,
            c if c == close[0] && src[i + 1] == close[1] => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

/// Just past the string literal opened at `src[at]`, as Tera's lexer reads it: a
/// backslash escapes the byte after it, the closing quote included; `None` when it is
/// not closed.
fn string_end(src: &[u8], at: usize) -> Option<usize> {
    let quote = src[at];
    let mut i = at + 1;
    while i < src.len() {
        match src[i] {
            b'\\' => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Every tag of `src` in order; `None` when one is not closed (Tera would not load it).
fn tags(src: &str) -> Option<Vec<Tag>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = src[i..].find('{') {
        let start = i + off;
        let kind = match b.get(start + 1) {
            Some(b'{') => Kind::Expr,
            Some(b'%') => Kind::Stmt,
            Some(b'#') => Kind::Comment,
            _ => {
                i = start + 1;
                continue;
            }
        };
        let open_end = start + 2;
        let end = match kind {
            Kind::Comment => src[open_end..].find("#}").map(|e| open_end + e + 2)?,
            Kind::Expr => tag_end(b, open_end, b"}}")?,
            _ => tag_end(b, open_end, b"%}")?,
        };
        let dash_left = b.get(open_end) == Some(&b'-');
        let dash_right = end - 3 >= open_end && b[end - 3] == b'-';
        let code = (open_end + dash_left as usize)..(end - 2 - dash_right as usize).max(open_end);
        let mut tag = Tag {
            kind,
            span: start..end,
            code,
            dash_left,
            dash_right,
        };
        if kind == Kind::Stmt && src[tag.code.clone()].trim() == "raw" {
            // Everything up to the `{% endraw %}` is text.
            let mut j = end;
            loop {
                let open = j + src[j..].find("{%")?;
                let close = tag_end(b, open + 2, b"%}")?;
                let inner = src[open + 2..close - 2].trim_matches('-').trim();
                j = close;
                if inner == "endraw" {
                    break;
                }
            }
            tag.kind = Kind::Raw;
            tag.span = start..j;
        }
        i = tag.span.end;
        out.push(tag);
    }
    Some(out)
}

/// The first word of a statement's code.
fn keyword(code: &str) -> &str {
    let code = code.trim_start();
    let end = code
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(code.len());
    &code[..end]
}

/// `for X in gets(key="...")`, as (X, source, key).
fn loop_head(code: &str) -> Option<(String, Source, String)> {
    static HEAD: OnceLock<regex_lite::Regex> = OnceLock::new();
    let re = HEAD.get_or_init(|| {
        regex_lite::Regex::new(
            r#"^\s*for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(gets|getvs|ls|lsdir)\s*\(\s*key\s*=\s*(?:"([^"\\]*)"|'([^'\\]*)'|`([^`\\]*)`)\s*\)\s*$"#,
        )
        .expect("a valid pattern")
    });
    let c = re.captures(code)?;
    let source = match &c[2] {
        "gets" => Source::Gets,
        "getvs" => Source::Getvs,
        "ls" => Source::Ls,
        _ => Source::Lsdir,
    };
    let key = c.get(3).or(c.get(4)).or(c.get(5))?.as_str().to_string();
    Some((c[1].to_string(), source, key))
}

/// The loops over a store function at the top of `src`'s loop nesting (a loop inside
/// another runs once per outer element, which a cache of one run per render cannot
/// serve), whose body may be cacheable as far as the tags go; the caller asks Tera about
/// the rest ([`body_is_pure`] and the body's variables).
pub fn candidates(src: &str) -> Vec<Candidate> {
    let Some(tags) = tags(src) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open: Option<(&Tag, (String, Source, String))> = None;
    for tag in &tags {
        if tag.kind != Kind::Stmt {
            continue;
        }
        let code = &src[tag.code.clone()];
        match keyword(code) {
            "for" => {
                if depth == 0 {
                    open = loop_head(code).map(|h| (tag, h));
                }
                depth += 1;
            }
            "endfor" => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some((head, (var, source, key))) = open.take()
                {
                    let mut body = &src[head.span.end..tag.span.start];
                    let mut body_start = head.span.end;
                    if head.dash_right {
                        let trimmed = body.trim_start();
                        // Tera keeps a `-%}`'s trim pending past a comment, onto the text
                        // after it; a separate body would not.
                        if trimmed.starts_with("{#") {
                            continue;
                        }
                        body_start += body.len() - trimmed.len();
                        body = trimmed;
                    }
                    if tag.dash_left {
                        body = body.trim_end();
                    }
                    let (line, column) = super::go::position(src, body_start);
                    out.push(Candidate {
                        span: head.span.start..tag.span.end,
                        var,
                        source,
                        key,
                        body: body.to_string(),
                        line,
                        column,
                        trim_before: head.dash_left,
                        trim_after: tag.dash_right,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Functions a cacheable body may call: confsync's `range` and Tera's `throw`, which
/// read nothing but their arguments.
const PURE_FUNCTIONS: &[&str] = &["range", "throw"];

/// True when nothing in `body`'s tags reads outside the body but its variables (which
/// the caller checks with Tera): no function call but [`PURE_FUNCTIONS`] (filters and
/// tests are all pure: see funcs.rs, confd_funcs.rs and Tera's own), no `set_global`, no
/// Tera or confsync internals, no raw block (Tera trims one by the tags around it).
pub fn body_is_pure(body: &str) -> bool {
    let Some(tags) = tags(body) else {
        return false;
    };
    tags.iter().all(|t| match t.kind {
        Kind::Comment => true,
        Kind::Raw => false,
        Kind::Expr | Kind::Stmt => code_is_pure(&body[t.code.clone()]),
    })
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Ident(&'a str),
    Punct(u8),
}

/// The identifiers and punctuation of a tag's code, strings and numbers left out.
fn tokens(code: &str) -> Option<Vec<Token<'_>>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if matches!(c, b'"' | b'\'' | b'`') {
            i = string_end(b, i)?;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let len = b[i..]
                .iter()
                .position(|d| !(d.is_ascii_alphanumeric() || *d == b'_'))
                .unwrap_or(b.len() - i);
            out.push(Token::Ident(&code[i..i + len]));
            i += len;
        } else if c.is_ascii_digit() {
            i += b[i..]
                .iter()
                .position(|d| !(d.is_ascii_alphanumeric() || *d == b'_' || *d == b'.'))
                .unwrap_or(b.len() - i);
        } else if c.is_ascii() {
            out.push(Token::Punct(c));
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn code_is_pure(code: &str) -> bool {
    let Some(toks) = tokens(code) else {
        return false;
    };
    for (i, t) in toks.iter().enumerate() {
        let Token::Ident(name) = t else { continue };
        if *name == "set_global" || name.starts_with("__") {
            return false;
        }
        if toks.get(i + 1) != Some(&Token::Punct(b'(')) {
            continue;
        }
        let before = |n: usize| i.checked_sub(n).and_then(|j| toks.get(j));
        let filter = before(1) == Some(&Token::Punct(b'|'));
        let test = before(1) == Some(&Token::Ident("is"))
            || (before(1) == Some(&Token::Ident("not")) && before(2) == Some(&Token::Ident("is")));
        if !(filter || test || PURE_FUNCTIONS.contains(name)) {
            return false;
        }
    }
    true
}

/// The source Tera compiles for a body: a comment of newlines in front, so Tera's errors
/// give the line (and, on its first line, the column) the body has in the template.
pub fn body_source(c: &Candidate) -> String {
    if c.line == 1 {
        return c.body.clone();
    }
    let mut s = String::with_capacity(c.body.len() + c.line + c.column + 4);
    s.push_str("{#");
    s.extend(std::iter::repeat_n('\n', c.line - 1));
    s.extend(std::iter::repeat_n(' ', c.column.saturating_sub(3)));
    s.push_str("#}");
    s.push_str(&c.body);
    s
}

/// `src` with each loop in `loops` (in order, not overlapping) replaced by `call(id)`'s
/// expression tag, trimming as the loop's outer tags did.
pub fn rewrite(src: &str, loops: &[(&Candidate, usize)], call: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for (c, id) in loops {
        out.push_str(&src[at..c.span.start]);
        out.push_str(if c.trim_before { "{{- " } else { "{{ " });
        out.push_str(&call(*id));
        // The loop's line breaks, inside the tag (where they write nothing), so an error
        // after the loop names the line it has in the original.
        let breaks = src[c.span.clone()].bytes().filter(|&b| b == b'\n').count();
        out.extend(std::iter::repeat_n('\n', breaks));
        out.push_str(if c.trim_after { " -}}" } else { " }}" });
        at = c.span.end;
    }
    out.push_str(&src[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_store_loops_and_their_bodies() {
        let src = "a\n{%- for s in gets(key=\"/x/*\") -%}\n  {{ s.key }}\n{%- endfor %}\n\
                   {% for i in range(end=2) %}{% for t in ls(key='/y') %}{{ t }}{% endfor %}{% endfor %}\
                   {% raw %}{% for r in gets(key=\"/z\") %}{% endfor %}{% endraw %}\
                   {% if true %}{% for v in getvs(key=`/v/*`) %}{{ v }}{% endfor %}{% endif %}";
        let c = candidates(src);
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(
            (c[0].var.as_str(), c[0].source, c[0].key.as_str()),
            ("s", Source::Gets, "/x/*")
        );
        assert_eq!(c[0].body, "{{ s.key }}");
        assert_eq!((c[0].line, c[0].column), (3, 3));
        assert!(c[0].trim_before && !c[0].trim_after);
        assert_eq!((c[1].source, c[1].key.as_str()), (Source::Getvs, "/v/*"));
    }

    #[test]
    fn purity_of_bodies() {
        assert!(body_is_pure(
            "server {{ s.key | base }} {{ s.value | replace(from=\"a\", to=\"getv(\") }}"
        ));
        assert!(body_is_pure(
            "{% for i in range(end=3) %}{{ i }}{% endfor %}{% if s is containing(pat=\"x\") %}{% endif %}"
        ));
        assert!(!body_is_pure("{{ getv(key=\"/a\") }}"));
        assert!(!body_is_pure("{% set_global n = 1 %}"));
        assert!(!body_is_pure("{{ __tera_context }}"));
        assert!(!body_is_pure("{% raw %}x{% endraw %}"));
        assert!(!body_is_pure("{{ datetime() }}"));
        // Escaped quotes end no string, as in Tera: the call between them is seen.
        assert!(!body_is_pure(
            r#"{{ s.key ~ "\"" ~ getv(key="/other") ~ "\"" }}"#
        ));
        assert!(!body_is_pure(
            r#"{{ s.key ~ '\'' ~ getv(key="/other") ~ '\'' }}"#
        ));
        assert!(body_is_pure(r#"{{ s.key ~ "\\" ~ "x" }}"#));
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_tag_early() {
        let src = r#"{% for s in gets(key="/x") %}{{ s.key ~ "\"}}" }}{% endfor %}"#;
        assert_eq!(candidates(src).len(), 1);
    }

    #[test]
    fn rewrites_loops_into_calls() {
        let src = "a {%- for s in gets(key=\"/x\") %}{{ s }}{% endfor -%} b";
        let c = candidates(src);
        let refs: Vec<_> = c.iter().map(|c| (c, 7)).collect();
        assert_eq!(
            rewrite(src, &refs, |id| format!("f(id={id})")),
            "a {{- f(id=7) -}} b"
        );
        let src = "{% for s in gets(key=\"/x\") %}\n{{ s }}\n{% endfor %}\n{{ y }}";
        let c = candidates(src);
        let refs: Vec<_> = c.iter().map(|c| (c, 1)).collect();
        assert_eq!(
            rewrite(src, &refs, |id| format!("f(id={id})")),
            "{{ f(id=1)\n\n }}\n{{ y }}",
            "the line after the loop keeps its number"
        );
    }
}
