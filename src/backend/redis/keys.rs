//! How confsync keys map to Redis keys and back (the confd rule), and the glob patterns
//! used for SCAN MATCH and PSUBSCRIBE.
//!
//! With the default separator `/` a key is used as it is: `/app/servers` is the Redis key
//! `/app/servers`. With another separator (say `:`) the leading `/` is dropped and every
//! `/` becomes the separator: `/app/servers` is `app:servers`, and back again. A hash `k`
//! stands for one key `k/field` per field.

/// Maps confsync keys (always starting with `/`) to Redis keys and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    /// What stands for `/` in the store's keys.
    separator: String,
}

impl KeyMap {
    /// A map for `separator`; `None` or an empty string means `/`.
    pub fn new(separator: Option<&str>) -> Self {
        let separator = match separator {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => "/".to_string(),
        };
        Self { separator }
    }

    /// The Redis key for a confsync key (or key prefix).
    pub fn to_store(&self, key: &str) -> String {
        if self.separator == "/" {
            return key.to_string();
        }
        key.strip_prefix('/')
            .unwrap_or(key)
            .replace('/', &self.separator)
    }

    /// The confsync key for a Redis string key.
    pub fn to_logical(&self, store_key: &str) -> String {
        let with_slash = if store_key.starts_with('/') {
            store_key.to_string()
        } else {
            format!("/{store_key}")
        };
        if self.separator == "/" {
            with_slash
        } else {
            with_slash.replace(&self.separator, "/")
        }
    }

    /// The confsync key for one field of the Redis hash `store_key`.
    pub fn field_key(&self, store_key: &str, field: &str) -> String {
        self.to_logical(&format!("{store_key}/{field}"))
    }

    /// The SCAN MATCH pattern for every Redis key under the confsync prefix `prefix`.
    pub fn scan_pattern(&self, prefix: &str) -> String {
        format!("{}*", glob_escape(&self.to_store(prefix)))
    }

    /// Redis keys that are not under `prefix` but may still be hashes with fields under
    /// it: every proper ancestor of the prefix (`/app` for `/app/servers`).
    pub fn ancestor_keys(&self, prefix: &str) -> Vec<String> {
        prefix
            .char_indices()
            .filter(|&(i, c)| c == '/' && i > 0)
            .map(|(i, _)| self.to_store(&prefix[..i]))
            .filter(|k| !k.is_empty())
            .collect()
    }
}

/// Escapes the characters Redis glob patterns give a meaning to.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_separator_keeps_keys() {
        let m = KeyMap::new(None);
        assert_eq!(m.to_store("/app/servers"), "/app/servers");
        assert_eq!(m.to_logical("/app/servers"), "/app/servers");
        assert_eq!(m.to_logical("app"), "/app");
        assert_eq!(m.field_key("/app/servers", "a"), "/app/servers/a");
        assert_eq!(m.scan_pattern("/app/s*"), "/app/s\\**");
    }

    #[test]
    fn colon_separator_as_confd() {
        let m = KeyMap::new(Some(":"));
        assert_eq!(m.to_store("/app/servers"), "app:servers");
        assert_eq!(m.to_logical("app:servers"), "/app/servers");
        assert_eq!(m.field_key("app:servers", "web1"), "/app/servers/web1");
        assert_eq!(m.scan_pattern("/app/servers"), "app:servers*");
        assert_eq!(m.scan_pattern("/"), "*");
    }

    #[test]
    fn ancestors_of_a_prefix() {
        let m = KeyMap::new(None);
        assert_eq!(m.ancestor_keys("/a/b/c"), vec!["/a", "/a/b"]);
        assert_eq!(m.ancestor_keys("/a/b/"), vec!["/a", "/a/b"]);
        assert!(m.ancestor_keys("/a").is_empty());
        let m = KeyMap::new(Some(":"));
        assert_eq!(m.ancestor_keys("/a/b/c"), vec!["a", "a:b"]);
    }

    #[test]
    fn escapes_glob_characters() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
