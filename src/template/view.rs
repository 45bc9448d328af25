//! What one render sees: the backend's keys, limited to the resource's key prefixes, with
//! the resource prefix stripped. These are confd's store functions (`getv`, `gets`, `ls`, ...).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use crate::backend::{KvMap, under_any};

use super::basis::{Changed, Counts, Since};
use super::entries::EntryCache;
use super::glob;

/// A read-only window onto one backend snapshot for one resource.
#[derive(Debug, Clone)]
pub struct View {
    kvs: Arc<KvMap>,
    /// The resource prefix without a trailing `/` (`""` for none); joined in front of
    /// every key a template asks for and stripped from every key it is shown.
    prefix: String,
    /// Full key prefixes the resource declared (`prefix` joined with each of `keys`);
    /// keys outside them are invisible, as they were never fetched in confd.
    visible: Vec<String>,
    /// Full keys hidden because their value failed the resource's `value_pattern`.
    excluded: Arc<BTreeSet<String>>,
    /// The resource's entries from its previous render, if it keeps them.
    cache: Option<Arc<EntryCache>>,
    /// What the cache knew when this render began.
    since: Option<Since>,
    /// A guard (`value_pattern`, `key_pattern`) was applied: which keys the last render
    /// hid is not known, so counts are not worked out from changes.
    guarded: bool,
    /// The render's counts, worked out once.
    counts: OnceLock<Counts>,
}

/// `prefix` joined with `key` the way Go's `path.Join` does for these (no doubled `/`).
pub fn join_key(prefix: &str, key: &str) -> String {
    let p = prefix.trim_end_matches('/');
    let k = key.trim_start_matches('/');
    if k.is_empty() {
        if p.is_empty() {
            "/".to_string()
        } else {
            p.to_string()
        }
    } else {
        format!("{p}/{k}")
    }
}

/// The full key prefix a resource reads for one of its `keys`: confd's
/// `path.Join(prefix, key)`, which cleans the result (`/app/servers/` reads `/app/servers`,
/// so it also matches `/app/servers2`; prefixes match as plain string prefixes).
pub fn key_prefix(prefix: &str, key: &str) -> String {
    crate::gopath::clean(&format!("/{prefix}/{key}")).into_owned()
}

impl View {
    /// A view of `kvs` for a resource with `prefix` and `keys`.
    pub fn new(kvs: Arc<KvMap>, prefix: &str, keys: &[String]) -> Self {
        let prefix = prefix.trim_end_matches('/').to_string();
        let visible = keys.iter().map(|k| key_prefix(&prefix, k)).collect();
        Self {
            kvs,
            prefix,
            visible,
            excluded: Arc::default(),
            cache: None,
            since: None,
            guarded: false,
            counts: OnceLock::new(),
        }
    }

    /// The same view, reusing and keeping `gets` entries in `cache` (one per resource).
    pub fn with_cache(mut self, cache: Arc<EntryCache>) -> Self {
        self.since = Some(cache.basis().since());
        self.cache = Some(cache);
        self
    }

    /// The full keys changed since the resource's last good render, when known.
    pub fn changed(&self) -> Option<&Changed> {
        self.since.as_ref()?.changed.as_deref()
    }

    /// The epoch this render began at and the one its basis was committed at, when it
    /// renders with a cache (see [`Since::committed`]).
    pub fn epochs(&self) -> Option<(u64, Option<u64>)> {
        self.since.as_ref().map(|s| (s.epoch(), s.committed))
    }

    /// Ends a render that succeeded: what it saw is the next render's basis.
    pub fn commit(&self) {
        if let (Some(cache), Some(since)) = (&self.cache, &self.since) {
            let counts = self.counts.get().copied().filter(|_| !self.guarded);
            cache.basis().commit(since, counts);
        }
    }

    /// The entry cache this view renders with, if any.
    pub fn cache(&self) -> Option<&Arc<EntryCache>> {
        self.cache.as_ref()
    }

    /// Hides every visible key whose value `keep` rejects; returns the hidden full keys.
    pub fn exclude_values(&mut self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.exclude(|_, v| keep(v))
    }

    /// Hides every visible key whose name (relative to the prefix, as templates see it)
    /// `keep` rejects; returns the hidden full keys.
    pub fn exclude_keys(&mut self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.exclude(|k, _| keep(k))
    }

    /// Hides every visible key that `keep(relative key, value)` rejects, on top of those
    /// already hidden; returns the newly hidden full keys, sorted.
    fn exclude(&mut self, keep: impl Fn(&str, &str) -> bool) -> Vec<String> {
        self.guarded = true;
        self.counts = OnceLock::new();
        let mut out = BTreeSet::new();
        for p in &self.visible {
            for (k, v) in self
                .kvs
                .range::<str, _>((Bound::Included(p.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(p.as_str()))
            {
                if !self.excluded.contains(k.as_str()) && !keep(self.strip(k), v) {
                    out.insert(k.clone());
                }
            }
        }
        let hidden = out.iter().cloned().collect();
        if !out.is_empty() {
            let mut all = (*self.excluded).clone();
            all.extend(out);
            self.excluded = Arc::new(all);
        }
        hidden
    }

    fn shows(&self, full: &str) -> bool {
        under_any(full, &self.visible) && !self.excluded.contains(full)
    }

    /// The full key prefixes this view shows.
    pub fn visible_prefixes(&self) -> &[String] {
        &self.visible
    }

    fn strip<'a>(&self, full: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return full;
        }
        match full.strip_prefix(self.prefix.as_str()) {
            Some(rest) if rest.starts_with('/') => rest,
            Some("") => "/",
            _ => full,
        }
    }

    /// Visible entries whose full key starts with `from`, as (template key, value).
    fn scan(&self, from: String) -> impl Iterator<Item = (&str, &str)> {
        // Prefixes match as plain string prefixes, so when `from` starts with a visible
        // prefix, so does every key the scan meets: the per-key checks reduce to the
        // exclusions, if there are any.
        let all_visible = under_any(&from, &self.visible);
        let none_excluded = self.excluded.is_empty();
        self.kvs
            .range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(from.as_str()))
            .filter(move |(k, _)| {
                (all_visible || under_any(k, &self.visible))
                    && (none_excluded || !self.excluded.contains(k.as_str()))
            })
            .map(|(k, v)| (self.strip(k), v.as_str()))
    }

    /// The resource prefix (without a trailing `/`; `""` for none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name a template sees for the full key `full` (the prefix stripped).
    pub fn template_key<'k>(&self, full: &'k str) -> &'k str {
        self.strip(full)
    }

    /// Every visible entry once, in key order, as (full key, value); prefixes that lie
    /// inside other visible prefixes are not scanned twice.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut roots: Vec<&str> = self.visible.iter().map(String::as_str).collect();
        roots.sort_unstable();
        roots.dedup_by(|later, earlier| later.starts_with(*earlier));
        roots.into_iter().flat_map(move |root| {
            self.kvs
                .range::<str, _>((Bound::Included(root), Bound::Unbounded))
                .take_while(move |(k, _)| k.starts_with(root))
                .filter(|(k, _)| self.excluded.is_empty() || !self.excluded.contains(k.as_str()))
                .map(|(k, v)| (k.as_str(), v.as_str()))
        })
    }

    /// The full key a template name stands for, when names are the stripped keys.
    fn full_key(&self, name: &str) -> Option<String> {
        if !name.starts_with('/') {
            return None;
        }
        Some(match (self.prefix.is_empty(), name) {
            (true, _) => name.to_string(),
            (false, "/") => self.prefix.clone(),
            (false, _) => format!("{}{name}", self.prefix),
        })
    }

    /// The visible entry whose template name is exactly `name`, as (name, value).
    pub fn get_template_key(&self, name: &str) -> Option<(&str, &str)> {
        let full = self.full_key(name)?;
        if !self.shows(&full) {
            return None;
        }
        let (k, v) = self.kvs.get_key_value(&full)?;
        Some((self.strip(k), v.as_str()))
    }

    /// Visible entries whose template name starts with `from`, in order, as (name, value).
    pub fn template_entries<'a>(
        &'a self,
        from: &str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let full = match from {
            "" | "/" => Some(self.prefix.clone()),
            _ => self.full_key(from),
        };
        let from = from.to_string();
        full.into_iter()
            .flat_map(move |f| self.scan(f))
            .filter(move |(k, _)| k.starts_with(from.as_str()))
    }

    /// The value of `key`, if present and visible.
    pub fn get(&self, key: &str) -> Option<&str> {
        let full = join_key(&self.prefix, key);
        if !self.shows(&full) {
            return None;
        }
        self.kvs.get(&full).map(String::as_str)
    }

    /// Entries whose template key matches `pattern`, in key order, as (key, value).
    pub fn gets(
        &self,
        pattern: &str,
    ) -> Result<impl Iterator<Item = (&str, &str)>, glob::BadPattern> {
        let pattern = join_key("", pattern);
        let compiled = glob::Pattern::new(&pattern)?;
        let from = join_key(&self.prefix, glob::literal_prefix(&pattern));
        Ok(self.scan(from).filter(move |(k, _)| compiled.matches(k)))
    }

    /// Values whose template key matches `pattern`, sorted by value.
    pub fn getvs(&self, pattern: &str) -> Result<Vec<&str>, glob::BadPattern> {
        let mut vals: Vec<&str> = self.gets(pattern)?.map(|(_, v)| v).collect();
        vals.sort_unstable();
        Ok(vals)
    }

    /// Names of the direct children of `key` (leaves and directories), sorted.
    pub fn ls(&self, key: &str) -> Vec<String> {
        self.children(key, false)
    }

    /// Names of the direct children of `key` that have keys below them, sorted.
    pub fn lsdir(&self, key: &str) -> Vec<String> {
        self.children(key, true)
    }

    fn children(&self, key: &str, dirs_only: bool) -> Vec<String> {
        let mut dir = join_key(&self.prefix, key);
        if !dir.ends_with('/') {
            dir.push('/');
        }
        let mut names = BTreeSet::new();
        for (full, _) in self
            .kvs
            .range::<str, _>((Bound::Included(dir.as_str()), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(dir.as_str()))
            .filter(|(k, _)| self.shows(k))
        {
            let rest = &full[dir.len()..];
            match rest.split_once('/') {
                Some((name, _)) if !name.is_empty() => {
                    names.insert(name);
                }
                None if !dirs_only && !rest.is_empty() => {
                    names.insert(rest);
                }
                _ => {}
            }
        }
        names.into_iter().map(str::to_string).collect()
    }

    /// How many visible keys the view holds (a key under two visible prefixes counts
    /// twice).
    pub fn len(&self) -> usize {
        self.counts().visible
    }

    /// The visible keys and those memkv renames: from the last good render's counts and
    /// the keys changed since, when the cache knows them, else by walking every key.
    pub fn counts(&self) -> Counts {
        *self.counts.get_or_init(|| {
            self.counts_from_changes()
                .unwrap_or_else(|| self.counts_by_walking())
        })
    }

    /// One walk of the visible keys (the first render at 100,000 keys spent 13% of its
    /// time in two: one per visible prefix for the count, one for the renames).
    fn counts_by_walking(&self) -> Counts {
        let mut c = Counts::default();
        for (k, _) in self.entries() {
            // A key under two visible prefixes counts for each, as a scan of each would.
            c.visible += match self.visible.as_slice() {
                [_] => 1,
                all => all.iter().filter(|p| k.starts_with(p.as_str())).count(),
            };
            c.renamed += usize::from(self.memkv_renames(k));
        }
        c
    }

    fn counts_from_changes(&self) -> Option<Counts> {
        if self.guarded {
            return None;
        }
        let since = self.since.as_ref()?;
        let (changed, mut c) = (since.changed.as_deref()?, since.counts?);
        for (full, &held) in changed {
            let under = self
                .visible
                .iter()
                .filter(|p| full.starts_with(p.as_str()))
                .count();
            if under == 0 {
                continue;
            }
            let renames = usize::from(self.memkv_renames(full));
            if held {
                c.visible = c.visible.checked_sub(under)?;
                c.renamed = c.renamed.checked_sub(renames)?;
            }
            if self.kvs.contains_key(full) {
                c.visible += under;
                c.renamed += renames;
            }
        }
        Some(c)
    }

    /// Whether memkv knows the visible full key `full` by another name than the one
    /// templates see here: `path.Join("/", strings.TrimPrefix(full, prefix))`, cheap for
    /// the keys of real stores (`/rest` after the prefix with nothing to clean).
    pub fn memkv_renames(&self, full: &str) -> bool {
        match full.strip_prefix(self.prefix.as_str()) {
            Some("") => false,
            Some(rest) if crate::gopath::is_plain_absolute(rest) => false,
            rest => crate::gopath::join_root(rest.unwrap_or(full)) != self.template_key(full),
        }
    }

    /// True when no key is visible.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A view of `data` (full keys and values) for a resource with `prefix` and `keys`.
#[cfg(test)]
pub fn test_view(prefix: &str, keys: &[&str], data: &[(&str, &str)]) -> View {
    let kvs: KvMap = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    View::new(Arc::new(kvs), prefix, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(prefix: &str, keys: &[&str], data: &[(&str, &str)]) -> View {
        test_view(prefix, keys, data)
    }

    #[test]
    fn prefix_is_joined_and_stripped() {
        let v = view(
            "/prod/",
            &["/app/servers"],
            &[
                ("/prod/app/servers/b", "2"),
                ("/prod/app/servers/a", "3"),
                ("/prod/other", "x"),
            ],
        );
        assert_eq!(v.get("/app/servers/a"), Some("3"));
        assert_eq!(v.get("app/servers/a"), Some("3"));
        assert_eq!(v.get("/other"), None, "outside the resource's keys");
        let got: Vec<_> = v.gets("/app/servers/*").unwrap().collect();
        assert_eq!(got, vec![("/app/servers/a", "3"), ("/app/servers/b", "2")]);
        assert_eq!(v.getvs("/app/servers/*").unwrap(), vec!["2", "3"]);
        assert_eq!(join_key("", "/a"), "/a");
        assert_eq!(join_key("/", "a"), "/a");
        assert_eq!(join_key("/p", "/"), "/p");
    }

    #[test]
    fn gets_star_stays_in_one_level() {
        let v = view(
            "",
            &["/app"],
            &[
                ("/app/servers/a", "1"),
                ("/app/servers/a/port", "80"),
                ("/app/serversX", "no"),
            ],
        );
        let got: Vec<_> = v.gets("/app/servers/*").unwrap().collect();
        assert_eq!(got, vec![("/app/servers/a", "1")]);
        assert!(v.gets("/app/[").is_err());
    }

    #[test]
    fn ls_and_lsdir() {
        let v = view(
            "",
            &["/"],
            &[
                ("/app/upstream/a/host", "h"),
                ("/app/upstream/a/port", "1"),
                ("/app/upstream/b", "leaf"),
                ("/app/upstreamz", "no"),
            ],
        );
        assert_eq!(v.ls("/app/upstream"), vec!["a", "b"]);
        assert_eq!(v.lsdir("/app/upstream"), vec!["a"]);
        assert_eq!(v.ls("/app/upstream/a"), vec!["host", "port"]);
        assert!(v.ls("/nothing").is_empty());
        assert_eq!(v.len(), 4);
    }

    #[test]
    fn excluded_values_are_invisible() {
        let mut v = view(
            "",
            &["/s"],
            &[
                ("/s/a", "10.0.0.1:80"),
                ("/s/b", "10.0.0.2:80\n  server evil 1.2.3.4:80"),
            ],
        );
        let hidden = v.exclude_values(|val| !val.contains('\n'));
        assert_eq!(hidden, vec!["/s/b"]);
        assert_eq!(v.gets("/s/*").unwrap().count(), 1);
        assert_eq!(v.get("/s/b"), None);
        assert_eq!(v.ls("/s"), vec!["a"]);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn excluded_keys_match_relative_to_the_prefix_and_add_to_excluded_values() {
        let mut v = view(
            "/app",
            &["/s"],
            &[
                ("/app/s/a", "10.0.0.1:80"),
                ("/app/s/b x", "10.0.0.2:80"),
                ("/app/s/c", "bad value"),
            ],
        );
        assert_eq!(v.exclude_values(|val| !val.contains(' ')), vec!["/app/s/c"]);
        let hidden = v.exclude_keys(|k| k.strip_prefix("/s/").is_some_and(|b| !b.contains(' ')));
        assert_eq!(hidden, vec!["/app/s/b x"]);
        assert_eq!(v.ls("/s"), vec!["a"]);
    }

    #[test]
    fn counts_walk_each_key_once_and_count_it_per_visible_prefix() {
        let mut v = view(
            "",
            &["/app", "/app/s", "/other"],
            &[
                ("/app/s/a", "1"),
                ("/app/s//b", "2"),
                ("/app/t", "3"),
                ("/app/s/hidden", "bad"),
                ("/other", "4"),
                ("/outside", "5"),
            ],
        );
        v.exclude_values(|val| val != "bad");
        // Under /app and /app/s: a and //b twice; /app/t and /other once; /outside no.
        let c = v.counts();
        assert_eq!((c.visible, c.renamed), (6, 1), "//b is renamed by memkv");
        let by_scans: usize = v.visible.iter().map(|p| v.scan(p.clone()).count()).sum();
        assert_eq!(c.visible, by_scans);
    }
}
