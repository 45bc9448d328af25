//! confd's store functions with memkv's exact semantics, over the render's [`View`].
//!
//! confd copies every key it fetched into memkv under `path.Join("/", strings.TrimPrefix(key,
//! prefix))`, and its functions work on those names. Keys in real stores are almost always
//! clean already (`/a/b`: nothing doubled, no trailing `/`, under the prefix); then memkv's
//! names are the view's own and every function runs on the view's sorted map. When a render
//! meets a key memkv would rename, it builds memkv's map for that render.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::template::glob;
use crate::template::view::View;

use crate::gopath as path;

/// The store a Go template reads: memkv's names over one view.
pub struct Store<'v> {
    view: &'v View,
    /// memkv's map, when some key's name differs from the view's.
    renamed: Option<BTreeMap<String, &'v str>>,
}

/// memkv's `ErrNotExist` for `key`, worded as memkv words it.
pub fn not_exist(key: &str) -> String {
    format!("key does not exist: {key}")
}

impl<'v> Store<'v> {
    /// The store over `view`, with memkv's names.
    pub fn new(view: &'v View) -> Self {
        let prefix = view.prefix();
        // Whether any key is renamed is counted with the view's keys (from the changed
        // keys alone when the resource's cache knows them).
        let renamed = (view.counts().renamed > 0).then(|| {
            view.entries()
                .map(|(full, v)| {
                    let name = path::join_root(full.strip_prefix(prefix).unwrap_or(full));
                    (name.into_owned(), v)
                })
                .collect()
        });
        Self { view, renamed }
    }

    /// The full keys changed since the resource's last good render, when the cache
    /// knows them (a `gets` loop can then be spliced, if every key has its own name).
    pub fn changes(&self) -> Option<&'v crate::template::basis::Changed> {
        self.view.changed()
    }

    /// The epochs of the render (see `View::epochs`).
    pub fn epochs(&self) -> Option<(u64, Option<u64>)> {
        self.view.epochs()
    }

    /// Whether every key has its own name (memkv renames none).
    pub fn own_names(&self) -> bool {
        self.renamed.is_none()
    }

    /// The name a template sees for the full key `full`, when no key is renamed.
    pub fn template_key<'k>(&self, full: &'k str) -> &'k str {
        self.view.template_key(full)
    }

    /// Entries whose name starts with `from`, in name order.
    fn range<'a>(&'a self, from: &str) -> Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a> {
        match &self.renamed {
            Some(m) => {
                let from = from.to_string();
                Box::new(
                    m.range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded))
                        .take_while(move |(k, _)| k.starts_with(from.as_str()))
                        .map(|(k, v)| (k.as_str(), *v)),
                )
            }
            None => Box::new(self.view.template_entries(from)),
        }
    }

    fn is_empty(&self) -> bool {
        match &self.renamed {
            Some(m) => m.is_empty(),
            None => self.view.entries().next().is_none(),
        }
    }

    /// memkv's `Get`: the entry named exactly `key`, as (name, value).
    pub fn get<'a>(&'a self, key: &str) -> Option<(&'a str, &'a str)> {
        match &self.renamed {
            Some(m) => m.get_key_value(key).map(|(k, v)| (k.as_str(), *v)),
            None => self.view.get_template_key(key),
        }
    }

    /// memkv's `GetAll`: entries whose name matches `pattern` (Go's `path.Match`), by name.
    pub fn gets<'a>(&'a self, pattern: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
        self.gets_with(pattern, |k, v| (k, v))
    }

    /// [`Store::gets`], each entry made into a `T` as it is found.
    pub fn gets_with<'a, T>(
        &'a self,
        pattern: &str,
        mut make: impl FnMut(&'a str, &'a str) -> T,
    ) -> Result<Vec<T>, String> {
        Ok(self.gets_iter(pattern)?.map(|(k, v)| make(k, v)).collect())
    }

    /// [`Store::gets`] as it walks the store, for a loop that need not hold every
    /// entry at once (an incremental render copies most of them as text).
    pub fn gets_iter<'a>(
        &'a self,
        pattern: &str,
    ) -> Result<Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>, String> {
        let compiled = match glob::Pattern::new(pattern) {
            Ok(p) => p,
            // memkv only finds a pattern bad when it has a key to match it against.
            Err(_) if self.is_empty() => return Ok(Box::new(std::iter::empty())),
            Err(_) => return Err("syntax error in pattern".into()),
        };
        let literal = glob::literal_prefix(pattern);
        Ok(Box::new(
            self.range(literal)
                .filter(move |(k, _)| compiled.matches(k)),
        ))
    }

    /// memkv's `List`: the base name of a key equal to `dir`, and the first element
    /// below `dir` of every key whose parent is at or below `dir`.
    pub fn ls(&self, dir: &str) -> Vec<String> {
        let prefix = terms(dir);
        let clean = path::clean(dir);
        // Every key that can qualify starts with the cleaned dir (or is `dir` itself).
        let start: &str = if clean.starts_with('/') { &clean } else { dir };
        let mut names = BTreeSet::new();
        for (key, _) in self.range(if clean == "/" { "/" } else { start }) {
            if key == dir {
                names.insert(path::base(key).to_string());
                continue;
            }
            if same_prefix_terms(&prefix, &terms(&path::dir(key))) {
                let stripped = key.strip_prefix(dir).unwrap_or(key);
                let stripped = stripped.strip_prefix('/').unwrap_or(stripped);
                names.insert(stripped.split('/').next().unwrap_or("").to_string());
            }
        }
        names.into_iter().collect()
    }

    /// memkv's `ListDir`: the first element below `dir` of every key that starts with
    /// `dir` and has at least one more level under it.
    pub fn lsdir(&self, dir: &str) -> Vec<String> {
        let prefix = terms(dir);
        let mut names = BTreeSet::new();
        for (key, _) in self.range(dir) {
            let items = terms(&path::dir(key));
            if same_prefix_terms(&prefix, &items) && items.len() > prefix.len() {
                names.insert(items[prefix.len()].clone());
            }
        }
        names.into_iter().collect()
    }
}

/// memkv's `pathToTerms`: `strings.Split(path.Clean(p), "/")`.
fn terms(p: &str) -> Vec<String> {
    path::clean(p).split('/').map(str::to_string).collect()
}

/// memkv's `samePrefixTerms`: `prefix` is a leading run of `test`.
fn same_prefix_terms(prefix: &[String], test: &[String]) -> bool {
    test.len() >= prefix.len() && prefix.iter().zip(test).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::view::test_view as view;

    const DATA: &[(&str, &str)] = &[
        ("/app/upstream/a/host", "h"),
        ("/app/upstream/a/port", "1"),
        ("/app/upstream/b", "leaf"),
        ("/app/upstreamz", "no"),
        ("/top", "t"),
    ];

    #[test]
    fn memkv_terms() {
        assert_eq!(terms("/"), vec!["", ""]);
        assert_eq!(terms("/app/"), vec!["", "app"]);
    }

    #[test]
    fn ls_and_lsdir_as_memkv() {
        let v = view("", &["/"], DATA);
        let s = Store::new(&v);
        assert!(s.renamed.is_none());
        assert_eq!(s.ls("/app/upstream"), vec!["a", "b"]);
        assert_eq!(s.ls("/app/upstream/"), vec!["a", "b"]);
        assert_eq!(
            s.ls("/app/upstream/b"),
            vec!["b"],
            "a leaf lists its own name"
        );
        assert_eq!(s.ls("/"), vec!["top"], "only top-level leaves");
        assert!(s.ls("app").is_empty(), "relative");
        assert_eq!(s.lsdir("/app/upstream"), vec!["a"]);
        assert!(s.lsdir("/").is_empty(), "lsdir of the root is empty");
        assert_eq!(s.lsdir("/app"), vec!["upstream"]);
    }

    #[test]
    fn get_and_gets_use_names() {
        let v = view("/app", &["/upstream"], DATA);
        let s = Store::new(&v);
        assert_eq!(s.get("/upstream/b"), Some(("/upstream/b", "leaf")));
        assert_eq!(s.get("upstream/b"), None, "names start with /");
        assert_eq!(s.get("/upstream/b/"), None, "exists \"/x/\" is false");
        let got = s.gets("/upstream/*").unwrap();
        assert_eq!(got, vec![("/upstream/b", "leaf")]);
        let got = s.gets("/upstream/*/*").unwrap();
        assert_eq!(got.len(), 2);
        assert!(s.gets("/[").is_err());
        // `/app/upstreamz` is visible (string prefixes) and memkv renames it `/upstreamz`.
        assert!(s.renamed.is_none());
    }

    #[test]
    fn unclean_keys_get_memkv_names() {
        let v = view(
            "/app",
            &[""],
            &[
                ("/app/x/", "trailing"),
                ("/app//y", "double"),
                ("/application", "outside"),
            ],
        );
        let s = Store::new(&v);
        assert!(s.renamed.is_some());
        assert_eq!(s.get("/x"), Some(("/x", "trailing")));
        assert_eq!(s.get("/y"), Some(("/y", "double")));
        assert_eq!(s.get("/lication"), Some(("/lication", "outside")));
        assert_eq!(s.ls("/"), vec!["lication", "x", "y"]);
        assert!(s.gets("/[").is_err());
        let empty = view("/none", &[""], &[]);
        assert!(Store::new(&empty).gets("/[").unwrap().is_empty());
    }
}
