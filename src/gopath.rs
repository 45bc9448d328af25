//! Go's `path` package as confd uses it: `Clean`, `Base`, `Dir` and `Join`, for the names
//! confd gives keys (the file backend's key paths, a resource's key prefixes, memkv's
//! names in Go templates) and for the `base`/`dir` template functions.

use std::borrow::Cow;

/// Go's `path.Clean`: the shortest equivalent path (no `//`, `.`, resolvable `..`, or
/// trailing `/`); `""` becomes `"."`.
pub fn clean(p: &str) -> Cow<'_, str> {
    if is_clean(p) {
        return Cow::Borrowed(p);
    }
    if p.is_empty() {
        return Cow::Borrowed(".");
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    Cow::Owned(match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    })
}

/// A fast, conservative test that `p` is absolute and clean: it starts with `/`, and has
/// no `//`, no `/.` (so no `.` or `..` element) and no trailing `/`.
pub fn is_plain_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    if b.first() != Some(&b'/') || (b.len() > 1 && b[b.len() - 1] == b'/') {
        return false;
    }
    // Every `/` checked for a `/` or `.` after it, in one plain pass: this runs on every
    // key of a store when a render counts them, and keys are short (a memchr per `/`
    // cost three times as much at 100,000 keys).
    !b.windows(2)
        .any(|w| w[0] == b'/' && matches!(w[1], b'/' | b'.'))
}

/// True when [`clean`] would return `p` unchanged.
fn is_clean(p: &str) -> bool {
    if p.is_empty() {
        return false;
    }
    if p == "/" {
        return true;
    }
    if p.ends_with('/') {
        return false;
    }
    let rooted = p.starts_with('/');
    let body = if rooted { &p[1..] } else { p };
    let mut seen_name = false;
    for seg in body.split('/') {
        match seg {
            "" | "." => return false,
            ".." if rooted || seen_name => return false,
            ".." => {}
            _ => seen_name = true,
        }
    }
    true
}

/// Go's `path.Join("/", s)`: `s` made absolute and cleaned (memkv's key names).
pub fn join_root(s: &str) -> Cow<'_, str> {
    if s.starts_with('/') && is_clean(s) {
        return Cow::Borrowed(s);
    }
    if s.is_empty() {
        return Cow::Borrowed("/");
    }
    Cow::Owned(clean(&format!("/{s}")).into_owned())
}

/// Go's `path.Base`: the last element; `"."` for `""`, `"/"` for only slashes.
pub fn base(p: &str) -> &str {
    if p.is_empty() {
        return ".";
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    // A plain loop: the names are short, and a call to memrchr costs more than it saves.
    match t.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(i) => &t[i + 1..],
        None => t,
    }
}

/// Go's `path.Dir`: everything before the last element, cleaned.
pub fn dir(p: &str) -> Cow<'_, str> {
    let head = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    clean(head)
}

/// Go's `path.Join(parent, key)`.
pub fn join(parent: &str, key: &str) -> String {
    match (parent.is_empty(), key.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(key).into_owned(),
        (false, true) => clean(parent).into_owned(),
        (false, false) => clean(&format!("{parent}/{key}")).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_absolute_paths_are_clean_and_the_rest_is_checked() {
        for p in ["/", "/a", "/app/servers/web1", "/a.b/c.", "/a-b_c/d e"] {
            assert!(is_plain_absolute(p), "{p}");
            assert_eq!(clean(p), p, "{p}");
        }
        // Not plain (some are clean all the same: the test is conservative).
        for p in [
            "", "a", "a/b", "//a", "/a//b", "/a/", "/a/./b", "/a/..", "/.a", "/a/.b",
        ] {
            assert!(!is_plain_absolute(p), "{p}");
        }
    }

    #[test]
    fn clean_as_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("a/b", "a/b"),
            ("/a//b/", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("a/..", "."),
            ("//", "/"),
            ("/a/b/.", "/a/b"),
        ] {
            assert_eq!(clean(i), o, "clean({i:?})");
        }
    }

    #[test]
    fn base_dir_join() {
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("///"), "/");
        assert_eq!(base(""), ".");
        assert_eq!(base("x"), "x");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("/a/b/"), "/a/b");
        assert_eq!(dir("/a"), "/");
        assert_eq!(dir("a"), ".");
        assert_eq!(dir(""), ".");
        assert_eq!(join_root(""), "/");
        assert_eq!(join_root("/a/b"), "/a/b");
        assert_eq!(join_root("lication"), "/lication");
        assert_eq!(join_root("/a/b/"), "/a/b");
        assert_eq!(join("/a", "../b"), "/b");
        assert_eq!(join("/", ".."), "/");
        assert_eq!(join("/a", ""), "/a");
        assert_eq!(join("/a/", "b/"), "/a/b");
    }
}
