//! Pattern matching with the rules of Go's `path.Match`, which confd's `gets`/`getvs` use:
//! `*` matches any run of characters except `/`, `?` one character except `/`,
//! `[a-z]` / `[^a-z]` a class, and `\` escapes the next character.

/// Why a pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pattern {0:?}: {1}")]
pub struct BadPattern(pub String, pub &'static str);

/// True when `name` matches `pattern` as a whole.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    Ok(Pattern::new(pattern)?.matches(name))
}

/// A validated pattern, to match many names without re-parsing it.
#[derive(Debug, Clone)]
pub struct Pattern {
    chars: Vec<char>,
    /// The pattern as bytes when it is ASCII (then ASCII names match byte-wise, without
    /// decoding or allocating).
    ascii: Option<Vec<u8>>,
    shape: Shape,
}

/// The shapes `gets` is nearly always called with, matched without the general loop.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No special character: the name must equal the pattern.
    Literal(String),
    /// A literal then one trailing `*` (`/app/servers/*`): the name starts with the
    /// literal and the rest has no `/`.
    LiteralStar(String),
    /// Anything else.
    General,
}

impl Pattern {
    /// Checks `pattern` and prepares it for matching.
    pub fn new(pattern: &str) -> Result<Self, BadPattern> {
        validate(pattern)?;
        let literal = literal_prefix(pattern);
        let shape = match &pattern[literal.len()..] {
            "" => Shape::Literal(literal.to_string()),
            "*" => Shape::LiteralStar(literal.to_string()),
            _ => Shape::General,
        };
        Ok(Self {
            chars: pattern.chars().collect(),
            ascii: pattern.is_ascii().then(|| pattern.as_bytes().to_vec()),
            shape,
        })
    }

    /// True when `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        match &self.shape {
            Shape::Literal(l) => return name == l,
            Shape::LiteralStar(l) => {
                // Keys are short: a plain loop beats a call to memchr.
                return name
                    .strip_prefix(l.as_str())
                    .is_some_and(|rest| !rest.as_bytes().contains(&b'/'));
            }
            Shape::General => {}
        }
        match &self.ascii {
            Some(p) if name.is_ascii() => match_from(p, name.as_bytes(), b'/'),
            _ => {
                let n: Vec<char> = name.chars().collect();
                match_from(&self.chars, &n, '/')
            }
        }
    }
}

/// The part of `pattern` before its first special character: every match starts with it,
/// so a sorted map can be range-scanned from there.
pub fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    &pattern[..end]
}

fn validate(pattern: &str) -> Result<(), BadPattern> {
    let bad = |why| Err(BadPattern(pattern.to_string(), why));
    let p: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return bad("trailing backslash");
                }
                i += 2;
            }
            '[' => match class_end(&p, i) {
                Some(end) => i = end,
                None => return bad("unterminated or empty character class"),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index just past the `]` closing the class opened at `start`, if well formed as Go
/// reads classes: at least one range, each `lo` or `lo-hi`, where `lo` and `hi` are a
/// character other than `-` and `]`, or one escaped with `\`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        if p.get(i) == Some(&']') && ranges > 0 {
            return Some(i + 1);
        }
        i = class_char_end(p, i)?;
        if p.get(i) == Some(&'-') {
            i = class_char_end(p, i + 1)?;
        }
        ranges += 1;
    }
}

/// Go's `getEsc`: the index past the class character at `p[i]`, `None` when it is a bare
/// `-` or `]`, or when nothing follows it (the class is not closed).
fn class_char_end(p: &[char], i: usize) -> Option<usize> {
    let i = match p.get(i)? {
        '-' | ']' => return None,
        '\\' => i + 1,
        _ => i,
    };
    p.get(i)?;
    (i + 1 < p.len()).then_some(i + 1)
}

/// Matches the class at `p[start..]` against `c`; returns the index past the class.
fn match_class<T: Sym>(p: &[T], start: usize, c: T) -> (bool, usize) {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&T::from_ascii(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != T::from_ascii(b']')) {
        first = false;
        let lo = if p[i] == T::from_ascii(b'\\') {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        i += 1;
        let mut hi = lo;
        if i + 1 < p.len() && p[i] == T::from_ascii(b'-') && p[i + 1] != T::from_ascii(b']') {
            i += 1;
            if p[i] == T::from_ascii(b'\\') {
                i += 1;
            }
            hi = p[i];
            i += 1;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
    (hit != negate, i + 1)
}

fn match_from<T: Sym>(p: &[T], n: &[T], slash: T) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, name index it took up to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            let c = p[pi];
            if c == T::from_ascii(b'*') {
                star = Some((pi + 1, ni));
                pi += 1;
                continue;
            }
            let here = ni < n.len();
            if c == T::from_ascii(b'?') {
                if here && n[ni] != slash {
                    pi += 1;
                    ni += 1;
                    continue;
                }
            } else if c == T::from_ascii(b'[') {
                if here && n[ni] != slash {
                    let (ok, next) = match_class(p, pi, n[ni]);
                    if ok {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
            } else if c == T::from_ascii(b'\\') {
                if here && p[pi + 1] == n[ni] {
                    pi += 2;
                    ni += 1;
                    continue;
                }
            } else if here && c == n[ni] {
                pi += 1;
                ni += 1;
                continue;
            }
        } else if ni == n.len() {
            return true;
        }
        // Mismatch: let the last `*` take one more character, never a `/`.
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != slash => {
                star = Some((sp, sn + 1));
                pi = sp;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// A pattern or name symbol: a byte (ASCII fast path) or a char.
trait Sym: Copy + Eq + Ord {
    fn from_ascii(b: u8) -> Self;
}

impl Sym for u8 {
    fn from_ascii(b: u8) -> Self {
        b
    }
}

impl Sym for char {
    fn from_ascii(b: u8) -> Self {
        b as char
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(p, n).unwrap()
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(m("/app/servers/*", "/app/servers/web1"));
        assert!(!m("/app/servers/*", "/app/servers/web1/port"));
        assert!(m("/app/*/port", "/app/web1/port"));
        assert!(m("/app/servers/*", "/app/servers/"));
        assert!(!m("/app/servers/*", "/app/servers"));
        assert!(m("*", "abc"));
        assert!(!m("*", "a/b"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
    }

    #[test]
    fn question_classes_and_escapes() {
        assert!(m("/web?", "/web1"));
        assert!(!m("/web?", "/web/"));
        assert!(m("/web[0-9]", "/web7"));
        assert!(!m("/web[^0-9]", "/web7"));
        assert!(m("/web[^0-9]", "/webx"));
        assert!(m("/a\\*b", "/a*b"));
        assert!(!m("/a\\*b", "/axb"));
        assert!(m("[\\]a]", "]"));
        assert!(m("[a\\-]", "-") && m("[\\-b]", "-"));
    }

    #[test]
    fn classes_are_malformed_where_go_finds_them_so() {
        // Go 1.19's path.Match: a bare `-` or `]` cannot stand for a character.
        for p in [
            "[]a]", "[b-]", "[a-b-c]", "[a-]", "[^]a]", "x[", "[-b]", "[]",
        ] {
            assert!(matches(p, "a").is_err(), "{p}");
        }
    }

    #[test]
    fn shortcut_shapes_agree_with_the_general_loop() {
        let names = [
            "/app/servers/web1",
            "/app/servers/",
            "/app/servers",
            "/app/servers/a/b",
            "/app/serversX",
            "/app/servers/w\u{e9}b",
            "",
        ];
        for p in [
            "/app/servers/*",
            "/app/servers",
            "*",
            "",
            "/app/servers/w\u{e9}b",
        ] {
            let fast = Pattern::new(p).unwrap();
            assert_ne!(fast.shape, Shape::General, "{p}");
            let general = Pattern {
                shape: Shape::General,
                ..fast.clone()
            };
            for n in names {
                assert_eq!(fast.matches(n), general.matches(n), "{p} vs {n}");
            }
        }
        assert_eq!(Pattern::new("/a/*/b").unwrap().shape, Shape::General);
        assert_eq!(Pattern::new("/a\\*").unwrap().shape, Shape::General);
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(matches("/web[", "/web1").is_err());
        assert!(matches("/web\\", "/web").is_err());
        assert!(matches("[]", "x").is_err());
    }

    #[test]
    fn literal_prefix_stops_at_meta() {
        assert_eq!(literal_prefix("/app/servers/*"), "/app/servers/");
        assert_eq!(literal_prefix("/a/b"), "/a/b");
        assert_eq!(literal_prefix("/a?b"), "/a");
    }
}
